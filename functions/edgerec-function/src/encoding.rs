//! Encoding text at request time, with the encoder the component's
//! `encoder` variable names (`spin.toml`: `variables = { encoder = "{{ encoder }}" }`):
//!
//! - `llm` (the default): the host's model, through Spin's
//!   `fermyon:spin/llm` `generate-embeddings`. Nothing of the model is in
//!   the component; the host (Spin, or the edgerec host) runs it natively.
//!   The component lists the model in `ai_models`.
//! - `tract`: the ONNX encoder mounted at `/encoder`, run inside the
//!   component by tract, for edges with no AI interface (build feature
//!   `tract`, on by default).
//!
//! Whichever it is, it must be the encoder the bundle's vectors were made
//! with; a mismatch answers 503 naming both.

use edgerec_core::api::ApiError;
use edgerec_core::bundle::{Manifest, host_model_name};

use crate::Exchange;

/// Where `spin.toml` mounts the text encoder (`encoder.json`, ONNX,
/// tokenizer) for the `tract` encoder.
pub const ENCODER_DIR: &str = "/encoder";

/// The encoder when the component has no `encoder` variable.
pub const DEFAULT_ENCODER: &str = "llm";

/// The encoder a function uses, checked against its bundle.
pub struct TextEncoding {
    how: How,
    /// The model the bundle was built with (its `encoder.name`).
    bundle_model: String,
    /// Its token window.
    max_tokens: usize,
    /// Its embedding width (the text encoder's, before any item tower).
    dims: usize,
}

enum How {
    /// The host's model of this name.
    Llm(String),
    #[cfg(feature = "tract")]
    Tract(Box<edgerec_core::encoder::TractEncoder>),
}

/// Embeddings of a batch of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// One unit vector per text, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Per text: whether it was longer than the model's window and was cut.
    pub truncated: Vec<bool>,
}

/// The `encoder` variable, or the default when the component has none.
fn chosen_encoder() -> Result<String, String> {
    match spin_sdk::variables::get("encoder") {
        Ok(value) => Ok(value),
        Err(spin_sdk::variables::Error::Undefined(_)) => Ok(DEFAULT_ENCODER.to_string()),
        Err(e) => Err(format!("reading the variable `encoder`: {e}")),
    }
}

impl TextEncoding {
    /// The encoder the `encoder` variable names, for the bundle `manifest`.
    pub fn load(manifest: &Manifest) -> Result<Self, String> {
        let choice = chosen_encoder()?;
        let bundle = &manifest.encoder;
        let how = match choice.as_str() {
            "llm" => How::Llm(host_model_name(&bundle.name)),
            #[cfg(feature = "tract")]
            "tract" => How::Tract(Box::new(tract_encoder(manifest)?)),
            #[cfg(not(feature = "tract"))]
            "tract" => {
                return Err("the variable `encoder` is `tract`, and this component was built without it; \
                            serve its `tract` build variant (<name>_tract.wasm from scripts/build-components)"
                    .into());
            }
            other => return Err(format!("the variable `encoder` is `{other}`; use `llm` or `tract`")),
        };
        Ok(Self { how, bundle_model: bundle.name.clone(), max_tokens: bundle.max_tokens, dims: bundle.dims })
    }

