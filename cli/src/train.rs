//! `edgerec train`: fine-tune the two towers on the shop's behaviour and
//! write a bundle with `metrics.json`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use edgerec_core::bundle::{ITEMS_FILE, Manifest, write_bundle};
use edgerec_core::coldstart::{MAX_BOOST, NEW_ITEM_BOOST_METRIC, choose_new_item_boost};
use edgerec_core::crowd::{self, Blend, CROWD_FILE, Crowd};
use edgerec_core::data;
use edgerec_core::eval::{self, Dataset};
use edgerec_core::index::ItemIndex;
use edgerec_core::search::BM25_FILE;
use edgerec_core::tower::{ITEM_TOWER_FILE, USER_TOWER_FILE};
use edgerec_core::train::{self, EpochStats, Progress, TrainConfig, Trained};
use indicatif::{ProgressBar, ProgressStyle};

use crate::bundles::{JudgmentArgs, bundle_name_version, fit_search, index_items, new_manifest, title_index};
use crate::encoding::{EncoderArgs, catalog_texts, text_embeddings};

/// `edgerec train` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A prepared, split data directory.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    encoder: EncoderArgs,
    #[command(flatten)]
    judgments: JudgmentArgs,
    /// Bundle directory: models/<name>/<version>.
    #[arg(long)]
    out: PathBuf,
    /// Tower output width.
    #[arg(long, default_value_t = TrainConfig::default().dims)]
    dims: usize,
    /// Maximum epochs.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Epochs without a better validation Recall@20 before stopping.
    #[arg(long, default_value_t = TrainConfig::default().patience)]
    patience: usize,
    /// Examples per step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    learning_rate: f64,
    /// Softmax temperature.
    #[arg(long, default_value_t = TrainConfig::default().temperature)]
    temperature: f64,
    /// Newest distinct history items the user tower reads.
    #[arg(long, default_value_t = TrainConfig::default().max_history)]
    max_history: usize,
    /// Item vectors from `text` alone, `hybrid` (text plus a learned ID
    /// embedding for items with history, gated by their event count), or
    /// `auto`: train both and keep hybrid unless text is better by 1% on
    /// the validation window.
    #[arg(long, value_enum, default_value_t = Items::Auto)]
    items: Items,
    /// Events that make an item's identity weigh half in a hybrid model.
    #[arg(long, default_value_t = TrainConfig::default().id_gate)]
    id_gate: f64,
    /// Probability of dropping an item's ID embedding in a step (hybrid).
    #[arg(long, default_value_t = TrainConfig::default().id_dropout)]
    id_dropout: f64,
    /// The user tower also weighs history items by how they relate to the
    /// newest one (one attention query), not by recency position alone.
    /// Off by default: it gained nothing on Online Retail or Amazon
    /// Scientific (BENCHMARKS.md).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    attention: bool,
    /// The user tower runs one SASRec-style self-attention block over the
    /// history (position embeddings, attention, feed-forward), not pooling
    /// alone. Not together with --attention. Off by default: on Amazon
    /// Scientific it lifted NDCG@10 5% (3 seeds), on Online Retail it lost
    /// 15% of Recall@20 (BENCHMARKS.md).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    sequence_block: bool,
    /// Examples this many days older than the newest weigh half (0: all alike).
    #[arg(long, default_value_t = TrainConfig::default().half_life_days)]
    half_life_days: f64,
    /// Cap on examples per epoch (a fresh random subset each epoch).
    #[arg(long)]
    max_examples_per_epoch: Option<usize>,
    /// Random seed (initialization, shuffling, dropout).
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Once validation has chosen the item vectors and the epoch, train
    /// again on the training and validation windows together, for that
    /// many epochs, and ship that model: it learns from the newest events
    /// before the test window. `false` ships the model validation measured.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    refit: bool,
}

/// How much better (relative validation Recall@20) text-only item vectors
/// must be for `--items auto` to keep them over hybrid ones.
const TEXT_MARGIN: f64 = 0.01;

/// How item vectors are made (`--items`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Items {
    /// Text alone: every item, new or not, is scored the same way.
    Text,
    /// Text plus a gated ID embedding for items with history.
    Hybrid,
    /// Both: hybrid, unless text is better by 1% on validation Recall@20.
    Auto,
}

/// Validation metrics of one candidate or baseline, for `metrics.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// `text`, `hybrid`, `popularity`, `recent-popularity` or `item-knn`.
    pub name: String,
    /// Validation Recall@20.
    pub recall_20: f64,
    /// Validation NDCG@10.
    pub ndcg_10: f64,
}

