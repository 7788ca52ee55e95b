//! The ONNX engine: tract, pure Rust, the same code inside a component
//! (wasm32) and natively. The model is loaded, typed and optimized once
//! ([`TractEncoder::load`]); each call only runs the optimized plan.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{EncoderConfig, TextEncoder, TextTokenizer, Tokens, WeightsFormat, read_checked};
use crate::{Error, Result};

/// An ONNX encoder run by tract.
#[derive(Clone)]
pub struct TractEncoder {
    config: EncoderConfig,
    tokenizer: TextTokenizer,
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<ModelInput>,
}

/// What each input of the ONNX graph expects, in graph order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelInput {
    Ids,
    Mask,
    /// BERT segment ids; all zero for single sentences.
    TokenTypes,
}

impl std::fmt::Debug for TractEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractEncoder").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What each graph input is, from its name.
fn model_inputs<'a>(names: impl Iterator<Item = &'a str>) -> Result<Vec<ModelInput>> {
    names
        .map(|name| match name {
            "input_ids" => Ok(ModelInput::Ids),
            "attention_mask" => Ok(ModelInput::Mask),
            "token_type_ids" => Ok(ModelInput::TokenTypes),
            other => Err(Error::Encoder(format!(
                "unexpected model input `{other}`; expected input_ids, attention_mask and optionally token_type_ids"
            ))),
        })
        .collect()
}

fn encoder_err(context: &str) -> impl Fn(TractError) -> Error + '_ {
    move |e| Error::Encoder(format!("{context}: {e:#}"))
}

impl TractEncoder {
    /// Loads `dir/encoder.json` and the files it names, checking the
    /// weights' sha256.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = EncoderConfig::read(dir)?;
        let tokenizer_path = dir.join(&config.tokenizer);
        let tokenizer = std::fs::read(&tokenizer_path).map_err(|e| Error::io(&tokenizer_path, e))?;
        let onnx = read_checked(&dir.join(&config.weights), &config.weights_sha256)?;
        Self::from_parts(config, &onnx, &tokenizer)
    }

    /// Builds an encoder from in-memory model and tokenizer bytes.
    pub fn from_parts(config: EncoderConfig, onnx: &[u8], tokenizer_json: &[u8]) -> Result<Self> {
        if config.format != WeightsFormat::Onnx {
            return Err(Error::Encoder(format!(
                "{} has {:?} weights; tract runs ONNX only (the host runs safetensors natively)",
                config.name, config.format
            )));
        }
        let output = config
            .token_embeddings_output
            .as_deref()
            .ok_or_else(|| Error::Encoder(format!("{}: encoder.json names no token_embeddings_output", config.name)))?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(encoder_err("reading the ONNX model"))?;
        // The ONNX graph declares its inputs as i64 [batch, sequence] with
        // named symbolic dims; keeping those names lets tract unify them
        // with the shapes used inside the graph (e.g. position ids).
        let outlets = model.input_outlets().map_err(encoder_err("reading the inputs"))?;
        let inputs = model_inputs(outlets.iter().map(|o| model.node(o.node).name.as_str()))?;
        let plan = model
            .with_outputs_by_name([output])
            .map_err(encoder_err("selecting the token-embeddings output"))?
            .into_optimized()
            .map_err(encoder_err("optimizing the model"))?
            .into_runnable()
            .map_err(encoder_err("planning the model"))?;
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json, config.max_tokens)?;
        Ok(Self { config, tokenizer, plan, inputs })
    }
}

impl TextEncoder for TractEncoder {
    fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn engine(&self) -> String {
        "tract".into()
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Tokens> {
        self.tokenizer.tokenize(texts)
    }

    fn hidden(&self, tokens: &Tokens) -> Result<Vec<f32>> {
        let Tokens { batch, seq, ids, mask, .. } = tokens;
        let (batch, seq) = (*batch, *seq);
        let to_tensor = |v: Vec<i64>| {
            tract_ndarray::Array2::from_shape_vec((batch, seq), v)
                .map(|a| a.into_tensor().into_tvalue())
                .map_err(|e| Error::Encoder(format!("input shape: {e}")))
        };
        let mut feed = TVec::new();
        for input in &self.inputs {
            feed.push(match input {
                ModelInput::Ids => to_tensor(ids.clone())?,
                ModelInput::Mask => to_tensor(mask.clone())?,
                ModelInput::TokenTypes => to_tensor(vec![0; batch * seq])?,
            });
        }
        let outputs = self.plan.run(feed).map_err(encoder_err("running the model"))?;
        let hidden = outputs[0].to_plain_array_view::<f32>().map_err(encoder_err("reading the output"))?;
        Ok(hidden.iter().copied().collect())
    }
}
