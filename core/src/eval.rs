//! Offline evaluation: full ranking over every catalog item (no sampled
//! negatives) and the baselines a shop would use instead.
//!
//! For each case a model scores all items; the user's history is removed
//! (as `/api/recommend` does by default) and each target's rank is its
//! position among the rest, ties broken by item order. Per case:
//!
//! * Recall@K = targets in the top K / targets
//! * NDCG@10 = Σ_{hits} 1/log2(rank+1) / Σ_{i=1..min(|targets|,10)} 1/log2(i+1)
//! * MRR = 1 / rank of the best-ranked target
//!
//! averaged over cases; coverage@10 is the share of the catalog that
//! appears in at least one top 10. The cold slice repeats the metrics over
//! the cases that have targets without training events, counting only
//! those targets (ranked among all items, as always).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::data::CatalogItem;
use crate::data::split::{Case, Split};
use crate::tower::UserTower;
use crate::{Error, Result};

/// Item indices follow the catalog's order (sorted by id, as in `items.bin`).
pub type ItemIdx = u32;

/// A case with item indices.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedCase {
    /// History, oldest first.
    pub history: Vec<ItemIdx>,
    /// Targets (never in the history).
    pub targets: Vec<ItemIdx>,
}

/// A prepared and split data set with item indices.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The catalog (sorted by id).
    pub catalog: Vec<CatalogItem>,
    /// Item id → index.
    pub ids: HashMap<String, ItemIdx>,
    /// The split.
    pub split: Split,
    /// Validation cases.
    pub valid: Vec<IndexedCase>,
    /// Test cases.
    pub test: Vec<IndexedCase>,
    /// `cold[i]`: item `i` has no training event. The test's cold slice
    /// is that of [`Dataset::with_validation_window`]: no event before
    /// the test window.
    pub cold: Vec<bool>,
}

impl Dataset {
    /// Reads `dir/catalog.csv` and `dir/split/`.
    pub fn load(dir: &Path) -> Result<Self> {
        let catalog = crate::data::read_catalog(dir)?;
        let split = Split::read(dir)?;
        Self::new(catalog, split)
    }

    /// Indexes a catalog and a split. Case items missing from the catalog
    /// are an error (the split and the catalog come from one `prepare`).
    pub fn new(catalog: Vec<CatalogItem>, split: Split) -> Result<Self> {
        let ids: HashMap<String, ItemIdx> =
            catalog.iter().enumerate().map(|(i, c)| (c.item_id.clone(), i as ItemIdx)).collect();
        let lookup = |id: &String| {
            ids.get(id).copied().ok_or_else(|| {
                Error::Data(format!(
                    "split item `{id}` is not in catalog.csv; run `edgerec prepare` and `edgerec split` again"
                ))
            })
        };
        let index = |cases: &[Case]| -> Result<Vec<IndexedCase>> {
            cases
                .iter()
                .map(|c| {
                    Ok(IndexedCase {
                        history: c.history.iter().map(lookup).collect::<Result<_>>()?,
                        targets: c.targets.iter().map(lookup).collect::<Result<_>>()?,
                    })
                })
                .collect()
        };
        let (valid, test) = (index(&split.valid)?, index(&split.test)?);
        for seq in &split.train {
            for item in seq.steps.iter().flat_map(|s| &s.items) {
                lookup(item)?;
            }
        }
        let warm = split.train_items();
        let cold = catalog.iter().map(|c| !warm.contains(c.item_id.as_str())).collect();
        for item in split.valid_window.iter().flatten().flat_map(|s| &s.steps).flat_map(|s| &s.items) {
            lookup(item)?;
        }
        Ok(Self { catalog, ids, split, valid, test, cold })
    }

    /// The data set a model trains on once validation has chosen its
    /// settings: the training and validation windows together, no
    /// validation cases (so training runs the epochs it is given), the
    /// same test. `None` when the split did not keep its validation window.
    pub fn with_validation_window(&self) -> Result<Option<Self>> {
        let Some(train) = self.split.train_and_validation() else { return Ok(None) };
        let mut split = Split { train, valid: Vec::new(), valid_window: Some(Vec::new()), ..self.split.clone() };
        split.finish();
        Self::new(self.catalog.clone(), split).map(Some)
    }

