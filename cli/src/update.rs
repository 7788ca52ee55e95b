//! `edgerec update`: the next version of a serving model from the feedback
//! the private host stored since it, judged by the gate, promoted when it
//! passes (see `edgerec_core::update`). The private host runs the same
//! step on its schedule (`update_every`) and on
//! `POST /api/admin/models/{name}/update`, through [`run_update`].

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use edgerec_core::api::EventType;
use edgerec_core::bundle::{ITEMS_FILE, Lineage, Manifest, write_bundle};
use edgerec_core::coldstart::StoredItem;
use edgerec_core::crowd::{Blend, CROWD_FILE, Crowd};
use edgerec_core::data::{self, CatalogItem, Event};
use edgerec_core::index::ItemIndex;
use edgerec_core::search::BM25_FILE;
use edgerec_core::tower::{ITEM_TOWER_FILE, ItemTower, USER_TOWER_FILE, UserTower};
use edgerec_core::train::Progress;
use edgerec_core::update::{self, GateMetric, Inputs, Kind, Towers, UpdateConfig};
use edgerec_core::versions::{self, Action, Entry, VersionLog};
use edgerec_host::users::Users;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::bundles::{index_items, new_manifest, title_index};
use crate::encoding::{encoder_dir, text_embeddings};
use crate::train::{METRICS_FILE, TrainMetrics};

/// `edgerec update` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The model directory, models/<name> (its versions and versions.jsonl).
    #[arg(long)]
    model: PathBuf,
    /// The prepared log the model was first trained on (catalog and events).
    #[arg(long)]
    data: PathBuf,
    /// The private host's config: its user store and data key hold the feedback.
    #[arg(long)]
    config: PathBuf,
    /// Where encoders live.
    #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
    encoders: PathBuf,
    /// Retrain from scratch on every event instead of warm-starting from the serving version.
    #[arg(long)]
    full: bool,
    /// Days of newest events held out for the gate.
    #[arg(long, default_value_t = UpdateConfig::default().gate_days)]
    gate_days: f64,
    /// The metric the gate compares: recall@20 or ndcg@10.
    #[arg(long, default_value = "recall@20")]
    gate_metric: String,
    /// How much worse than the serving version the candidate may be, as a share (0.01 = 1%).
    #[arg(long, default_value_t = UpdateConfig::default().gate_margin)]
    gate_margin: f64,
    /// Older examples replayed per new one (incremental).
    #[arg(long, default_value_t = UpdateConfig::default().replay)]
    replay: f64,
    /// Training epochs (default: 2 incremental, 5 full).
    #[arg(long)]
    epochs: Option<usize>,
    /// Write and judge the candidate, but leave the serving version as it is.
    #[arg(long)]
    no_promote: bool,
    /// Other versions to score on the same gate window (comma-separated).
    #[arg(long, value_delimiter = ',')]
    compare: Vec<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// What to update and how: the CLI's flags, or a private host's `[models.<name>]`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// models/<name>.
    pub model_dir: PathBuf,
    /// The prepared base log.
    pub data: PathBuf,
    /// Where encoders live.
    pub encoders: PathBuf,
    /// Gate and training settings.
    pub config: UpdateConfig,
    /// Promote when the gate passes.
    pub promote: bool,
    /// Versions to score beside the candidate.
    pub compare: Vec<String>,
    /// Who asks (`cli`, `schedule`, `admin`), for the version log.
    pub by: String,
    /// Draw progress bars (a terminal) or stay quiet (a host).
    pub progress: bool,
}

/// Scores on the gate window.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Recall@20.
    #[serde(rename = "recall@20")]
    pub recall_20: f64,
    /// NDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
}

