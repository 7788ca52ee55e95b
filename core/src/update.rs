//! One update of a serving model: learn from the events since it, judge
//! the result on the newest events it never saw, and say whether it may
//! serve.
//!
//! ```text
//!   events:  ───── older (replayed) ─────┬──── new ────┬── gate window ──┐
//!                                 parent's events_to   gate_from        newest
//! ```
//!
//! - **Incremental** ([`Kind::Incremental`]): the towers start from the
//!   serving version's weights and train a few epochs on the examples of
//!   the new events plus a random replay of older ones.
//! - **Full** ([`Kind::Full`]): the towers start from scratch and train on
//!   everything before the gate window (the baseline an incremental update
//!   is measured against).
//! - **Gate**: the candidate and the serving version (and any `compare`
//!   versions) rank the whole catalog for every user active in the gate
//!   window, from their history before it; the candidate may serve when
//!   its metric is at least the serving version's × (1 − margin).
//!
//! No I/O here: the caller reads events, encodes the catalog, writes the
//! bundle and the version log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crowd::{Blend, Crowd, RECENT_DAYS, Signals, WithCrowd};
use crate::data::split::temporal;
use crate::data::{CatalogItem, Event};
use crate::eval::{Dataset, Embeddings, Report, evaluate};
use crate::index::ItemIndex;
use crate::tower::{ItemTower, UserTower};
use crate::train::{Progress, Selected, Start, TrainConfig, Trained, train_from};
use crate::{Error, Result};

/// How the candidate is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Warm start, new events plus replay.
    Incremental,
    /// From scratch, on every event before the gate window.
    Full,
}

impl Kind {
    /// `incremental` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Incremental => "incremental",
            Kind::Full => "full",
        }
    }
}

/// The metric the gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GateMetric {
    /// Recall@20 over the gate window's cases.
    #[default]
    #[serde(rename = "recall@20")]
    Recall20,
    /// NDCG@10.
    #[serde(rename = "ndcg@10")]
    Ndcg10,
}

impl GateMetric {
    /// Parses `recall@20` or `ndcg@10`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "recall@20" => Ok(Self::Recall20),
            "ndcg@10" => Ok(Self::Ndcg10),
            other => Err(Error::Train(format!("gate metric `{other}`: expected recall@20 or ndcg@10"))),
        }
    }

    /// The metric's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recall20 => "recall@20",
            Self::Ndcg10 => "ndcg@10",
        }
    }

    /// Its value in `report`.
    pub fn of(self, report: &Report) -> f64 {
        match self {
            Self::Recall20 => report.all.recall_20,
            Self::Ndcg10 => report.all.ndcg_10,
        }
    }
}

/// Update settings (`edgerec update` flags, `[models.<name>]` in a private host's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    /// Incremental or full.
    pub kind: Kind,
    /// Length of the held-out gate window, days before the newest event.
    pub gate_days: f64,
    /// The metric the gate compares.
    pub gate_metric: GateMetric,
    /// How much worse than the serving version the candidate may be, as a
    /// share of the serving version's metric (0.01: 1%).
    pub gate_margin: f64,
    /// Older examples replayed per new one (incremental).
    pub replay: f64,
    /// Training settings; `epochs` are the update's (no early stopping:
    /// the gate judges).
    pub train: TrainConfig,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        Self {
            kind: Kind::Incremental,
            gate_days: 7.0,
            gate_metric: GateMetric::Recall20,
            gate_margin: 0.01,
            replay: 1.0,
            train: update_train_config(2),
        }
    }
}

/// What an update trains: text towers (set `id_embeddings` to update a
/// hybrid version: its identities start from the vectors it serves), with
/// every example weighed alike: the replayed older examples are there to
/// be remembered.
pub fn update_train_config(epochs: usize) -> TrainConfig {
    TrainConfig { epochs, id_embeddings: false, half_life_days: 0.0, ..TrainConfig::default() }
}

/// A version's towers.
#[derive(Debug, Clone, Copy)]
pub struct Towers<'a> {
    /// User tower.
    pub user: &'a UserTower,
    /// Item tower.
    pub item: &'a ItemTower,
    /// The item vectors it serves (`items.bin`), when they are not simply
    /// its item tower's: a hybrid version's carry each item's identity.
    pub served: Option<&'a ItemIndex>,
    /// How much of the crowd it adds to its towers' scores (`crowd.bin`);
    /// its popularity and neighbours are counted afresh on the update's log.
    pub crowd: Blend,
}

