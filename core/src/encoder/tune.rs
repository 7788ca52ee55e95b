//! Fine-tuning the text encoder itself on a shop's graded searches, so that
//! the same BERT that embeds the catalog's titles and the shoppers' queries
//! learns the shop's sense of "relevant" (sizes, part types, brands). The
//! result is an ordinary encoder directory (safetensors weights, the base
//! model's tokenizer and config), which every engine and the host's
//! `fermyon:spin/llm` load like the pretrained one, so a bundle that uses it
//! serves with no second model.
//!
//! The loss is pairwise: for every two titles graded for one query, the
//! better one should have the higher cosine (a logistic loss on the cosine
//! difference over a temperature, weighted by the grade difference). Both
//! sides move: queries and titles go through the same weights. Tuning only
//! the query side against frozen title vectors made held-out search worse on
//! Home Depot (BENCHMARKS.md), both sides together made it better.
//!
//! The forward pass is BERT written with candle's differentiable
//! primitives: candle-transformers' `BertModel` cannot be trained (its layer
//! norm is candle-nn's fused op, which has no backward pass). A test holds
//! it to the inference engine ([`super::bert::BertEncoder`]) on the same
//! weights.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Deserialize;

use super::bert::pick_device;
use super::{Device, ENCODER_FILE, EncoderConfig, TextTokenizer, Tokens, WeightsFormat, read_checked};
use crate::bundle::sha256_hex;
use crate::search::relevance::Judgments;
use crate::{Error, Result};

/// How to tune.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneOptions {
    /// Passes over the training queries.
    pub epochs: usize,
    /// Stop after this many steps (`None`: all epochs).
    pub max_steps: Option<usize>,
    /// Queries per step.
    pub batch: usize,
    /// Graded titles per query used in a step (the first ones of the file).
    pub titles_per_query: usize,
    /// AdamW learning rate (constant).
    pub learning_rate: f64,
    /// The tuned weights' share in the result: the encoder keeps
    /// `interpolation × tuned + (1 − interpolation) × pretrained` of every
    /// weight (WiSE-FT, Wortsman et al., CVPR 2022); 1 keeps the tuned
    /// weights alone.
    pub interpolation: f64,
    /// Divides cosine differences before the logistic loss.
    pub temperature: f64,
    /// Seed of the query order.
    pub seed: u64,
}

impl Default for TuneOptions {
    /// The settings measured on Home Depot (BENCHMARKS.md): the temperature
    /// of sentence-transformers' fine-tuning recipes, twice their rate, and
    /// WiSE-FT's midpoint. The pretrained half keeps what the encoder knew
    /// about queries the judgments never saw: tuned alone, it scores far
    /// better on the queries it was tuned on than on new ones.
    fn default() -> Self {
        Self {
            epochs: 1,
            max_steps: None,
            batch: 16,
            titles_per_query: 10,
            learning_rate: 4e-5,
            interpolation: 0.5,
            temperature: 0.1,
            seed: 42,
        }
    }
}

/// What a step reports to the caller's progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Steps done, counting this one.
    pub done: usize,
    /// Steps in all.
    pub total: usize,
    /// Mean loss of the steps so far.
    pub mean_loss: f64,
}

/// How tuning went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneReport {
    /// Steps taken.
    pub steps: usize,
    /// Mean loss of the first tenth of the steps...
    pub first_loss: f64,
    /// ...and of the last tenth (a single batch's loss is too noisy to compare).
    pub last_loss: f64,
}

/// The BERT hyper-parameters the forward pass needs (the model's `config.json`).
#[derive(Debug, Clone, Deserialize)]
struct BertShape {
    hidden_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_positions")]
    position_embedding_type: String,
}

fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_positions() -> String {
    "absolute".into()
}

fn candle_err(context: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Encoder(format!("{context}: {e}"))
}

/// `share × tuned + (1 − share) × start`, element by element.
fn interpolate(tuned: &Tensor, start: &Tensor, share: f64) -> candle_core::Result<Tensor> {
    (tuned * share)? + (start * (1.0 - share))?
}