/// What an update did (`edgerec update --json`, the admin route's answer).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// The serving version it started from.
    pub parent: String,
    /// The version written.
    pub version: String,
    /// `incremental` or `full`.
    pub kind: &'static str,
    /// Whether it serves now.
    pub promoted: bool,
    /// The gate's comparison.
    pub reason: String,
    /// Scores on the gate window, by `candidate` and version.
    pub scores: BTreeMap<String, Score>,
    /// Users judged in the gate window.
    pub gate_cases: usize,
    /// The version's lineage.
    pub lineage: Lineage,
    /// Feedback events skipped because their item is in no catalog.
    pub unknown_items: usize,
    /// Wall time of the whole update, seconds.
    pub seconds: f64,
    /// Of which training, seconds.
    pub train_seconds: f64,
}

/// Runs `edgerec update`.
pub fn run(args: Args) -> Result<()> {
    let (host, users) = crate::tokens::private_host(&args.config)?;
    let plan = Plan {
        model_dir: args.model.clone(),
        data: args.data.clone(),
        encoders: args.encoders.clone(),
        config: update_config(
            args.full,
            args.gate_days,
            &args.gate_metric,
            args.gate_margin,
            args.replay,
            args.epochs,
        )?,
        promote: !args.no_promote,
        compare: args.compare.clone(),
        by: "cli".into(),
        progress: !args.json,
    };
    let name = model_name(&plan.model_dir)?;
    let new_items = edgerec_host::capability::key_value::read_prefix(
        &host.kv_dir,
        "default",
        &format!("{}{name}/", edgerec_core::coldstart::NEW_ITEM_PREFIX),
    )
    .context("reading the items added through /api/items/cold-start")?;
    let new_items = parse_new_items(new_items.iter().map(|(_, bytes)| bytes.as_slice()))?;
    let summary = run_update(&plan, &users, &new_items)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// The update settings from flags or config keys; names the bad one.
pub fn update_config(
    full: bool,
    gate_days: f64,
    gate_metric: &str,
    gate_margin: f64,
    replay: f64,
    epochs: Option<usize>,
) -> Result<UpdateConfig> {
    if !(0.0..1.0).contains(&gate_margin) {
        bail!("gate margin {gate_margin}: expected a share in [0, 1), e.g. 0.01 for 1%");
    }
    if !(gate_days > 0.0 && gate_days <= 365.0) {
        bail!("gate days {gate_days}: expected more than 0 and at most 365");
    }
    if !(0.0..=100.0).contains(&replay) {
        bail!("replay {replay}: expected older examples per new one, 0 to 100");
    }
    let kind = if full { Kind::Full } else { Kind::Incremental };
    let epochs = epochs.unwrap_or(if full { 5 } else { 2 });
    if epochs == 0 || epochs > 100 {
        bail!("epochs {epochs}: expected 1 to 100");
    }
    Ok(UpdateConfig {
        kind,
        gate_days,
        gate_metric: GateMetric::parse(gate_metric).map_err(|e| anyhow::anyhow!("{e}"))?,
        gate_margin,
        replay,
        train: edgerec_core::update::update_train_config(epochs),
    })
}

/// An update the private host asked for (admin route or schedule).
pub fn run_job(job: edgerec_host::lifecycle::UpdateJob, encoders: &Path) -> Result<serde_json::Value> {
    let s = &job.settings;
    let data = s.data.clone().with_context(|| {
        format!(
            "models.\"{}\".data is not set in the host's config: name the prepared log the model was trained on",
            job.model
        )
    })?;
    let request = &job.request;
    let flag = |key: &str| request.get(key).and_then(|v| v.as_bool());
    let defaults = UpdateConfig::default();
    let config = update_config(
        flag("full").unwrap_or(false),
        s.gate_days.unwrap_or(defaults.gate_days),
        s.gate_metric.as_deref().unwrap_or(defaults.gate_metric.as_str()),
        s.gate_margin.unwrap_or(defaults.gate_margin),
        s.replay.unwrap_or(defaults.replay),
        s.epochs,
    )?;
    let compare = match request.get("compare") {
        None => Vec::new(),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_string).context("field `compare` must list version strings"))
            .collect::<Result<_>>()?,
        Some(_) => bail!("field `compare` must be a list of versions, e.g. [\"1\"]"),
    };
    let plan = Plan {
        model_dir: job.model_dir.clone(),
        data,
        encoders: encoders.to_path_buf(),
        config,
        promote: flag("promote").unwrap_or(true),
        compare,
        by: job.by.into(),
        progress: false,
    };
    let new_items = parse_new_items(job.new_items.iter().map(Vec::as_slice))?;
    let summary = run_update(&plan, &job.users, &new_items)?;
    Ok(serde_json::to_value(summary)?)
}

