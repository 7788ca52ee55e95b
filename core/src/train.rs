//! Two-tower fine-tuning on a shop's own behaviour, with candle autograd.
//!
//! * **Item tower**: `e_i = normalize(t_i · W_item + b_item + g_i id_i)`,
//!   where `t_i` is the frozen pretrained text embedding and, in a hybrid
//!   model, `id_i` a per-item embedding gated by `g_i = c / (c + id_gate)`
//!   of the item's `c` training events. A training target's gate counts
//!   only its events before that step, so items new at the time are
//!   learned from text alone, as items new at serving time are scored
//!   (their `id_i` is zero). The served vector folds the gate in: one dot
//!   product per item, as for text-only towers.
//! * **User tower**: softmax over learned recency-position logits (newest
//!   distinct history item first) pools the history's `e_i`, then
//!   `u = normalize(pooled · W_user + b_user)` ([`crate::tower::UserTower`],
//!   which the functions run as plain loops).
//! * **Loss**: sampled softmax over in-batch negatives, logits `u·e/τ`
//!   minus `log q(item)` (the item's share of training targets: logQ
//!   correction, so popular items are not pushed down just for being
//!   frequent negatives); other positives of the same basket and repeated
//!   items are masked out.
//! * **Recency**: each example's loss weighs `0.5^(age / half_life)`, its
//!   age counted back from the newest training step, so a shop's current
//!   taste counts most.
//! * **Early stopping** on validation Recall@20 (full ranking, the
//!   serving code path), keeping the best epoch's weights.
//!
//! Initialization makes epoch 0 the zero-shot model: `W_user = I`, recency
//! logits halving every 5 positions, and `W_item` a scaled random
//! projection (which preserves cosine similarities in expectation).

use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::eval::{Dataset, Embeddings, ItemIdx, Report, evaluate};
use crate::tower::{HISTORY_HALF_LIFE, ItemTower, LAYER_NORM_EPS, SequenceBlock, UserTower};
use crate::{Error, Result};

/// Training settings (`edgerec train` flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Output width of both towers.
    pub dims: usize,
    /// Newest distinct history items the user tower reads.
    pub max_history: usize,
    /// Examples per step (and in-batch negatives per example).
    pub batch_size: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// Epochs without a better validation Recall@20 before stopping.
    pub patience: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Softmax temperature τ.
    pub temperature: f64,
    /// Learn a per-item ID embedding for warm items.
    pub id_embeddings: bool,
    /// Probability of dropping an item's ID embedding in a step.
    pub id_dropout: f64,
    /// How many training events make an item's identity count half: its ID
    /// embedding is scaled by `events / (events + id_gate)` (the events
    /// before the step, for a target), so rarely seen and newly listed
    /// items lean on their text, as new items do at serving time. 0 turns
    /// the gate off.
    #[serde(default)]
    pub id_gate: f64,
    /// Examples this many days older than the newest weigh half as much
    /// (each halving again); 0 weighs all alike. Logs without times
    /// weigh all alike.
    #[serde(default)]
    pub half_life_days: f64,
    /// The user tower also weighs each history item by how it relates to
    /// the newest one (one attention query, [`UserTower::query`]).
    #[serde(default)]
    pub attention: bool,
    /// The user tower runs one SASRec-style self-attention block over the
    /// history ([`crate::tower::SequenceBlock`]) instead of pooling alone.
    /// Not together with `attention`.
    #[serde(default)]
    pub sequence_block: bool,
    /// Seed for initialization, shuffling and dropout.
    pub seed: u64,
    /// Cap on training examples per epoch (a fresh random subset each
    /// epoch); `None` uses all.
    pub max_examples_per_epoch: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dims: 128,
            max_history: crate::tower::MAX_HISTORY,
            batch_size: 512,
            epochs: 10,
            patience: 3,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            temperature: 0.05,
            // `edgerec train` chooses text or hybrid on validation; a
            // library caller gets the text towers (what updates train).
            id_embeddings: false,
            // The gate, not dropout, keeps the text path learning: items new
            // at a step are trained as text alone.
            id_dropout: 0.0,
            // An item's identity counts half at 3 events. On Online Retail
            // 3 beat 10 and 30 on validation for every seed tried, and on
            // test as served (Recall@20 0.1010 vs 0.0978 mean of 3 seeds,
            // cold Recall@20 0.0818-0.1230; BENCHMARKS.md).
            id_gate: 3.0,
            // On Online Retail (a year of orders) weighing the last two
            // months most lifted test Recall@20 by 11% (BENCHMARKS.md).
            half_life_days: 60.0,
            attention: false,
            sequence_block: false,
            seed: 42,
            max_examples_per_epoch: None,
        }
    }
}

/// One line of the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 0 is the untrained (zero-shot) starting point.
    pub epoch: usize,
    /// Mean training loss (`None` for epoch 0).
    pub loss: Option<f64>,
    /// Validation metrics.
    pub valid: Report,
    /// Seconds spent in this epoch's training steps.
    pub seconds: f64,
    /// Training examples per second in this epoch.
    pub examples_per_second: f64,
}

/// Progress events for a progress bar.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Training is about to start.
    Start {
        /// Examples per epoch.
        examples: usize,
        /// Steps per epoch.
        steps: usize,
    },
    /// One optimizer step done.
    Step {
        /// Current epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// This step's loss.
        loss: f64,
    },
    /// An epoch (including its validation) is done.
    Epoch(EpochStats),
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Item tower output per catalog item, row-major `items × dims`,
    /// normalized (what `items.bin` stores).
    pub item_vectors: Vec<f32>,
    /// The user tower.
    pub user_tower: UserTower,
    /// The text projection (for new items at serving time).
    pub item_tower: ItemTower,
    /// Epoch 0 (untrained) and every trained epoch.
    pub history: Vec<EpochStats>,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Training examples per epoch.
    pub examples: usize,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
}

/// One (history, target) training example; `context` indexes the shared
/// history of its basket.
#[derive(Debug, Clone, Copy)]
struct Example {
    context: u32,
    target: ItemIdx,
    /// Training events of the target before this step (all of them when
    /// the log has no times): what its identity gate sees.
    target_events: u32,
    /// Unix time of the step, when the log has times.
    time: Option<i64>,
}