    /// Number of catalog items.
    pub fn items(&self) -> usize {
        self.catalog.len()
    }

    /// Training sequences as item indices: per user, steps oldest first,
    /// each with its unix time when known.
    pub fn train_sequences(&self) -> Vec<Vec<(Option<i64>, Vec<ItemIdx>)>> {
        self.split
            .train
            .iter()
            .map(|s| s.steps.iter().map(|st| (st.ts, st.items.iter().map(|i| self.ids[i]).collect())).collect())
            .collect()
    }
}

/// A model under evaluation: scores every item for one case.
pub trait Scorer: Sync {
    /// Fills `out` (one slot per catalog item) with scores for the case
    /// numbered `case` (its position in the evaluated list) whose history
    /// is `history` (oldest first). Higher is better.
    fn score(&self, case: usize, history: &[ItemIdx], out: &mut [f32]);
}

/// Metrics of one model on one list of cases.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean Recall@10.
    pub recall_10: f64,
    /// Mean Recall@20.
    pub recall_20: f64,
    /// Mean NDCG@10.
    pub ndcg_10: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Cases averaged.
    pub cases: usize,
}

/// Metrics on all cases and on the cold slice, plus coverage.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Report {
    /// Over all cases and targets.
    pub all: Metrics,
    /// Over cases with cold targets, counting only those targets.
    pub cold: Metrics,
    /// Share of the catalog in at least one top 10.
    pub coverage_10: f64,
}

impl Report {
    /// The flat JSON object of `edgerec eval --json` (keys as in API.md).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (prefix, x) in [("", &self.all), ("cold_", &self.cold)] {
            m.insert(format!("{prefix}recall@10"), x.recall_10.into());
            m.insert(format!("{prefix}recall@20"), x.recall_20.into());
            m.insert(format!("{prefix}ndcg@10"), x.ndcg_10.into());
            m.insert(format!("{prefix}mrr"), x.mrr.into());
            m.insert(format!("{prefix}cases"), x.cases.into());
        }
        m.insert("coverage@10".into(), self.coverage_10.into());
        serde_json::Value::Object(m)
    }
}

/// One column of a metrics table: header, value, decimals shown.
pub type Column = (&'static str, fn(&Report) -> f64, usize);

/// The columns of every metrics table (`edgerec eval`'s table on stdout
/// and the HTML report), in order.
pub fn columns() -> [Column; 9] {
    [
        ("Recall@10", |r| r.all.recall_10, 4),
        ("Recall@20", |r| r.all.recall_20, 4),
        ("NDCG@10", |r| r.all.ndcg_10, 4),
        ("MRR", |r| r.all.mrr, 4),
        ("coverage@10", |r| r.coverage_10, 3),
        ("cold Recall@20", |r| r.cold.recall_20, 4),
        ("cold NDCG@10", |r| r.cold.ndcg_10, 4),
        ("cases", |r| r.all.cases as f64, 0),
        ("cold cases", |r| r.cold.cases as f64, 0),
    ]
}

/// Ranking metrics of one case from the 1-based ranks of its targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseMetrics {
    /// Recall@10.
    pub recall_10: f64,
    /// Recall@20.
    pub recall_20: f64,
    /// NDCG@10.
    pub ndcg_10: f64,
    /// Reciprocal rank of the best target.
    pub rr: f64,
}

/// Metrics from target ranks (1-based, full ranking).
pub fn case_metrics(ranks: &[usize]) -> CaseMetrics {
    let n = ranks.len().max(1) as f64;
    let hits = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64;
    let dcg: f64 = ranks.iter().filter(|&&r| r <= 10).map(|&r| 1.0 / ((r + 1) as f64).log2()).sum();
    let idcg: f64 = (1..=ranks.len().min(10)).map(|i| 1.0 / ((i + 1) as f64).log2()).sum();
    CaseMetrics {
        recall_10: hits(10) / n,
        recall_20: hits(20) / n,
        ndcg_10: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        rr: ranks.iter().min().map_or(0.0, |&r| 1.0 / r as f64),
    }
}