/// The new-item records of the key-value store (`/api/items/cold-start`).
fn parse_new_items<'a>(records: impl Iterator<Item = &'a [u8]>) -> Result<Vec<StoredItem>> {
    records
        .map(serde_json::from_slice::<StoredItem>)
        .collect::<Result<Vec<_>, _>>()
        .context("a stored new item is not valid JSON")
}

fn model_name(dir: &Path) -> Result<String> {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .with_context(|| format!("--model {}: expected a model directory, models/<name>", dir.display()))
}

struct Version {
    name: String,
    manifest: Manifest,
    user: UserTower,
    item: ItemTower,
    /// Its `items.bin` when it serves more than its item tower gives (a
    /// hybrid version: identities are folded into the vectors).
    served: Option<ItemIndex>,
    /// The crowd prior's weights it serves (none without `crowd.bin`).
    crowd: Blend,
}

impl Version {
    fn towers(&self) -> Towers<'_> {
        Towers { user: &self.user, item: &self.item, served: self.served.as_ref(), crowd: self.crowd }
    }

    /// Whether it was trained with ID embeddings (`--items hybrid`).
    fn hybrid(&self) -> bool {
        self.manifest.metrics.get("items").and_then(|v| v.as_str()) == Some("hybrid")
    }
}

/// A version's towers; a zero-shot bundle (no towers) scores as the
/// pretrained text with recency pooling when `zero_shot` allows it.
fn load_version(model_dir: &Path, version: &str, zero_shot: bool) -> Result<Version> {
    let dir = model_dir.join(version);
    let manifest = Manifest::verify(&dir).with_context(|| format!("version {version}"))?;
    if !manifest.files.contains_key(ITEM_TOWER_FILE) && zero_shot {
        let d = manifest.encoder.dims;
        let item = ItemTower {
            text_dims: d,
            dims: d,
            weight: (0..d * d).map(|i| if i / d == i % d { 1.0 } else { 0.0 }).collect(),
            bias: vec![0.0; d],
        };
        let user = UserTower::recency(d, edgerec_core::tower::MAX_HISTORY);
        return Ok(Version { name: version.to_string(), manifest, user, item, served: None, crowd: Blend::default() });
    }
    if !manifest.files.contains_key(ITEM_TOWER_FILE) {
        bail!(
            "version {version} of {} has no item tower (a zero-shot bundle); train one with `edgerec train` first",
            model_dir.display()
        );
    }
    let user = crate::bundles::load_user_tower(&dir, &manifest)?;
    let path = dir.join(ITEM_TOWER_FILE);
    let item = ItemTower::from_bytes(&std::fs::read(&path).with_context(|| path.display().to_string())?)?;
    let crowd = crate::bundles::load_crowd(&dir, &manifest)?.map(|c| c.blend).unwrap_or_default();
    let mut version = Version { name: version.to_string(), manifest, user, item, served: None, crowd };
    if version.hybrid() {
        version.served = Some(ItemIndex::read(&dir.join(ITEMS_FILE))?);
    }
    Ok(version)
}

