//! The user tower at serving time: attend over the history's item vectors
//! with weights from their recency position and, when trained with
//! attention, from how each relates to the newest item; pool, project,
//! normalize. Or, trained with a sequence block, run one SASRec-style
//! self-attention block over the history ([`SequenceBlock`]). Training
//! (`crate::train`) learns exactly these parameters; the functions run them
//! with plain loops, no ML runtime.
//!
//! `user_tower.bin` (little-endian): magic `ERUT`, `u32` version 1,
//! `u32` dims, `u32` max_history, `u32` flags (bit 0: projected, bit 1:
//! attention, bit 2: sequence block), then `max_history` f32 position
//! logits (newest first); if projected, `dims × dims` f32 weights
//! (row-major, `u = pooled · W`) and `dims` f32 biases; with attention,
//! `dims × dims` f32 query weights (row-major, `q = newest · Q`); with a
//! sequence block, its parameters in [`SequenceBlock::PARTS`] order.
//! Files without the newer parts read as before; older builds refuse
//! files with them, naming the flags.

use crate::Result;
use crate::codec::{self, Reader, Writer};
use crate::score::normalize;

/// File name of the user tower inside a bundle.
pub const USER_TOWER_FILE: &str = codec::USER_TOWER.file;

/// Weight halving distance (in history positions) of the untrained tower.
pub const HISTORY_HALF_LIFE: f32 = 5.0;

/// Default number of newest distinct history items a tower reads.
pub const MAX_HISTORY: usize = 50;

/// Recency-weighted pooling plus an optional linear projection.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTower {
    /// Width of item and user vectors.
    pub dims: usize,
    /// Softmax logits per recency position (0 = newest).
    pub position_logits: Vec<f32>,
    /// `dims × dims`, row-major; `None` is the identity.
    pub weight: Option<Vec<f32>>,
    /// `dims`; present with `weight`.
    pub bias: Option<Vec<f32>>,
    /// `dims × dims`, row-major: history item `j` gets `q · e_j / √dims`
    /// added to its position logit, `q = e_newest · query`. `None`: the
    /// weights are the position logits alone.
    pub query: Option<Vec<f32>>,
    /// A self-attention block over the whole history, in place of the
    /// pooling alone (never together with `query`).
    pub block: Option<SequenceBlock>,
}

/// One SASRec-style block (one layer, one head), read out at the newest
/// position, which attends to the whole history: each history item gets a
/// learned position embedding, the newest item's query meets every item's
/// key with the recency logits as a bias, the values are projected, and a
/// feed-forward layer with a layer norm and a residual follows:
///
/// ```text
/// x_j = e_j + p_j                                   (j = 0 is the newest)
/// a   = softmax_j(position_logit_j + (x₀ W_q)·(x_j W_k) / √d)
/// h   = Σ a_j e_j + (Σ a_j x_j) W_v
/// out = h + relu(LN(h) W₁ + b₁) W₂ + b₂
/// ```
///
/// The residual pools the item vectors themselves, so with `W_k`, `W_v`,
/// `W₂`, `b₂` and the position embeddings at zero (where training starts)
/// the block is exactly the recency pooling it refines, and the position
/// embeddings reach the user vector only through keys and values (in the
/// residual they would add the same vector to every user with the same
/// history length). The item vectors are unit vectors already, so no layer
/// norm precedes the attention. With one query the keys and values need
/// not be projected one by one: `(x₀ W_q) W_kᵀ` is dotted with each `x_j`,
/// and the pooled `x` is projected once, so a 50-item history costs a few
/// `d × d` products, not fifty.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceBlock {
    /// `max_history × dims`, row-major, newest position first.
    pub positions: Vec<f32>,
    /// `W_q`, `dims × dims`, row-major (`x · W`), as are `W_k` and `W_v`.
    pub w_query: Vec<f32>,
    /// `W_k`.
    pub w_key: Vec<f32>,
    /// `W_v`.
    pub w_value: Vec<f32>,
    /// The layer norm's gain and shift, `dims` each.
    pub norm: [Vec<f32>; 2],
    /// The feed-forward layer's `W₁` (`dims × dims`)...
    pub w_in: Vec<f32>,
    /// ...`b₁` (`dims`)...
    pub b_in: Vec<f32>,
    /// ...`W₂` (`dims × dims`)...
    pub w_out: Vec<f32>,
    /// ...and `b₂` (`dims`).
    pub b_out: Vec<f32>,
}

