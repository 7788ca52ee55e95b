//! `edgerec keys new|rotate`: the data key that seals personal data on a
//! private host.
//!
//! `rotate` writes the new key first (beside the key file as `.new`, or to
//! `--new-key-file` when the key comes from `EDGEREC_DATA_KEY`), then
//! re-seals every event in one transaction, then moves the new key into
//! place. Stopped at any point, no event is lost: before the commit the old
//! key still opens the store; after it, the new key is on disk, and a host
//! finishes the move when it starts.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use edgerec_host::private::{open_store, rotated_key_path, tokens::write_private};
use edgerec_host::users::DataKey;
use edgerec_host::users::seal::KEY_ENV;

/// `edgerec keys` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write a new random key to a file only its owner can read.
    New {
        /// Where to write it (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-seal every stored event under a new key.
    Rotate {
        /// The private host's --config file.
        #[arg(long)]
        config: PathBuf,
        /// Where to write the new key when the current one comes from EDGEREC_DATA_KEY.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
}

fn write_new_key(path: &std::path::Path) -> Result<DataKey> {
    if path.exists() {
        bail!("{} exists; a key file is never overwritten (move it away first)", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = DataKey::generate()?;
    write_private(path, format!("{text}\n").as_bytes())?;
    DataKey::from_base64(&text, "the new key")
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::New { out } => {
            let key = write_new_key(&out)?;
            eprintln!(
                "wrote a new data key {key:?} to {} (mode 600); back it up: without it the store cannot be read",
                out.display()
            );
        }
        Command::Rotate { config, new_key_file } => {
            let private = crate::tokens::private_config(&config)?;
            let users = open_store(&private)?;
            let from_env = std::env::var_os(KEY_ENV).is_some();
            let (pending, target) = match (from_env, &private.key_file, new_key_file) {
                (true, _, Some(out)) => (out.clone(), out),
                (true, _, None) => bail!(
                    "the key comes from {KEY_ENV}: give --new-key-file FILE for the new one, then set {KEY_ENV} \
                     from it on every private host"
                ),
                (false, Some(file), None) => (rotated_key_path(file), file.clone()),
                (false, Some(_), Some(_)) => {
                    bail!("--new-key-file is for keys from {KEY_ENV}; key_file is rotated in place")
                }
                (false, None, _) => bail!("no data key: set {KEY_ENV} or key_file in {}", config.display()),
            };
            let new = write_new_key(&pending)?;
            let started = std::time::Instant::now();
            let count = users.rotate(&new).with_context(|| {
                format!(
                    "re-sealing failed and was rolled back; the old key still opens the store ({} can be removed)",
                    pending.display()
                )
            })?;
            if pending != target {
                std::fs::rename(&pending, &target)
                    .with_context(|| format!("moving the new key into {}", target.display()))?;
            }
            eprintln!(
                "re-sealed {count} events of {} under {new:?} in {:.1} s; the key is in {}",
                users.describe(),
                started.elapsed().as_secs_f64(),
                target.display()
            );
            if from_env {
                eprintln!(
                    "set {KEY_ENV} to the contents of {} on every private host and restart them",
                    target.display()
                );
            } else {
                eprintln!("running private hosts read the new key from their key_file at their next store access");
            }
        }
    }
    Ok(())
}