/// `metrics.json` of a trained bundle.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainMetrics {
    /// The settings used.
    pub config: TrainConfig,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Training examples per epoch.
    pub examples: usize,
    /// Mean examples per second over the trained epochs.
    pub examples_per_second: f64,
    /// Wall time of training (encoding excluded), seconds.
    pub train_seconds: f64,
    /// Epoch 0 (zero-shot) and every trained epoch.
    pub epochs: Vec<EpochStats>,
    /// Every trained candidate and the baselines on the validation window
    /// (the kept one first).
    #[serde(default)]
    pub validation: Vec<Candidate>,
    /// The exploration boost for new items chosen on the validation window
    /// (served by `/api/recommend`); absent without a validation window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_item_boost: Option<f32>,
    /// How much popularity and item-kNN the bundle adds to its towers'
    /// scores, chosen on the validation window (`crowd.bin` unless none);
    /// absent without a validation window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crowd: Option<Blend>,
    /// The shipped model's training on the training and validation
    /// windows (`--refit`); absent when the measured model ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit: Option<Refit>,
}

/// The refit that made the shipped model.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Refit {
    /// Epochs trained: the kept epoch of the validated run.
    pub epochs: usize,
    /// Training examples per epoch (training and validation windows).
    pub examples: usize,
    /// Wall time, seconds.
    pub train_seconds: f64,
}

/// File name of the training history inside a trained bundle (`eval` plots it).
pub const METRICS_FILE: &str = "metrics.json";