/// What one update needs.
pub struct Inputs<'a> {
    /// The catalog to train and rank over (new items folded in).
    pub catalog: Vec<CatalogItem>,
    /// One pretrained text embedding per catalog item, row-major.
    pub text: &'a [f32],
    /// Width of `text`'s rows.
    pub text_dims: usize,
    /// Every event, each with its time.
    pub events: &'a [Event],
    /// The serving version's towers and name.
    pub serving: (&'a str, Towers<'a>),
    /// Where the serving version's training events ended: newer ones are new.
    pub since: DateTime<Utc>,
    /// Other versions to score on the same gate window, by name.
    pub compare: Vec<(&'a str, Towers<'a>)>,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the candidate may serve.
    pub promote: bool,
    /// The comparison, in words.
    pub reason: String,
}

/// What an update did.
pub struct Outcome {
    /// The candidate.
    pub trained: Trained,
    /// Examples learned from.
    pub selected: Selected,
    /// New events from...
    pub events_from: DateTime<Utc>,
    /// ...to the gate window's start.
    pub gate_from: DateTime<Utc>,
    /// The newest event.
    pub gate_to: DateTime<Utc>,
    /// Cases in the gate window.
    pub gate_cases: usize,
    /// Scores on the gate window: `candidate`, the serving version's name, and each compared one.
    pub scores: BTreeMap<String, Report>,
    /// The verdict.
    pub decision: Decision,
    /// The candidate's crowd prior (the serving version's blend, counted on
    /// the events before the gate window); `None` when it adds none.
    pub crowd: Option<Crowd>,
}

/// The catalog's vectors as a version serves them: from its `items.bin`
/// where the item is there, through its item tower otherwise (new items).
pub fn item_vectors(towers: &Towers<'_>, catalog: &[CatalogItem], text: &[f32], text_dims: usize) -> Vec<f32> {
    catalog
        .iter()
        .zip(text.chunks_exact(text_dims))
        .flat_map(|(c, t)| match towers.served.and_then(|index| index.find(&c.item_id).map(|i| (index, i))) {
            Some((index, i)) => index.embedding(i),
            None => towers.item.project(t),
        })
        .collect()
}

/// Runs one update (see the module docs).
pub fn run(inputs: Inputs<'_>, config: &UpdateConfig, progress: impl FnMut(Progress)) -> Result<Outcome> {
    if !(0.0..1.0).contains(&config.gate_margin) {
        return Err(Error::Train(format!("gate margin {}: expected a share in [0, 1)", config.gate_margin)));
    }
    if config.gate_days.is_nan() || config.gate_days <= 0.0 {
        return Err(Error::Train(format!("gate window of {} days: expected more than 0", config.gate_days)));
    }
    let Some(newest) = inputs.events.iter().filter_map(|e| e.ts).max() else {
        return Err(Error::Train("no events with times to update from".into()));
    };
    let gate_from = newest - chrono::Duration::seconds((config.gate_days * 86_400.0) as i64);
    if gate_from <= inputs.since {
        return Err(Error::Train(format!(
            "no new events to learn from: the newest is {newest}, and the {} day gate window reaches back past \
             the serving version's end ({})",
            config.gate_days, inputs.since
        )));
    }
    // Train before the gate window, judge on it. The window's cases are
    // users with history before it and items they took in it.
    let split = temporal(inputs.events, gate_from, gate_from);
    let judged = Dataset::new(inputs.catalog, split)?;
    if judged.test.is_empty() {
        return Err(Error::Train(format!(
            "the gate window ({gate_from} to {newest}) has no user with earlier history; widen gate_days"
        )));
    }
    let mut learn = judged.clone();
    learn.valid.clear();
    learn.split.valid.clear();
    let (serving_name, serving) = inputs.serving;
    let serving_vectors = item_vectors(&serving, &judged.catalog, inputs.text, inputs.text_dims);
    let start = match config.kind {
        Kind::Incremental => Start {
            towers: Some((serving.user, serving.item)),
            since: Some(inputs.since.timestamp()),
            replay: config.replay,
            item_vectors: Some(&serving_vectors),
        },
        Kind::Full => Start::default(),
    };
    let (trained, selected) = train_from(&learn, inputs.text, inputs.text_dims, &config.train, start, progress)?;

    // Every version is judged as it serves, its crowd prior counted on
    // what the candidate learned from.
    let blends = || std::iter::once(serving.crowd).chain(inputs.compare.iter().map(|(_, t)| t.crowd));
    let signals = blends().any(|b| !b.is_none()).then(|| Signals::fit(&learn, RECENT_DAYS));
    let crowd_of = |blend: Blend| signals.as_ref().filter(|_| !blend.is_none()).map(|s| s.crowd(blend));
    let score = |items: Vec<f32>, tower: UserTower, blend: Blend| {
        let towers = Embeddings { items, tower };
        match crowd_of(blend) {
            Some(crowd) => evaluate(&WithCrowd { inner: towers, crowd }, &judged.test, &judged.cold),
            None => evaluate(&towers, &judged.test, &judged.cold),
        }
    };
    let mut scores = BTreeMap::new();
    let candidate = score(trained.item_vectors.clone(), trained.user_tower.clone(), serving.crowd);
    let current = score(serving_vectors, serving.user.clone(), serving.crowd);
    for (name, towers) in &inputs.compare {
        let vectors = item_vectors(towers, &judged.catalog, inputs.text, inputs.text_dims);
        scores.insert(name.to_string(), score(vectors, towers.user.clone(), towers.crowd));
    }
    let crowd = crowd_of(serving.crowd);
    let decision = gate(config, config.gate_metric.of(&candidate), config.gate_metric.of(&current), serving_name);
    scores.insert("candidate".into(), candidate);
    scores.insert(serving_name.to_string(), current);
    Ok(Outcome {
        trained,
        selected,
        events_from: inputs.since,
        gate_from,
        gate_to: newest,
        gate_cases: judged.test.len(),
        scores,
        decision,
        crowd,
    })
}

