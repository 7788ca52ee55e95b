//! Spin's AI interface, `fermyon:spin/llm@2.0.0`: `generate-embeddings`
//! on the host's models; `infer` (text generation) is not served.

use anyhow::Result;
use edgerec_core::encoder::encode_bucketed;
use wasmtime::component::{HasSelf, Linker};

use super::{Allowed, ModelsState};
use crate::capability::InstanceState;

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
    EmbeddingsResult, EmbeddingsUsage, Error, Host, InferencingParams, InferencingResult,
};

/// Most texts in one `generate-embeddings` call: a cold-start request
/// (1,000 new items) fits; a larger batch is split by the caller.
pub const MAX_TEXTS_PER_CALL: usize = 2048;

/// Texts per model run inside one call, sorted by length.
const BATCH: usize = 32;

/// Links the interface.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> Result<()> {
    bindings::fermyon::spin::llm::add_to_linker::<InstanceState, HasSelf<ModelsState>>(linker, |s| &mut s.models)?;
    Ok(())
}

/// `generate-embeddings` for a component allowed `allowed`: checks the
/// model and the batch, then embeds on the calling thread.
pub fn generate_embeddings(allowed: &Allowed, model: &str, texts: &[String]) -> Result<EmbeddingsResult, Error> {
    let Some(encoder) = allowed.get(model) else {
        return Err(Error::InvalidInput(format!(
            "this component may not use model `{model}` (its ai_models: {}); add it to `ai_models` \
             of the component in spin.toml, with the model under the host's ai_models_dir",
            allowed.names()
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
    let mut tokens = 0;
    let embeddings = encode_bucketed(encoder.as_ref(), &texts, BATCH, |batch| tokens += batch.real_tokens())
        .map_err(|e| Error::RuntimeError(e.to_string()))?;
    Ok(EmbeddingsResult { embeddings, usage: EmbeddingsUsage { prompt_token_count: tokens as u32 } })
}

impl Host for ModelsState {
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
        Ok(generate_embeddings(&self.allowed, &model, &text))
    }
}