/// 1-based rank of each target among the items that are not excluded;
/// ties go to the lower item index.
///
/// A case of the temporal split has dozens of targets, so comparing each
/// with every item (targets × items) dominated training, which validates
/// every epoch. Instead the targets are sorted from the lowest ranked up:
/// an item outranks a prefix of that order, found by binary search, so a
/// case costs items × log(targets).
pub fn target_ranks(scores: &[f32], excluded: &[bool], targets: &[ItemIdx]) -> Vec<usize> {
    // Item `j` (score `s`) outranks a target with key `(st, t)`.
    let outranks = |s: f32, j: usize, (st, t): (f32, usize)| s > st || (s == st && j < t);
    let key = |k: usize| (scores[targets[k] as usize], targets[k] as usize);
    let mut lowest_first: Vec<usize> = (0..targets.len()).collect();
    lowest_first.sort_unstable_by(|&a, &b| {
        let (a, b) = (key(a), key(b));
        if outranks(b.0, b.1, a) {
            std::cmp::Ordering::Less
        } else if outranks(a.0, a.1, b) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let keys: Vec<(f32, usize)> = lowest_first.iter().map(|&k| key(k)).collect();
    // `beating[m]`: how many items outrank exactly the `m` lowest targets.
    let mut beating = vec![0usize; targets.len() + 1];
    for (j, &s) in scores.iter().enumerate() {
        // Most items are below every target: one comparison tells.
        if !excluded[j] && keys.first().is_some_and(|&lowest| outranks(s, j, lowest)) {
            beating[keys.partition_point(|&key| outranks(s, j, key))] += 1;
        }
    }
    // The target at position `p` is outranked by the items that outrank
    // more than `p` targets.
    let mut ranks = vec![0; targets.len()];
    let mut above = 0;
    for (p, &k) in lowest_first.iter().enumerate().rev() {
        above += beating[p + 1];
        ranks[k] = 1 + above;
    }
    ranks
}

/// The top `k` non-excluded items, best first (ties: lower index first).
pub fn top_items(scores: &[f32], excluded: &[bool], k: usize) -> Vec<ItemIdx> {
    let mut idx: Vec<u32> = (0..scores.len() as u32).filter(|&i| !excluded[i as usize]).collect();
    let better = |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b));
    if idx.len() > k {
        idx.select_nth_unstable_by(k, better);
        idx.truncate(k);
    }
    idx.sort_by(better);
    idx
}

/// Evaluates `scorer` on `cases` with full ranking, on all CPU cores.
pub fn evaluate(scorer: &dyn Scorer, cases: &[IndexedCase], cold: &[bool]) -> Report {
    let n_items = cold.len();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(cases.len().max(1));
    let chunk = cases.len().div_ceil(threads.max(1)).max(1);
    struct Partial {
        all: Vec<CaseMetrics>,
        cold: Vec<CaseMetrics>,
        shown: HashSet<ItemIdx>,
    }
    let partials: Vec<Partial> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    let mut p = Partial { all: vec![], cold: vec![], shown: HashSet::new() };
                    let mut scores = vec![0f32; n_items];
                    let mut excluded = vec![false; n_items];
                    for (i, case) in part.iter().enumerate() {
                        scorer.score(c * chunk + i, &case.history, &mut scores);
                        for &h in &case.history {
                            excluded[h as usize] = true;
                        }
                        let ranks = target_ranks(&scores, &excluded, &case.targets);
                        p.all.push(case_metrics(&ranks));
                        let cold_ranks: Vec<usize> = case
                            .targets
                            .iter()
                            .zip(&ranks)
                            .filter(|(t, _)| cold[**t as usize])
                            .map(|(_, r)| *r)
                            .collect();
                        if !cold_ranks.is_empty() {
                            p.cold.push(case_metrics(&cold_ranks));
                        }
                        p.shown.extend(top_items(&scores, &excluded, 10));
                        for &h in &case.history {
                            excluded[h as usize] = false;
                        }
                    }
                    p
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("evaluation thread panicked")).collect()
    });
    let mean = |ms: Vec<&CaseMetrics>| {
        let n = ms.len();
        let avg = |f: fn(&CaseMetrics) -> f64| {
            if n == 0 { 0.0 } else { ms.iter().map(|m| f(m)).fold(0.0, |a, b| a + b) / n as f64 }
        };
        Metrics {
            recall_10: avg(|m| m.recall_10),
            recall_20: avg(|m| m.recall_20),
            ndcg_10: avg(|m| m.ndcg_10),
            mrr: avg(|m| m.rr),
            cases: n,
        }
    };
    let shown: HashSet<ItemIdx> = partials.iter().flat_map(|p| p.shown.iter().copied()).collect();
    Report {
        all: mean(partials.iter().flat_map(|p| &p.all).collect()),
        cold: mean(partials.iter().flat_map(|p| &p.cold).collect()),
        coverage_10: shown.len() as f64 / n_items.max(1) as f64,
    }
}