/// The layer norms' variance floor (as in BERT and SASRec).
pub const LAYER_NORM_EPS: f32 = 1e-5;

/// `start + x · W` for a row `x` of `W`'s height (`W` as wide as `start`).
fn affine(x: &[f32], w: &[f32], mut start: Vec<f32>) -> Vec<f32> {
    let width = start.len();
    for (xi, w_row) in x.iter().zip(w.chunks_exact(width)) {
        start.iter_mut().zip(w_row).for_each(|(o, w)| *o += xi * w);
    }
    start
}

/// `x · W` for a row `x` of `W`'s height.
fn row_times(x: &[f32], w: &[f32], width: usize) -> Vec<f32> {
    affine(x, w, vec![0f32; width])
}

/// Adds `query · row / √d` to each row's logit: how each history item
/// relates to what the newest one asks for.
fn add_attention(logits: &mut [f32], rows: &[f32], query: &[f32]) {
    let scale = 1.0 / (query.len() as f32).sqrt();
    for (l, row) in logits.iter_mut().zip(rows.chunks_exact(query.len())) {
        *l += crate::score::dot(query, row) * scale;
    }
}

/// The softmax of `logits`.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// `Σ weight_j · row_j` over `rows` (`d` wide each).
fn pool(weights: &[f32], rows: &[f32], d: usize) -> Vec<f32> {
    let mut pooled = vec![0f32; d];
    for (row, w) in rows.chunks_exact(d).zip(weights) {
        pooled.iter_mut().zip(row).for_each(|(p, r)| *p += w * r);
    }
    pooled
}

/// `LN(x) = gain · (x − mean) / √(var + eps) + shift`.
fn layer_norm(x: &[f32], [gain, shift]: &[Vec<f32>; 2]) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
    let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
    x.iter().zip(gain).zip(shift).map(|((v, g), b)| g * (v - mean) * inv + b).collect()
}

impl SequenceBlock {
    /// The parameters as the file stores them.
    pub const PARTS: [&'static str; 10] = [
        "position embeddings",
        "query weights",
        "key weights",
        "value weights",
        "norm gain",
        "norm shift",
        "feed-forward in weights",
        "feed-forward in biases",
        "feed-forward out weights",
        "feed-forward out biases",
    ];

    /// The parameters in [`Self::PARTS`] order.
    pub fn parts(&self) -> [&[f32]; 10] {
        [
            &self.positions,
            &self.w_query,
            &self.w_key,
            &self.w_value,
            &self.norm[0],
            &self.norm[1],
            &self.w_in,
            &self.b_in,
            &self.w_out,
            &self.b_out,
        ]
    }

    /// A block from its parameters in [`Self::PARTS`] order.
    pub fn from_parts(parts: Vec<Vec<f32>>) -> Self {
        let mut it = parts.into_iter();
        let mut next = || it.next().unwrap_or_default();
        Self {
            positions: next(),
            w_query: next(),
            w_key: next(),
            w_value: next(),
            norm: [next(), next()],
            w_in: next(),
            b_in: next(),
            w_out: next(),
            b_out: next(),
        }
    }

    /// The shape of each of [`Self::parts`].
    pub fn part_shapes(dims: usize, max_history: usize) -> [Vec<usize>; 10] {
        let (v, m) = (vec![dims], vec![dims, dims]);
        [vec![max_history, dims], m.clone(), m.clone(), m.clone(), v.clone(), v.clone(), m.clone(), v.clone(), m, v]
    }

