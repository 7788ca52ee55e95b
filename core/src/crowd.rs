//! What the crowd knows, next to what the towers learned: how many
//! shoppers took each item (popularity) and which items the same shoppers
//! took (item-kNN). Some shops' logs say that the crowd's choice is the
//! best guess (a small catalog, a few hundred shoppers who buy the same
//! bestsellers); `edgerec train` finds out on the validation window how
//! much of each to add to the towers' scores ([`choose_blend`]) and ships
//! what it chose as `crowd.bin`:
//!
//! `score_i = u · e_i + popularity_weight · p_i + neighbors_weight · k_i / max_j k_j`
//!
//! where `p_i = ln(1 + shoppers_i) / ln(1 + max shoppers)` (the median
//! sold item's for an item nobody has taken yet) and `k_i` is the
//! summed co-occurrence similarity of item `i` to the newest
//! [`HISTORY`] history items. Weights of 0 (the usual outcome on shops
//! whose towers learned enough) leave the towers' ranking as it is, and
//! the file holds only the parts its weights use.
//!
//! `crowd.bin` (little-endian): magic `ERCW`, `u32` version 1, `u32` items
//! (in `items.bin` order: catalog sorted by id), `u32` flags (bit 0:
//! popularity counts the recent window only), `f32` popularity_weight,
//! `f32` neighbors_weight; if popularity_weight > 0, the `f32` prior of
//! an item nobody has taken yet (the median sold item's) and `items` f32
//! popularity priors; if neighbors_weight > 0, `items + 1` u32 offsets
//! into the neighbour lists, then as many u32 neighbour items and f32
//! similarities as the last offset says.

use crate::Result;
use crate::codec::{self, Reader, Writer};

/// File name of the crowd prior inside a bundle.
pub const CROWD_FILE: &str = codec::CROWD.file;

/// Neighbours kept per item (the item-kNN baseline's).
pub const NEIGHBORS: usize = 100;

/// Days of the recent-popularity window (the baseline's).
pub const RECENT_DAYS: i64 = 30;

/// Newest history items whose neighbours vote.
pub const HISTORY: usize = 50;

/// Adds to `votes` (one per item) each of the newest [`HISTORY`] items of
/// `history` (oldest first) votes for its neighbours, by similarity: the
/// item-kNN score, for the baseline and the crowd prior alike.
pub fn add_votes(neighbors: &[Vec<(u32, f32)>], history: &[usize], votes: &mut [f32]) {
    for &h in history.iter().rev().take(HISTORY) {
        for &(b, s) in neighbors.get(h).map(Vec::as_slice).unwrap_or_default() {
            if let Some(v) = votes.get_mut(b as usize) {
                *v += s;
            }
        }
    }
}

/// How much of the crowd a bundle adds to its towers' scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Blend {
    /// Weight of the popularity prior (0..1 per item).
    pub popularity: f32,
    /// Popularity counts the shoppers of the recent window only.
    pub recent: bool,
    /// Weight of the neighbour votes (0..1 per item and user).
    pub neighbors: f32,
}

impl Blend {
    /// Whether it adds nothing.
    pub fn is_none(&self) -> bool {
        self.popularity <= 0.0 && self.neighbors <= 0.0
    }

    /// A short description for logs and tables, e.g. `popularity 0.1 (recent) + neighbours 0.05`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.popularity > 0.0 {
            parts.push(format!("popularity {}{}", self.popularity, if self.recent { " (recent)" } else { "" }));
        }
        if self.neighbors > 0.0 {
            parts.push(format!("neighbours {}", self.neighbors));
        }
        if parts.is_empty() { "none".into() } else { parts.join(" + ") }
    }
}

/// The crowd prior a bundle serves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Crowd {
    /// The weights.
    pub blend: Blend,
    /// Items (catalog order) the prior covers.
    items: usize,
    /// Per item in 0..1; empty when the blend's popularity weight is 0.
    popularity: Vec<f32>,
    /// The prior of an item nobody has taken (see [`Crowd::new_item_prior`]).
    unknown: f32,
    /// Per item, its nearest items with similarities; empty when the
    /// blend's neighbour weight is 0.
    neighbors: Vec<Vec<(u32, f32)>>,
}

