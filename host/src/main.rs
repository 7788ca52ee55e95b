//! `edgerec`: prepare shop logs, build model bundles, serve the functions.
//!
//! Run `edgerec --help` for the commands; `README.md` shows the whole flow.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use edgerec_core::data::split::Protocol;
use edgerec_core::train::TrainConfig;
use edgerec_host::commands::{self, Format};
use edgerec_host::server::{HostConfig, Server, Zone};
use edgerec_host::text_tasks;

/// Training allocates and frees tens of megabytes of tensors per step;
/// glibc's malloc returns such blocks to the kernel each time (mmap), and
/// the page faults cost a third of the step. mimalloc keeps them: training
/// on the Online Retail sample went from 13.7 s to about 10 s per epoch.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "edgerec", version, about = "E-commerce recommendation served as WebAssembly functions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clean raw logs into a catalog, an event log and report.json.
    Prepare {
        /// Input format.
        #[arg(long, value_enum)]
        format: Format,
        /// Mapping file (TOML) for --format csv: which column is user, item, time, ...
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Input files or directories (optionally gzipped).
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Split a prepared event log into train / validation / test.
    Split {
        /// A directory written by `edgerec prepare`.
        #[arg(long)]
        data: PathBuf,
        /// `time`: the last days are the test; `leave-one-out`: each user's last step.
        #[arg(long, value_enum, default_value = "time")]
        by: SplitBy,
        /// Length of the validation window in days (time split; default: the 80-90% quantile of events).
        #[arg(long)]
        valid_days: Option<f64>,
        /// Length of the test window in days (time split; default: the last 10% of events).
        #[arg(long)]
        test_days: Option<f64>,
    },
    /// Fine-tune the two-tower model and write a bundle with metrics.json.
    Train {
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
    },
    /// Offline metrics (full ranking) of a bundle, the baselines and peer scores.
    Eval {
        /// A prepared, split data directory.
        #[arg(long)]
        data: PathBuf,
        /// The bundle to evaluate.
        #[arg(long)]
        model: PathBuf,
        /// Where encoders live (the zero-shot baseline uses the bundle's encoder).
        #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
        encoders: PathBuf,
        /// Print {"<model>": {"recall@10": ..}} JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Peer scores, NAME=FILE (f32 test cases × items, from `edgerec export`).
        #[arg(long, value_parser = parse_external)]
        external: Vec<(String, PathBuf)>,
        /// Recent-popularity window in days.
        #[arg(long, default_value_t = 30)]
        recent_days: i64,
        /// HTML report (default DATA/eval/report.html; metrics JSON beside it).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Also evaluate the bundle with these boosts added to new items
        /// (no training events), e.g. `0.02,0.05,0.1`: the exploration
        /// boost of /api/recommend for cold-started items.
        #[arg(long, value_delimiter = ',')]
        new_item_boost: Vec<f32>,
        /// Score the validation cases instead of the test cases (to choose settings such as the boost).
        #[arg(long)]
        validation: bool,
    },
    /// Search relevance: nDCG@10 of BM25, semantic and hybrid ranking on
    /// graded judgments (Home Depot), on held-out queries.
    EvalSearch {
        /// The judgments CSV (`product_uid, product_title, search_term, relevance`; .gz ok).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        encoder: EncoderArgs,
        /// Where embeddings are cached.
        #[arg(long, default_value = ".edgerec/work/search")]
        work: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Fit the ad-click model on headline A/B tests (Upworthy) and write an ad bundle.
    TrainAds {
        /// The Upworthy CSV (`clickability_test_id, headline, impressions, clicks`; .gz ok).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        encoder: EncoderArgs,
        /// Bundle directory: models/<name>/<version>.
        #[arg(long)]
        out: PathBuf,
        /// Where embeddings and the exported split (variants.csv) go.
        #[arg(long, default_value = ".edgerec/work/ads")]
        work: PathBuf,
    },
    /// Held-out metrics of an ad bundle against baselines and peers.
    EvalAds {
        /// The Upworthy CSV.
        #[arg(long)]
        data: PathBuf,
        /// The ad bundle.
        #[arg(long)]
        model: PathBuf,
        /// Where encoders live.
        #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
        encoders: PathBuf,
        /// Where embeddings are cached.
        #[arg(long, default_value = ".edgerec/work/ads")]
        work: PathBuf,
        /// Peer predictions, NAME=FILE (CSV `row,p` over WORK/variants.csv).
        #[arg(long, value_parser = parse_external)]
        external: Vec<(String, PathBuf)>,
        /// HTML report with the calibration plot (JSON beside it).
        #[arg(long, default_value = ".edgerec/work/ads/report.html")]
        report: PathBuf,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write the split as plain files (TSV/JSONL) for peer libraries.
    Export {
        /// A prepared, split data directory.
        #[arg(long)]
        data: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Encode the catalog and write a versioned model bundle.
    Index {
        /// A directory written by `edgerec prepare`.
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        encoder: EncoderArgs,
        /// Bundle directory: models/<name>/<version>.
        #[arg(long)]
        out: PathBuf,
        /// Titles per encoder batch.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
    /// Check a model bundle's files against its manifest.
    Verify {
        /// Bundle directory.
        bundle: PathBuf,
    },
    /// Serve the functions of a Spin manifest.
    Serve {
        /// The Spin manifest.
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "EDGEREC_LISTEN", default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Which zone this host is.
        #[arg(long, value_enum, default_value = "edge")]
        zone: Zone,
        /// Host settings (TOML): cors_origin, memory_limit_mib, deadline_ms, max_instances, cache_dir.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The pretrained text encoder to use (`index`, `train`).
#[derive(clap::Args)]
struct EncoderArgs {
    /// Encoder name (under --encoders) or directory.
    #[arg(long, default_value = "paraphrase-MiniLM-L3-v2")]
    model: String,
    /// Where encoders live.
    #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
    encoders: PathBuf,
}

impl EncoderArgs {
    fn dir(&self) -> Result<PathBuf> {
        commands::encoder_dir(&self.model, &self.encoders)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SplitBy {
    Time,
    LeaveOneOut,
}

fn parse_external(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_string(), PathBuf::from(path))),
        _ => Err(format!("expected NAME=FILE, got `{s}`")),
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDGEREC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Prepare { format, mapping, input, out } => {
            commands::prepare(format, mapping.as_deref(), &input, &out)?;
        }
        Command::Split { data, by, valid_days, test_days } => {
            let protocol = match by {
                SplitBy::Time => Protocol::Time { valid_days, test_days },
                SplitBy::LeaveOneOut => Protocol::LeaveOneOut,
            };
            commands::split(&data, protocol)?;
        }
        Command::Train {
            data,
            encoder,
            out,
            dims,
            epochs,
            patience,
            batch_size,
            learning_rate,
            temperature,
            max_history,
            id_embeddings,
            id_dropout,
            max_examples_per_epoch,
            seed,
        } => {
            commands::bundle_name_version(&out)?;
            if !(0.0..1.0).contains(&id_dropout) {
                anyhow::bail!("--id-dropout {id_dropout}: expected a probability in [0, 1)");
            }
            let config = TrainConfig {
                dims,
                max_history,
                batch_size,
                epochs,
                patience,
                learning_rate,
                weight_decay: TrainConfig::default().weight_decay,
                temperature,
                id_embeddings,
                id_dropout,
                seed,
                max_examples_per_epoch,
            };
            commands::train(&data, &encoder.dir()?, &out, &config)?;
        }
        Command::Eval { data, model, encoders, json, external, recent_days, report, new_item_boost, validation } => {
            let report = report.unwrap_or_else(|| data.join("eval").join("report.html"));
            commands::eval(&commands::EvalOptions {
                data: &data,
                model: &model,
                encoders: &encoders,
                external: &external,
                recent_days,
                report: &report,
                json,
                new_item_boosts: &new_item_boost,
                validation,
            })?;
        }
        Command::Export { data, out } => commands::export(&data, &out)?,
        Command::EvalSearch { data, encoder, work, json } => {
            let dir = encoder.dir()?;
            text_tasks::eval_search(&data, &dir, &work, json)?;
        }
        Command::TrainAds { data, encoder, out, work } => {
            let dir = encoder.dir()?;
            text_tasks::train_ads(&data, &dir, &out, &work)?;
            let report = work.join("report.html");
            let options = text_tasks::EvalAdsOptions {
                data: &data,
                model: &out,
                encoders: &encoder.encoders,
                work: &work,
                external: &[],
                report: &report,
                json: false,
            };
            text_tasks::eval_ads(&options)?;
        }
        Command::EvalAds { data, model, encoders, work, external, report, json } => {
            let options = text_tasks::EvalAdsOptions {
                data: &data,
                model: &model,
                encoders: &encoders,
                work: &work,
                external: &external,
                report: &report,
                json,
            };
            text_tasks::eval_ads(&options)?;
        }
        Command::Index { data, encoder, out, batch_size } => {
            commands::bundle_name_version(&out)?; // cheap argument checks before loading anything
            commands::index(&data, &encoder.dir()?, &out, batch_size)?;
        }
        Command::Verify { bundle } => {
            let m = edgerec_core::bundle::Manifest::verify(&bundle)?;
            println!("{} {}: {} files match their checksums", m.name, m.version, m.files.len());
        }
        Command::Serve { manifest, listen, zone, config } => {
            let config = config.map(|p| HostConfig::load(&p)).transpose()?.unwrap_or_default();
            let server = Server::new(&manifest, zone, &config)?;
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(async {
                let listener =
                    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("--listen {listen}"))?;
                println!("edgerec serving {} on http://{listen} (zone {})", manifest.display(), zone.as_str());
                for route in server.routes() {
                    println!("  {route}");
                }
                tokio::select! {
                    r = std::sync::Arc::new(server).serve(listener) => r,
                    _ = tokio::signal::ctrl_c() => { println!("shutting down"); Ok(()) }
                }
            })?;
        }
    }
    Ok(())
}
