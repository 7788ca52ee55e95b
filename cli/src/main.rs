//! `edgerec`: prepare shop logs, build and evaluate model bundles, serve
//! the functions.
//!
//! A thin binary over the libraries, as ripgrep and wasmtime-cli are: each
//! subcommand lives in a file named after it, parses its own arguments and
//! calls `edgerec-core` (the model code) or `edgerec-host` (serving).
//! Run `edgerec --help` for the commands; `README.md` shows the whole flow.

mod ab;
mod allocator;
mod bundles;
mod check_encoder;
mod encoding;
mod eval;
mod eval_ads;
mod eval_search;
mod export;
mod index;
mod keys;
mod models;
mod prepare;
mod publish;
mod serve;
mod split;
mod tokens;
mod train;
mod train_ads;
mod tune_encoder;
mod update;
mod upworthy;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "edgerec", version, about = "E-commerce recommendation served as WebAssembly functions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clean raw logs into a catalog, an event log and report.json.
    Prepare(prepare::Args),
    /// Split a prepared event log into train / validation / test.
    Split(split::Args),
    /// Encode the catalog and write a versioned model bundle.
    Index(index::Args),
    /// Fine-tune the two-tower model and write a bundle with metrics.json.
    Train(train::Args),
    /// Offline metrics (full ranking) of a bundle, the baselines and peer scores.
    Eval(eval::Args),
    /// Write the split as plain files (TSV/JSONL) for peer libraries.
    Export(export::Args),
    /// Search relevance: nDCG@10 of BM25, semantic and hybrid ranking on
    /// graded judgments (Home Depot), on held-out queries.
    EvalSearch(eval_search::Args),
    /// Fine-tune the text encoder on graded searches; writes a new encoder directory.
    TuneEncoder(tune_encoder::Args),
    /// Fit the ad-click model on headline A/B tests (Upworthy) and write an ad bundle.
    TrainAds(train_ads::Args),
    /// Held-out metrics of an ad bundle against baselines and peers.
    EvalAds(eval_ads::Args),
    /// Check a model bundle's files against its manifest.
    Verify(verify::Args),
    /// Run an encoder on every engine here (the GPU where there is one): parity and texts per second.
    CheckEncoder(check_encoder::Args),
    /// The next version of a serving model from the private host's feedback, gated by evaluation.
    Update(Box<update::Args>),
    /// The Spin app for `spin deploy`: public artifacts only, checked for private data and the edge's limits.
    Publish(publish::Args),
    /// A/B tests of model versions: click-through per version and its significance.
    Ab(ab::Args),
    /// Which model version serves: promote, rollback, log.
    Models(models::Args),
    /// Serve the functions of a Spin manifest (SIGHUP reloads it).
    Serve(Box<serve::Args>),
    /// Bearer tokens of a private host: create, revoke, list.
    Tokens(tokens::Args),
    /// The data key of a private host: new, rotate.
    Keys(keys::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDGEREC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Prepare(args) => prepare::run(args),
        Command::Split(args) => split::run(args),
        Command::Index(args) => index::run(args),
        Command::Train(args) => {
            allocator::keep_freed_memory();
            train::run(args)
        }
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::EvalSearch(args) => eval_search::run(args),
        Command::TuneEncoder(args) => tune_encoder::run(args),
        Command::TrainAds(args) => train_ads::run(args),
        Command::EvalAds(args) => eval_ads::run(args),
        Command::Verify(args) => verify::run(args),
        Command::CheckEncoder(args) => check_encoder::run(args),
        Command::Update(args) => {
            allocator::keep_freed_memory();
            update::run(*args)
        }
        Command::Models(args) => models::run(args),
        Command::Ab(args) => ab::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Tokens(args) => tokens::run(args),
        Command::Keys(args) => keys::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // One line with the chain of causes, whatever RUST_BACKTRACE says:
        // the reader needs what went wrong and what to do, not our stack.
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `NAME=FILE` (peer scores and predictions).
fn parse_external(s: &str) -> Result<(String, std::path::PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_string(), path.into())),
        _ => Err(format!("expected NAME=FILE, got `{s}`")),
    }
}
