//! Loading what a function serves (bundle files, the text encoder) once per
//! instance, with failures turned into a 503 that points at the log.
//!
//! A function keeps its loaded model in a `static` [`Lazy`]. Without
//! pre-initialization the first use in each request loads it (Spin gives
//! every request a fresh instance). The edgerec host pre-initializes
//! components that export `preinit` (see `host/src/preinit.rs`): it runs
//! `preinit` once, which fills the `Lazy`, and snapshots the instance's
//! memory into a new component, so every request starts with the model
//! already loaded and optimized.

use std::path::Path;
use std::sync::OnceLock;

use edgerec_core::api::ApiError;
use edgerec_core::bundle::Manifest;

use crate::BUNDLE_DIR;

/// Where `spin.toml` mounts the text encoder (`encoder.json`, ONNX, tokenizer).
pub const ENCODER_DIR: &str = "/encoder";

/// A value loaded at most once per instance; a failure is kept too, so a
/// broken bundle costs one attempt, not one per call.
pub struct Lazy<T> {
    cell: OnceLock<Result<T, String>>,
    load: fn() -> Result<T, String>,
}

impl<T> Lazy<T> {
    /// A value that `load` produces on first use.
    pub const fn new(load: fn() -> Result<T, String>) -> Self {
        Self { cell: OnceLock::new(), load }
    }

    /// The loaded value, or a 503 (the reason goes to the log).
    pub fn get(&self) -> Result<&T, ApiError> {
        self.cell.get_or_init(self.load).as_ref().map_err(|reason| {
            eprintln!("model not available: {reason}");
            ApiError::unavailable("the function's model could not be loaded; see the server log")
        })
    }

    /// Loads now; for `preinit`. Panics (a trap, which makes pre-initialization
    /// fail loudly) if the model cannot be loaded.
    pub fn preload(&self) {
        if let Err(reason) = self.cell.get_or_init(self.load) {
            panic!("pre-initialization failed: {reason}");
        }
    }
}

/// The manifest of the bundle mounted at `/bundle`.
pub fn manifest() -> Result<Manifest, String> {
    Manifest::read(BUNDLE_DIR.as_ref()).map_err(|e| e.to_string())
}

/// Reads `name` from the bundle at `dir`, if its manifest lists it.
pub fn optional_file(dir: &str, manifest: &Manifest, name: &str) -> Result<Option<Vec<u8>>, String> {
    if !manifest.files.contains_key(name) {
        return Ok(None);
    }
    let path = Path::new(dir).join(name);
    std::fs::read(&path).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads `name` from the bundle at `dir`; it must be there.
pub fn file(dir: &str, manifest: &Manifest, name: &str) -> Result<Vec<u8>, String> {
    optional_file(dir, manifest, name)?
        .ok_or_else(|| format!("the bundle at {dir} has no {name}; build it with a current `edgerec`"))
}

/// The item index (`items.bin`) of the catalog bundle at `/bundle`.
pub fn item_index(manifest: &Manifest) -> Result<edgerec_core::index::ItemIndex, String> {
    let bytes = file(BUNDLE_DIR, manifest, edgerec_core::bundle::ITEMS_FILE)?;
    edgerec_core::index::ItemIndex::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// The item tower of the catalog bundle at `/bundle`, if it was trained.
pub fn item_tower(manifest: &Manifest) -> Result<Option<edgerec_core::tower::ItemTower>, String> {
    optional_file(BUNDLE_DIR, manifest, edgerec_core::tower::ITEM_TOWER_FILE)?
        .map(|bytes| edgerec_core::tower::ItemTower::from_bytes(&bytes).map_err(|e| e.to_string()))
        .transpose()
}

/// Loads the encoder mounted at `/encoder`, refusing one that is not the
/// encoder `manifest` was built with (its vectors would not match).
#[cfg(feature = "encoder")]
pub fn encoder(manifest: &Manifest) -> Result<edgerec_core::encoder::Encoder, String> {
    let encoder = edgerec_core::encoder::Encoder::load(ENCODER_DIR.as_ref()).map_err(|e| e.to_string())?;
    if encoder.config().onnx_sha256 != manifest.encoder.sha256 {
        return Err(format!(
            "the encoder at {ENCODER_DIR} ({}) is not the one bundle {} {} was built with ({}); mount that one",
            encoder.config().name,
            manifest.name,
            manifest.version,
            manifest.encoder.name
        ));
    }
    Ok(encoder)
}

/// The answer to an encoder failure at request time: a 500 for the
/// client, the details in the log.
#[cfg(feature = "encoder")]
pub fn encoder_failed(e: edgerec_core::Error) -> ApiError {
    eprintln!("encoder: {e}");
    ApiError::internal()
}

/// Exports `preinit: func()`, which loads `$model` (a `static` [`Lazy`]):
/// the hook the edgerec host's pre-initializer calls before it snapshots
/// the instance. Use once per function crate: `export_preinit!(crate::MODEL);`
#[macro_export]
macro_rules! export_preinit {
    ($model:path) => {
        /// `preinit`. `export!` generates C-ABI glue, which is `unsafe`.
        #[allow(unsafe_code, missing_docs)]
        mod preinit_export {
            wit_bindgen::generate!({ inline: "package edgerec:preinit; world preinit { export preinit: func(); }" });

            struct Preinit;
            impl Guest for Preinit {
                fn preinit() {
                    $model.preload();
                }
            }
            export!(Preinit);
        }
    };
}
