//! Two-tower fine-tuning on a shop's own behaviour, with candle autograd.
//!
//! * **Item tower**: `e_i = normalize(t_i · W_item + b_item + id_i)`, where
//!   `t_i` is the frozen pretrained text embedding and `id_i` a per-item
//!   embedding that only warm items ever train (zero for cold items, which
//!   therefore work from text alone). `id_i` is dropped at random while
//!   training so the text path keeps carrying the signal.
//! * **User tower**: softmax over learned recency-position logits (newest
//!   distinct history item first) pools the history's `e_i`, then
//!   `u = normalize(pooled · W_user + b_user)` ([`crate::tower::UserTower`],
//!   which the functions run as plain loops).
//! * **Loss**: sampled softmax over in-batch negatives, logits `u·e/τ`
//!   minus `log q(item)` (the item's share of training targets: logQ
//!   correction, so popular items are not pushed down just for being
//!   frequent negatives); other positives of the same basket and repeated
//!   items are masked out.
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
use crate::tower::{HISTORY_HALF_LIFE, ItemTower, UserTower};
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
            // Text-only towers rank cold items as well as warm ones; on
            // Online Retail the ID embeddings won NDCG@10 (0.065 vs 0.059)
            // but lost the cold slice (Recall@20 0.018 vs 0.083).
            id_embeddings: false,
            id_dropout: 0.5,
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
}

/// Histories (newest first), and examples with the unix time of their step.
type Examples = (Vec<Vec<ItemIdx>>, Vec<(Example, Option<i64>)>);

