//! Models held by the host: text encoders loaded once, shared by every
//! instance of every component that may use them, never copied into guest
//! memory; served through Spin's AI interface (`fermyon:spin/llm@2.0.0`,
//! what spin-sdk's `llm::generate_embeddings` imports), so one component
//! binary gets host-side embeddings under `spin up` and under this host.
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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use edgerec_core::encoder::{Device, TextEncoder, encode_bucketed, host_model_name, load_native};
use wasmtime::component::{HasSelf, Linker};

use super::{Capability, InstanceState, Purpose};
use crate::config::HostConfig;
use crate::manifest;

/// Generated from `host/wit/llm.wit`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/llm.wit",
        world: "llm-host",
        imports: { default: trappable },
    });
}

use bindings::fermyon::spin::llm::{
    self as llm, EmbeddingsResult, EmbeddingsUsage, Error, Host, InferencingParams, InferencingResult,
};

/// Most texts in one `generate-embeddings` call: a cold-start request
/// (1,000 new items) fits; a larger batch is split by the caller.
pub const MAX_TEXTS_PER_CALL: usize = 2048;

/// Texts per model run inside one call, sorted by length.
const BATCH: usize = 32;

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
}

impl Allowed {
    /// The model `name`, if the component may use it.
    pub fn get(&self, name: &str) -> Option<&SharedModel> {
        self.models.get(name)
    }
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
    type InstanceState = Allowed;

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
        llm::add_to_linker::<InstanceState, HasSelf<Allowed>>(linker, |s| &mut s.models)?;
        Ok(())
    }

    fn configure(&self, component: &manifest::Component) -> Result<Allowed> {
        let mut models = BTreeMap::new();
        for name in &component.ai_models {
            models.insert(name.clone(), self.model(name)?);
        }
        Ok(Allowed { models: Arc::new(models) })
    }

    fn prepare(&self, allowed: &Allowed, _: Purpose) -> Result<Allowed> {
        Ok(allowed.clone())
    }
}

/// `generate-embeddings` for a component allowed `allowed`: checks the
/// model and the batch, then embeds on the calling thread.
pub fn generate_embeddings(allowed: &Allowed, model: &str, texts: &[String]) -> Result<EmbeddingsResult, Error> {
    let Some(encoder) = allowed.get(model) else {
        let granted: Vec<&str> = allowed.models.keys().map(String::as_str).collect();
        let granted = if granted.is_empty() { "none".to_string() } else { granted.join(", ") };
        return Err(Error::InvalidInput(format!(
            "this component may not use model `{model}` (its ai_models: {granted}); add it to `ai_models` \
             of the component in spin.toml, with the model under the host's ai_models_dir"
        )));
    };
    if texts.is_empty() {
        return Err(Error::InvalidInput("no texts to embed: send at least one".into()));
    }
    if texts.len() > MAX_TEXTS_PER_CALL {
        return Err(Error::InvalidInput(format!(
            "{} texts in one call; at most {MAX_TEXTS_PER_CALL}: split the batch",
            texts.len()
        )));
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = match encoder.tokenize(&texts) {
        Ok(t) => t.real_tokens(),
        Err(e) => return Err(Error::RuntimeError(e.to_string())),
    };
    let embeddings =
        encode_bucketed(encoder.as_ref(), &texts, BATCH, |_| {}).map_err(|e| Error::RuntimeError(e.to_string()))?;
    Ok(EmbeddingsResult { embeddings, usage: EmbeddingsUsage { prompt_token_count: tokens as u32 } })
}

impl Host for Allowed {
    fn infer(
        &mut self,
        _model: String,
        _prompt: String,
        _params: Option<InferencingParams>,
    ) -> wasmtime::Result<Result<InferencingResult, Error>> {
        // This host serves embedding models only.
        Ok(Err(Error::ModelNotSupported))
    }

    fn generate_embeddings(
        &mut self,
        model: String,
        text: Vec<String>,
    ) -> wasmtime::Result<Result<EmbeddingsResult, Error>> {
        Ok(generate_embeddings(self, &model, &text))
    }
}