    /// The block where training starts: the recency pooling exactly (see
    /// the type's note). `w_query` and `w_in` come from the caller
    /// (random), so that the zero weights after them get gradients.
    pub fn identity(dims: usize, max_history: usize, w_query: Vec<f32>, w_in: Vec<f32>) -> Self {
        let zeros = |n: usize| vec![0f32; n];
        Self {
            positions: zeros(max_history * dims),
            w_query,
            w_key: zeros(dims * dims),
            w_value: zeros(dims * dims),
            norm: [vec![1f32; dims], zeros(dims)],
            w_in,
            b_in: zeros(dims),
            w_out: zeros(dims * dims),
            b_out: zeros(dims),
        }
    }

    /// The block's output for `rows` (`n × dims` item vectors, newest
    /// first, `n` at most the positions it has) with the recency `logits`
    /// of their positions.
    pub fn apply(&self, rows: &[f32], logits: &[f32], dims: usize) -> Vec<f32> {
        let d = dims;
        let x: Vec<f32> = rows.iter().zip(&self.positions).map(|(e, p)| e + p).collect();
        let q = row_times(&x[..d], &self.w_query, d);
        // (x₀ W_q) W_kᵀ: each row of W_k dotted with the query.
        let key_query: Vec<f32> = self.w_key.chunks_exact(d).map(|k_row| crate::score::dot(k_row, &q)).collect();
        let mut logits = logits.to_vec();
        add_attention(&mut logits, &x, &key_query);
        let weights = softmax(&logits);
        let value = row_times(&pool(&weights, &x, d), &self.w_value, d);
        let h: Vec<f32> = pool(&weights, rows, d).iter().zip(&value).map(|(p, v)| p + v).collect();
        let mut hidden = row_times(&layer_norm(&h, &self.norm), &self.w_in, d);
        hidden.iter_mut().zip(&self.b_in).for_each(|(v, b)| *v = (*v + b).max(0.0));
        let ff = row_times(&hidden, &self.w_out, d);
        h.iter().zip(&ff).zip(&self.b_out).map(|((h, f), b)| h + f + b).collect()
    }
}

impl UserTower {
    /// The untrained tower: weights halve every [`HISTORY_HALF_LIFE`]
    /// positions, no projection (what the zero-shot model uses).
    pub fn recency(dims: usize, max_history: usize) -> Self {
        Self {
            dims,
            position_logits: (0..max_history).map(|r| -std::f32::consts::LN_2 * r as f32 / HISTORY_HALF_LIFE).collect(),
            weight: None,
            bias: None,
            query: None,
            block: None,
        }
    }

    /// Number of newest distinct history items read.
    pub fn max_history(&self) -> usize {
        self.position_logits.len()
    }

    /// The newest distinct items of `history` (oldest first), newest first,
    /// at most [`Self::max_history`].
    pub fn recent(&self, history: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::with_capacity(self.max_history().min(history.len()));
        for &h in history.iter().rev() {
            if !out.contains(&h) {
                out.push(h);
                if out.len() == self.max_history() {
                    break;
                }
            }
        }
        out
    }

    /// The normalized user vector from the item vectors of a history
    /// (`item(i)` gives item `i`'s vector; `history` oldest first), or
    /// `None` for an empty history.
    pub fn user_vector(&self, history: &[usize], mut item: impl FnMut(usize, &mut [f32])) -> Option<Vec<f32>> {
        let recent = self.recent(history);
        if recent.is_empty() {
            return None;
        }
        let d = self.dims;
        let mut rows = vec![0f32; recent.len() * d];
        for (&i, row) in recent.iter().zip(rows.chunks_exact_mut(d)) {
            item(i, row);
        }
        let mut logits = self.position_logits[..recent.len()].to_vec();
        if let Some(block) = &self.block {
            let mut user = self.project(block.apply(&rows, &logits, d));
            normalize(&mut user);
            return Some(user);
        }
        if let Some(query) = &self.query {
            add_attention(&mut logits, &rows, &row_times(&rows[..d], query, d));
        }
        let mut user = self.project(pool(&softmax(&logits), &rows, d));
        normalize(&mut user);
        Some(user)
    }