/// The version an update starts from: the log's serving version, else the
/// newest version that has towers.
fn serving_version(model_dir: &Path, log: &VersionLog) -> Result<String> {
    if let Some(v) = log.serving() {
        return Ok(v.to_string());
    }
    for v in versions::versions(model_dir)?.iter().rev() {
        if model_dir.join(v.to_string()).join(USER_TOWER_FILE).exists() {
            return Ok(v.to_string());
        }
    }
    bail!(
        "{} has no trained version to update; run `edgerec train --out {}/2` first",
        model_dir.display(),
        model_dir.display()
    )
}

fn parse_time(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts).ok().map(|t| t.with_timezone(&Utc))
}

/// One update (see the module docs). `users` holds the feedback;
/// `new_items` are the items added through /api/items/cold-start.
pub fn run_update(plan: &Plan, users: &Users, new_items: &[StoredItem]) -> Result<Summary> {
    let started = Instant::now();
    let model_dir = &plan.model_dir;
    let name = model_name(model_dir)?;
    for partial in versions::remove_partials(model_dir)? {
        tracing::warn!("removed {partial}, left by an update that stopped while writing");
    }
    let mut log = VersionLog::read(model_dir)?;
    let parent = load_version(model_dir, &serving_version(model_dir, &log)?, false)?;
    let compare = plan.compare.iter().map(|v| load_version(model_dir, v, true)).collect::<Result<Vec<_>>>()?;

    // The catalog the model knows, plus the items added since.
    let mut catalog = data::read_catalog(&plan.data)?;
    let known: HashSet<String> = catalog.iter().map(|c| c.item_id.clone()).collect();
    let mut added: Vec<CatalogItem> = Vec::new();
    for item in new_items {
        if !known.contains(&item.item_id) && !added.iter().any(|a| a.item_id == item.item_id) {
            added.push(CatalogItem {
                item_id: item.item_id.clone(),
                title: item.title.clone(),
                text: item.title.clone(),
                first_seen: None,
            });
        }
    }
    let in_catalog: HashSet<&str> = catalog.iter().chain(&added).map(|c| c.item_id.as_str()).collect::<HashSet<_>>();

    // The base log and the feedback, users as pseudonyms in both.
    let mut events: Vec<Event> = data::read_events(&plan.data)?
        .into_iter()
        .map(|mut e| {
            e.user_id = users.pseudonym(&e.user_id);
            e
        })
        .collect();
    let mut unknown_items = 0;
    for (user, fb) in users.all_events()? {
        if !fb.kind.is_interaction() {
            continue;
        }
        if !in_catalog.contains(fb.item_id.as_str()) {
            unknown_items += 1;
            continue;
        }
        let Some(ts) = fb.ts.as_deref().and_then(parse_time) else { continue };
        events.push(Event {
            user_id: user,
            item_id: fb.item_id,
            ts: Some(ts),
            event: match fb.kind {
                EventType::Purchase => "purchase",
                EventType::Cart => "cart",
                _ => "click",
            }
            .into(),
            quantity: 1.0,
            price: None,
        });
    }
    data::sort_events(&mut events);
    let since = match &parent.manifest.lineage {
        Some(lineage) => parse_time(&lineage.events_to).context("the serving version's lineage has a bad events_to")?,
        // A version trained by `edgerec train` learned from before its
        // split's test window when it was refit on the validation window,
        // else from before the validation window.
        None => match data::split::Split::read(&plan.data).ok().and_then(|s| {
            if parent.manifest.metrics.contains_key(crate::train::REFIT_EPOCHS) {
                s.meta.test_start
            } else {
                s.meta.valid_start
            }
        }) {
            Some(start) => start,
            None => events.iter().filter_map(|e| e.ts).max().context("the base log has no event times")?,
        },
    };

    // Pretrained text of the base catalog (cached beside it) and of the new items.
    let encoder = encoder_dir(&parent.manifest.encoder.name, &plan.encoders)?;
    let texts: Vec<&str> = catalog.iter().map(|c| c.text.as_str()).collect();
    let (mut text, info) = text_embeddings(&plan.data, "catalog", &texts, &encoder, 32)?;
    if !added.is_empty() {
        let texts: Vec<&str> = added.iter().map(|c| c.text.as_str()).collect();
        let (more, _) = text_embeddings(&plan.data, "new-items", &texts, &encoder, 32)?;
        text.extend(more);
    }
    catalog.extend(added.iter().cloned());
    // Catalogs are sorted by id (Dataset and items.bin rely on it).
    let mut order: Vec<usize> = (0..catalog.len()).collect();
    order.sort_by(|&a, &b| catalog[a].item_id.cmp(&catalog[b].item_id));
    let catalog: Vec<CatalogItem> = order.iter().map(|&i| catalog[i].clone()).collect();
    let text: Vec<f32> = order.iter().flat_map(|&i| text[i * info.dims..(i + 1) * info.dims].iter().copied()).collect();

    let mut config = plan.config.clone();
    config.train.dims = parent.item.dims;
    config.train.max_history = parent.user.max_history();
    // A hybrid version updates as hybrid: its identities start from the
    // vectors it serves.
    config.train.id_embeddings = parent.hybrid();
    config.train.attention = parent.user.query.is_some();
    config.train.sequence_block = parent.user.block.is_some();
    let bar = plan.progress.then(|| {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("update epoch {prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    });
    let outcome = update::run(
        Inputs {
            catalog: catalog.clone(),
            text: &text,
            text_dims: info.dims,
            events: &events,
            serving: (&parent.name, parent.towers()),
            since,
            compare: compare.iter().map(|v| (v.name.as_str(), v.towers())).collect(),
        },
        &config,
        |p| {
            if let Some(bar) = &bar {
                match p {
                    Progress::Start { steps, .. } => bar.set_length(steps as u64),
                    Progress::Step { epoch, step, loss } => {
                        bar.set_prefix(epoch.to_string());
                        bar.set_position(step as u64);
                        bar.set_message(format!("loss {loss:.3}"));
                    }
                    Progress::Epoch(_) => bar.set_position(0),
                }
            }
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    // The next version, written whole or not at all.
    let version = (versions::versions(model_dir)?.last().copied().unwrap_or(0) + 1).to_string();
    let out = model_dir.join(&version);
    let lineage = Lineage {
        parent: parent.name.clone(),
        kind: config.kind.as_str().into(),
        events_from: outcome.events_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        events_to: outcome.gate_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        gate_to: outcome.gate_to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        new_examples: outcome.selected.new,
        replayed_examples: outcome.selected.replayed,
        new_items: added.len(),
    };
    let trained = &outcome.trained;
    let items = index_items(&catalog, &events, &trained.item_vectors, config.train.dims);
    let items_bytes = ItemIndex::encode(&items)?;
    let metrics = TrainMetrics {
        config: config.train.clone(),
        best_epoch: trained.best_epoch,
        examples: trained.examples,
        examples_per_second: trained.history.iter().skip(1).map(|e| e.examples_per_second).sum::<f64>()
            / trained.history.len().saturating_sub(1).max(1) as f64,
        train_seconds: trained.seconds,
        epochs: trained.history.clone(),
        validation: Vec::new(),
        new_item_boost: None,
        crowd: None,
        refit: None,
    };
    let mut manifest = new_manifest(name.clone(), version.clone(), config.train.dims, info, items.len());
    // The new-item boost chosen when the line was first trained carries on.
    if let Some(boost) = parent.manifest.metrics.get(edgerec_core::coldstart::NEW_ITEM_BOOST_METRIC) {
        manifest.metrics.insert(edgerec_core::coldstart::NEW_ITEM_BOOST_METRIC.into(), boost.clone());
    }
    let candidate = &outcome.scores["candidate"];
    for (key, value) in [
        ("gate_recall@20", candidate.all.recall_20),
        ("gate_ndcg@10", candidate.all.ndcg_10),
        ("gate_cases", outcome.gate_cases as f64),
    ] {
        manifest.metrics.insert(key.into(), value.into());
    }
    let items_kind = if config.train.id_embeddings { "hybrid" } else { "text" };
    manifest.metrics.insert("items".into(), items_kind.into());
    manifest.lineage = Some(lineage.clone());
    let (bm25, user_tower, item_tower, metrics_json) = (
        title_index(&ItemIndex::from_bytes(&items_bytes)?).to_bytes(),
        trained.user_tower.to_bytes(),
        trained.item_tower.to_bytes(),
        serde_json::to_vec_pretty(&metrics)?,
    );
    let mut files: Vec<(&str, &[u8])> = vec![
        (ITEMS_FILE, &items_bytes),
        (BM25_FILE, &bm25),
        (USER_TOWER_FILE, &user_tower),
        (ITEM_TOWER_FILE, &item_tower),
        (METRICS_FILE, &metrics_json),
    ];
    // The serving version's crowd blend carries on, counted on the new log.
    let crowd = outcome.crowd.as_ref().map(Crowd::to_bytes);
    if let Some(bytes) = &crowd {
        files.push((CROWD_FILE, bytes));
    }
    write_bundle(&out, manifest, &files)?;

    // The decision, on the record.
    let metric = config.gate_metric;
    let mut scores = BTreeMap::new();
    for (label, report) in &outcome.scores {
        scores.insert(label.clone(), Score { recall_20: report.all.recall_20, ndcg_10: report.all.ndcg_10 });
    }
    let gate_metrics: BTreeMap<String, f64> = [
        (format!("candidate_{}", metric.as_str()), metric.of(candidate)),
        (format!("serving_{}", metric.as_str()), metric.of(&outcome.scores[&parent.name])),
    ]
    .into_iter()
    .collect();
    let kind = config.kind.as_str();
    versions::record_baseline(&mut log, Some(&parent.name))?;
    log.append(Entry {
        ts: versions::now(),
        action: Action::Candidate,
        version: version.clone(),
        by: format!("update ({kind}, {})", plan.by),
        reason: Some(format!("from version {} on the events since {}", parent.name, lineage.events_from)),
        metrics: gate_metrics.clone(),
    })?;
    let promoted = plan.promote && outcome.decision.promote;
    if plan.promote {
        log.append(Entry {
            ts: versions::now(),
            action: if promoted { Action::Promote } else { Action::Reject },
            version: version.clone(),
            by: "gate".into(),
            reason: Some(outcome.decision.reason.clone()),
            metrics: gate_metrics,
        })?;
    }
    Ok(Summary {
        model: name,
        parent: parent.name,
        version,
        kind,
        promoted,
        reason: outcome.decision.reason,
        scores,
        gate_cases: outcome.gate_cases,
        lineage,
        unknown_items,
        seconds: started.elapsed().as_secs_f64(),
        train_seconds: trained.seconds,
    })
}

fn print_summary(s: &Summary) {
    let verdict = if s.promoted { "promoted" } else { "not promoted" };
    println!(
        "{} {}: {} update from version {} ({} new examples, {} replayed, {} new items) in {:.1}s (training {:.1}s)",
        s.model,
        s.version,
        s.kind,
        s.parent,
        s.lineage.new_examples,
        s.lineage.replayed_examples,
        s.lineage.new_items,
        s.seconds,
        s.train_seconds
    );
    println!("gate window {} .. {}: {} users", s.lineage.events_to, s.lineage.gate_to, s.gate_cases);
    for (label, score) in &s.scores {
        println!("  {label:>10}  Recall@20 {:.4}  NDCG@10 {:.4}", score.recall_20, score.ndcg_10);
    }
    println!("{verdict}: {}", s.reason);
    if s.unknown_items > 0 {
        println!("({} feedback events named items in no catalog and were skipped)", s.unknown_items);
    }
}