impl<S: Scorer + ?Sized> Scorer for Box<S> {
    fn score(&self, case: usize, history: &[ItemIdx], out: &mut [f32]) {
        (**self).score(case, history, out);
    }
}

/// Most popular first: distinct training users per item.
pub struct Popularity {
    scores: Vec<f32>,
}

impl Popularity {
    /// Counts distinct users per item in the training sequences.
    pub fn fit(data: &Dataset) -> Self {
        Self { scores: user_counts(data, |_| usize::MAX) }
    }

    /// Distinct training users per item.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Scorer for Popularity {
    fn score(&self, _: usize, _: &[ItemIdx], out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }
}

fn user_counts(data: &Dataset, keep: impl Fn(&[(Option<i64>, Vec<ItemIdx>)]) -> usize) -> Vec<f32> {
    let mut scores = vec![0f32; data.items()];
    for seq in data.train_sequences() {
        let from = seq.len() - keep(&seq).min(seq.len());
        let items: HashSet<ItemIdx> = seq[from..].iter().flat_map(|s| s.1.iter().copied()).collect();
        for i in items {
            scores[i as usize] += 1.0;
        }
    }
    scores
}

/// Most popular recently: distinct users per item in the last
/// `window_days` of training (each user's last step when there are no
/// times), ties broken by all-time popularity.
pub struct RecentPopularity {
    scores: Vec<f32>,
}

impl RecentPopularity {
    /// Counts distinct users per item in the recent window.
    pub fn fit(data: &Dataset, window_days: i64) -> Self {
        let last = data.train_sequences().iter().flatten().filter_map(|s| s.0).max();
        let recent = match last {
            Some(last) => {
                let from = last - Duration::days(window_days).num_seconds();
                user_counts(data, |seq| seq.iter().filter(|s| s.0.is_some_and(|t| t > from)).count())
            }
            None => user_counts(data, |_| 1),
        };
        let all = user_counts(data, |_| usize::MAX);
        let top = all.iter().copied().fold(1f32, f32::max);
        Self { scores: recent.iter().zip(&all).map(|(r, a)| r + 0.5 * a / top).collect() }
    }

    /// Recent distinct users per item (plus the all-time tie-break).
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Scorer for RecentPopularity {
    fn score(&self, _: usize, _: &[ItemIdx], out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }
}

/// Item-to-item co-occurrence (item-kNN): cosine similarity of items over
/// the users who took them; a user's score for an item is the summed
/// similarity to their newest [`crate::crowd::HISTORY`] history items.
pub struct ItemKnn {
    neighbors: Vec<Vec<(ItemIdx, f32)>>,
}

impl ItemKnn {
    /// Builds the similarity lists, keeping each item's `k` nearest.
    pub fn fit(data: &Dataset, k: usize) -> Self {
        let n = data.items();
        let mut counts = vec![0f32; n];
        let mut co: Vec<HashMap<ItemIdx, f32>> = vec![HashMap::new(); n];
        for seq in data.train_sequences() {
            // Each user's newest 200 distinct items: bulk buyers would
            // otherwise dominate (and cost quadratic time).
            let mut items: Vec<ItemIdx> = Vec::new();
            for step in seq.iter().rev() {
                for &i in &step.1 {
                    if items.len() < 200 && !items.contains(&i) {
                        items.push(i);
                    }
                }
            }
            for &a in &items {
                counts[a as usize] += 1.0;
                for &b in &items {
                    if a != b {
                        *co[a as usize].entry(b).or_default() += 1.0;
                    }
                }
            }
        }
        let neighbors = co
            .into_iter()
            .enumerate()
            .map(|(a, row)| {
                let mut list: Vec<(ItemIdx, f32)> =
                    row.into_iter().map(|(b, c)| (b, c / (counts[a] * counts[b as usize]).sqrt())).collect();
                list.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                list.truncate(k);
                list
            })
            .collect();
        Self { neighbors }
    }