impl Crowd {
    /// A prior over `items` items from per-item shopper counts and
    /// neighbour lists; keeps (copies) only what `blend` uses.
    pub fn new(blend: Blend, shoppers: &[f32], neighbors: &[Vec<(u32, f32)>]) -> Self {
        let items = shoppers.len();
        let (popularity, unknown) = if blend.popularity > 0.0 {
            let top = shoppers.iter().copied().fold(0f32, f32::max).ln_1p().max(f32::MIN_POSITIVE);
            let prior = |c: f32| c.max(0.0).ln_1p() / top;
            // An item nobody has taken yet (new, or unsold) is taken to be as
            // popular as the median item that sold: absence of evidence is
            // not evidence of absence, and new items keep the footing the
            // towers and the new-item boost give them.
            let mut sold: Vec<f32> = shoppers.iter().filter(|&&c| c > 0.0).map(|&c| prior(c)).collect();
            sold.sort_by(f32::total_cmp);
            let unknown = sold.get(sold.len() / 2).copied().unwrap_or(0.0);
            (shoppers.iter().map(|&c| if c > 0.0 { prior(c) } else { unknown }).collect(), unknown)
        } else {
            (Vec::new(), 0.0)
        };
        let neighbors = if blend.neighbors > 0.0 { neighbors.to_vec() } else { Vec::new() };
        Self { blend, items, popularity, unknown, neighbors }
    }

    /// What the prior adds to an item it does not know (a new item from
    /// `/api/items/cold-start`): the median sold item's popularity.
    pub fn new_item_prior(&self) -> f32 {
        self.blend.popularity * self.unknown
    }

    /// Items the prior covers.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Adds the blend to the towers' `scores` (one per item) of a user
    /// with `history` (oldest first).
    pub fn add(&self, history: &[usize], scores: &mut [f32]) {
        if self.blend.popularity > 0.0 {
            for (s, p) in scores.iter_mut().zip(&self.popularity) {
                *s += self.blend.popularity * p;
            }
        }
        if self.blend.neighbors > 0.0 && !history.is_empty() {
            let mut votes = vec![0f32; scores.len()];
            add_votes(&self.neighbors, history, &mut votes);
            let max = votes.iter().copied().fold(0f32, f32::max);
            if max > 0.0 {
                let w = self.blend.neighbors / max;
                scores.iter_mut().zip(&votes).for_each(|(s, v)| *s += w * v);
            }
        }
    }

    /// The history item (of the newest [`HISTORY`]) whose neighbour list
    /// ties it to `item` most strongly, when the blend uses neighbours.
    pub fn strongest_neighbor(&self, history: &[usize], item: usize) -> Option<usize> {
        if self.blend.neighbors <= 0.0 {
            return None;
        }
        let mut best: Option<(usize, f32)> = None;
        for &h in history.iter().rev().take(HISTORY) {
            let list = self.neighbors.get(h).map(Vec::as_slice).unwrap_or_default();
            if let Some(&(_, s)) = list.iter().find(|n| n.0 as usize == item)
                && best.is_none_or(|(_, b)| s > b)
            {
                best = Some((h, s));
            }
        }
        best.map(|(h, _)| h)
    }

    /// Serializes to the `crowd.bin` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::CROWD);
        w.u32(self.items as u32).u32(u32::from(self.blend.recent));
        w.f32s(&[self.blend.popularity, self.blend.neighbors]);
        if self.blend.popularity > 0.0 {
            w.f32s(&[self.unknown]).f32s(&self.popularity);
        }
        if self.blend.neighbors > 0.0 {
            let mut offsets = vec![0u32];
            for list in &self.neighbors {
                offsets.push(offsets[offsets.len() - 1] + list.len() as u32);
            }
            w.u32s(&offsets);
            let ids: Vec<u32> = self.neighbors.iter().flatten().map(|n| n.0).collect();
            w.u32s(&ids).f32s(self.neighbors.iter().flatten().map(|n| &n.1));
        }
        w.finish()
    }

    /// Parses `crowd.bin`; every neighbour must name one of its items.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::CROWD, bytes)?;
        let items = r.count("items")?;
        let flags = r.u32("flags")?;
        if flags > 1 {
            return Err(r.error(format!("flags are {flags}, expected 0 or 1 (bit 0: recent popularity)")));
        }
        let (popularity_weight, neighbors_weight) = (r.f32("popularity weight")?, r.f32("neighbours weight")?);
        for (w, name) in [(popularity_weight, "popularity"), (neighbors_weight, "neighbours")] {
            if !w.is_finite() || w < 0.0 {
                return Err(r.error(format!("the {name} weight is {w}; it must be a finite number ≥ 0")));
            }
        }
        let blend = Blend { popularity: popularity_weight, recent: flags == 1, neighbors: neighbors_weight };
        let (unknown, popularity) = if popularity_weight > 0.0 {
            (r.f32("unknown item's popularity")?, r.f32s(items, "popularity")?)
        } else {
            (0.0, Vec::new())
        };
        if popularity.iter().chain([&unknown]).any(|p| !p.is_finite()) {
            return Err(r.error("a popularity prior is not a finite number"));
        }
        let mut neighbors = Vec::new();
        if neighbors_weight > 0.0 {
            let offsets = r.u32s(r.sum(items, 1, "offsets")?, "offsets")?;
            if offsets[0] != 0 || offsets.windows(2).any(|w| w[1] < w[0]) {
                return Err(r.error("neighbour offsets must start at 0 and never decrease"));
            }
            let total = offsets[items] as usize;
            let ids = r.u32s(total, "neighbour items")?;
            let sims = r.f32s(total, "neighbour similarities")?;
            if let Some(bad) = ids.iter().find(|&&i| i as usize >= items) {
                return Err(r.error(format!("a neighbour names item {bad}, the prior has {items}")));
            }
            neighbors = offsets
                .windows(2)
                .map(|w| (w[0] as usize..w[1] as usize).map(|j| (ids[j], sims[j])).collect())
                .collect();
        }
        r.finish()?;
        Ok(Self { blend, items, popularity, unknown, neighbors })
    }
}