    /// The trained projection of a pooled vector (itself without one).
    fn project(&self, pooled: Vec<f32>) -> Vec<f32> {
        match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => affine(&pooled, w, b.clone()),
            _ => pooled,
        }
    }

    /// Serializes to the `user_tower.bin` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::USER_TOWER);
        let flags = u32::from(self.weight.is_some())
            | (u32::from(self.query.is_some()) << 1)
            | (u32::from(self.block.is_some()) << 2);
        w.u32(self.dims as u32).u32(self.max_history() as u32).u32(flags);
        w.f32s(&self.position_logits).f32s(self.weight.iter().flatten()).f32s(self.bias.iter().flatten());
        w.f32s(self.query.iter().flatten());
        for part in self.block.iter().flat_map(SequenceBlock::parts) {
            w.f32s(part);
        }
        w.finish()
    }

    /// Parses `user_tower.bin`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::USER_TOWER, bytes)?;
        let dims = r.count("dims")?;
        let max_history = r.count("max_history")?;
        let flags = r.u32("flags")?;
        if flags > 7 || flags & 6 == 6 {
            return Err(r.error(format!(
                "flags are {flags}, expected 0 to 7 without both bits 1 and 2 (bit 0 projection, bit 1 attention, bit 2 sequence block)"
            )));
        }
        let (projected, attends, sequence) = (flags & 1 == 1, flags & 2 == 2, flags & 4 == 4);
        if dims == 0 || max_history == 0 {
            return Err(r.error(format!("dims {dims} and max_history {max_history} must both be positive")));
        }
        let position_logits = r.f32s(max_history, "position logits")?;
        let (weight, bias) = if projected {
            let n = r.product(dims, dims, "weights")?;
            (Some(r.f32s(n, "weights")?), Some(r.f32s(dims, "biases")?))
        } else {
            (None, None)
        };
        let query = if attends {
            let n = r.product(dims, dims, "query weights")?;
            Some(r.f32s(n, "query weights")?)
        } else {
            None
        };
        let block = if sequence {
            let mut parts = Vec::with_capacity(SequenceBlock::PARTS.len());
            for (shape, name) in SequenceBlock::part_shapes(dims, max_history).into_iter().zip(SequenceBlock::PARTS) {
                let n = shape.iter().try_fold(1, |n, &side| r.product(n, side, name))?;
                parts.push(r.f32s(n, name)?);
            }
            Some(SequenceBlock::from_parts(parts))
        } else {
            None
        };
        r.finish()?;
        Ok(Self { dims, position_logits, weight, bias, query, block })
    }
}

/// File name of the item tower inside a bundle.
pub const ITEM_TOWER_FILE: &str = codec::ITEM_TOWER.file;

/// The text half of the item tower: `normalize(t · W + b)` maps a
/// pretrained text embedding `t` into the towers' space, so an item nobody
/// has clicked yet gets a vector from its text alone.
///
/// `item_tower.bin` (little-endian): magic `ERIT`, `u32` version 1, `u32`
/// text_dims, `u32` dims, then `text_dims × dims` f32 (row-major) and
/// `dims` f32.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemTower {
    /// Width of the text embedding.
    pub text_dims: usize,
    /// Width of the tower output.
    pub dims: usize,
    /// `text_dims × dims`, row-major.
    pub weight: Vec<f32>,
    /// `dims`.
    pub bias: Vec<f32>,
}

/// A text embedding in the space of a bundle's item vectors: projected by
/// its item tower when it was trained, as it is otherwise (a zero-shot
/// bundle's items are text embeddings).
pub fn item_space(tower: Option<&ItemTower>, text: Vec<f32>) -> Vec<f32> {
    match tower {
        Some(tower) => tower.project(&text),
        None => text,
    }
}

