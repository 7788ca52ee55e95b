//! `edgerec tune-encoder`: fine-tune the text encoder on graded searches
//! and write it as a new encoder directory, which `index`, `train` and
//! `eval-search` take with `--model`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::data;
use edgerec_core::encoder::Device;
use edgerec_core::encoder::tune::{TrainableEncoder, TuneOptions};
use edgerec_core::search::relevance::{self, Judgments};
use indicatif::{ProgressBar, ProgressStyle};

use crate::bundles::read_shop_judgments;
use crate::encoding::{EncoderArgs, catalog_texts};

/// `edgerec tune-encoder` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Graded searches: with --data, a shop's `query,item_id,relevance`
    /// (any numeric scale, higher is better); without, Home Depot's file
    /// (`product_uid, product_title, search_term, relevance`). .gz ok.
    #[arg(long, value_name = "CSV")]
    judgments: PathBuf,
    /// A directory written by `edgerec prepare`, whose catalog the judgments name.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The encoder to start from (safetensors weights).
    #[command(flatten)]
    encoder: EncoderArgs,
    /// The new encoder's directory, e.g. models/encoders/my-shop-search; its
    /// name is the directory's name.
    #[arg(long)]
    out: PathBuf,
    /// Passes over the judged queries.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Stop after this many steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Queries per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = TuneOptions::default().learning_rate)]
    learning_rate: f64,
    /// The tuned weights' share in the written encoder, the rest being the
    /// starting encoder's (WiSE-FT); 1 writes the tuned weights alone.
    #[arg(long, default_value_t = TuneOptions::default().interpolation)]
    interpolation: f64,
}

/// Tunes on the half of the judged queries that `index --judgments` and
/// `eval-search` fit on (the other half stays held out to check the
/// result), and writes the encoder.
pub fn run(args: Args) -> Result<()> {
    let name = match args.out.file_name().map(|n| n.to_string_lossy().into_owned()) {
        Some(name) if !name.starts_with('.') => name,
        _ => bail!("--out {}: expected a directory such as models/encoders/my-shop-search", args.out.display()),
    };
    if args.epochs == 0 || args.batch_size == 0 || args.max_steps == Some(0) {
        bail!("--epochs, --batch-size and --max-steps must be 1 or more");
    }
    if !(args.learning_rate > 0.0 && args.learning_rate < 1.0) {
        bail!("--learning-rate {}: expected a small positive rate such as 4e-5", args.learning_rate);
    }
    if !(args.interpolation > 0.0 && args.interpolation <= 1.0) {
        bail!(
            "--interpolation {}: expected the tuned weights' share, above 0 and at most 1 (0.5 is the midpoint)",
            args.interpolation
        );
    }
    let base_dir = args.encoder.dir()?;
    if base_dir.canonicalize().ok() == args.out.canonicalize().ok() {
        bail!("--out {}: that is the encoder tuning starts from; name a new directory", args.out.display());
    }
    let judgments = read(&args)?;
    let train: Vec<usize> =
        (0..judgments.queries.len()).filter(|&q| !relevance::held_out(&judgments.queries[q].text)).collect();
    if train.is_empty() {
        bail!("--judgments {}: no judged query falls in the tuning half; add more queries", args.judgments.display());
    }
    let mut encoder = TrainableEncoder::load(&base_dir, Device::Auto)?;
    let options = TuneOptions {
        epochs: args.epochs,
        max_steps: args.max_steps,
        batch: args.batch_size,
        learning_rate: args.learning_rate,
        interpolation: args.interpolation,
        ..TuneOptions::default()
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("tuning {bar:40} {pos}/{len} steps  loss {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = encoder.tune(&judgments, &train, &options, |step| {
        bar.set_length(step.total as u64);
        bar.set_position(step.done as u64);
        bar.set_message(format!("{:.4}", step.mean_loss));
    })?;
    bar.finish_and_clear();
    let base = encoder.config().clone();
    let source = format!(
        "tuned:{}@{} on {} ({} judged queries, {} epochs, learning rate {}, interpolation {}, edgerec tune-encoder)",
        base.name,
        &base.weights_sha256[..12],
        args.judgments.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        train.len(),
        args.epochs,
        args.learning_rate,
        args.interpolation
    );
    let config = encoder.save(&base_dir, &args.out, &name, &source)?;
    println!(
        "tuned {} from {} on {} judged queries ({} held out for the check), {} steps in {:.0?}: pairwise loss {:.4} in the first tenth of the steps, {:.4} in the last",
        config.name,
        base.name,
        train.len(),
        judgments.queries.len() - train.len(),
        report.steps,
        started.elapsed(),
        report.first_loss,
        report.last_loss
    );
    println!(
        "wrote {}; use it with --model {} (index, train, eval-search); for the ONNX engines (tract in components), run scripts/export-onnx {}",
        args.out.display(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// The judgments, read against the shop's catalog texts (what its bundle
/// embeds) or from Home Depot's file.
fn read(args: &Args) -> Result<Judgments> {
    let path = &args.judgments;
    if let Some(data_dir) = &args.data {
        let catalog = data::read_catalog(data_dir)?;
        let ids: Vec<&str> = catalog.iter().map(|c| c.item_id.as_str()).collect();
        let texts = catalog_texts(&catalog).into_iter().map(str::to_string).collect();
        return read_shop_judgments(path, &ids, texts);
    }
    let judgments = relevance::read_home_depot(path).with_context(|| {
        format!(
            "--judgments {} (without --data: Home Depot's columns; with --data: query,item_id,relevance)",
            path.display()
        )
    })?;
    if judgments.queries.is_empty() {
        bail!("--judgments {}: no query has two items with different grades; nothing to learn from", path.display());
    }
    Ok(judgments)
}