/// The weights [`choose_blend`] tries for each signal: from a nudge that
/// reorders near-ties of the towers to one that outweighs them (a cosine
/// spans at most 2).
#[cfg(feature = "data")]
pub const WEIGHTS: [f32; 9] = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 3.0];

/// Relative gain on validation a blend must bring over the towers alone
/// before it ships: a validation window of a few hundred shoppers, tried
/// against 160 blends, always finds some blend slightly ahead by chance.
#[cfg(feature = "data")]
pub const MIN_GAIN: f64 = 0.02;

/// What [`choose_blend`] measured.
#[cfg(feature = "data")]
#[derive(Debug, Clone)]
pub struct Choice {
    /// The chosen blend (none unless it beat the towers by [`MIN_GAIN`]).
    pub blend: Blend,
    /// Validation of the towers alone.
    pub towers: crate::eval::Report,
    /// Validation of the chosen blend.
    pub chosen: crate::eval::Report,
    /// Validation of the best blend tried (chosen or not).
    pub best: (Blend, crate::eval::Report),
}

/// Fits the crowd's signals on `data`'s training sequences.
#[cfg(feature = "data")]
pub struct Signals {
    shoppers: Vec<f32>,
    recent_shoppers: Vec<f32>,
    neighbors: Vec<Vec<(u32, f32)>>,
}

#[cfg(feature = "data")]
impl Signals {
    /// Popularity (all-time and of the last `recent_days`) and item-kNN,
    /// as the baselines of `edgerec eval` compute them.
    pub fn fit(data: &crate::eval::Dataset, recent_days: i64) -> Self {
        Self {
            shoppers: crate::eval::Popularity::fit(data).scores().to_vec(),
            recent_shoppers: crate::eval::RecentPopularity::fit(data, recent_days).scores().to_vec(),
            neighbors: crate::eval::ItemKnn::fit(data, NEIGHBORS).into_neighbors(),
        }
    }

    /// The prior of `blend` from these signals.
    pub fn crowd(&self, blend: Blend) -> Crowd {
        let shoppers = if blend.recent { &self.recent_shoppers } else { &self.shoppers };
        Crowd::new(blend, shoppers, &self.neighbors)
    }
}

/// Another scorer with a crowd prior added: a bundle as served.
#[cfg(feature = "data")]
pub struct WithCrowd<S> {
    /// The towers (or any scorer).
    pub inner: S,
    /// What is added to its scores.
    pub crowd: Crowd,
}

#[cfg(feature = "data")]
impl<S: crate::eval::Scorer> crate::eval::Scorer for WithCrowd<S> {
    fn score(&self, case: usize, history: &[crate::eval::ItemIdx], out: &mut [f32]) {
        self.inner.score(case, history, out);
        let history: Vec<usize> = history.iter().map(|&h| h as usize).collect();
        self.crowd.add(&history, out);
    }
}

