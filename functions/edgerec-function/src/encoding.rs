//! Encoding text at request time, with the encoder the component's
//! `encoder` variable names (`spin.toml`: `variables = { encoder = "{{ encoder }}" }`):
//!
//! - `llm` (the default): the host's model, through Spin's
//!   `fermyon:spin/llm` `generate-embeddings`. Nothing of the model is in
//!   the component; the host (Spin, or the edgerec host) runs it natively.
//!   The component lists the model in `ai_models`.
//! - `tract`: the ONNX encoder mounted at `/encoder`, run inside the
//!   component by tract, for edges with no AI interface (build variant,
//!   feature `tract`).
//! - `wasi-nn`: the component tokenizes (the tokenizer of the encoder
//!   mounted at `/encoder`) and pools; the host runs the model through
//!   `wasi:nn` (`load-by-name`), for hosts with wasi-nn (build variant,
//!   feature `wasi-nn`: Spin cannot instantiate a component importing it).
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
    /// The host's graph of this name, fed by this tokenizer.
    #[cfg(feature = "wasi-nn")]
    WasiNn(String, Box<edgerec_core::encoder::TextTokenizer>),
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
            #[cfg(feature = "wasi-nn")]
            "wasi-nn" => How::WasiNn(host_model_name(&bundle.name), Box::new(mounted_tokenizer(manifest)?)),
            // A variant this build was made without (the arms above take
            // the ones it has).
            variant if matches!(variant, "tract" | "wasi-nn") => {
                return Err(format!(
                    "the variable `encoder` is `{variant}`, and this component was built without it; \
                     serve its `{variant}` build variant (<name>_{}.wasm from scripts/build-components)",
                    variant.replace('-', "_")
                ));
            }
            other => return Err(format!("the variable `encoder` is `{other}`; use `llm`, `tract` or `wasi-nn`")),
        };
        Ok(Self { how, bundle_model: bundle.name.clone(), max_tokens: bundle.max_tokens, dims: bundle.dims })
    }

    /// Which encoder this is (`llm`, `tract` or `wasi-nn`).
    pub fn name(&self) -> &'static str {
        match self.how {
            How::Llm(_) => "llm",
            #[cfg(feature = "tract")]
            How::Tract(_) => "tract",
            #[cfg(feature = "wasi-nn")]
            How::WasiNn(..) => "wasi-nn",
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
            #[cfg(feature = "wasi-nn")]
            How::WasiNn(model, tokenizer) => {
                let tokens = exchange.timed("tokenize", || tokenizer.tokenize(texts)).map_err(encoder_failed)?;
                let hidden = exchange.timed("encode", || self.run_graph(model, &tokens))?;
                let vectors = edgerec_core::encoder::mean_pool(&hidden, &tokens, self.dims).map_err(encoder_failed)?;
                Ok(Encoded { vectors, truncated: tokens.truncated })
            }
        }
    }

    /// The host's per-token vectors for `tokens`, through `wasi:nn`.
    #[cfg(feature = "wasi-nn")]
    fn run_graph(&self, model: &str, tokens: &edgerec_core::encoder::Tokens) -> Result<Vec<f32>, ApiError> {
        use nn::wasi::nn::{graph, tensor};
        let refused = |e: nn::wasi::nn::errors::Error| {
            let message = format!("{:?}: {}", e.code(), e.data());
            eprintln!("encoder `wasi-nn`, graph `{model}`: {message}");
            ApiError::unavailable(format!(
                "encoder `wasi-nn`: the host does not give this function the graph `{model}`, the model its \
                 bundle was built with ({}): {message}",
                self.bundle_model
            ))
        };
        let failed = |e: nn::wasi::nn::errors::Error| {
            eprintln!("encoder `wasi-nn`, graph `{model}`: {:?}: {}", e.code(), e.data());
            ApiError::internal()
        };
        let graph = graph::load_by_name(model).map_err(refused)?;
        let context = graph.init_execution_context().map_err(failed)?;
        let shape = [tokens.batch as u32, tokens.seq as u32];
        let bytes = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let inputs = vec![
            ("input_ids".to_string(), tensor::Tensor::new(&shape, tensor::TensorType::I64, &bytes(&tokens.ids))),
            ("attention_mask".to_string(), tensor::Tensor::new(&shape, tensor::TensorType::I64, &bytes(&tokens.mask))),
        ];
        let outputs = context.compute(inputs).map_err(failed)?;
        let (_, hidden) = outputs.into_iter().find(|(name, _)| name == "last_hidden_state").ok_or_else(|| {
            eprintln!("encoder `wasi-nn`, graph `{model}`: no `last_hidden_state` among its outputs");
            ApiError::internal()
        })?;
        Ok(hidden.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
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

/// `wasi:nn`'s guest bindings (`wit/wasi-nn.wit`).
#[cfg(feature = "wasi-nn")]
#[allow(missing_docs, unsafe_code)]
mod nn {
    wit_bindgen::generate!({ path: "wit/wasi-nn.wit", world: "ml" });
}

/// The description of the encoder mounted at `/encoder`, refusing one that
/// is not the encoder `manifest` was built with (its vectors would not
/// match); `which` names the encoder variable's value in errors.
#[cfg(any(feature = "tract", feature = "wasi-nn"))]
fn mounted_encoder(manifest: &Manifest, which: &str) -> Result<edgerec_core::encoder::EncoderConfig, String> {
    use edgerec_core::encoder::EncoderConfig;
    let config = EncoderConfig::read(ENCODER_DIR.as_ref()).map_err(|e| format!("encoder `{which}`: {e}"))?;
    if config.weights_sha256 != manifest.encoder.sha256 {
        return Err(format!(
            "encoder `{which}` runs {} (mounted at {ENCODER_DIR}), but bundle {} {} was built with {}; \
             mount that encoder, or use a bundle built with {}",
            config.name, manifest.name, manifest.version, manifest.encoder.name, config.name
        ));
    }
    Ok(config)
}

/// Loads the encoder mounted at `/encoder` (see [`mounted_encoder`]).
#[cfg(feature = "tract")]
fn tract_encoder(manifest: &Manifest) -> Result<edgerec_core::encoder::TractEncoder, String> {
    mounted_encoder(manifest, "tract")?;
    edgerec_core::encoder::TractEncoder::load(ENCODER_DIR.as_ref()).map_err(|e| format!("encoder `tract`: {e}"))
}

/// The tokenizer of the encoder mounted at `/encoder` (see [`mounted_encoder`]).
#[cfg(feature = "wasi-nn")]
fn mounted_tokenizer(manifest: &Manifest) -> Result<edgerec_core::encoder::TextTokenizer, String> {
    let config = mounted_encoder(manifest, "wasi-nn")?;
    edgerec_core::encoder::TextTokenizer::load(ENCODER_DIR.as_ref(), &config)
        .map_err(|e| format!("encoder `wasi-nn`: {e}"))
}

/// The answer to an encoder failure at request time: a 500 for the
/// client, the details in the log.
#[cfg(any(feature = "tract", feature = "wasi-nn"))]
fn encoder_failed(e: edgerec_core::Error) -> ApiError {
    eprintln!("encoder: {e}");
    ApiError::internal()
}
