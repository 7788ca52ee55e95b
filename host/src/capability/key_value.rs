//! Spin's key-value interface (`fermyon:spin/key-value@2.0.0`, what
//! spin-sdk's `key_value::Store` imports), backed by embedded redb files.
//!
//! A component opens only the labels its `key_value_stores` grants; every
//! component granted a label sees the same store. Each label is one redb
//! database, `<kv dir>/<label>.redb`, opened when the first component that
//! is granted it loads and kept open for the life of the host (a reload
//! reuses it: redb allows one opener per file). ACID, and a `set` returns
//! only after its transaction is durable on disk. Limits follow Spin's:
//! keys up to 255 bytes, values up to 1 MiB.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use redb::{Database, ReadableTable, TableDefinition};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use super::{Capability, InstanceState, Purpose};
use crate::config::HostConfig;
use crate::manifest;

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

/// The capability: the open stores, by label.
pub struct KeyValue {
    dir: PathBuf,
    databases: Mutex<BTreeMap<String, Arc<Database>>>,
}

/// The stores one component is granted, by label.
#[derive(Clone, Default)]
pub struct Granted {
    stores: Arc<BTreeMap<String, Arc<Database>>>,
}

/// One instance's view: its grants and its open store handles.
pub struct KvState {
    granted: Granted,
    table: ResourceTable,
}

/// An open store handle held in the instance's resource table.
pub struct OpenStore {
    label: String,
}

impl KeyValue {
    /// The store `label`, opening (creating) `<dir>/<label>.redb` the first time.
    fn open(&self, label: &str) -> Result<Arc<Database>> {
        let mut databases = self.databases.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = databases.get(label) {
            return Ok(db.clone());
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.dir.join(format!("{label}.redb"));
        let db = Database::create(&path)
            .map_err(|e| open_failed(&path, e, " (another host process has it open: give each host its own kv_dir)"))?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        let db = Arc::new(db);
        databases.insert(label.to_string(), db.clone());
        Ok(db)
    }
}

impl KeyValue {
    /// Every entry of store `label` whose key starts with `prefix`, from
    /// the database this host has open (the host's own readers: an update
    /// folding in new items).
    pub fn entries(&self, label: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        entries_with_prefix(&*self.open(label)?, prefix)
    }
}

/// A store that would not open; `held` says what to do when another
/// process has it (redb allows one).
fn open_failed(path: &std::path::Path, e: redb::DatabaseError, held: &str) -> anyhow::Error {
    let hint = if matches!(e, redb::DatabaseError::DatabaseAlreadyOpen) { held } else { "" };
    anyhow::anyhow!("opening key-value store {}: {e}{hint}", path.display())
}

fn entries_with_prefix(db: &Database, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(TABLE)?;
    let mut out = Vec::new();
    for entry in table.range(prefix..)? {
        let (key, value) = entry?;
        if !key.value().starts_with(prefix) {
            break;
        }
        out.push((key.value().to_string(), value.value().to_vec()));
    }
    Ok(out)
}

/// [`KeyValue::entries`] for a process that is not the host (`edgerec
/// update`): opens `<kv_dir>/<label>.redb`, which only one process may hold;
/// no file means no entries.
pub fn read_prefix(kv_dir: &std::path::Path, label: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let path = kv_dir.join(format!("{label}.redb"));
    if !path.exists() {
        return Ok(Vec::new());
    }
    let db = Database::open(&path).map_err(|e| {
        open_failed(
            &path,
            e,
            "; a running host holds it: ask that host to update (POST /api/admin/models/<name>/update) or stop it",
        )
    })?;
    entries_with_prefix(&db, prefix)
}

impl Capability for KeyValue {
    const NAME: &'static str = "key-value";
    type ComponentState = Granted;
    type InstanceState = KvState;

    fn new(config: &HostConfig) -> Result<Self> {
        Ok(Self { dir: config.kv_dir.clone(), databases: Mutex::default() })
    }

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
        key_value::add_to_linker::<InstanceState, HasSelf<KvState>>(linker, |s| &mut s.key_value)?;
        Ok(())
    }