    /// Each item's nearest items with their similarities.
    pub fn into_neighbors(self) -> Vec<Vec<(ItemIdx, f32)>> {
        self.neighbors
    }
}

impl Scorer for ItemKnn {
    fn score(&self, _: usize, history: &[ItemIdx], out: &mut [f32]) {
        out.fill(0.0);
        let history: Vec<usize> = history.iter().map(|&h| h as usize).collect();
        crate::crowd::add_votes(&self.neighbors, &history, out);
    }
}

/// Dot products of a user vector with item vectors: the zero-shot model
/// (text embeddings, untrained recency tower) and the trained two-tower
/// model (tower outputs) alike.
pub struct Embeddings {
    /// Row-major `items × dims` item vectors.
    pub items: Vec<f32>,
    /// The user tower.
    pub tower: UserTower,
}

impl Scorer for Embeddings {
    fn score(&self, _: usize, history: &[ItemIdx], out: &mut [f32]) {
        let d = self.tower.dims;
        let history: Vec<usize> = history.iter().map(|&h| h as usize).collect();
        let user = self.tower.user_vector(&history, |i, row| row.copy_from_slice(&self.items[i * d..(i + 1) * d]));
        match user {
            None => out.fill(0.0),
            Some(u) => {
                for (o, row) in out.iter_mut().zip(self.items.chunks_exact(d)) {
                    *o = crate::score::dot(&u, row);
                }
            }
        }
    }
}

/// Another scorer with `boost` added to the items in `new` (items without
/// training events): the exploration boost of `/api/recommend` for items
/// from `/api/items/cold-start`.
pub struct Boosted<S> {
    /// The model being boosted.
    pub inner: S,
    /// `new[i]`: item `i` gets the boost.
    pub new: Vec<bool>,
    /// Added to their scores.
    pub boost: f32,
}

impl<S: Scorer> Scorer for Boosted<S> {
    fn score(&self, case: usize, history: &[ItemIdx], out: &mut [f32]) {
        self.inner.score(case, history, out);
        for (o, &n) in out.iter_mut().zip(&self.new) {
            if n {
                *o += self.boost;
            }
        }
    }
}

/// Uniformly random scores, seeded per case: the floor every model must clear.
pub struct Random {
    /// Seed of the whole run.
    pub seed: u64,
}

impl Scorer for Random {
    fn score(&self, case: usize, _: &[ItemIdx], out: &mut [f32]) {
        use rand::{Rng, SeedableRng};
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ (case as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        out.iter_mut().for_each(|o| *o = rng.random());
    }
}

/// Scores computed elsewhere (a peer library): a row-major `cases × items`
/// matrix of little-endian f32 in test-case and catalog order.
pub struct ScoreMatrix {
    scores: Vec<f32>,
    items: usize,
}

impl ScoreMatrix {
    /// Reads a score file written for `cases` cases over `items` items.
    pub fn read(path: &Path, cases: usize, items: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if bytes.len() != cases * items * 4 {
            return Err(Error::Data(format!(
                "{}: {} bytes, expected {cases} cases × {items} items × 4; export the split again and rerun the peer",
                path.display(),
                bytes.len()
            )));
        }
        let scores = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Ok(Self { scores, items })
    }
}

impl Scorer for ScoreMatrix {
    fn score(&self, case: usize, _: &[ItemIdx], out: &mut [f32]) {
        let row = &self.scores[case * self.items..(case + 1) * self.items];
        for (o, &s) in out.iter_mut().zip(row) {
            *o = if s.is_nan() { f32::NEG_INFINITY } else { s };
        }
    }
}

/// Writes the split for peer libraries: `items.tsv` (index, id, text),
/// `train.tsv` (user index, item index, steps with the item; the training
/// and validation windows, everything before the test window, as
/// `edgerec train` learns from once validation has chosen its settings),
/// `users.tsv`, and `valid.jsonl`/`test.jsonl` (`{"user", "history",
/// "targets"}` with indices; the user index is -1 for users without
/// training data). Returns the number of training users written.
pub fn export(data: &Dataset, out: &Path) -> Result<usize> {
    use std::fmt::Write as _;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let write =
        |name: &str, text: String| std::fs::write(out.join(name), text).map_err(|e| Error::io(out.join(name), e));
    let mut items = String::new();
    for (i, c) in data.catalog.iter().enumerate() {
        let _ = writeln!(items, "{i}\t{}\t{}", c.item_id, c.text.replace(['\t', '\n'], " "));
    }
    write("items.tsv", items)?;
    let mut users = String::new();
    let mut train = String::new();
    let mut user_idx: HashMap<&str, usize> = HashMap::new();
    let before_test = data.with_validation_window()?;
    let fit = before_test.as_ref().unwrap_or(data);
    for (u, (seq, raw)) in fit.train_sequences().iter().zip(&fit.split.train).enumerate() {
        user_idx.insert(raw.user.as_str(), u);
        let _ = writeln!(users, "{u}\t{}", raw.user);
        let mut counts: BTreeMap<ItemIdx, u32> = BTreeMap::new();
        for i in seq.iter().flat_map(|s| &s.1) {
            *counts.entry(*i).or_default() += 1;
        }
        for (i, c) in counts {
            let _ = writeln!(train, "{u}\t{i}\t{c}");
        }
    }
    write("users.tsv", users)?;
    write("train.tsv", train)?;
    for (name, cases, raw) in
        [("valid.jsonl", &data.valid, &data.split.valid), ("test.jsonl", &data.test, &data.split.test)]
    {
        let mut text = String::new();
        for (c, r) in cases.iter().zip(raw.iter()) {
            let user = user_idx.get(r.user.as_str()).map_or(-1, |&u| u as i64);
            let line = serde_json::json!({"user": user, "history": c.history, "targets": c.targets});
            let _ = writeln!(text, "{line}");
        }
        write(name, text)?;
    }
    Ok(user_idx.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        // Two targets at ranks 1 and 3.
        let m = case_metrics(&[1, 3]);
        assert!(close(m.recall_10, 1.0) && close(m.recall_20, 1.0));
        assert!(close(m.ndcg_10, (1.0 + 0.5) / (1.0 + 1.0 / 3f64.log2())), "{}", m.ndcg_10);
        assert!(close(m.rr, 1.0));
        // One target at rank 15: outside the top 10, inside the top 20.
        let m = case_metrics(&[15]);
        assert!(close(m.recall_10, 0.0) && close(m.recall_20, 1.0) && close(m.ndcg_10, 0.0));
        assert!(close(m.rr, 1.0 / 15.0));
        // Three targets, one hit at rank 2: recall 1/3, NDCG (1/log2 3)/(1 + 1/log2 3 + 1/2).
        let m = case_metrics(&[2, 40, 50]);
        assert!(close(m.recall_10, 1.0 / 3.0));
        assert!(close(m.ndcg_10, (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2() + 0.5)));
        assert!(close(m.rr, 0.5));
    }

    #[test]
    fn ranks_skip_the_history_and_break_ties_by_index() {
        let scores = [0.9, 0.5, 0.8, 0.5, 0.1];
        let excluded = [true, false, false, false, false];
        // Item 0 is history: item 2 ranks first; items 1 and 3 tie, 1 wins.
        assert_eq!(target_ranks(&scores, &excluded, &[2, 1, 3, 4]), [1, 2, 3, 4]);
        assert_eq!(top_items(&scores, &excluded, 2), [2, 1]);
    }

    #[test]
    fn ranks_are_the_count_of_better_items_for_any_scores_ties_and_history() {
        use rand::{Rng, SeedableRng};
        // The definition, item by item.
        let counted = |scores: &[f32], excluded: &[bool], targets: &[ItemIdx]| -> Vec<usize> {
            let rank = |t: usize| {
                let better = |j: usize| scores[j] > scores[t] || (scores[j] == scores[t] && j < t);
                1 + (0..scores.len()).filter(|&j| !excluded[j] && better(j)).count()
            };
            targets.iter().map(|&t| rank(t as usize)).collect()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for round in 0..300 {
            let n = rng.random_range(1..60);
            // Few distinct values half the time: popularity scores tie a lot.
            let levels = if round % 2 == 0 { 4 } else { 1_000_000 };
            let scores: Vec<f32> = (0..n).map(|_| rng.random_range(0..levels) as f32 / levels as f32).collect();
            let excluded: Vec<bool> = (0..n).map(|_| rng.random_bool(0.2)).collect();
            // Distinct targets, some of them in the history.
            let mut targets: Vec<ItemIdx> = (0..n as ItemIdx).filter(|_| rng.random_bool(0.4)).collect();
            targets.reverse();
            assert_eq!(
                target_ranks(&scores, &excluded, &targets),
                counted(&scores, &excluded, &targets),
                "{scores:?} {excluded:?} {targets:?}"
            );
        }
    }

    struct Fixed(Vec<Vec<f32>>);
    impl Scorer for Fixed {
        fn score(&self, case: usize, _: &[ItemIdx], out: &mut [f32]) {
            out.copy_from_slice(&self.0[case]);
        }
    }

    #[test]
    fn a_boost_lifts_new_items_and_random_is_seeded() {
        struct Flat;
        impl Scorer for Flat {
            fn score(&self, _: usize, _: &[ItemIdx], out: &mut [f32]) {
                out.fill(0.5);
            }
        }
        let boosted = Boosted { inner: Flat, new: vec![false, true, false], boost: 0.25 };
        let mut out = [0f32; 3];
        boosted.score(0, &[], &mut out);
        assert_eq!(out, [0.5, 0.75, 0.5]);
        let (mut a, mut b, mut c) = ([0f32; 50], [0f32; 50], [0f32; 50]);
        Random { seed: 1 }.score(3, &[], &mut a);
        Random { seed: 1 }.score(3, &[], &mut b);
        Random { seed: 1 }.score(4, &[], &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn evaluation_averages_cases_and_slices_cold_targets() {
        let cases = vec![
            IndexedCase { history: vec![0], targets: vec![1] },    // rank 1
            IndexedCase { history: vec![1], targets: vec![2, 3] }, // ranks 2 and 3; 3 is cold
        ];
        let scorer = Fixed(vec![vec![0.0, 1.0, 0.5, 0.2], vec![0.9, 9.0, 0.5, 0.4]]);
        let r = evaluate(&scorer, &cases, &[false, false, false, true]);
        assert_eq!((r.all.cases, r.cold.cases), (2, 1));
        assert!(close(r.all.mrr, (1.0 + 0.5) / 2.0));
        assert!(close(r.cold.mrr, 1.0 / 3.0));
        assert!(close(r.all.recall_10, 1.0));
        // Top 10s: {1, 2, 3} and {0, 2, 3}: all four items shown.
        assert!(close(r.coverage_10, 1.0));
        let json = r.to_json();
        assert_eq!(json["cold_cases"], 1);
        assert!(json.get("recall@20").is_some() && json.get("ndcg@10").is_some());
    }

    #[test]
    fn the_data_before_the_test_adds_the_validation_window_to_training() {
        let day = |d: i64| chrono::DateTime::from_timestamp(d * 86_400, 0).unwrap();
        let ev = |user: &str, item: &str, d: i64| crate::data::Event {
            user_id: user.into(),
            item_id: item.into(),
            ts: Some(day(d)),
            event: "purchase".into(),
            quantity: 1.0,
            price: None,
        };
        // `c` first sells in the validation window, `d` in the test window.
        let events = vec![
            ev("u1", "a", 1),
            ev("u2", "a", 2),
            ev("u1", "b", 3),
            ev("u2", "c", 8),
            ev("u3", "c", 9),
            ev("u1", "d", 12),
        ];
        let catalog = ["a", "b", "c", "d"]
            .map(|id| CatalogItem { item_id: id.into(), title: id.into(), text: id.into(), first_seen: None })
            .to_vec();
        let data = Dataset::new(catalog, crate::data::split::temporal(&events, day(7), day(10))).unwrap();
        assert_eq!(data.cold, [false, false, true, true]);
        assert_eq!(data.valid.len(), 1);
        let before_test = data.with_validation_window().unwrap().unwrap();
        assert_eq!(before_test.cold, [false, false, false, true], "only d is new at test time");
        assert!(before_test.valid.is_empty(), "nothing left to validate on: training runs the epochs it is given");
        assert_eq!(before_test.test, data.test);
        let sequences = before_test.train_sequences();
        assert_eq!(sequences.len(), 3, "u3 is seen only in the validation window");
        assert_eq!(sequences[1].iter().map(|(_, items)| items.clone()).collect::<Vec<_>>(), [vec![0], vec![2]]);
    }
}
