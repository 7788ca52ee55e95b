//! Spin's key-value store as [`edgerec_core::coldstart::KeyValue`], for
//! the new items that cold-start writes and recommend reads.

use edgerec_core::coldstart::KeyValue;
use spin_sdk::key_value::{Error, Store};

/// The store labelled `default`.
pub struct DefaultStore(Store);

impl DefaultStore {
    /// Opens the `default` store, or `None` when the component is not
    /// granted one (`key_value_stores` in `spin.toml`): an edge without
    /// state, which is no error. Other failures go to the log.
    pub fn open() -> Option<Self> {
        match Store::open_default() {
            Ok(store) => Some(Self(store)),
            Err(Error::AccessDenied | Error::NoSuchStore) => None,
            Err(e) => {
                eprintln!("key-value store `default` not available ({e}); new items are neither stored nor read");
                None
            }
        }
    }
}

impl KeyValue for DefaultStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| format!("key-value get `{key}`: {e}"))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(key, value).map_err(|e| format!("key-value set `{key}`: {e}"))
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        self.0.get_keys().map_err(|e| format!("key-value get-keys: {e}"))
    }
}