/// A BERT encoder whose weights can learn.
pub struct TrainableEncoder {
    config: EncoderConfig,
    tokenizer: TextTokenizer,
    shape: BertShape,
    /// `bert.` when the weights file names its tensors that way.
    prefix: String,
    /// Every tensor of the weights file, by its name there.
    weights: HashMap<String, Var>,
    device: candle_core::Device,
}

impl TrainableEncoder {
    /// Loads a safetensors encoder directory (checking the weights' sha256)
    /// onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let config = EncoderConfig::read(dir)?;
        if config.format != WeightsFormat::Safetensors {
            return Err(Error::Encoder(format!(
                "{}: only safetensors encoders can be tuned (this one is {:?}); use all-MiniLM-L6-v2",
                config.name, config.format
            )));
        }
        let config_file = config
            .bert_config
            .as_deref()
            .ok_or_else(|| Error::Encoder(format!("{}: encoder.json names no bert_config", config.name)))?;
        let config_path = dir.join(config_file);
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let shape: BertShape =
            serde_json::from_str(&text).map_err(|e| Error::Encoder(format!("{}: {e}", config_path.display())))?;
        if shape.hidden_act != "gelu" || shape.position_embedding_type != "absolute" {
            return Err(Error::Encoder(format!(
                "{}: only BERT with exact GELU and absolute positions can be tuned",
                config_path.display()
            )));
        }
        let bytes = read_checked(&dir.join(&config.weights), &config.weights_sha256)?;
        let device = pick_device(device);
        let tensors = candle_core::safetensors::load_buffer(&bytes, &device).map_err(candle_err("reading weights"))?;
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") { "bert." } else { "" };
        let weights = tensors
            .into_iter()
            .map(|(name, t)| Ok((name, Var::from_tensor(&t.to_dtype(DType::F32)?)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()
            .map_err(candle_err("reading weights"))?;
        let tokenizer = TextTokenizer::load(dir, &config)?;
        Ok(Self { config, tokenizer, shape, prefix: prefix.into(), weights, device })
    }

    /// The encoder's description (of the weights it was loaded from).
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    fn weight(&self, name: &str) -> candle_core::Result<&Tensor> {
        let full = format!("{}{name}", self.prefix);
        self.weights
            .get(&full)
            .map(Var::as_tensor)
            .ok_or_else(|| candle_core::Error::Msg(format!("the weights have no tensor {full}")))
    }

    fn linear(&self, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
        let (batch, seq, width) = x.dims3()?;
        let w = self.weight(&format!("{name}.weight"))?;
        let y =
            x.reshape((batch * seq, width))?.matmul(&w.t()?)?.broadcast_add(self.weight(&format!("{name}.bias"))?)?;
        y.reshape((batch, seq, w.dim(0)?))
    }

    fn layer_norm(&self, x: &Tensor, name: &str) -> candle_core::Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.shape.layer_norm_eps)?.sqrt()?)?;
        normed
            .broadcast_mul(self.weight(&format!("{name}.weight"))?)?
            .broadcast_add(self.weight(&format!("{name}.bias"))?)
    }

    /// Per-token hidden states `[batch, seq, hidden]` (BERT, one segment).
    fn hidden(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        let (width, heads) = (self.shape.hidden_size, self.shape.num_attention_heads);
        let head_width = width / heads;
        let words = self
            .weight("embeddings.word_embeddings.weight")?
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, seq, width))?;
        let positions = self.weight("embeddings.position_embeddings.weight")?.narrow(0, 0, seq)?.unsqueeze(0)?;
        let segment = self.weight("embeddings.token_type_embeddings.weight")?.narrow(0, 0, 1)?.unsqueeze(0)?;
        let mut x =
            self.layer_norm(&words.broadcast_add(&positions)?.broadcast_add(&segment)?, "embeddings.LayerNorm")?;
        // Padding gets a large negative attention logit, as in BERT.
        let padding = ((mask.ones_like()? - mask)? * -1e4)?.reshape((batch, 1, 1, seq))?;
        for layer in 0..self.shape.num_hidden_layers {
            let at = |part: &str| format!("encoder.layer.{layer}.{part}");
            let heads_of = |t: Tensor| t.reshape((batch, seq, heads, head_width))?.transpose(1, 2)?.contiguous();
            let q = heads_of(self.linear(&x, &at("attention.self.query"))?)?;
            let k = heads_of(self.linear(&x, &at("attention.self.key"))?)?;
            let v = heads_of(self.linear(&x, &at("attention.self.value"))?)?;
            let logits = (q.matmul(&k.t()?.contiguous()?)? / (head_width as f64).sqrt())?.broadcast_add(&padding)?;
            // Softmax from primitives: candle-nn's fused softmax has no backward pass either.
            let exp = logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?)?.exp()?;
            let attention = exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)?;
            let context = attention.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((batch, seq, width))?;
            let attended = self.linear(&context, &at("attention.output.dense"))?;
            x = self.layer_norm(&(x + attended)?, &at("attention.output.LayerNorm"))?;
            let inner = self.linear(&x, &at("intermediate.dense"))?.gelu_erf()?;
            let out = self.linear(&inner, &at("output.dense"))?;
            x = self.layer_norm(&(x + out)?, &at("output.LayerNorm"))?;
        }
        Ok(x)
    }

    /// Mean-pooled, L2-normalized embeddings `[batch, hidden]`, as every
    /// engine pools them; differentiable.
    fn embed_tokens(&self, tokens: &Tokens) -> candle_core::Result<Tensor> {
        let shape = (tokens.batch, tokens.seq);
        let ids = Tensor::from_vec(tokens.ids.iter().map(|&id| id as u32).collect::<Vec<_>>(), shape, &self.device)?;
        let mask = Tensor::from_vec(tokens.mask.iter().map(|&m| m as f32).collect::<Vec<_>>(), shape, &self.device)?;
        let hidden = self.hidden(&ids, &mask)?;
        let mask = mask.unsqueeze(2)?;
        let pooled = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
        pooled.broadcast_div(&pooled.sqr()?.sum_keepdim(1)?.sqrt()?)
    }

    /// Embeddings of `texts` by the current weights, one row each.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens = self.tokenizer.tokenize(texts)?;
        let vectors =
            self.embed_tokens(&tokens).and_then(|t| t.to_vec2::<f32>()).map_err(candle_err("running BERT"))?;
        Ok(vectors)
    }

    /// Tunes the weights on `judgments`, on the queries `train` names (by
    /// position), then mixes them with the weights it started from as
    /// `options.interpolation` says; `progress` sees every step.
    pub fn tune(
        &mut self,
        judgments: &Judgments,
        train: &[usize],
        options: &TuneOptions,
        mut progress: impl FnMut(Step),
    ) -> Result<TuneReport> {
        if options.batch == 0 || options.titles_per_query < 2 || options.epochs == 0 {
            return Err(Error::Encoder(
                "tuning needs a batch of 1 or more, 2 or more titles a query and 1 epoch".into(),
            ));
        }
        if !(options.interpolation > 0.0 && options.interpolation <= 1.0) {
            return Err(Error::Encoder(format!(
                "interpolation {}: expected the tuned weights' share, above 0 and at most 1",
                options.interpolation
            )));
        }
        // A copy, not the Var: the optimizer updates the Vars in place.
        let pretrained: Vec<(Var, Tensor)> = if options.interpolation < 1.0 {
            self.weights.values().map(|var| Ok((var.clone(), var.as_tensor().copy()?))).collect()
        } else {
            Ok(Vec::new())
        }
        .map_err(candle_err("keeping the pretrained weights"))?;
        let per_epoch = train.len().div_ceil(options.batch);
        let total = (per_epoch * options.epochs).min(options.max_steps.unwrap_or(usize::MAX));
        let params = ParamsAdamW { lr: options.learning_rate, weight_decay: 0.01, ..Default::default() };
        let mut optimizer =
            AdamW::new(self.weights.values().cloned().collect(), params).map_err(candle_err("optimizer"))?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(options.seed);
        let mut order = train.to_vec();
        let (mut done, mut loss_sum, mut losses) = (0, 0.0, Vec::with_capacity(total));
        'epochs: for _ in 0..options.epochs {
            order.shuffle(&mut rng);
            for queries in order.chunks(options.batch) {
                if done == total {
                    break 'epochs;
                }
                let loss = self.pairwise_loss(judgments, queries, options).map_err(candle_err("tuning step"))?;
                let value = f64::from(loss.to_scalar::<f32>().map_err(candle_err("tuning step"))?);
                if !value.is_finite() {
                    return Err(Error::Encoder(format!(
                        "tuning diverged at step {} (loss {value}); lower the learning rate",
                        done + 1
                    )));
                }
                let grads = loss.backward().map_err(candle_err("tuning step"))?;
                optimizer.step(&grads).map_err(candle_err("tuning step"))?;
                done += 1;
                loss_sum += value;
                losses.push(value);
                progress(Step { done, total, mean_loss: loss_sum / done as f64 });
            }
        }
        for (var, start) in &pretrained {
            interpolate(var.as_tensor(), start, options.interpolation)
                .and_then(|mixed| var.set(&mixed))
                .map_err(candle_err("interpolating the weights"))?;
        }
        let tenth = losses.len().div_ceil(10);
        let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len().max(1) as f64;
        Ok(TuneReport {
            steps: done,
            first_loss: mean(&losses[..tenth]),
            last_loss: mean(&losses[losses.len() - tenth..]),
        })
    }

    /// The pairwise loss of one batch of queries: for each two graded
    /// titles of a query, softplus(-(better − worse) / temperature),
    /// weighted by their grade difference, over the batch's total weight.
    fn pairwise_loss(
        &self,
        judgments: &Judgments,
        queries: &[usize],
        options: &TuneOptions,
    ) -> candle_core::Result<Tensor> {
        let width = options.titles_per_query;
        let texts: Vec<&str> = queries.iter().map(|&q| judgments.queries[q].text.as_str()).collect();
        let query_vectors = self.embed_tokens(&self.tokenize(&texts)?)?;
        // Each query's titles, padded to `width` with its first title (whose
        // pairs carry no weight).
        let mut titles: Vec<&str> = Vec::new();
        let mut slots = Vec::with_capacity(queries.len() * width);
        let mut pair_weights = vec![0f32; queries.len() * width * width];
        for (row, &q) in queries.iter().enumerate() {
            let judged = &judgments.queries[q].judged[..judgments.queries[q].judged.len().min(width)];
            let first = titles.len() as u32;
            for (a, &(product, better)) in judged.iter().enumerate() {
                titles.push(judgments.titles[product].as_str());
                for (b, &(_, worse)) in judged.iter().enumerate() {
                    if better > worse {
                        pair_weights[(row * width + a) * width + b] = better - worse;
                    }
                }
            }
            slots.extend((0..width).map(|c| first + c.min(judged.len() - 1) as u32));
        }
        let total_weight: f32 = pair_weights.iter().sum();
        if total_weight == 0.0 {
            return Tensor::zeros((), DType::F32, &self.device);
        }
        let title_vectors = self.embed_tokens(&self.tokenize(&titles)?)?;
        let slots = Tensor::from_vec(slots, queries.len() * width, &self.device)?;
        let per_query = title_vectors.index_select(&slots, 0)?.reshape((queries.len(), width, ()))?;
        let scores = per_query.broadcast_mul(&query_vectors.unsqueeze(1)?)?.sum(D::Minus1)?; // [queries, width]
        let differences = scores.unsqueeze(2)?.broadcast_sub(&scores.unsqueeze(1)?)?;
        // softplus(-d / t) = log(1 + exp(-d / t)); |d| <= 2, so t >= 0.01 cannot overflow.
        let losses = ((differences * (-1.0 / options.temperature))?.exp()? + 1.0)?.log()?;
        let weights = Tensor::from_vec(pair_weights, (queries.len(), width, width), &self.device)?;
        (losses * weights)?.sum_all()? / f64::from(total_weight)
    }

    fn tokenize(&self, texts: &[&str]) -> candle_core::Result<Tokens> {
        self.tokenizer.tokenize(texts).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    /// Writes the weights as a new encoder directory `out` named `name`
    /// (its `encoder.json` says it came from `source`), beside the base
    /// model's tokenizer and BERT config copied from `base_dir`.
    pub fn save(&self, base_dir: &Path, out: &Path, name: &str, source: &str) -> Result<EncoderConfig> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let weights_path = out.join("model.safetensors");
        let tensors: HashMap<String, Tensor> =
            self.weights.iter().map(|(name, var)| (name.clone(), var.as_tensor().clone())).collect();
        candle_core::safetensors::save(&tensors, &weights_path).map_err(candle_err("writing weights"))?;
        let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
        for file in [Some(self.config.tokenizer.as_str()), self.config.bert_config.as_deref()].into_iter().flatten() {
            let (from, to) = (base_dir.join(file), out.join(file));
            std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        }
        // An ONNX export of older weights would be stale; export-onnx makes a new one.
        for stale in [super::ONNX_EXPORT, super::ONNX_EXPORT_META] {
            let _ = std::fs::remove_file(out.join(stale));
        }
        let config = EncoderConfig {
            name: name.into(),
            source: source.into(),
            format: WeightsFormat::Safetensors,
            weights: "model.safetensors".into(),
            weights_sha256: sha256_hex(&bytes),
            ..self.config.clone()
        };
        let path = out.join(ENCODER_FILE);
        let text = serde_json::to_string_pretty(&config).map_err(|e| Error::Encoder(e.to_string()))?;
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::TextEncoder;
    use crate::encoder::bert::BertEncoder;
    use crate::search::relevance::JudgedQuery;

    fn base() -> Option<std::path::PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/encoders/all-MiniLM-L6-v2");
        if dir.join("model.safetensors").exists() {
            Some(dir)
        } else {
            assert!(std::env::var_os("CI").is_none(), "CI runs scripts/setup, which fetches all-MiniLM-L6-v2");
            eprintln!("skipped: models/encoders/all-MiniLM-L6-v2 is not fetched (scripts/setup)");
            None
        }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_trainable_forward_pass_embeds_as_the_inference_engine_does() {
        let Some(dir) = base() else { return };
        let texts = ["cordless drill 18v", "white kitchen faucet with sprayer", "a"];
        let trainable = TrainableEncoder::load(&dir, Device::Cpu).unwrap();
        let inference = BertEncoder::load(&dir, Device::Cpu).unwrap();
        let expected = inference.encode_batch(&texts).unwrap();
        for (got, want) in trainable.embed(&texts).unwrap().iter().zip(&expected) {
            assert!(cosine(got, want) > 0.9999, "cosine {}", cosine(got, want));
        }
    }

    #[test]
    fn tuning_moves_the_better_title_up_and_the_saved_encoder_serves_the_tuned_weights() {
        let Some(dir) = base() else { return };
        // A shop whose shoppers mean the colour: "red kettle" wants red
        // things before kettles of another colour.
        let titles = ["red enamel mug", "steel kettle", "red wool scarf", "black kettle", "red rug", "white kettle"];
        let query = |text: &str, good: &[usize], bad: &[usize]| JudgedQuery {
            text: text.into(),
            judged: good.iter().map(|&g| (g, 3.0)).chain(bad.iter().map(|&b| (b, 1.0))).collect(),
        };
        let judgments = Judgments {
            titles: titles.iter().map(|t| t.to_string()).collect(),
            queries: vec![query("red kettle", &[0, 2, 4], &[1, 3, 5]), query("red teapot", &[0, 4], &[1, 5])],
            uninformative: 0,
        };
        let mut encoder = TrainableEncoder::load(&dir, Device::Cpu).unwrap();
        let margin = |e: &TrainableEncoder| {
            let v = e.embed(&["red kettle", "red wool scarf", "steel kettle"]).unwrap();
            cosine(&v[0], &v[1]) - cosine(&v[0], &v[2])
        };
        let before = margin(&encoder);
        let options = TuneOptions { epochs: 8, learning_rate: 1e-4, interpolation: 1.0, ..TuneOptions::default() };
        let mut steps = Vec::new();
        let report = encoder.tune(&judgments, &[0, 1], &options, |s| steps.push(s)).unwrap();
        assert_eq!((steps.len(), report.steps), (8, 8), "one step an epoch: both queries fit one batch");
        assert!(report.last_loss < report.first_loss, "{report:?}");
        assert_eq!(steps.last().unwrap().total, 8);
        let after = margin(&encoder);
        // Every layer learns, attention included (a fused op without a
        // backward pass would leave its inputs' weights where they were).
        let base = TrainableEncoder::load(&dir, Device::Cpu).unwrap();
        for name in ["attention.self.query.weight", "attention.self.key.weight", "output.dense.weight"] {
            for layer in [0, 5] {
                let name = format!("encoder.layer.{layer}.{name}");
                let moved = (encoder.weight(&name).unwrap() - base.weight(&name).unwrap())
                    .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
                    .unwrap();
                assert!(moved > 0.0, "{name} did not move");
            }
        }
        assert!(after > before + 0.05, "the red scarf should gain on the steel kettle: {before} -> {after}");

        let out = std::env::temp_dir().join(format!("edgerec-tuned-{}", std::process::id()));
        let config = encoder.save(&dir, &out, "shop-tuned", "tuned: test").unwrap();
        assert_eq!(EncoderConfig::read(&out).unwrap(), config);
        let served = BertEncoder::load(&out, Device::Cpu).unwrap();
        let texts = ["red kettle", "steel kettle"];
        for (got, want) in served.encode_batch(&texts).unwrap().iter().zip(encoder.embed(&texts).unwrap()) {
            assert!(cosine(got, &want) > 0.9999);
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn interpolation_keeps_that_share_of_the_tuned_weights_and_the_rest_of_the_pretrained() {
        let Some(dir) = base() else { return };
        let judgments = Judgments {
            titles: vec!["red rug".into(), "steel kettle".into()],
            queries: vec![JudgedQuery { text: "red kettle".into(), judged: vec![(0, 3.0), (1, 1.0)] }],
            uninformative: 0,
        };
        let tuned_with = |interpolation: f64| {
            let mut encoder = TrainableEncoder::load(&dir, Device::Cpu).unwrap();
            let options = TuneOptions { epochs: 2, learning_rate: 1e-4, interpolation, ..TuneOptions::default() };
            encoder.tune(&judgments, &[0], &options, |_| ()).unwrap();
            encoder
        };
        let (alone, quarter) = (tuned_with(1.0), tuned_with(0.25));
        let pretrained = TrainableEncoder::load(&dir, Device::Cpu).unwrap();
        for name in ["embeddings.word_embeddings.weight", "encoder.layer.3.attention.self.query.weight"] {
            let get = |e: &TrainableEncoder| e.weight(name).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let (tuned, start, mixed) = (get(&alone), get(&pretrained), get(&quarter));
            assert!(tuned.iter().zip(&start).any(|(t, s)| t != s), "{name} did not move");
            for ((t, s), m) in tuned.iter().zip(&start).zip(&mixed) {
                assert!(
                    (m - (0.25 * t + 0.75 * s)).abs() < 1e-6,
                    "{name}: {m} is not a quarter of {t} and the rest {s}"
                );
            }
        }
        for bad in [0.0, 1.5, f64::NAN] {
            let mut encoder = TrainableEncoder::load(&dir, Device::Cpu).unwrap();
            let options = TuneOptions { interpolation: bad, ..TuneOptions::default() };
            let error = encoder.tune(&judgments, &[0], &options, |_| ()).unwrap_err().to_string();
            assert!(error.contains("interpolation"), "{error}");
        }
    }

    #[test]
    fn onnx_weights_are_refused_with_a_reason() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/encoders/paraphrase-MiniLM-L3-v2");
        if !dir.join(ENCODER_FILE).exists() {
            return;
        }
        let error = TrainableEncoder::load(&dir, Device::Cpu).err().expect("ONNX cannot be tuned").to_string();
        assert!(error.contains("only safetensors encoders can be tuned"), "{error}");
    }
}