/// Trains, writes the bundle, prints the epochs and the result.
pub fn run(args: Args) -> Result<()> {
    let (name, version) = bundle_name_version(&args.out)?;
    if !(0.0..1.0).contains(&args.id_dropout) {
        bail!("--id-dropout {}: expected a probability in [0, 1)", args.id_dropout);
    }
    if args.id_gate < 0.0 || args.half_life_days < 0.0 {
        bail!("--id-gate {} and --half-life-days {}: expected 0 or more", args.id_gate, args.half_life_days);
    }
    if args.attention && args.sequence_block {
        bail!("--attention true and --sequence-block true are two user towers: pass one (the block attends by itself)");
    }
    let base = TrainConfig {
        dims: args.dims,
        max_history: args.max_history,
        batch_size: args.batch_size,
        epochs: args.epochs,
        patience: args.patience,
        learning_rate: args.learning_rate,
        weight_decay: TrainConfig::default().weight_decay,
        temperature: args.temperature,
        id_embeddings: false,
        id_dropout: args.id_dropout,
        id_gate: args.id_gate,
        half_life_days: args.half_life_days,
        attention: args.attention,
        sequence_block: args.sequence_block,
        seed: args.seed,
        max_examples_per_epoch: args.max_examples_per_epoch,
    };
    let encoder_dir = args.encoder.dir()?;
    let (data_dir, out) = (&args.data, &args.out);
    let dataset = Dataset::load(data_dir)?;
    let events = data::read_events(data_dir)?;
    let (text, info) = text_embeddings(data_dir, "catalog", &catalog_texts(&dataset.catalog), &encoder_dir, 32)?;
    println!("{}", dataset.split.table());

    // `auto` needs a validation window to choose on; without one the text
    // model (which ranks new items like any other) is the safe choice.
    let candidates: &[Items] = match args.items {
        Items::Auto if dataset.valid.is_empty() => &[Items::Text],
        Items::Auto => &[Items::Text, Items::Hybrid],
        Items::Text => &[Items::Text],
        Items::Hybrid => &[Items::Hybrid],
    };
    let mut runs = Vec::new();
    for &items in candidates {
        let config = TrainConfig { id_embeddings: items == Items::Hybrid, ..base.clone() };
        if candidates.len() > 1 {
            println!("--items {}:", items_name(items));
        }
        let trained = train_with_progress(&dataset, &text, info.dims, &config)?;
        runs.push((items, config, trained));
    }
    let valid_of = |t: &train::Trained| t.history[t.best_epoch].valid.all;
    // Hybrid unless text is clearly better on validation Recall@20: a
    // validation window of a few hundred users often cannot tell the two
    // apart, and where it could not, hybrid won the test window on both
    // shops we measured (BENCHMARKS.md).
    let recall = |items: Items| runs.iter().find(|r| r.0 == items).map(|r| valid_of(&r.2).recall_20);
    let keep = match (recall(Items::Text), recall(Items::Hybrid)) {
        (Some(text), Some(hybrid)) if text > hybrid * (1.0 + TEXT_MARGIN) => Items::Text,
        (_, Some(_)) => Items::Hybrid,
        _ => Items::Text,
    };
    let best = runs.iter().position(|r| r.0 == keep).expect("the kept candidate was trained");
    let (chosen, config, trained) = runs.swap_remove(best);
    let config = &config;
    let mut validation = vec![candidate(items_name(chosen), valid_of(&trained))];
    validation.extend(runs.iter().map(|(items, _, t)| candidate(items_name(*items), valid_of(t))));
    // How much of the crowd (popularity, item-kNN) to add, chosen against
    // the towers' validation scores with the signals of the training window.
    let crowd_choice = if dataset.valid.is_empty() {
        None
    } else {
        let started = std::time::Instant::now();
        let signals = crowd::Signals::fit(&dataset, crate::eval::RECENT_DAYS);
        let towers = eval::Embeddings { items: trained.item_vectors.clone(), tower: trained.user_tower.clone() };
        let choice = crowd::choose_blend(&dataset, &towers, &signals);
        print_crowd_choice(&choice, started.elapsed().as_secs_f64());
        if !choice.blend.is_none() {
            validation.insert(0, candidate(&format!("{}+crowd", items_name(chosen)), choice.chosen.all));
        }
        Some((choice.blend, signals.crowd(choice.blend)))
    };
    if !dataset.valid.is_empty() {
        for (name, scorer) in crate::eval::baselines(&dataset, crate::eval::RECENT_DAYS) {
            validation.push(candidate(name, eval::evaluate(scorer.as_ref(), &dataset.valid, &dataset.cold).all));
        }
        print_validation(&validation);
    }
    let new_item_boost = crowd_choice.as_ref().map(|(_, crowd)| choose_boost(&dataset, &trained, crowd));
    let blend_choice = crowd_choice.map(|(blend, _)| blend);
    let blend = blend_choice.unwrap_or_default();
    let refits = args.refit && !dataset.valid.is_empty() && trained.best_epoch > 0;
    // Everything before the test window, built once for the refit and the
    // served prior (which counts what the refit learns from).
    let before_test = if refits || !blend.is_none() { dataset.with_validation_window()? } else { None };
    let served_crowd = (!blend.is_none())
        .then(|| crowd::Signals::fit(before_test.as_ref().unwrap_or(&dataset), crate::eval::RECENT_DAYS).crowd(blend));
    let refit = if refits { refit(before_test.as_ref(), &text, info.dims, config, &trained)? } else { None };
    let shipped = refit.as_ref().unwrap_or(&trained);
    let items = index_items(&dataset.catalog, &events, &shipped.item_vectors, config.dims);
    let items_bytes = ItemIndex::encode(&items)?;
    let trained_epochs: Vec<&EpochStats> = trained.history.iter().filter(|e| e.epoch > 0).collect();
    let metrics = TrainMetrics {
        config: config.clone(),
        best_epoch: trained.best_epoch,
        examples: trained.examples,
        examples_per_second: trained_epochs.iter().map(|e| e.examples_per_second).sum::<f64>()
            / trained_epochs.len().max(1) as f64,
        train_seconds: trained.seconds,
        epochs: trained.history.clone(),
        validation,
        new_item_boost,
        crowd: blend_choice,
        refit: refit.as_ref().map(|r| Refit {
            epochs: r.history.len() - 1,
            examples: r.examples,
            train_seconds: r.seconds,
        }),
    };
    let metrics_bytes = serde_json::to_vec_pretty(&metrics)?;
    let best = &trained.history[trained.best_epoch].valid;
    let mut manifest = new_manifest(name, version, config.dims, info, items.len());
    for (key, value) in [
        // As served: the kept row, crowd prior included when there is one.
        ("valid_recall@20", metrics.validation[0].recall_20),
        ("valid_ndcg@10", metrics.validation[0].ndcg_10),
        ("examples_per_second", metrics.examples_per_second),
    ] {
        manifest.metrics.insert(key.into(), value.into());
    }
    manifest.metrics.insert("best_epoch".into(), trained.best_epoch.into());
    manifest.metrics.insert("items".into(), items_name(chosen).into());
    if let Some(boost) = new_item_boost {
        // Written as the grid's decimal (0.03), not the f32's widening (0.029999999).
        let decimal: f64 = boost.to_string().parse().unwrap_or(f64::from(boost));
        manifest.metrics.insert(NEW_ITEM_BOOST_METRIC.into(), decimal.into());
    }
    if let Some(r) = &metrics.refit {
        manifest.metrics.insert(REFIT_EPOCHS.into(), r.epochs.into());
    }
    let index = ItemIndex::from_bytes(&items_bytes)?;
    let bm25 = title_index(&index);
    let search = fit_search(&args.judgments, &index, &bm25, Some(&shipped.item_tower), &encoder_dir, data_dir)?;
    let (bm25, user_tower, item_tower) =
        (bm25.to_bytes(), shipped.user_tower.to_bytes(), shipped.item_tower.to_bytes());
    let mut files: Vec<(&str, &[u8])> = vec![
        (ITEMS_FILE, &items_bytes),
        (BM25_FILE, &bm25),
        (USER_TOWER_FILE, &user_tower),
        (ITEM_TOWER_FILE, &item_tower),
        (METRICS_FILE, &metrics_bytes),
    ];
    let crowd_bytes = served_crowd.as_ref().map(Crowd::to_bytes);
    if let Some(bytes) = &crowd_bytes {
        files.push((CROWD_FILE, bytes));
    }
    if let Some(search) = &search {
        search.add_to(&mut manifest, &mut files);
    }
    write_bundle(out, manifest, &files)?;
    let manifest = Manifest::verify(out)?;
    let refitted = match &metrics.refit {
        Some(r) => format!("; refit on the training and validation windows in {:.1}s", r.train_seconds),
        None => String::new(),
    };
    println!(
        "trained {} in {:.1}s ({:.0} examples/s); best epoch {} (valid Recall@20 {:.4}, zero-shot {:.4}){refitted}; bundle {} {} at {}",
        items_name(chosen),
        trained.seconds,
        metrics.examples_per_second,
        trained.best_epoch,
        best.all.recall_20,
        trained.history[0].valid.all.recall_20,
        manifest.name,
        manifest.version,
        out.display()
    );
    Ok(())
}