    fn configure(&self, component: &manifest::Component) -> Result<Granted> {
        let mut stores = BTreeMap::new();
        for label in &component.key_value_stores {
            stores.insert(label.clone(), self.open(label)?);
        }
        Ok(Granted { stores: Arc::new(stores) })
    }

    fn prepare(&self, granted: &Granted, purpose: Purpose) -> Result<KvState> {
        // A snapshot keeps memory, not handles: `preinit` gets no store.
        let granted = if purpose.is_request() { granted.clone() } else { Granted::default() };
        Ok(KvState { granted, table: ResourceTable::new() })
    }
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl KvState {
    fn database(&mut self, store: &Resource<OpenStore>) -> wasmtime::Result<Result<Arc<Database>, Error>> {
        let label = &self.table.get(store)?.label;
        Ok(self.granted.stores.get(label).cloned().ok_or(Error::NoSuchStore))
    }
}

impl Host for KvState {}

impl HostStore for KvState {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        if !self.granted.stores.contains_key(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        Ok(Ok(self.table.push(OpenStore { label })?))
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
        self.table.delete(store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capability(dir: &std::path::Path) -> KeyValue {
        KeyValue { dir: dir.to_path_buf(), databases: Mutex::default() }
    }

    fn component(granted: &[&str]) -> manifest::Component {
        manifest::Component {
            id: "c".into(),
            source: "c.wasm".into(),
            files: vec![],
            environment: Default::default(),
            key_value_stores: granted.iter().map(|s| s.to_string()).collect(),
            ai_models: vec![],
            variables: Default::default(),
        }
    }

    fn state(kv: &KeyValue, granted: &[&str]) -> KvState {
        kv.prepare(&kv.configure(&component(granted)).unwrap(), Purpose::Request).unwrap()
    }

    fn handle(st: &Resource<OpenStore>) -> Resource<OpenStore> {
        Resource::new_borrow(st.rep())
    }

    #[test]
    fn set_get_delete_and_list_like_spin() {
        let dir = tempfile::tempdir().unwrap();
        let kv = capability(dir.path());
        let mut s = state(&kv, &["default"]);
        let store = s.open("default".into()).unwrap().unwrap();
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
    fn only_granted_labels_open_and_preinit_gets_none() {
        let dir = tempfile::tempdir().unwrap();
        let kv = capability(dir.path());
        kv.configure(&component(&["other"])).unwrap();
        let mut s = state(&kv, &["default"]);
        assert!(matches!(s.open("other".into()).unwrap(), Err(Error::AccessDenied)));
        let mut none = state(&kv, &[]);
        assert!(matches!(none.open("default".into()).unwrap(), Err(Error::AccessDenied)));
        let granted = kv.configure(&component(&["default"])).unwrap();
        let mut preinit = kv.prepare(&granted, Purpose::Preinit).unwrap();
        assert!(matches!(preinit.open("default".into()).unwrap(), Err(Error::AccessDenied)));
    }

    #[test]
    fn writes_survive_a_restart_and_a_reload_shares_the_open_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = capability(dir.path());
            let mut s = state(&kv, &["default"]);
            let store = s.open("default".into()).unwrap().unwrap();
            s.set(handle(&store), "k".into(), b"v".to_vec()).unwrap().unwrap();
            // A second configure (a reload) reuses the open database.
            let mut again = state(&kv, &["default"]);
            let store = again.open("default".into()).unwrap().unwrap();
            assert_eq!(again.get(handle(&store), "k".into()).unwrap().unwrap(), Some(b"v".to_vec()));
        }
        let kv = capability(dir.path());
        let mut s = state(&kv, &["default"]);
        let store = s.open("default".into()).unwrap().unwrap();
        assert_eq!(s.get(handle(&store), "k".into()).unwrap().unwrap(), Some(b"v".to_vec()));
    }
}