/// Training examples from the training sequences: for every step after a
/// user's first, each item not already in the history is a target, and
/// the newest `max_history` distinct earlier items are its context.
fn examples(data: &Dataset, max_history: usize) -> Examples {
    let mut contexts = Vec::new();
    let mut out = Vec::new();
    for seq in data.train_sequences() {
        let mut history: Vec<ItemIdx> = Vec::new(); // newest first, distinct
        for (ts, items) in &seq {
            if !history.is_empty() {
                let targets: Vec<ItemIdx> = items.iter().copied().filter(|i| !history.contains(i)).collect();
                if !targets.is_empty() {
                    let context = contexts.len() as u32;
                    contexts.push(history.iter().copied().take(max_history).collect());
                    out.extend(targets.into_iter().map(|target| (Example { context, target }, *ts)));
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

fn err(e: candle_core::Error) -> Error {
    Error::Train(e.to_string())
}

struct Model {
    text: Tensor,
    w_item: Var,
    b_item: Var,
    id: Option<Var>,
    positions: Var,
    w_user: Var,
    b_user: Var,
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
        v
    }

    /// All item vectors; `id_mask` scales each item's ID embedding.
    fn items(&self, id_mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let mut e = self.text.matmul(self.w_item.as_tensor())?.broadcast_add(self.b_item.as_tensor())?;
        if let Some(id) = &self.id {
            e = match id_mask {
                Some(m) => (e + id.as_tensor().broadcast_mul(m)?)?,
                None => (e + id.as_tensor())?,
            };
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
        let items = self.items(None)?.flatten_all()?.to_vec1::<f32>()?;
        let user = UserTower {
            dims,
            position_logits: self.positions.as_tensor().to_vec1()?,
            weight: Some(self.w_user.as_tensor().flatten_all()?.to_vec1()?),
            bias: Some(self.b_user.as_tensor().to_vec1()?),
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
    let (contexts, all_examples) = examples(data, config.max_history);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let (all_examples, selected) = match start.since {
        None => {
            let n = all_examples.len();
            (all_examples.into_iter().map(|(e, _)| e).collect::<Vec<_>>(), Selected { new: n, replayed: 0 })
        }
        Some(since) => {
            let (new, mut old): (Vec<_>, Vec<_>) =
                all_examples.into_iter().partition(|(_, ts)| ts.is_some_and(|t| t >= since));
            old.shuffle(&mut rng);
            let keep = ((new.len() as f64 * start.replay.max(0.0)).round() as usize).min(old.len());
            let selected = Selected { new: new.len(), replayed: keep };
            (new.into_iter().chain(old.into_iter().take(keep)).map(|(e, _)| e).collect(), selected)
        }
    };
    if all_examples.is_empty() {
        return Err(Error::Train(match start.since {
            Some(_) => "no new training examples since the serving version: nothing to learn".into(),
            None => "no training examples: every user has a single step in the training window".into(),
        }));
    }
    let dev = Device::Cpu;
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
    };
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
            let id_mask = if config.id_embeddings {
                use rand::Rng;
                let keep = 1.0 - config.id_dropout;
                let m: Vec<f32> =
                    (0..n).map(|_| if rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 }).collect();
                Some(Tensor::from_vec(m, (n, 1), &dev).map_err(err)?)
            } else {
                None
            };
            let loss = (|| -> candle_core::Result<Tensor> {
                let e = model.items(id_mask.as_ref())?;
                let hist = e.index_select(&Tensor::from_vec(hist_idx, b * l, &dev)?, 0)?.reshape((b, l, d))?;
                let pos = model.positions.as_tensor().unsqueeze(0)?.broadcast_add(&Tensor::from_vec(
                    hist_mask,
                    (b, l),
                    &dev,
                )?)?;
                let attention = candle_nn::ops::softmax(&pos, D::Minus1)?;
                let pooled = attention.unsqueeze(1)?.matmul(&hist)?.squeeze(1)?;
                let user = pooled.matmul(model.w_user.as_tensor())?.broadcast_add(model.b_user.as_tensor())?;
                let user = l2_normalize(&user)?;
                let item = e.index_select(&Tensor::from_vec(targets, b, &dev)?, 0)?;
                let logits = (user.matmul(&item.t()?)? / config.temperature)?
                    .broadcast_sub(&Tensor::from_vec(logq, (1, b), &dev)?)?
                    .broadcast_add(&Tensor::from_vec(collide, (b, b), &dev)?)?;
                candle_nn::loss::cross_entropy(&logits, &labels)
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
    let (item_vectors, user_tower, item_tower) = model.export().map_err(err)?;
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

/// A serving version's towers as starting weights.
struct Warm {
    w_item: Vec<f32>,
    b_item: Vec<f32>,
    positions: Vec<f32>,
    w_user: Vec<f32>,
    b_user: Vec<f32>,
}

fn warm_weights(user: &UserTower, item: &ItemTower, text_dims: usize, d: usize, l: usize) -> Result<Warm> {
    if item.text_dims != text_dims || item.dims != d || user.dims != d {
        return Err(Error::Train(format!(
            "the serving towers are {}→{} wide and the update asks {text_dims}→{d}; a full retrain changes widths",
            item.text_dims, item.dims
        )));
    }
    // A shorter or longer history window keeps the positions both know;
    // new positions continue the last one's weight.
    let last = user.position_logits.last().copied().unwrap_or(0.0);
    let positions = (0..l).map(|r| user.position_logits.get(r).copied().unwrap_or(last)).collect();
    let eye = || (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect();
    Ok(Warm {
        w_item: item.weight.clone(),
        b_item: item.bias.clone(),
        positions,
        w_user: user.weight.clone().unwrap_or_else(eye),
        b_user: user.bias.clone().unwrap_or_else(|| vec![0.0; d]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::CatalogItem;
    use crate::data::split::{Case, Sequence, Split, Step};
    use rand::Rng;

    /// 60 items whose random "text" says nothing about behaviour: shoppers
    /// who take item `a` next take its partner `(a + 30) % 60`. Only
    /// training can find that out.
    fn partners() -> (Dataset, Vec<f32>) {
        let n = 60;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let text: Vec<f32> = (0..n * 16).map(|_| rng.random::<f32>() - 0.5).collect();
        let catalog: Vec<CatalogItem> = (0..n)
            .map(|i| CatalogItem {
                item_id: format!("i{i:02}"),
                title: format!("item {i}"),
                text: format!("item {i}"),
                first_seen: None,
            })
            .collect();
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

    #[test]
    fn unusable_inputs_are_refused_with_the_reason() {
        let (data, text) = partners();
        let err = train(&data, &text[1..], 16, &config(), |_| {}).unwrap_err().to_string();
        assert!(err.contains("text values"), "{err}");
        let err =
            train(&data, &text, 16, &TrainConfig { temperature: 0.0, ..config() }, |_| {}).unwrap_err().to_string();
        assert!(err.contains("temperature"), "{err}");
    }
}