/// The new-item boost for the validated model, by the rule of
/// [`choose_new_item_boost`] on the validation window's new items (those
/// without training events, as cold-started items are at serving time).
fn choose_boost(dataset: &Dataset, trained: &Trained, crowd: &Crowd) -> f32 {
    // Each boost the rule tries is scored once; the report line reuses them.
    let mut scored: Vec<(f32, eval::Report)> = Vec::new();
    // A crowd prior lifts warm items further, so the boosts tried reach
    // that much further; where no validation case has a new target there
    // is nothing to measure the reach on, and it stays at the towers'.
    let new_targets = dataset.valid.iter().any(|c| c.targets.iter().any(|&t| dataset.cold[t as usize]));
    let reach = if new_targets { MAX_BOOST + crowd.blend.popularity + crowd.blend.neighbors } else { MAX_BOOST };
    let boost = choose_new_item_boost(reach, |boost| {
        let towers = eval::Embeddings { items: trained.item_vectors.clone(), tower: trained.user_tower.clone() };
        let inner = crowd::WithCrowd { inner: towers, crowd: crowd.clone() };
        let report =
            eval::evaluate(&eval::Boosted { inner, new: dataset.cold.clone(), boost }, &dataset.valid, &dataset.cold);
        scored.push((boost, report));
        report.all.recall_20
    });
    let report_of = |b: f32| scored.iter().find(|(tried, _)| *tried == b).map(|(_, r)| *r).unwrap_or_default();
    let (unboosted, chosen) = (report_of(0.0), report_of(boost));
    println!(
        "new items: boost {boost} chosen on validation (Recall@20 {:.4} -> {:.4}, new items' {:.4} -> {:.4})",
        unboosted.all.recall_20, chosen.all.recall_20, unboosted.cold.recall_20, chosen.cold.recall_20
    );
    boost
}

/// Manifest metric: epochs of the refit on the training and validation
/// windows (`edgerec update` then knows the model learned up to the test window).
pub const REFIT_EPOCHS: &str = "refit_epochs";

/// Trains the chosen settings again on the training and validation windows
/// (`before_test`, [`Dataset::with_validation_window`]) for the kept epoch
/// count (see `--refit`; only when there is a validation window and
/// validation kept a trained epoch); `None` for a split written before the
/// validation window was kept.
fn refit(
    before_test: Option<&Dataset>,
    text: &[f32],
    text_dims: usize,
    config: &TrainConfig,
    trained: &Trained,
) -> Result<Option<Trained>> {
    let Some(before_test) = before_test else {
        println!(
            "note: this split was written before edgerec kept its validation window, so the model ships without \
             learning from it; run `edgerec split` again to train on it"
        );
        return Ok(None);
    };
    println!(
        "refit on the training and validation windows ({} users): {} epochs, as validation chose",
        before_test.split.train.len(),
        trained.best_epoch
    );
    let config = TrainConfig { epochs: trained.best_epoch, ..config.clone() };
    Ok(Some(train_with_progress(before_test, text, text_dims, &config)?))
}

