//! The user tower at serving time: attend over the history's item vectors
//! with weights from their recency position and, when trained with
//! attention, from how each relates to the newest item; pool, project,
//! normalize. Training (`crate::train`) learns exactly these parameters;
//! the functions run them with plain loops, no ML runtime.
//!
//! `user_tower.bin` (little-endian): magic `ERUT`, `u32` version 1,
//! `u32` dims, `u32` max_history, `u32` flags (bit 0: projected, bit 1:
//! attention), then `max_history` f32 position logits (newest first); if
//! projected, `dims × dims` f32 weights (row-major, `u = pooled · W`) and
//! `dims` f32 biases; with attention, `dims × dims` f32 query weights
//! (row-major, `q = newest · Q`). Files without attention read as before;
//! builds before attention refuse files with it (flags 3), naming the
//! field.

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
        if let Some(query) = &self.query {
            let mut q = vec![0f32; d];
            for (x, q_row) in rows[..d].iter().zip(query.chunks_exact(d)) {
                q.iter_mut().zip(q_row).for_each(|(q, w)| *q += x * w);
            }
            let scale = 1.0 / (d as f32).sqrt();
            for (l, row) in logits.iter_mut().zip(rows.chunks_exact(d)) {
                *l += crate::score::dot(&q, row) * scale;
            }
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        let mut pooled = vec![0f32; d];
        for (row, w) in rows.chunks_exact(d).zip(&weights) {
            for (p, r) in pooled.iter_mut().zip(row) {
                *p += w / total * r;
            }
        }
        let mut user = match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => {
                let mut out = b.clone();
                for (p, w_row) in pooled.iter().zip(w.chunks_exact(self.dims)) {
                    for (o, w) in out.iter_mut().zip(w_row) {
                        *o += p * w;
                    }
                }
                out
            }
            _ => pooled,
        };
        normalize(&mut user);
        Some(user)
    }

    /// Serializes to the `user_tower.bin` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::USER_TOWER);
        let flags = u32::from(self.weight.is_some()) | (u32::from(self.query.is_some()) << 1);
        w.u32(self.dims as u32).u32(self.max_history() as u32).u32(flags);
        w.f32s(&self.position_logits).f32s(self.weight.iter().flatten()).f32s(self.bias.iter().flatten());
        w.f32s(self.query.iter().flatten());
        w.finish()
    }

    /// Parses `user_tower.bin`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::USER_TOWER, bytes)?;
        let dims = r.count("dims")?;
        let max_history = r.count("max_history")?;
        let flags = r.u32("flags")?;
        if flags > 3 {
            return Err(r.error(format!("flags are {flags}, expected 0 to 3 (bit 0 projection, bit 1 attention)")));
        }
        let (projected, attends) = (flags & 1 == 1, flags & 2 == 2);
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
        r.finish()?;
        Ok(Self { dims, position_logits, weight, bias, query })
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
        let mut out = self.bias.clone();
        for (t, row) in text.iter().zip(self.weight.chunks_exact(self.dims)) {
            for (o, w) in out.iter_mut().zip(row) {
                *o += t * w;
            }
        }
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
        let mut tower = UserTower { dims: 2, position_logits: vec![0.0; 3], weight: None, bias: None, query: None };
        let plain = tower.user_vector(&[2, 1, 0], |i, out| out.copy_from_slice(&rows[i])).unwrap();
        tower.query = Some(vec![20.0, 0.0, 0.0, 20.0]);
        let attending = tower.user_vector(&[2, 1, 0], |i, out| out.copy_from_slice(&rows[i])).unwrap();
        assert!(attending[0] > plain[0] + 0.05, "{plain:?} -> {attending:?}");
        let back = UserTower::from_bytes(&tower.to_bytes()).unwrap();
        assert_eq!(back, tower);
        // A build that knows no attention would read flags 2 or 3 as bad.
        let mut bytes = tower.to_bytes();
        bytes[16] = 4;
        assert!(UserTower::from_bytes(&bytes).unwrap_err().to_string().contains("flags are 4"));
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