/// The gate: `candidate` may serve when it is at least `serving × (1 − margin)`.
pub fn gate(config: &UpdateConfig, candidate: f64, serving: f64, serving_name: &str) -> Decision {
    let floor = serving * (1.0 - config.gate_margin);
    let metric = config.gate_metric.as_str();
    let promote = candidate >= floor;
    let verdict = if promote { "≥" } else { "<" };
    Decision {
        promote,
        reason: format!(
            "{metric} {candidate:.4} {verdict} {floor:.4} (version {serving_name}'s {serving:.4} × (1 − {}))",
            config.gate_margin
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const D: usize = 32;

    /// Items `i` and `(i + 50) % 100` are bought together in order; text is noise.
    fn shop(days: i64, seed: u64, partners: bool) -> (Vec<CatalogItem>, Vec<f32>, Vec<Event>) {
        let n = 100;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let catalog = crate::train::tests::numbered_catalog(n);
        let text: Vec<f32> = (0..n * D).map(|_| rng.random::<f32>() - 0.5).collect();
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut events = Vec::new();
        for u in 0..1500 {
            let day = rng.random_range(0..days);
            let a = rng.random_range(0..n);
            let b = if partners { (a + 50) % n } else { rng.random_range(0..n) };
            for (k, item) in [a, b].into_iter().enumerate() {
                events.push(Event {
                    user_id: format!("u{u}"),
                    item_id: format!("i{item:02}"),
                    ts: Some(t0 + chrono::Duration::days(day) + chrono::Duration::hours(k as i64)),
                    event: "purchase".into(),
                    quantity: 1.0,
                    price: None,
                });
            }
        }
        crate::data::sort_events(&mut events);
        (catalog, text, events)
    }

    fn config() -> UpdateConfig {
        UpdateConfig {
            train: TrainConfig { dims: D, batch_size: 64, epochs: 6, learning_rate: 2e-2, ..TrainConfig::default() },
            gate_days: 5.0,
            ..UpdateConfig::default()
        }
    }

    fn zero_shot() -> (UserTower, ItemTower) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let item = ItemTower {
            text_dims: D,
            dims: D,
            weight: (0..D * D).map(|_| rng.random::<f32>() - 0.5).collect(),
            bias: vec![0.0; D],
        };
        (UserTower::recency(D, 50), item)
    }

    fn inputs<'a>(
        shop: &'a (Vec<CatalogItem>, Vec<f32>, Vec<Event>),
        serving: Towers<'a>,
        since_day: i64,
    ) -> Inputs<'a> {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        Inputs {
            catalog: shop.0.clone(),
            text: &shop.1,
            text_dims: D,
            events: &shop.2,
            serving: ("1", serving),
            since: t0 + chrono::Duration::days(since_day),
            compare: vec![],
        }
    }

    #[test]
    fn an_update_on_informative_events_learns_and_passes_the_gate() {
        let data = shop(30, 3, true);
        let (user, item) = zero_shot();
        let outcome = run(
            inputs(&data, Towers { user: &user, item: &item, served: None, crowd: Blend::default() }, 10),
            &config(),
            |_| {},
        )
        .unwrap();
        let (candidate, serving) = (outcome.scores["candidate"].all.recall_20, outcome.scores["1"].all.recall_20);
        assert!(candidate > serving + 0.2, "candidate {candidate} vs serving {serving}");
        assert!(outcome.decision.promote, "{}", outcome.decision.reason);
        assert!(outcome.selected.new > 0 && outcome.selected.replayed > 0, "{:?}", outcome.selected);
        assert!(outcome.gate_cases > 0 && outcome.gate_from > outcome.events_from);
    }

    #[test]
    fn a_serving_crowd_blend_carries_on_counted_on_the_updates_log() {
        let data = shop(30, 3, true);
        let (user, item) = zero_shot();
        let blend = Blend { popularity: 0.2, recent: false, neighbors: 0.5 };
        let without = Towers { user: &user, item: &item, served: None, crowd: Blend::default() };
        let plain = run(inputs(&data, without, 10), &config(), |_| {}).unwrap();
        assert!(plain.crowd.is_none(), "no blend, no prior");
        let with = Towers { user: &user, item: &item, served: None, crowd: blend };
        let outcome = run(inputs(&data, with, 10), &config(), |_| {}).unwrap();
        let crowd = outcome.crowd.expect("the serving version's blend carries on");
        assert_eq!((crowd.blend, crowd.items()), (blend, data.0.len()));
        // Both versions are judged with the prior: the serving one scores
        // differently than its towers alone.
        assert_ne!(outcome.scores["1"].all, plain.scores["1"].all);
    }

    #[test]
    fn an_update_on_noise_does_not_pass_a_gate_it_would_hurt() {
        // The serving version learned the partners; new events are noise,
        // and a high learning rate with no replay forgets what it knew.
        let good = shop(30, 3, true);
        let (user, item) = zero_shot();
        let learned = run(
            inputs(&good, Towers { user: &user, item: &item, served: None, crowd: Blend::default() }, 10),
            &config(),
            |_| {},
        )
        .unwrap();
        let mut noise = shop(30, 4, false);
        // Keep the gate window informative: the last 5 days come from the real pattern.
        let cut = noise.2[0].ts.unwrap() + chrono::Duration::days(24);
        noise.2.retain(|e| e.ts.unwrap() < cut);
        noise.2.extend(good.2.iter().filter(|e| e.ts.unwrap() >= cut).cloned());
        crate::data::sort_events(&mut noise.2);
        let serving = Towers {
            user: &learned.trained.user_tower,
            item: &learned.trained.item_tower,
            served: None,
            crowd: Blend::default(),
        };
        let bad = UpdateConfig {
            replay: 0.0,
            train: TrainConfig { learning_rate: 0.1, epochs: 8, ..config().train },
            ..config()
        };
        let outcome = run(inputs(&noise, serving, 0), &bad, |_| {}).unwrap();
        assert!(!outcome.decision.promote, "{}", outcome.decision.reason);
        assert!(outcome.decision.reason.contains("recall@20") && outcome.decision.reason.contains('<'));
    }

    #[test]
    fn nothing_new_and_bad_settings_are_refused_with_the_reason() {
        let data = shop(30, 3, true);
        let (user, item) = zero_shot();
        let towers = Towers { user: &user, item: &item, served: None, crowd: Blend::default() };
        let err = run(inputs(&data, towers, 40), &config(), |_| {}).err().unwrap().to_string();
        assert!(err.contains("no new events"), "{err}");
        let err = run(inputs(&data, towers, 10), &UpdateConfig { gate_margin: 1.5, ..config() }, |_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("gate margin"), "{err}");
        assert_eq!(GateMetric::parse("ndcg@10").unwrap(), GateMetric::Ndcg10);
        assert!(GateMetric::parse("auc").is_err());
    }
}