fn items_name(items: Items) -> &'static str {
    match items {
        Items::Text => "text",
        Items::Hybrid => "hybrid",
        Items::Auto => "auto",
    }
}

fn candidate(name: &str, m: eval::Metrics) -> Candidate {
    Candidate { name: name.into(), recall_20: m.recall_20, ndcg_10: m.ndcg_10 }
}

/// The kept model against the others on the validation window, with a
/// warning when a baseline ranks better: the shop's log may say that the
/// crowd's choice is the best guess.
fn print_validation(rows: &[Candidate]) {
    println!("validation window:  model               Recall@20  NDCG@10");
    for (n, c) in rows.iter().enumerate() {
        let mark = if n == 0 { "kept" } else { "    " };
        println!("  {mark}  {:<18} {:>9.4} {:>8.4}", c.name, c.recall_20, c.ndcg_10);
    }
    let kept = &rows[0];
    for c in &rows[1..] {
        if (c.recall_20 > kept.recall_20 || c.ndcg_10 > kept.ndcg_10) && baseline_name(&c.name) {
            println!(
                "warning: {} beats the trained model on validation (Recall@20 {:.4} vs {:.4}, NDCG@10 {:.4} vs {:.4}); \
                 compare them on the test window with `edgerec eval` before serving",
                c.name, c.recall_20, kept.recall_20, c.ndcg_10, kept.ndcg_10
            );
        }
    }
}

fn baseline_name(name: &str) -> bool {
    !(name.starts_with("text") || name.starts_with("hybrid"))
}

/// One line on the crowd prior: what validation chose, and by how much.
fn print_crowd_choice(choice: &crowd::Choice, seconds: f64) {
    let (towers, chosen, best) = (&choice.towers.all, &choice.chosen.all, &choice.best.1.all);
    if choice.blend.is_none() {
        println!(
            "crowd: none added (best blend {}: Recall@20 {:.4} -> {:.4}, NDCG@10 {:.4} -> {:.4}, under the {}% a blend must gain; {seconds:.1}s)",
            choice.best.0.describe(),
            towers.recall_20,
            best.recall_20,
            towers.ndcg_10,
            best.ndcg_10,
            crowd::MIN_GAIN * 100.0
        );
    } else {
        println!(
            "crowd: {} added, chosen on validation (Recall@20 {:.4} -> {:.4}, NDCG@10 {:.4} -> {:.4}; {seconds:.1}s)",
            choice.blend.describe(),
            towers.recall_20,
            chosen.recall_20,
            towers.ndcg_10,
            chosen.ndcg_10
        );
    }
}

/// Trains one candidate with a progress bar and a line per epoch.
fn train_with_progress(dataset: &Dataset, text: &[f32], text_dims: usize, config: &TrainConfig) -> Result<Trained> {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut recent_loss = 0.0;
    let trained = train::train(dataset, text, text_dims, config, |p| match p {
        Progress::Start { examples, steps } => {
            bar.suspend(|| {
                println!("{examples} examples per epoch, {steps} steps of {}", config.batch_size.min(examples))
            });
            bar.set_length(steps as u64);
        }
        Progress::Step { epoch, step, loss } => {
            recent_loss = if step == 1 { loss } else { 0.9 * recent_loss + 0.1 * loss };
            bar.set_prefix(epoch.to_string());
            bar.set_position(step as u64);
            bar.set_message(format!("loss {recent_loss:.3}"));
        }
        // A refit has no validation cases: its epochs print their loss alone.
        Progress::Epoch(e) if e.valid.all.cases == 0 && e.epoch > 0 => {
            bar.suspend(|| {
                println!(
                    "epoch {:>2}  loss {:.4}  {:.1}s  {:.0} examples/s",
                    e.epoch,
                    e.loss.unwrap_or(f64::NAN),
                    e.seconds,
                    e.examples_per_second
                )
            });
            bar.set_position(0);
        }
        Progress::Epoch(e) if e.valid.all.cases == 0 => {}
        Progress::Epoch(e) => {
            bar.suspend(|| println!(
                "epoch {:>2}  loss {}  valid Recall@20 {:.4}  NDCG@10 {:.4}  cold Recall@20 {:.4}  {:.1}s  {:.0} examples/s",
                e.epoch,
                e.loss.map_or("  -   ".into(), |l| format!("{l:.4}")),
                e.valid.all.recall_20,
                e.valid.all.ndcg_10,
                e.valid.cold.recall_20,
                e.seconds,
                e.examples_per_second
            ));
            bar.set_position(0);
        }
    })?;
    bar.finish_and_clear();
    Ok(trained)
}