/// The training sequences as item indices (see [`Dataset::train_sequences`]).
type Sequences = [Vec<(Option<i64>, Vec<ItemIdx>)>];

/// Training examples from the training sequences: for every step after a
/// user's first, each item not already in the history is a target, and
/// the newest `max_history` distinct earlier items are its context.
/// Returns the contexts (newest first) and the examples.
fn examples(sequences: &Sequences, events: &EventsBefore, max_history: usize) -> (Vec<Vec<ItemIdx>>, Vec<Example>) {
    let mut contexts = Vec::new();
    let mut out = Vec::new();
    for seq in sequences {
        let mut history: Vec<ItemIdx> = Vec::new(); // newest first, distinct
        for (ts, items) in seq {
            if !history.is_empty() {
                let targets: Vec<ItemIdx> = items.iter().copied().filter(|i| !history.contains(i)).collect();
                if !targets.is_empty() {
                    let context = contexts.len() as u32;
                    contexts.push(history.iter().copied().take(max_history).collect());
                    out.extend(targets.into_iter().map(|target| Example {
                        context,
                        target,
                        target_events: events.count(target, *ts),
                        time: *ts,
                    }));
                }
            }
            for &i in items {
                history.retain(|&h| h != i);
                history.insert(0, i);
            }
        }
    }
    (contexts, out)
}

/// Each item's training event times, to count its events before a time:
/// an item new at a step is trained as new items are served (text alone).
struct EventsBefore {
    times: Vec<Vec<i64>>,
    total: Vec<u32>,
}

impl EventsBefore {
    fn new(sequences: &Sequences, n: usize) -> Self {
        let mut times = vec![Vec::new(); n];
        let mut total = vec![0u32; n];
        for (ts, items) in sequences.iter().flatten() {
            for &i in items {
                total[i as usize] += 1;
                if let Some(t) = ts {
                    times[i as usize].push(*t);
                }
            }
        }
        times.iter_mut().for_each(|t| t.sort_unstable());
        Self { times, total }
    }

    fn count(&self, item: ItemIdx, at: Option<i64>) -> u32 {
        match at {
            Some(t) => self.times[item as usize].partition_point(|&x| x < t) as u32,
            None => self.total[item as usize],
        }
    }
}

/// The loss weight of an example at `time` when the newest is at `last`.
fn recency_weight(time: Option<i64>, last: Option<i64>, half_life_days: f64) -> f32 {
    match (time, last) {
        (Some(t), Some(last)) => 0.5f64.powf((last - t).max(0) as f64 / (half_life_days * 86_400.0)) as f32,
        _ => 1.0,
    }
}

/// How much an item with `events` training events leans on its identity.
fn identity_gate(events: f64, id_gate: f64) -> f32 {
    if id_gate > 0.0 { (events / (events + id_gate)) as f32 } else { 1.0 }
}

fn err(e: candle_core::Error) -> Error {
    Error::Train(e.to_string())
}

struct Model {
    text: Tensor,
    w_item: Var,
    b_item: Var,
    id: Option<Var>,
    /// `(n, 1)`: how much each item's identity counts at serving time
    /// (`config.id_gate` of its training events; 1 without a gate).
    gate: Tensor,
    positions: Var,
    w_user: Var,
    b_user: Var,
    /// `(d, d)`: the attention query of the newest history item.
    query: Option<Var>,
    /// The sequence block's parameters, in [`SequenceBlock::PARTS`] order
    /// (matrices `(d, d)`, position embeddings `(l, d)`, vectors `(d)`).
    block: Option<Vec<Var>>,
}

/// `LN(x)` over the last dimension, from primitives (candle's fused
/// layer norm has no backward pass).
fn layer_norm(x: &Tensor, gain: &Tensor, shift: &Tensor) -> candle_core::Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred.broadcast_div(&(var + f64::from(LAYER_NORM_EPS))?.sqrt()?)?.broadcast_mul(gain)?.broadcast_add(shift)
}

fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&norm)
}

impl Model {
    fn vars(&self) -> Vec<Var> {
        let mut v = vec![
            self.w_item.clone(),
            self.b_item.clone(),
            self.positions.clone(),
            self.w_user.clone(),
            self.b_user.clone(),
        ];
        v.extend(self.id.clone());
        v.extend(self.query.clone());
        v.extend(self.block.iter().flatten().cloned());
        v
    }

    /// Normalized user vectors `(b, d)` of histories `hist` `(b, l, d)`
    /// (newest first) whose position logits, padding masked, are `logits`
    /// `(b, l)`: what [`UserTower::user_vector`] computes, batched.
    fn users(&self, hist: &Tensor, mut logits: Tensor) -> candle_core::Result<Tensor> {
        let d = hist.dims()[2];
        let scale = (d as f64).sqrt();
        let newest = |t: &Tensor| t.narrow(1, 0, 1)?.squeeze(1);
        let pool = |weights: &Tensor, rows: &Tensor| weights.unsqueeze(1)?.matmul(rows)?.squeeze(1);
        let pooled = if let Some(block) = &self.block {
            let p: Vec<&Tensor> = block.iter().map(Var::as_tensor).collect();
            let positions = p[0].narrow(0, 0, hist.dims()[1])?;
            let x0 = (newest(hist)? + positions.narrow(0, 0, 1)?.broadcast_as((hist.dims()[0], d))?)?;
            let key_query = x0.matmul(p[1])?.matmul(&p[2].t()?)?;
            // x_j · kq = e_j · kq + p_j · kq, without building x.
            let content = (hist.matmul(&key_query.unsqueeze(2)?)?.squeeze(2)? + key_query.matmul(&positions.t()?)?)?;
            logits = (logits + (content / scale)?)?;
            let attention = candle_nn::ops::softmax(&logits, D::Minus1)?;
            let pooled_e = pool(&attention, hist)?;
            let pooled_x = (&pooled_e + attention.matmul(&positions)?)?;
            let h = (pooled_e + pooled_x.matmul(p[3])?)?;
            let hidden = layer_norm(&h, p[4], p[5])?.matmul(p[6])?.broadcast_add(p[7])?.relu()?;
            (h + hidden.matmul(p[8])?.broadcast_add(p[9])?)?
        } else {
            if let Some(query) = &self.query {
                // Position 0 is the newest item (every context has one).
                let q = newest(hist)?.matmul(query.as_tensor())?;
                logits = (logits + (hist.matmul(&q.unsqueeze(2)?)?.squeeze(2)? / scale)?)?;
            }
            pool(&candle_nn::ops::softmax(&logits, D::Minus1)?, hist)?
        };
        l2_normalize(&pooled.matmul(self.w_user.as_tensor())?.broadcast_add(self.b_user.as_tensor())?)
    }

