//! `edgerec`: prepare shop logs, build model bundles, serve the functions.
//!
//! Run `edgerec --help` for the commands; `README.md` shows the whole flow.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use edgerec_host::commands::{self, Format};
use edgerec_host::server::{HostConfig, Server, Zone};

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
        /// Input files or directories (CSV, optionally .gz).
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Encode the catalog and write a versioned model bundle.
    Index {
        /// A directory written by `edgerec prepare`.
        #[arg(long)]
        data: PathBuf,
        /// Encoder name (under --encoders) or directory.
        #[arg(long, default_value = "paraphrase-MiniLM-L3-v2")]
        model: String,
        /// Where encoders live.
        #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
        encoders: PathBuf,
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
        Command::Prepare { format, input, out } => {
            commands::prepare(format, &input, &out)?;
        }
        Command::Index { data, model, encoders, out, batch_size } => {
            commands::bundle_name_version(&out)?; // cheap argument checks before loading anything
            let dir = commands::encoder_dir(&model, &encoders)?;
            commands::index(&data, &dir, &out, batch_size)?;
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
