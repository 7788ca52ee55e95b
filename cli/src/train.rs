//! `edgerec train`: fine-tune the two towers on the shop's behaviour and
//! write a bundle with `metrics.json`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use edgerec_core::bundle::{ITEMS_FILE, Manifest, write_bundle};
use edgerec_core::data;
use edgerec_core::eval::Dataset;
use edgerec_core::index::ItemIndex;
use edgerec_core::search::BM25_FILE;
use edgerec_core::tower::{ITEM_TOWER_FILE, USER_TOWER_FILE};
use edgerec_core::train::{self, EpochStats, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

use crate::bundles::{bundle_name_version, index_items, new_manifest, title_index};
use crate::encoding::{EncoderArgs, catalog_texts, text_embeddings};

/// `edgerec train` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A prepared, split data directory.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    encoder: EncoderArgs,
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
    /// Also learn a per-item ID embedding for warm items (cold items keep text only).
    #[arg(long)]
    id_embeddings: bool,
    /// Probability of dropping an item's ID embedding in a step.
    #[arg(long, default_value_t = TrainConfig::default().id_dropout)]
    id_dropout: f64,
    /// Cap on examples per epoch (a fresh random subset each epoch).
    #[arg(long)]
    max_examples_per_epoch: Option<usize>,
    /// Random seed (initialization, shuffling, dropout).
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
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
}

/// File name of the training history inside a trained bundle (`eval` plots it).
pub const METRICS_FILE: &str = "metrics.json";

/// Trains, writes the bundle, prints the epochs and the result.
pub fn run(args: Args) -> Result<()> {
    let (name, version) = bundle_name_version(&args.out)?;
    if !(0.0..1.0).contains(&args.id_dropout) {
        bail!("--id-dropout {}: expected a probability in [0, 1)", args.id_dropout);
    }
    let config = TrainConfig {
        dims: args.dims,
        max_history: args.max_history,
        batch_size: args.batch_size,
        epochs: args.epochs,
        patience: args.patience,
        learning_rate: args.learning_rate,
        weight_decay: TrainConfig::default().weight_decay,
        temperature: args.temperature,
        id_embeddings: args.id_embeddings,
        id_dropout: args.id_dropout,
        seed: args.seed,
        max_examples_per_epoch: args.max_examples_per_epoch,
    };
    let config = &config;
    let encoder_dir = args.encoder.dir()?;
    let (data_dir, out) = (&args.data, &args.out);
    let dataset = Dataset::load(data_dir)?;
    let events = data::read_events(data_dir)?;
    let (text, info) = text_embeddings(data_dir, "catalog", &catalog_texts(&dataset.catalog), &encoder_dir, 32)?;
    println!("{}", dataset.split.table());

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut recent_loss = 0.0;
    let trained = train::train(&dataset, &text, info.dims, config, |p| match p {
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

    let items = index_items(&dataset.catalog, &events, &trained.item_vectors, config.dims);
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
    };
    let metrics_bytes = serde_json::to_vec_pretty(&metrics)?;
    let best = &trained.history[trained.best_epoch].valid;
    let mut manifest = new_manifest(name, version, config.dims, info, items.len());
    for (key, value) in [
        ("valid_recall@20", best.all.recall_20),
        ("valid_ndcg@10", best.all.ndcg_10),
        ("examples_per_second", metrics.examples_per_second),
    ] {
        manifest.metrics.insert(key.into(), value.into());
    }
    manifest.metrics.insert("best_epoch".into(), trained.best_epoch.into());
    write_bundle(
        out,
        manifest,
        &[
            (ITEMS_FILE, &items_bytes),
            (BM25_FILE, &title_index(&items_bytes)?),
            (USER_TOWER_FILE, &trained.user_tower.to_bytes()),
            (ITEM_TOWER_FILE, &trained.item_tower.to_bytes()),
            (METRICS_FILE, &metrics_bytes),
        ],
    )?;
    let manifest = Manifest::verify(out)?;
    println!(
        "trained in {:.1}s ({:.0} examples/s); best epoch {} (valid Recall@20 {:.4}, zero-shot {:.4}); bundle {} {} at {}",
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