/// Chooses how much popularity and item-kNN to add to `towers` on `data`'s
/// validation window: every pair of [`WEIGHTS`] (popularity all-time or
/// recent), scored by Recall@20 + NDCG@10; a blend ships only when it
/// beats the towers alone by [`MIN_GAIN`]. `signals` are fitted on the
/// training window.
#[cfg(feature = "data")]
pub fn choose_blend(data: &crate::eval::Dataset, towers: &dyn crate::eval::Scorer, signals: &Signals) -> Choice {
    use crate::eval::{Scorer, evaluate};
    let n = data.items();
    // The towers' scores of each validation case, computed once.
    let mut rows = vec![0f32; data.valid.len() * n];
    for (case, (c, row)) in data.valid.iter().zip(rows.chunks_exact_mut(n.max(1))).enumerate() {
        towers.score(case, &c.history, row);
    }
    struct Precomputed<'a> {
        rows: &'a [f32],
        n: usize,
    }
    impl Scorer for Precomputed<'_> {
        fn score(&self, case: usize, _: &[crate::eval::ItemIdx], out: &mut [f32]) {
            out.copy_from_slice(&self.rows[case * self.n..(case + 1) * self.n]);
        }
    }
    let objective = |r: &crate::eval::Report| r.all.recall_20 + r.all.ndcg_10;
    let score = |blend: Blend| {
        evaluate(
            &WithCrowd { inner: Precomputed { rows: &rows, n }, crowd: signals.crowd(blend) },
            &data.valid,
            &data.cold,
        )
    };
    let towers_report = score(Blend::default());
    let mut best = (Blend::default(), towers_report);
    for recent in [false, true] {
        for &popularity in &WEIGHTS {
            for &neighbors in &WEIGHTS {
                let blend = Blend { popularity, recent, neighbors };
                if blend.is_none() || (recent && popularity == 0.0) {
                    continue;
                }
                let report = score(blend);
                if objective(&report) > objective(&best.1) {
                    best = (blend, report);
                }
            }
        }
    }
    let ships = objective(&best.1) > objective(&towers_report) * (1.0 + MIN_GAIN);
    let (blend, chosen) = if ships { best } else { (Blend::default(), towers_report) };
    Choice { blend, towers: towers_report, chosen, best }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crowd(blend: Blend) -> Crowd {
        // Item 2 is the bestseller; item 0's shoppers also took item 3.
        Crowd::new(blend, &[1.0, 0.0, 7.0, 3.0], &[vec![(3, 0.8), (1, 0.2)], vec![], vec![], vec![(0, 0.8)]])
    }

    #[test]
    fn no_blend_leaves_the_towers_scores_alone_and_stores_no_signal() {
        let c = crowd(Blend::default());
        let mut scores = vec![0.5, 0.4, 0.3, 0.2];
        c.add(&[0], &mut scores);
        assert_eq!(scores, [0.5, 0.4, 0.3, 0.2]);
        assert!(c.to_bytes().len() <= codec::HEADER_BYTES + 16, "only the header, counts and weights");
    }

    #[test]
    fn popularity_lifts_bestsellers_by_its_weight() {
        let c = crowd(Blend { popularity: 0.5, ..Blend::default() });
        let mut scores = vec![0.0; 4];
        c.add(&[], &mut scores);
        assert_eq!(scores[2], 0.5, "the bestseller gets the whole weight");
        assert!(scores[2] > scores[3] && scores[3] > scores[0] && scores[0] > 0.0);
        assert_eq!(scores[1], scores[3], "an item nobody took counts as the median sold one");
        assert_eq!(c.new_item_prior(), scores[3], "and so does a new item");
    }

    #[test]
    fn neighbours_of_the_history_are_lifted_most_for_the_strongest_tie() {
        let c = crowd(Blend { neighbors: 1.0, ..Blend::default() });
        let mut scores = vec![0.0; 4];
        c.add(&[0], &mut scores);
        assert_eq!(scores, [0.0, 0.25, 0.0, 1.0], "votes scaled so the strongest is the weight");
        assert_eq!(c.strongest_neighbor(&[0], 3), Some(0));
        assert_eq!(c.strongest_neighbor(&[0], 2), None, "nobody took 2 with 0");
        let mut untouched = vec![0.1; 4];
        c.add(&[], &mut untouched);
        assert_eq!(untouched, [0.1; 4], "no history, no votes");
    }

    #[test]
    fn the_file_round_trips_and_refuses_damage() {
        for blend in [
            Blend::default(),
            Blend { popularity: 0.2, recent: true, neighbors: 0.0 },
            Blend { popularity: 0.1, recent: false, neighbors: 0.05 },
        ] {
            let c = crowd(blend);
            assert_eq!(Crowd::from_bytes(&c.to_bytes()).unwrap(), c);
        }
        let bytes = crowd(Blend { neighbors: 1.0, ..Blend::default() }).to_bytes();
        let err = Crowd::from_bytes(&bytes[..bytes.len() - 2]).unwrap_err().to_string();
        assert!(err.contains("crowd.bin") && err.contains("truncated"), "{err}");
        // A neighbour that names an item past the end.
        let mut bad = bytes.clone();
        let first_id = codec::HEADER_BYTES + 16 + 5 * 4;
        bad[first_id..first_id + 4].copy_from_slice(&9u32.to_le_bytes());
        let err = Crowd::from_bytes(&bad).unwrap_err().to_string();
        assert!(err.contains("names item 9"), "{err}");
        let mut negative = bytes;
        negative[codec::HEADER_BYTES + 8..codec::HEADER_BYTES + 12].copy_from_slice(&(-1f32).to_le_bytes());
        assert!(Crowd::from_bytes(&negative).unwrap_err().to_string().contains("weight"));
    }
}
