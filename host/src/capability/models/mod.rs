//! Models held by the host: text encoders loaded once, shared by every
//! instance of every component that may use them, never copied into guest
//! memory, served through two interfaces:
//!
//! - [`llm`]: Spin's AI interface (`fermyon:spin/llm@2.0.0`, what
//!   spin-sdk's `llm::generate_embeddings` imports), so one component binary
//!   gets host-side embeddings under `spin up` and under this host;
//! - [`wasi_nn`]: `wasi:nn` (the WIT `wasmtime-wasi-nn` implements), graphs
//!   preloaded by name, for hosts with wasi-nn (this one, `wasmtime serve -S
//!   nn`): the guest tokenizes and pools, the host runs the model.
//!
//! A component may use the models its `ai_models` lists (Spin's
//! allow-list); any other name, known to the host or not, is refused.
//! Each model is a directory `<ai_models_dir>/<name>/` with `encoder.json`
//! (an encoder directory, see `edgerec_core::encoder`), loaded with the
//! fastest native engine for its weights the first time a component that
//! lists it is configured, and kept for the life of the host. Spin reads
//! `model.safetensors` and `tokenizer.json` from the same directory
//! (`.spin/ai-models/all-minilm-l6-v2/`, placed by `scripts/setup`).
//!
//! The host pools over real tokens (masking padding); Spin pools a batch
//! over its padding too, so the two agree exactly on a single text, and
//! this host also on a batch of texts of different lengths.

pub mod llm;
pub mod wasi_nn;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use edgerec_core::encoder::{Device, TextEncoder, host_model_name, load_native};
use wasmtime::component::{Linker, ResourceTable};

use super::{Capability, InstanceState, Purpose};
use crate::config::HostConfig;
use crate::manifest;

/// A loaded model, shared.
pub type SharedModel = Arc<dyn TextEncoder>;

/// The capability: every model loaded so far, by name.
pub struct Models {
    dir: PathBuf,
    loaded: Mutex<BTreeMap<String, SharedModel>>,
}

/// The models one component may use, by name (shared by its instances).
#[derive(Clone, Default)]
pub struct Allowed {
    models: Arc<BTreeMap<String, SharedModel>>,
    graphs: wasi_nn::Graphs,
}

impl Allowed {
    /// The model `name`, if the component may use it.
    pub fn get(&self, name: &str) -> Option<&SharedModel> {
        self.models.get(name)
    }

    /// The `wasi:nn` graphs of those models, by name.
    pub fn graphs(&self) -> &wasi_nn::Graphs {
        &self.graphs
    }

    /// The names it may use, for errors: `a, b`, or `none`.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.models.keys().map(String::as_str).collect();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    }
}

/// One instance's view: its allowed models, and its `wasi:nn` state
/// (graphs, execution contexts and tensors live in its own table).
pub struct ModelsState {
    allowed: Allowed,
    nn: wasmtime_wasi_nn::wit::WasiNnCtx,
    table: ResourceTable,
}

impl Models {
    /// The model `name`, loading `<dir>/<name>/` the first time.
    pub fn model(&self, name: &str) -> Result<SharedModel> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(model) = loaded.get(name) {
            return Ok(model.clone());
        }
        let dir = self.dir.join(name);
        if !dir.join(edgerec_core::encoder::ENCODER_FILE).exists() {
            bail!(
                "model `{name}` is not at {} (expected encoder.json there); run scripts/setup, \
                 or set ai_models_dir to where the models are",
                dir.display()
            );
        }
        let started = std::time::Instant::now();
        let model: SharedModel = Arc::from(load_native(&dir, Device::Auto).with_context(|| format!("model `{name}`"))?);
        let served_as = host_model_name(&model.config().name);
        if served_as != name {
            bail!("{} holds {}, which is served as `{served_as}`, not `{name}`", dir.display(), model.config().name);
        }
        tracing::info!("model `{name}` loaded on {} in {:.1?}", model.engine(), started.elapsed());
        loaded.insert(name.to_string(), model.clone());
        Ok(model)
    }
}

impl Capability for Models {
    const NAME: &'static str = "models";
    type ComponentState = Allowed;
    type InstanceState = ModelsState;

    fn new(config: &HostConfig) -> Result<Self> {
        // ONNX models run on ONNX Runtime when its library is there; a
        // library that does not load leaves them to tract, and says so.
        if config.onnxruntime.exists()
            && let Err(e) = edgerec_core::encoder::onnx_runtime::init(&config.onnxruntime)
        {
            tracing::warn!("{e}; ONNX models will run on tract");
        }
        Ok(Self { dir: config.ai_models_dir.clone(), loaded: Mutex::default() })
    }

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
        llm::add_to_linker(linker)?;
        wasmtime_wasi_nn::wit::add_to_linker(linker, |s: &mut InstanceState| {
            wasmtime_wasi_nn::wit::WasiNnView::new(&mut s.models.table, &mut s.models.nn)
        })?;
        Ok(())
    }

    fn configure(&self, component: &manifest::Component) -> Result<Allowed> {
        let mut models = BTreeMap::new();
        for name in &component.ai_models {
            models.insert(name.clone(), self.model(name)?);
        }
        Ok(Allowed { graphs: wasi_nn::Graphs::new(&models), models: Arc::new(models) })
    }

    fn prepare(&self, allowed: &Allowed, _: Purpose) -> Result<ModelsState> {
        Ok(ModelsState { allowed: allowed.clone(), nn: wasi_nn::context(allowed), table: ResourceTable::new() })
    }
}
