//! Spin's key-value interface (`fermyon:spin/key-value@2.0.0`, what
//! spin-sdk's `key_value::Store` imports), backed by embedded redb files.
//!
//! A component opens only the labels its `key_value_stores` grants; every
//! component granted a label sees the same store. Each label is one redb
//! database, `<kv dir>/<label>.redb`: ACID, and a `set` returns only after
//! its transaction is durable on disk. Limits follow Spin's: keys up to 255
//! bytes, values up to 1 MiB.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use redb::{Database, ReadableTable, TableDefinition};
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::runtime::HostState;

/// Generated from `host/wit/key-value.wit`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/key-value.wit",
        world: "key-value-host",
        imports: { default: trappable },
        with: { "fermyon:spin/key-value.store": super::OpenStore },
    });
}

use bindings::fermyon::spin::key_value::{self as key_value, Error, Host, HostStore};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Spin's limits.
const MAX_KEY_BYTES: usize = 255;
const MAX_VALUE_BYTES: usize = 1 << 20;

/// Every store of the application, by label.
#[derive(Clone, Default)]
pub struct Stores {
    databases: Arc<BTreeMap<String, Database>>,
}

impl Stores {
    /// Opens (creating) one redb file per label under `dir`.
    pub fn open<'a>(dir: &Path, labels: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut databases = BTreeMap::new();
        for label in labels {
            if databases.contains_key(label) {
                continue;
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("{label}.redb"));
            let db = Database::create(&path).with_context(|| format!("opening key-value store {}", path.display()))?;
            let tx = db.begin_write()?;
            tx.open_table(TABLE)?;
            tx.commit()?;
            databases.insert(label.to_string(), db);
        }
        Ok(Self { databases: Arc::new(databases) })
    }
}

/// What one request may open: the stores and the labels its component is granted.
#[derive(Clone, Default)]
pub struct KvAccess {
    stores: Stores,
    granted: Vec<String>,
}

impl KvAccess {
    /// Access to `granted` labels of `stores`.
    pub fn new(stores: Stores, granted: Vec<String>) -> Self {
        Self { stores, granted }
    }
}

/// An open store handle held in the resource table.
pub struct OpenStore {
    label: String,
}

/// Links the key-value interface into `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    key_value::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl HostState {
    fn database(&mut self, store: &Resource<OpenStore>) -> wasmtime::Result<Result<&Database, Error>> {
        let label = self.table().get(store)?.label.clone();
        Ok(self.kv.stores.databases.get(&label).ok_or(Error::NoSuchStore))
    }
}

impl Host for HostState {}

impl HostStore for HostState {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        if !self.kv.granted.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        if !self.kv.stores.databases.contains_key(&label) {
            return Ok(Err(Error::NoSuchStore));
        }
        Ok(Ok(self.table().push(OpenStore { label })?))
    }

    fn get(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(self.database(&store)?.and_then(|db| {
            let tx = db.begin_read().map_err(other)?;
            let table = tx.open_table(TABLE).map_err(other)?;
            Ok(table.get(key.as_str()).map_err(other)?.map(|v| v.value().to_vec()))
        }))
    }

    fn set(&mut self, store: Resource<OpenStore>, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Ok(Err(Error::Other(format!(
                "keys are limited to {MAX_KEY_BYTES} bytes and values to {MAX_VALUE_BYTES} bytes"
            ))));
        }
        Ok(self.database(&store)?.and_then(|db| {
            let tx = db.begin_write().map_err(other)?;
            tx.open_table(TABLE).map_err(other)?.insert(key.as_str(), value.as_slice()).map_err(other)?;
            tx.commit().map_err(other)
        }))
    }

    fn delete(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.database(&store)?.and_then(|db| {
            let tx = db.begin_write().map_err(other)?;
            tx.open_table(TABLE).map_err(other)?.remove(key.as_str()).map_err(other)?;
            tx.commit().map_err(other)
        }))
    }

    fn exists(&mut self, store: Resource<OpenStore>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        Ok(self.get(store, key)?.map(|v| v.is_some()))
    }

    fn get_keys(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(self.database(&store)?.and_then(|db| {
            let tx = db.begin_read().map_err(other)?;
            let table = tx.open_table(TABLE).map_err(other)?;
            let mut keys = Vec::new();
            for entry in table.iter().map_err(other)? {
                keys.push(entry.map_err(other)?.0.value().to_string());
            }
            Ok(keys)
        }))
    }

    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table().delete(store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Limits;

    fn state(stores: &Stores, granted: &[&str]) -> HostState {
        let component = crate::manifest::Component {
            id: "c".into(),
            source: "c.wasm".into(),
            files: vec![],
            environment: Default::default(),
            key_value_stores: granted.iter().map(|s| s.to_string()).collect(),
        };
        let access = KvAccess::new(stores.clone(), component.key_value_stores.clone());
        HostState::new(&component, &[], Limits::default(), access).unwrap()
    }

    #[test]
    fn set_get_delete_and_list_like_spin() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path(), ["default"]).unwrap();
        let mut s = state(&stores, &["default"]);
        let store = s.open("default".into()).unwrap().unwrap();
        let handle = |st: &Resource<OpenStore>| Resource::<OpenStore>::new_borrow(st.rep());
        assert_eq!(s.get(handle(&store), "a".into()).unwrap().unwrap(), None);
        s.set(handle(&store), "a".into(), b"1".to_vec()).unwrap().unwrap();
        s.set(handle(&store), "b".into(), b"2".to_vec()).unwrap().unwrap();
        assert_eq!(s.get(handle(&store), "a".into()).unwrap().unwrap(), Some(b"1".to_vec()));
        assert!(s.exists(handle(&store), "b".into()).unwrap().unwrap());
        assert_eq!(s.get_keys(handle(&store)).unwrap().unwrap(), ["a", "b"]);
        s.delete(handle(&store), "a".into()).unwrap().unwrap();
        s.delete(handle(&store), "never-there".into()).unwrap().unwrap();
        assert_eq!(s.get_keys(handle(&store)).unwrap().unwrap(), ["b"]);
        let too_long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(s.set(handle(&store), too_long, vec![]).unwrap(), Err(Error::Other(_))));
        s.drop(store).unwrap();
    }

    #[test]
    fn only_granted_labels_open() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::open(dir.path(), ["default", "other"]).unwrap();
        let mut s = state(&stores, &["default"]);
        assert!(matches!(s.open("other".into()).unwrap(), Err(Error::AccessDenied)));
        let mut none = state(&stores, &[]);
        assert!(matches!(none.open("default".into()).unwrap(), Err(Error::AccessDenied)));
        // Granted in the manifest but never opened by the host: no such store.
        let mut odd = state(&Stores::default(), &["default"]);
        assert!(matches!(odd.open("default".into()).unwrap(), Err(Error::NoSuchStore)));
    }

    #[test]
    fn writes_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let stores = Stores::open(dir.path(), ["default"]).unwrap();
            let mut s = state(&stores, &["default"]);
            let store = s.open("default".into()).unwrap().unwrap();
            s.set(Resource::new_borrow(store.rep()), "k".into(), b"v".to_vec()).unwrap().unwrap();
        }
        let stores = Stores::open(dir.path(), ["default"]).unwrap();
        let mut s = state(&stores, &["default"]);
        let store = s.open("default".into()).unwrap().unwrap();
        assert_eq!(s.get(Resource::new_borrow(store.rep()), "k".into()).unwrap().unwrap(), Some(b"v".to_vec()));
    }
}