impl ItemTower {
    /// The normalized item vector of a text embedding.
    pub fn project(&self, text: &[f32]) -> Vec<f32> {
        let mut out = affine(text, &self.weight, self.bias.clone());
        normalize(&mut out);
        out
    }

    /// Serializes to the `item_tower.bin` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::ITEM_TOWER);
        w.u32(self.text_dims as u32).u32(self.dims as u32).f32s(&self.weight).f32s(&self.bias);
        w.finish()
    }

    /// Parses `item_tower.bin`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::ITEM_TOWER, bytes)?;
        let text_dims = r.count("text_dims")?;
        let dims = r.count("dims")?;
        if dims == 0 || text_dims == 0 {
            return Err(r.error(format!("text_dims {text_dims} and dims {dims} must both be positive")));
        }
        let n = r.product(text_dims, dims, "weights")?;
        let weight = r.f32s(n, "weights")?;
        let bias = r.f32s(dims, "biases")?;
        r.finish()?;
        Ok(Self { text_dims, dims, weight, bias })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Vec<f32>> {
        vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]]
    }

    #[test]
    fn the_untrained_tower_halves_weights_every_five_positions() {
        let tower = UserTower::recency(2, 50);
        let items = items();
        // Newest (item 1) weighs 1, item 0 five positions older weighs 0.5.
        let history = [0, 2, 2, 2, 2, 2, 1];
        let u = tower.user_vector(&history, |i, out| out.copy_from_slice(&items[i])).unwrap();
        // Distinct, newest first: 1 (w 1), 2 (w 0.87), 0 (w 0.76).
        let w = [1.0f32, 0.5f32.powf(0.2), 0.5f32.powf(0.4)];
        let (x, y) = (w[1] + w[2], w[0] + w[1]);
        let n = (x * x + y * y).sqrt();
        assert!((u[0] - x / n).abs() < 1e-6 && (u[1] - y / n).abs() < 1e-6, "{u:?}");
        assert_eq!(tower.user_vector(&[], |_, _| {}), None);
    }

    #[test]
    fn a_projection_is_applied_after_pooling_and_survives_a_round_trip() {
        let tower = UserTower {
            dims: 2,
            position_logits: vec![0.0, -100.0],
            weight: Some(vec![0.0, 1.0, 1.0, 0.0]), // swap axes
            bias: Some(vec![0.0, 0.0]),
            query: None,
            block: None,
        };
        let items = items();
        let u = tower.user_vector(&[1, 0], |i, out| out.copy_from_slice(&items[i])).unwrap();
        assert!((u[1] - 1.0).abs() < 1e-6 && u[0].abs() < 1e-6, "newest item 0 = (1,0), swapped: {u:?}");
        let back = UserTower::from_bytes(&tower.to_bytes()).unwrap();
        assert_eq!(back, tower);
        let mut bytes = tower.to_bytes();
        bytes.pop();
        assert!(UserTower::from_bytes(&bytes).unwrap_err().to_string().contains(USER_TOWER_FILE));
    }

    #[test]
    fn attention_weighs_history_items_by_how_they_relate_to_the_newest() {
        // Positions alone weigh the two older items alike; attention with
        // Q = 20·I favours the one along the newest item (1, 0).
        let rows = [vec![1.0, 0.0], vec![0.0, 1.0], vec![0.8, 0.6]];
        let mut tower =
            UserTower { dims: 2, position_logits: vec![0.0; 3], weight: None, bias: None, query: None, block: None };
        let plain = tower.user_vector(&[2, 1, 0], |i, out| out.copy_from_slice(&rows[i])).unwrap();
        tower.query = Some(vec![20.0, 0.0, 0.0, 20.0]);
        let attending = tower.user_vector(&[2, 1, 0], |i, out| out.copy_from_slice(&rows[i])).unwrap();
        assert!(attending[0] > plain[0] + 0.05, "{plain:?} -> {attending:?}");
        let back = UserTower::from_bytes(&tower.to_bytes()).unwrap();
        assert_eq!(back, tower);
        // A build that knows no attention would read flags 2 or 3 as bad.
        let mut bytes = tower.to_bytes();
        bytes[16] = 8;
        assert!(UserTower::from_bytes(&bytes).unwrap_err().to_string().contains("flags are 8"));
    }

    /// A block of `d = 3` over 4 positions, every weight made up and non-zero.
    fn made_up_block(seed: usize) -> SequenceBlock {
        let v = |n: usize, k: usize| -> Vec<f32> {
            (0..n).map(|i| (((i + k + seed) * 37 % 17) as f32 - 8.0) / 8.0).collect()
        };
        let shapes = SequenceBlock::part_shapes(3, 4);
        SequenceBlock::from_parts(shapes.iter().enumerate().map(|(k, shape)| v(shape.iter().product(), k)).collect())
    }

    #[test]
    fn a_fresh_sequence_block_is_the_recency_pooling_it_refines() {
        let rows = [vec![1.0, 0.0, 0.5], vec![0.0, 1.0, -0.5], vec![0.3, 0.3, 0.9]];
        let item = |i: usize, out: &mut [f32]| out.copy_from_slice(&rows[i]);
        let pooling = UserTower::recency(3, 4);
        let random = made_up_block(1);
        let fresh = UserTower {
            block: Some(SequenceBlock::identity(3, 4, random.w_query.clone(), random.w_in.clone())),
            ..pooling.clone()
        };
        for history in [&[0, 1, 2][..], &[2, 0], &[1]] {
            let (a, b) = (pooling.user_vector(history, item).unwrap(), fresh.user_vector(history, item).unwrap());
            assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-6), "{history:?}: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_trained_sequence_block_reads_the_order_of_the_history_and_round_trips() {
        let rows = [vec![1.0, 0.0, 0.5], vec![0.0, 1.0, -0.5], vec![0.3, 0.3, 0.9]];
        let item = |i: usize, out: &mut [f32]| out.copy_from_slice(&rows[i]);
        // Equal position logits: pooling alone cannot tell the order apart.
        let pooling = UserTower { position_logits: vec![0.0; 4], ..UserTower::recency(3, 4) };
        let block = UserTower { block: Some(made_up_block(2)), ..pooling.clone() };
        let (a, b) = (pooling.user_vector(&[0, 1, 2], item).unwrap(), pooling.user_vector(&[2, 1, 0], item).unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-6), "pooling ignores order");
        let (a, b) = (block.user_vector(&[0, 1, 2], item).unwrap(), block.user_vector(&[2, 1, 0], item).unwrap());
        assert!(a.iter().zip(&b).any(|(a, b)| (a - b).abs() > 1e-3), "the block reads order: {a:?} vs {b:?}");
        assert!((a.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5, "normalized");

        let bytes = block.to_bytes();
        assert_eq!(UserTower::from_bytes(&bytes).unwrap(), block);
        assert!(
            UserTower::from_bytes(&bytes[..bytes.len() - 4])
                .unwrap_err()
                .to_string()
                .contains("feed-forward out biases")
        );
        // Attention and a block together is not a tower this build makes.
        let mut both = bytes.clone();
        both[16] = 6;
        assert!(UserTower::from_bytes(&both).unwrap_err().to_string().contains("flags are 6"));
    }

    #[test]
    fn the_item_tower_projects_text_and_round_trips() {
        let tower =
            ItemTower { text_dims: 3, dims: 2, weight: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0], bias: vec![0.0, 0.0] };
        let v = tower.project(&[3.0, 4.0, 100.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6, "{v:?}");
        assert_eq!(ItemTower::from_bytes(&tower.to_bytes()).unwrap(), tower);
        assert_eq!(item_space(Some(&tower), vec![3.0, 4.0, 100.0]), v);
        assert_eq!(item_space(None, vec![3.0, 4.0]), [3.0, 4.0], "zero-shot: text space is item space");
        assert!(ItemTower::from_bytes(b"ERUTxxxxxxxxxxxx").is_err());
    }
}
