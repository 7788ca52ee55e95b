//! The safetensors engine: BERT in candle (`candle-transformers`), the same
//! model code Spin's `fermyon:spin/llm` runs for `all-minilm-l6-v2`, natively
//! on the CPU, or on an NVIDIA GPU in a build with the `cuda` feature.
//!
//! Spin pools without an attention mask; this engine masks padding, so a
//! batch pools as sentence-transformers does and a single text (no padding)
//! matches Spin exactly.

use std::path::Path;

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::{Device, EncoderConfig, TextEncoder, TextTokenizer, Tokens, WeightsFormat, read_checked};
use crate::{Error, Result};

/// A BERT encoder run by candle.
pub struct BertEncoder {
    config: EncoderConfig,
    tokenizer: TextTokenizer,
    model: BertModel,
    device: candle_core::Device,
}

fn candle_err(context: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Encoder(format!("{context}: {e}"))
}

/// The device [`Device`] asks for, in this build on this machine.
pub(super) fn pick_device(device: Device) -> candle_core::Device {
    match device {
        Device::Cpu => candle_core::Device::Cpu,
        // Without CUDA in the build (or a GPU), `cuda_if_available` is the CPU.
        Device::Auto => candle_core::Device::cuda_if_available(0).unwrap_or(candle_core::Device::Cpu),
    }
}

impl BertEncoder {
    /// Loads `dir/encoder.json` and the files it names, checking the
    /// weights' sha256, onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let config = EncoderConfig::read(dir)?;
        if config.format != WeightsFormat::Safetensors {
            return Err(Error::Encoder(format!("{}: the BERT engine reads safetensors weights", config.name)));
        }
        let bert_config_file = config.bert_config.as_deref().ok_or_else(|| {
            Error::Encoder(format!("{}: encoder.json names no bert_config (the model's config.json)", config.name))
        })?;
        let bert_config_path = dir.join(bert_config_file);
        let bert_config_text =
            std::fs::read_to_string(&bert_config_path).map_err(|e| Error::io(&bert_config_path, e))?;
        let bert_config: Config = serde_json::from_str(&bert_config_text)
            .map_err(|e| Error::Encoder(format!("{}: {e}", bert_config_path.display())))?;
        let weights = read_checked(&dir.join(&config.weights), &config.weights_sha256)?;
        let device = pick_device(device);
        // Read from a buffer rather than memory-mapped: the sha256 check has
        // the bytes anyway, and mapping needs `unsafe`.
        let tensors =
            candle_core::safetensors::load_buffer(&weights, &device).map_err(candle_err("reading weights"))?;
        let vars = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vars, &bert_config).map_err(candle_err("building BERT"))?;
        let tokenizer = TextTokenizer::load(dir, &config)?;
        Ok(Self { config, tokenizer, model, device })
    }

    fn run(&self, tokens: &Tokens) -> candle_core::Result<Vec<f32>> {
        let shape = (tokens.batch, tokens.seq);
        let ids: Vec<u32> = tokens.ids.iter().map(|&id| id as u32).collect();
        let mask: Vec<u32> = tokens.mask.iter().map(|&m| m as u32).collect();
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;
        hidden.flatten_all()?.to_vec1::<f32>()
    }
}

impl TextEncoder for BertEncoder {
    fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn engine(&self) -> String {
        match self.device.location() {
            candle_core::DeviceLocation::Cpu => "candle-cpu".into(),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("candle-cuda:{gpu_id}"),
            other => format!("candle-{other:?}"),
        }
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Tokens> {
        self.tokenizer.tokenize(texts)
    }

    fn hidden(&self, tokens: &Tokens) -> Result<Vec<f32>> {
        self.run(tokens).map_err(candle_err("running BERT"))
    }
}
