//! `edgerec models`: which version of a model serves, and changing it
//! (`promote`, `rollback`), through the model's version log. Running hosts
//! notice the log change within a second and swap the version in.

use std::path::PathBuf;

use anyhow::Result;
use edgerec_core::versions::{self, VersionLog};

/// `edgerec models` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve VERSION of the model in DIR (models/<name>).
    Promote {
        /// The model directory, models/<name>.
        dir: PathBuf,
        /// The version to serve.
        version: String,
        /// Why, for the log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Go back to the version served before the current one.
    Rollback {
        /// The model directory, models/<name>.
        dir: PathBuf,
        /// Why, for the log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The versions, the serving one, and every decision.
    Log {
        /// The model directory, models/<name>.
        dir: PathBuf,
    },
}

/// Runs `edgerec models`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Promote { dir, version, reason } => {
            let entry = versions::promote(&dir, &version, "cli", reason, None)?;
            println!("{}: version {} serves from now on", dir.display(), entry.version);
        }
        Command::Rollback { dir, reason } => {
            let entry = versions::rollback(&dir, "cli", reason)?;
            println!("{}: rolled back; version {} serves from now on", dir.display(), entry.version);
        }
        Command::Log { dir } => {
            let log = VersionLog::read(&dir)?;
            let all = versions::versions(&dir)?;
            println!(
                "{}: versions {}; serving {}",
                dir.display(),
                all.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                log.serving().unwrap_or("what spin.toml mounts (no promote yet)")
            );
            for e in log.entries() {
                let metrics: Vec<String> = e.metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                println!(
                    "{}  {:<9} {:>4}  by {:<26} {}{}",
                    e.ts,
                    e.action.as_str(),
                    e.version,
                    e.by,
                    e.reason.as_deref().unwrap_or(""),
                    if metrics.is_empty() { String::new() } else { format!("  [{}]", metrics.join(", ")) }
                );
            }
        }
    }
    Ok(())
}