    /// Which encoder this is (`llm` or `tract`).
    pub fn name(&self) -> &'static str {
        match self.how {
            How::Llm(_) => "llm",
            #[cfg(feature = "tract")]
            How::Tract(_) => "tract",
        }
    }

    /// Embeds `texts` (at least one), timing the parts on `exchange`.
    pub fn encode(&self, exchange: &mut Exchange, texts: &[&str]) -> Result<Encoded, ApiError> {
        match &self.how {
            How::Llm(model) => exchange.timed("encode", || self.encode_llm(model, texts)),
            #[cfg(feature = "tract")]
            How::Tract(encoder) => {
                use edgerec_core::encoder::TextEncoder;
                let tokens = exchange.timed("tokenize", || encoder.tokenize(texts)).map_err(encoder_failed)?;
                let vectors = exchange.timed("encode", || encoder.embed(&tokens)).map_err(encoder_failed)?;
                Ok(Encoded { vectors, truncated: tokens.truncated })
            }
        }
    }

    fn encode_llm(&self, model: &str, texts: &[&str]) -> Result<Encoded, ApiError> {
        // A token covers at least one character, and BERT adds two ([CLS],
        // [SEP]): a text of fewer characters than the window cannot have
        // been cut. Longer ones go one by one, so the token count the host
        // reports tells whether each was.
        let fits = |t: &&str| t.chars().count() + 2 < self.max_tokens;
        let (short, long): (Vec<usize>, Vec<usize>) = (0..texts.len()).partition(|&i| fits(&texts[i]));
        let mut vectors = vec![Vec::new(); texts.len()];
        let mut truncated = vec![false; texts.len()];
        if !short.is_empty() {
            let batch: Vec<String> = short.iter().map(|&i| texts[i].to_string()).collect();
            for (i, v) in short.iter().zip(self.call_llm(model, &batch)?.embeddings) {
                vectors[*i] = v;
            }
        }
        for i in long {
            let result = self.call_llm(model, &[texts[i].to_string()])?;
            truncated[i] = result.usage.prompt_token_count as usize >= self.max_tokens;
            vectors[i] = result.embeddings.into_iter().next().unwrap_or_default();
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != self.dims) {
            eprintln!("encoder `llm`: model `{model}` returned {} dims, the bundle has {}", v.len(), self.dims);
            return Err(ApiError::unavailable(format!(
                "encoder `llm`: the host's `{model}` gives {}-dim vectors, not the {} of the bundle's {}",
                v.len(),
                self.dims,
                self.bundle_model
            )));
        }
        Ok(Encoded { vectors, truncated })
    }

    fn call_llm(&self, model: &str, texts: &[String]) -> Result<spin_sdk::llm::EmbeddingsResult, ApiError> {
        use spin_sdk::llm::{EmbeddingModel, Error};
        spin_sdk::llm::generate_embeddings(EmbeddingModel::Other(model), texts).map_err(|e| {
            eprintln!("encoder `llm`, model `{model}`: {e}");
            match e {
                // The host has no such model for this component: the
                // deployment does not match the bundle.
                Error::ModelNotSupported | Error::InvalidInput(_) => ApiError::unavailable(format!(
                    "encoder `llm`: the host does not give this function `{model}`, the model its bundle was \
                     built with ({}): {e}",
                    self.bundle_model
                )),
                Error::RuntimeError(_) => ApiError::internal(),
            }
        })
    }
}

/// Loads the encoder mounted at `/encoder`, refusing one that is not the
/// encoder `manifest` was built with (its vectors would not match).
#[cfg(feature = "tract")]
fn tract_encoder(manifest: &Manifest) -> Result<edgerec_core::encoder::TractEncoder, String> {
    use edgerec_core::encoder::{EncoderConfig, TractEncoder};
    let config = EncoderConfig::read(ENCODER_DIR.as_ref()).map_err(|e| format!("encoder `tract`: {e}"))?;
    if config.weights_sha256 != manifest.encoder.sha256 {
        return Err(format!(
            "encoder `tract` runs {} (mounted at {ENCODER_DIR}), but bundle {} {} was built with {}; \
             mount that encoder, or use a bundle built with {}",
            config.name, manifest.name, manifest.version, manifest.encoder.name, config.name
        ));
    }
    TractEncoder::load(ENCODER_DIR.as_ref()).map_err(|e| format!("encoder `tract`: {e}"))
}

/// The answer to an encoder failure at request time: a 500 for the
/// client, the details in the log.
#[cfg(feature = "tract")]
fn encoder_failed(e: edgerec_core::Error) -> ApiError {
    eprintln!("encoder: {e}");
    ApiError::internal()
}