    /// Vectors `(k, d)` of the items `rows` (every item when `None`),
    /// each item's identity scaled by `scale` `(k, 1)`: its gate, times the
    /// dropout mask while training. An item without identity (scale 0:
    /// new, or dropped) is its text alone.
    fn encode(&self, rows: Option<&Tensor>, scale: &Tensor) -> candle_core::Result<Tensor> {
        let pick = |t: &Tensor| match rows {
            Some(r) => t.index_select(r, 0),
            None => Ok(t.clone()),
        };
        let mut e = pick(&self.text)?.matmul(self.w_item.as_tensor())?.broadcast_add(self.b_item.as_tensor())?;
        if let Some(id) = &self.id {
            e = (e + pick(id.as_tensor())?.broadcast_mul(scale)?)?;
        }
        l2_normalize(&e)
    }

    fn snapshot(&self) -> candle_core::Result<Vec<Tensor>> {
        self.vars().iter().map(|v| v.as_tensor().copy()).collect()
    }

    fn restore(&self, saved: &[Tensor]) -> candle_core::Result<()> {
        for (v, t) in self.vars().iter().zip(saved) {
            v.set(t)?;
        }
        Ok(())
    }

    fn export(&self) -> candle_core::Result<(Vec<f32>, UserTower, ItemTower)> {
        let dims = self.w_user.dims()[0];
        let items = self.encode(None, &self.gate)?.flatten_all()?.to_vec1::<f32>()?;
        let user = UserTower {
            dims,
            position_logits: self.positions.as_tensor().to_vec1()?,
            weight: Some(self.w_user.as_tensor().flatten_all()?.to_vec1()?),
            bias: Some(self.b_user.as_tensor().to_vec1()?),
            query: match &self.query {
                Some(q) => Some(q.as_tensor().flatten_all()?.to_vec1()?),
                None => None,
            },
            block: match &self.block {
                Some(vars) => {
                    let mut parts = Vec::with_capacity(vars.len());
                    for v in vars {
                        parts.push(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
                    }
                    Some(SequenceBlock::from_parts(parts))
                }
                None => None,
            },
        };
        let item = ItemTower {
            text_dims: self.text.dims()[1],
            dims,
            weight: self.w_item.as_tensor().flatten_all()?.to_vec1()?,
            bias: self.b_item.as_tensor().to_vec1()?,
        };
        Ok((items, user, item))
    }
}

/// Gaussian samples (Box–Muller) from the seeded generator.
fn normal(rng: &mut ChaCha8Rng, n: usize, std: f32) -> Vec<f32> {
    use rand::Rng;
    (0..n)
        .map(|_| {
            let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
            let u2: f32 = rng.random();
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

/// Where training starts and which examples it learns from: a fresh model
/// on everything ([`Start::default`]), or an update of a serving version.
#[derive(Debug, Clone, Copy, Default)]
pub struct Start<'a> {
    /// Warm start from these towers (the serving version's) instead of the
    /// zero-shot initialization.
    pub towers: Option<(&'a UserTower, &'a ItemTower)>,
    /// Learn only the targets of steps at or after this unix time (the
    /// events since the serving version)...
    pub since: Option<i64>,
    /// ...plus `replay` older examples per new one, drawn at random once,
    /// so the update does not forget what the older log taught.
    pub replay: f64,
    /// The serving version's item vectors (catalog order), for a hybrid
    /// update: each warm item's identity starts where it reproduces the
    /// vector it serves, so the update starts from the serving model.
    pub item_vectors: Option<&'a [f32]>,
}

/// What an update's example selection kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selected {
    /// Examples from steps at or after [`Start::since`].
    pub new: usize,
    /// Older examples replayed.
    pub replayed: usize,
}

/// Fine-tunes the two towers on `data.split.train`, early-stopping on
/// `data.valid`. `text` holds one `text_dims`-wide pretrained embedding per
/// catalog item (row-major, catalog order).
pub fn train(
    data: &Dataset,
    text: &[f32],
    text_dims: usize,
    config: &TrainConfig,
    progress: impl FnMut(Progress),
) -> Result<Trained> {
    train_from(data, text, text_dims, config, Start::default(), progress).map(|(trained, _)| trained)
}

/// [`train`] from `start`. With no validation cases it trains exactly
/// `config.epochs` epochs and keeps the last (an update leaves the judging
/// to its gate, on events it never trained on).
pub fn train_from(
    data: &Dataset,
    text: &[f32],
    text_dims: usize,
    config: &TrainConfig,
    start: Start<'_>,
    mut progress: impl FnMut(Progress),
) -> Result<(Trained, Selected)> {
    let started = Instant::now();
    let n = data.items();
    if text.len() != n * text_dims {
        return Err(Error::Train(format!("{} text values for {n} items × {text_dims} dims", text.len())));
    }
    if config.batch_size < 2 || config.dims == 0 || config.max_history == 0 || config.temperature <= 0.0 {
        return Err(Error::Train("batch size ≥ 2, dims ≥ 1, max history ≥ 1 and temperature > 0 are required".into()));
    }
    if config.attention && config.sequence_block {
        return Err(Error::Train(
            "attention and sequence_block are two user towers: choose one (the block attends by itself)".into(),
        ));
    }
    let sequences = data.train_sequences();
    let events = EventsBefore::new(&sequences, n);
    let (contexts, all_examples) = examples(&sequences, &events, config.max_history);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (all_examples, selected) = match start.since {
        None => {
            let n = all_examples.len();
            (all_examples, Selected { new: n, replayed: 0 })
        }
        Some(since) => {
            let (new, mut old): (Vec<_>, Vec<_>) =
                all_examples.into_iter().partition(|e| e.time.is_some_and(|t| t >= since));
            old.shuffle(&mut rng);
            let keep = ((new.len() as f64 * start.replay.max(0.0)).round() as usize).min(old.len());
            let selected = Selected { new: new.len(), replayed: keep };
            (new.into_iter().chain(old.into_iter().take(keep)).collect(), selected)
        }
    };
    if all_examples.is_empty() {
        return Err(Error::Train(match start.since {
            Some(_) => "no new training examples since the serving version: nothing to learn".into(),
            None => "no training examples: every user has a single step in the training window".into(),
        }));
    }
    let dev = Device::Cpu;
    let last_time = all_examples.iter().filter_map(|e| e.time).max();
    let per_epoch = config.max_examples_per_epoch.unwrap_or(usize::MAX).min(all_examples.len());
    // A data set smaller than one batch trains in one full batch.
    let (d, l, b) = (config.dims, config.max_history, config.batch_size.min(per_epoch).max(2));

    let mut target_counts = vec![0f64; n];
    for e in &all_examples {
        target_counts[e.target as usize] += 1.0;
    }
    let total: f64 = all_examples.len() as f64;
    let log_q: Vec<f32> = target_counts.iter().map(|&c| ((c.max(0.5)) / total).ln() as f32).collect();

    let warm = match start.towers {
        Some((user, item)) => Some(warm_weights(user, item, text_dims, d, l)?),
        None => None,
    };
    let fresh_w_item = normal(&mut rng, text_dims * d, 1.0 / (d as f32).sqrt());
    let model = Model {
        text: Tensor::from_slice(text, (n, text_dims), &dev).map_err(err)?,
        w_item: Var::from_vec(warm.as_ref().map_or(fresh_w_item, |w| w.w_item.clone()), (text_dims, d), &dev)
            .map_err(err)?,
        b_item: match &warm {
            Some(w) => Var::from_vec(w.b_item.clone(), d, &dev),
            None => Var::zeros(d, DType::F32, &dev),
        }
        .map_err(err)?,
        id: if config.id_embeddings { Some(Var::zeros((n, d), DType::F32, &dev).map_err(err)?) } else { None },
        gate: Tensor::from_vec(
            events.total.iter().map(|&c| identity_gate(f64::from(c), config.id_gate)).collect::<Vec<_>>(),
            (n, 1),
            &dev,
        )
        .map_err(err)?,
        positions: Var::from_vec(
            match &warm {
                Some(w) => w.positions.clone(),
                None => (0..l).map(|r| -std::f32::consts::LN_2 * r as f32 / HISTORY_HALF_LIFE).collect(),
            },
            l,
            &dev,
        )
        .map_err(err)?,
        w_user: match &warm {
            Some(w) => Var::from_vec(w.w_user.clone(), (d, d), &dev),
            None => Var::from_tensor(&Tensor::eye(d, DType::F32, &dev).map_err(err)?),
        }
        .map_err(err)?,
        b_user: match &warm {
            Some(w) => Var::from_vec(w.b_user.clone(), d, &dev),
            None => Var::zeros(d, DType::F32, &dev),
        }
        .map_err(err)?,
        // Zero: attention starts as the recency pooling it refines.
        query: if config.attention {
            let start = warm.as_ref().and_then(|w| w.query.clone()).unwrap_or_else(|| vec![0.0; d * d]);
            Some(Var::from_vec(start, (d, d), &dev).map_err(err)?)
        } else {
            None
        },
        block: if config.sequence_block {
            let start = match warm.as_ref().and_then(|w| w.block.clone()) {
                Some(block) => block,
                None => {
                    let std = 1.0 / (d as f32).sqrt();
                    SequenceBlock::identity(d, l, normal(&mut rng, d * d, std), normal(&mut rng, d * d, std))
                }
            };
            let shapes = SequenceBlock::part_shapes(d, l);
            let mut vars = Vec::with_capacity(shapes.len());
            for (part, shape) in start.parts().into_iter().zip(shapes) {
                vars.push(Var::from_slice(part, shape, &dev).map_err(err)?);
            }
            Some(vars)
        } else {
            None
        },
    };
    if let (Some(id), Some(served), Some((_, item))) = (&model.id, start.item_vectors, start.towers) {
        id.set(&identity_start(item, text, text_dims, served, &model.gate, &dev)?).map_err(err)?;
    }
    let mut opt = AdamW::new(
        model.vars(),
        ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..Default::default() },
    )
    .map_err(err)?;

    let early_stopping = !data.valid.is_empty();
    let validate = |model: &Model| -> Result<Report> {
        if !early_stopping {
            return Ok(Report::default());
        }
        let (items, tower, _) = model.export().map_err(err)?;
        Ok(evaluate(&Embeddings { items, tower }, &data.valid, &data.cold))
    };

    let steps = (per_epoch / b).max(1);
    progress(Progress::Start { examples: per_epoch, steps });
    let mut history =
        vec![EpochStats { epoch: 0, loss: None, valid: validate(&model)?, seconds: 0.0, examples_per_second: 0.0 }];
    progress(Progress::Epoch(history[0].clone()));
    let mut best = (0usize, history[0].valid.all.recall_20);
    let mut best_weights = model.snapshot().map_err(err)?;
    let mut order: Vec<usize> = (0..all_examples.len()).collect();
    let labels = Tensor::arange(0u32, b as u32, &dev).map_err(err)?;

    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut seen = 0usize;
        for (step, batch) in order[..per_epoch].chunks_exact(b).take(steps).enumerate() {
            let batch: Vec<Example> = batch.iter().map(|&i| all_examples[i]).collect();
            let mut hist_idx = vec![0u32; b * l];
            let mut hist_mask = vec![-1e9f32; b * l];
            let mut targets = vec![0u32; b];
            let mut logq = vec![0f32; b];
            for (row, ex) in batch.iter().enumerate() {
                for (pos, &item) in contexts[ex.context as usize].iter().enumerate() {
                    hist_idx[row * l + pos] = item;
                    hist_mask[row * l + pos] = 0.0;
                }
                targets[row] = ex.target;
                logq[row] = log_q[ex.target as usize];
            }
            // Off-diagonal columns that are positives for the row too.
            let mut collide = vec![0f32; b * b];
            for r in 0..b {
                for c in 0..b {
                    if r != c && (batch[r].target == batch[c].target || batch[r].context == batch[c].context) {
                        collide[r * b + c] = -1e9;
                    }
                }
            }
            // Identity scale: the gate (of all events for history items, of
            // the events before the step for targets), times dropout.
            let keep = 1.0 - config.id_dropout;
            let dropped: Vec<f32> = (0..n)
                .map(|_| {
                    use rand::Rng;
                    if config.id_dropout <= 0.0 {
                        1.0
                    } else if rng.random::<f64>() < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let target_scale: Vec<f32> = batch
                .iter()
                .map(|ex| identity_gate(ex.target_events as f64, config.id_gate) * dropped[ex.target as usize])
                .collect();
            let weights: Option<Vec<f32>> = (config.half_life_days > 0.0 && last_time.is_some())
                .then(|| batch.iter().map(|ex| recency_weight(ex.time, last_time, config.half_life_days)).collect());
            let loss = (|| -> candle_core::Result<Tensor> {
                let history_scale = (&model.gate * Tensor::from_vec(dropped, (n, 1), &dev)?)?;
                let e = model.encode(None, &history_scale)?;
                let hist = e.index_select(&Tensor::from_vec(hist_idx, b * l, &dev)?, 0)?.reshape((b, l, d))?;
                let logits = model.positions.as_tensor().unsqueeze(0)?.broadcast_add(&Tensor::from_vec(
                    hist_mask,
                    (b, l),
                    &dev,
                )?)?;
                let user = model.users(&hist, logits)?;
                let targets = Tensor::from_vec(targets, b, &dev)?;
                let item = model.encode(Some(&targets), &Tensor::from_vec(target_scale, (b, 1), &dev)?)?;
                let logits = (user.matmul(&item.t()?)? / config.temperature)?
                    .broadcast_sub(&Tensor::from_vec(logq, (1, b), &dev)?)?
                    .broadcast_add(&Tensor::from_vec(collide, (b, b), &dev)?)?;
                match weights {
                    None => candle_nn::loss::cross_entropy(&logits, &labels),
                    // The recency-weighted mean of the examples' losses.
                    Some(w) => {
                        let total: f32 = w.iter().sum();
                        let w = Tensor::from_vec(w, b, &dev)?;
                        let log_p = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
                        let picked = log_p.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
                        ((picked * w)?.sum_all()? / total.max(f32::MIN_POSITIVE) as f64)?.neg()
                    }
                }
            })()
            .map_err(err)?;
            opt.backward_step(&loss).map_err(err)?;
            let value = loss.to_scalar::<f32>().map_err(err)? as f64;
            loss_sum += value;
            seen += b;
            progress(Progress::Step { epoch, step: step + 1, loss: value });
        }
        let seconds = epoch_started.elapsed().as_secs_f64();
        let valid = validate(&model)?;
        let stats = EpochStats {
            epoch,
            loss: Some(loss_sum / steps as f64),
            valid,
            seconds,
            examples_per_second: seen as f64 / seconds.max(1e-9),
        };
        progress(Progress::Epoch(stats.clone()));
        history.push(stats);
        if !early_stopping {
            best = (epoch, 0.0);
            best_weights = model.snapshot().map_err(err)?;
        } else if valid.all.recall_20 > best.1 {
            best = (epoch, valid.all.recall_20);
            best_weights = model.snapshot().map_err(err)?;
        } else if epoch - best.0 >= config.patience {
            break;
        }
    }
    model.restore(&best_weights).map_err(err)?;
    let (mut item_vectors, user_tower, mut item_tower) = model.export().map_err(err)?;
    if config.id_embeddings {
        item_tower = new_item_tower(&sequences, text, text_dims, &item_vectors, config)?;
        for (i, &cold) in data.cold.iter().enumerate() {
            if cold {
                let row = item_tower.project(&text[i * text_dims..(i + 1) * text_dims]);
                item_vectors[i * d..(i + 1) * d].copy_from_slice(&row);
            }
        }
        // The kept epoch's validation, as served (new items included).
        if early_stopping {
            let served = Embeddings { items: item_vectors.clone(), tower: user_tower.clone() };
            history[best.0].valid = evaluate(&served, &data.valid, &data.cold);
        }
    }
    let trained = Trained {
        item_vectors,
        user_tower,
        item_tower,
        history,
        best_epoch: best.0,
        examples: per_epoch,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((trained, selected))
}

/// ID embeddings with which `normalize(t W + b + g · id)` is each warm
/// item's served vector: `id = (|t W + b| · served − (t W + b)) / g`
/// (zero where the gate is 0: cold items are served from text).
fn identity_start(
    item: &ItemTower,
    text: &[f32],
    text_dims: usize,
    served: &[f32],
    gate: &Tensor,
    dev: &Device,
) -> Result<Tensor> {
    let d = item.dims;
    let n = text.len() / text_dims;
    if served.len() != n * d {
        return Err(Error::Train(format!("{} served values for {n} items × {d} dims", served.len())));
    }
    let gate = gate.flatten_all().and_then(|g| g.to_vec1::<f32>()).map_err(err)?;
    let mut id = vec![0f32; n * d];
    for i in 0..n {
        if gate[i] <= 0.0 {
            continue;
        }
        let mut base = item.bias.clone();
        for (t, row) in text[i * text_dims..(i + 1) * text_dims].iter().zip(item.weight.chunks_exact(d)) {
            base.iter_mut().zip(row).for_each(|(b, w)| *b += t * w);
        }
        let norm = base.iter().map(|x| x * x).sum::<f32>().sqrt();
        for ((out, b), v) in id[i * d..(i + 1) * d].iter_mut().zip(&base).zip(&served[i * d..(i + 1) * d]) {
            *out = (norm * v - b) / gate[i];
        }
    }
    Tensor::from_vec(id, (n, d), dev).map_err(err)
}

/// Ridge penalty of the new-item tower's fit.
const NEW_ITEM_RIDGE: f64 = 10.0;

/// The item tower a hybrid model serves new items with: a ridge regression
/// from text to the served vectors of items with history, each weighted by
/// its recency-weighted events, so an item nobody has bought yet lands
/// where recently bought items with text like its own are (their identity
/// included), not where the text-only path alone would put it.
fn new_item_tower(
    sequences: &Sequences,
    text: &[f32],
    text_dims: usize,
    vectors: &[f32],
    config: &TrainConfig,
) -> Result<ItemTower> {
    let last = sequences.iter().flatten().filter_map(|s| s.0).max();
    let mut weights = vec![0f64; text.len() / text_dims];
    for (ts, items) in sequences.iter().flatten() {
        let w = if config.half_life_days > 0.0 { recency_weight(*ts, last, config.half_life_days) as f64 } else { 1.0 };
        for &i in items {
            weights[i as usize] += w;
        }
    }
    // Inputs with a constant 1 appended: its coefficients are the bias.
    let (p, d) = (text_dims + 1, config.dims);
    let mut gram = vec![0f64; p * p];
    let mut cross = vec![0f64; p * d];
    let mut x = vec![0f64; p];
    for (i, &w) in weights.iter().enumerate() {
        if w <= 0.0 {
            continue;
        }
        x[..text_dims].iter_mut().zip(&text[i * text_dims..(i + 1) * text_dims]).for_each(|(x, &t)| *x = t as f64);
        x[text_dims] = 1.0;
        let y = &vectors[i * d..(i + 1) * d];
        for r in 0..p {
            let wx = w * x[r];
            for c in 0..=r {
                gram[r * p + c] += wx * x[c];
            }
            for (out, &y) in cross[r * d..(r + 1) * d].iter_mut().zip(y) {
                *out += wx * y as f64;
            }
        }
    }
    for r in 0..p {
        for c in 0..r {
            gram[c * p + r] = gram[r * p + c];
        }
        gram[r * p + r] += NEW_ITEM_RIDGE;
    }
    let solution = crate::linalg::solve_spd(gram, cross, p, d)
        .ok_or_else(|| Error::Train("the new-item tower's regression is singular".into()))?;
    let weight = solution[..text_dims * d].iter().map(|&v| v as f32).collect();
    let bias = solution[text_dims * d..].iter().map(|&v| v as f32).collect();
    Ok(ItemTower { text_dims, dims: d, weight, bias })
}

/// A serving version's towers as starting weights.
struct Warm {
    w_item: Vec<f32>,
    b_item: Vec<f32>,
    positions: Vec<f32>,
    w_user: Vec<f32>,
    b_user: Vec<f32>,
    query: Option<Vec<f32>>,
    block: Option<SequenceBlock>,
}

fn warm_weights(user: &UserTower, item: &ItemTower, text_dims: usize, d: usize, l: usize) -> Result<Warm> {
    if item.text_dims != text_dims || item.dims != d || user.dims != d {
        return Err(Error::Train(format!(
            "the serving towers are {}→{} wide and the update asks {text_dims}→{d}; a full retrain changes widths",
            item.text_dims, item.dims
        )));
    }
    let positions = resize_positions(&user.position_logits, 1, l);
    let eye = || (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect();
    Ok(Warm {
        w_item: item.weight.clone(),
        b_item: item.bias.clone(),
        positions,
        w_user: user.weight.clone().unwrap_or_else(eye),
        b_user: user.bias.clone().unwrap_or_else(|| vec![0.0; d]),
        query: user.query.clone(),
        block: user.block.clone().map(|mut block| {
            block.positions = resize_positions(&block.positions, d, l);
            block
        }),
    })
}

/// Per-position values (`width` each, newest position first) for a history
/// window of `l`: a shorter or longer window keeps the positions both know,
/// and new positions continue the last one (zeros if there is none).
fn resize_positions(values: &[f32], width: usize, l: usize) -> Vec<f32> {
    let known = values.len() / width;
    let last = if known == 0 { vec![0.0; width] } else { values[(known - 1) * width..known * width].to_vec() };
    (0..l).flat_map(|r| if r < known { &values[r * width..(r + 1) * width] } else { &last[..] }).copied().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::CatalogItem;
    use crate::data::split::{Case, Sequence, Split, Step};
    use rand::Rng;

    /// Items `i00`, `i01`, ... titled `item 0`, `item 1`, ...
    pub(crate) fn numbered_catalog(n: usize) -> Vec<CatalogItem> {
        (0..n)
            .map(|i| CatalogItem {
                item_id: format!("i{i:02}"),
                title: format!("item {i}"),
                text: format!("item {i}"),
                first_seen: None,
            })
            .collect()
    }

    /// 60 items whose random "text" says nothing about behaviour: shoppers
    /// who take item `a` next take its partner `(a + 30) % 60`. Only
    /// training can find that out.
    fn partners() -> (Dataset, Vec<f32>) {
        let n = 60;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let text: Vec<f32> = (0..n * 16).map(|_| rng.random::<f32>() - 0.5).collect();
        let catalog = numbered_catalog(n);
        let id = |i: usize| format!("i{i:02}");
        let mut split = Split::empty("leave-one-out", "test");
        for u in 0..400 {
            let mut steps = Vec::new();
            for _ in 0..3 {
                let a = rng.random_range(0..n);
                steps.push(Step { ts: None, items: vec![id(a)] });
                steps.push(Step { ts: None, items: vec![id((a + 30) % n)] });
            }
            split.train.push(Sequence { user: format!("u{u}"), steps });
        }
        for u in 0..100 {
            let a = rng.random_range(0..n);
            let case = Case { user: format!("v{u}"), history: vec![id(a)], targets: vec![id((a + 30) % n)] };
            if u % 2 == 0 { split.valid.push(case) } else { split.test.push(case) }
        }
        split.finish();
        (Dataset::new(catalog, split).unwrap(), text)
    }

    fn config() -> TrainConfig {
        TrainConfig {
            dims: 16,
            batch_size: 64,
            epochs: 8,
            patience: 8,
            learning_rate: 1e-2,
            id_embeddings: true,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn training_learns_what_the_text_cannot_tell_and_beats_its_start() {
        let (data, text) = partners();
        let mut epochs = 0;
        let trained = train(&data, &text, 16, &config(), |p| {
            if let Progress::Epoch(_) = p {
                epochs += 1
            }
        })
        .unwrap();
        let start = trained.history[0].valid.all.recall_10;
        let best = trained.history[trained.best_epoch].valid.all.recall_10;
        assert!(start < 0.4, "random text knows little: {start}");
        assert!(best > start + 0.3, "Recall@10 {start} -> {best}");
        assert_eq!(epochs, trained.history.len());
        // The exported towers score the test cases as well as validation.
        let test = evaluate(
            &Embeddings { items: trained.item_vectors.clone(), tower: trained.user_tower.clone() },
            &data.test,
            &data.cold,
        );
        assert!(test.all.recall_10 > start + 0.3, "test Recall@10 {}", test.all.recall_10);
        assert_eq!(trained.item_tower.project(&text[..16]).len(), 16);
    }

    #[test]
    fn the_same_seed_gives_the_same_model() {
        let (data, text) = partners();
        let config = TrainConfig { epochs: 2, ..config() };
        let a = train(&data, &text, 16, &config, |_| {}).unwrap();
        let b = train(&data, &text, 16, &config, |_| {}).unwrap();
        assert_eq!(a.item_vectors, b.item_vectors);
        assert_eq!(a.history[1].loss, b.history[1].loss);
        let c = train(&data, &text, 16, &TrainConfig { seed: 1, ..config }, |_| {}).unwrap();
        assert_ne!(a.item_vectors, c.item_vectors);
    }

    /// Shoppers who take `a` took `(a + 30) % 60` next a year ago and take
    /// `(a + 15) % 60` next in the last weeks (a quarter of the log);
    /// validation asks for today's partner.
    fn tastes_that_moved() -> (Dataset, Vec<f32>) {
        let (n, day) = (60, 86_400);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let text: Vec<f32> = (0..n * 16).map(|_| rng.random::<f32>() - 0.5).collect();
        let catalog = numbered_catalog(n);
        let id = |i: usize| format!("i{i:02}");
        let mut split = Split::empty("time", "test");
        for u in 0..400 {
            let (shift, at) = if u < 300 { (30, 0) } else { (15, 360 * day) };
            let mut steps = Vec::new();
            for k in 0..3 {
                let a = rng.random_range(0..n);
                steps.push(Step { ts: Some(at + 2 * k * 100), items: vec![id(a)] });
                steps.push(Step { ts: Some(at + 2 * k * 100 + 100), items: vec![id((a + shift) % n)] });
            }
            split.train.push(Sequence { user: format!("u{u}"), steps });
        }
        for u in 0..100 {
            let a = rng.random_range(0..n);
            let case = Case { user: format!("v{u}"), history: vec![id(a)], targets: vec![id((a + 15) % n)] };
            if u % 2 == 0 { split.valid.push(case) } else { split.test.push(case) }
        }
        split.finish();
        (Dataset::new(catalog, split).unwrap(), text)
    }

    #[test]
    fn weighing_recent_examples_follows_tastes_that_moved() {
        let (data, text) = tastes_that_moved();
        let test_mrr = |half_life_days: f64| {
            let config = TrainConfig { half_life_days, epochs: 6, patience: 6, ..config() };
            let trained = train(&data, &text, 16, &config, |_| {}).unwrap();
            let scorer = Embeddings { items: trained.item_vectors, tower: trained.user_tower };
            evaluate(&scorer, &data.test, &data.cold).all.mrr
        };
        let (alike, recent) = (test_mrr(0.0), test_mrr(30.0));
        assert!(recent > alike + 0.08, "MRR: a 30-day half-life {recent} vs all examples alike {alike}");
    }

    #[test]
    fn recency_weights_halve_every_half_life_and_need_times() {
        let day = 86_400;
        assert_eq!(recency_weight(Some(100 * day), Some(100 * day), 30.0), 1.0);
        assert!((recency_weight(Some(40 * day), Some(100 * day), 30.0) - 0.25).abs() < 1e-6);
        assert_eq!(recency_weight(None, Some(100 * day), 30.0), 1.0);
        assert_eq!(recency_weight(Some(day), None, 30.0), 1.0);
    }

    #[test]
    fn an_items_gate_counts_only_the_events_before_the_step() {
        let seqs = vec![vec![(Some(10), vec![0, 1]), (Some(20), vec![0])], vec![(Some(20), vec![0]), (None, vec![1])]];
        let before = EventsBefore::new(&seqs, 3);
        assert_eq!(before.count(0, Some(10)), 0, "new at its first sale");
        assert_eq!(before.count(0, Some(20)), 1);
        assert_eq!(before.count(0, Some(21)), 3);
        assert_eq!(before.count(1, None), 2, "no time: every event");
        assert_eq!(before.count(2, Some(99)), 0);
        assert_eq!(identity_gate(0.0, 10.0), 0.0);
        assert_eq!(identity_gate(10.0, 10.0), 0.5);
        assert_eq!(identity_gate(0.0, 0.0), 1.0, "no gate: identity always counts");
    }

    #[test]
    fn a_hybrid_model_serves_new_items_from_their_text_as_the_item_tower_does() {
        let (mut data, text) = partners();
        // Item 59 never appears in training: a new item.
        for seq in &mut data.split.train {
            seq.steps.retain(|s| s.items.iter().all(|i| i != "i59"));
        }
        let data = Dataset::new(data.catalog.clone(), data.split.clone()).unwrap();
        assert!(data.cold[59]);
        let trained = train(&data, &text, 16, &TrainConfig { epochs: 2, ..config() }, |_| {}).unwrap();
        let served = &trained.item_vectors[59 * 16..60 * 16];
        let from_text = trained.item_tower.project(&text[59 * 16..60 * 16]);
        for (a, b) in served.iter().zip(&from_text) {
            assert!((a - b).abs() < 1e-5, "{served:?} vs {from_text:?}");
        }
        // A warm item has its identity too.
        let warm = trained.item_tower.project(&text[..16]);
        assert!(trained.item_vectors[..16].iter().zip(&warm).any(|(a, b)| (a - b).abs() > 1e-3));
    }

    #[test]
    fn a_hybrid_update_starts_from_the_vectors_the_serving_version_serves() {
        for config in [TrainConfig { attention: true, ..config() }, TrainConfig { sequence_block: true, ..config() }] {
            a_hybrid_update_starts_from_the_serving_version(config);
        }
    }

    fn a_hybrid_update_starts_from_the_serving_version(config: TrainConfig) {
        let (data, text) = partners();
        let serving = train(&data, &text, 16, &TrainConfig { epochs: 3, ..config.clone() }, |_| {}).unwrap();
        let user = &serving.user_tower;
        if config.attention {
            assert!(user.query.as_ref().is_some_and(|q| q.iter().any(|&x| x != 0.0)), "attention trained");
        } else {
            let block = user.block.as_ref().expect("a sequence block");
            for (name, part) in [("keys", &block.w_key), ("values", &block.w_value), ("positions", &block.positions)] {
                assert!(part.iter().any(|&x| x != 0.0), "the block's {name} trained");
            }
        }
        let start = Start {
            towers: Some((&serving.user_tower, &serving.item_tower)),
            item_vectors: Some(&serving.item_vectors),
            ..Start::default()
        };
        let (resumed, _) = train_from(&data, &text, 16, &TrainConfig { epochs: 0, ..config }, start, |_| {}).unwrap();
        assert_eq!(resumed.user_tower, serving.user_tower, "the user tower, attention or block included, carries over");
        let worst =
            resumed.item_vectors.iter().zip(&serving.item_vectors).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "epoch 0 of the update is the serving model (worst difference {worst})");
        let best = serving.history[serving.best_epoch].valid.all.recall_10;
        assert!((resumed.history[0].valid.all.recall_10 - best).abs() < 1e-9);
    }

    #[test]
    fn a_new_history_window_keeps_the_known_positions_and_continues_the_last() {
        assert_eq!(resize_positions(&[0.0, -1.0], 1, 3), [0.0, -1.0, -1.0]);
        assert_eq!(resize_positions(&[0.0, -1.0], 1, 1), [0.0]);
        assert_eq!(resize_positions(&[1.0, 2.0, 3.0, 4.0], 2, 3), [1.0, 2.0, 3.0, 4.0, 3.0, 4.0], "rows of two");
        assert_eq!(resize_positions(&[], 2, 2), [0.0; 4]);
    }

    #[test]
    fn the_trained_sequence_block_computes_what_the_served_tower_computes() {
        // The batched candle forward that training differentiates and the
        // plain loops the functions run must agree, padding included.
        let (d, l) = (4, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let dev = Device::Cpu;
        let var = |v: Vec<f32>, shape: &[usize]| Var::from_vec(v, shape, &dev).unwrap();
        let shapes = SequenceBlock::part_shapes(d, l);
        let block: Vec<Var> = shapes.iter().map(|s| var(normal(&mut rng, s.iter().product(), 0.7), s)).collect();
        let model = Model {
            text: Tensor::zeros((1, d), DType::F32, &dev).unwrap(),
            w_item: var(vec![0.0; d * d], &[d, d]),
            b_item: var(vec![0.0; d], &[d]),
            id: None,
            gate: Tensor::ones((1, 1), DType::F32, &dev).unwrap(),
            positions: var(vec![0.0, -0.3, -0.9], &[l]),
            w_user: var(normal(&mut rng, d * d, 0.5), &[d, d]),
            b_user: var(normal(&mut rng, d, 0.1), &[d]),
            query: None,
            block: Some(block),
        };
        let (_, tower, _) = model.export().unwrap();
        let rows: Vec<Vec<f32>> = (0..4).map(|_| normal(&mut rng, d, 1.0)).collect();
        // Histories oldest first; the batch holds them newest first, padded.
        let histories: [&[usize]; 2] = [&[0, 1, 2], &[3, 1]];
        let (mut hist, mut logits) = (Vec::new(), Vec::new());
        for h in histories {
            for p in 0..l {
                let item = h.iter().rev().nth(p);
                hist.extend(item.map_or(vec![0.0; d], |&i| rows[i].clone()));
                logits.push(
                    model.positions.as_tensor().to_vec1::<f32>().unwrap()[p] + if item.is_some() { 0.0 } else { -1e9 },
                );
            }
        }
        let hist = Tensor::from_vec(hist, (2, l, d), &dev).unwrap();
        let batched =
            model.users(&hist, Tensor::from_vec(logits, (2, l), &dev).unwrap()).unwrap().to_vec2::<f32>().unwrap();
        for (h, trained) in histories.iter().zip(&batched) {
            let served = tower.user_vector(h, |i, out| out.copy_from_slice(&rows[i])).unwrap();
            assert!(served.iter().zip(trained).all(|(a, b)| (a - b).abs() < 1e-5), "{h:?}: {served:?} vs {trained:?}");
        }
    }

    #[test]
    fn unusable_inputs_are_refused_with_the_reason() {
        let (data, text) = partners();
        let err = train(&data, &text[1..], 16, &config(), |_| {}).unwrap_err().to_string();
        assert!(err.contains("text values"), "{err}");
        let err =
            train(&data, &text, 16, &TrainConfig { temperature: 0.0, ..config() }, |_| {}).unwrap_err().to_string();
        assert!(err.contains("temperature"), "{err}");
        let both = TrainConfig { attention: true, sequence_block: true, ..config() };
        let err = train(&data, &text, 16, &both, |_| {}).unwrap_err().to_string();
        assert!(err.contains("choose one"), "{err}");
    }
}
