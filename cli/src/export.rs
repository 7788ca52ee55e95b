//! `edgerec export`: the split as plain files for peer libraries
//! (`scripts/peers.py`).

use std::path::PathBuf;

use anyhow::Result;
use edgerec_core::eval::{self, Dataset};

/// `edgerec export` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A prepared, split data directory.
    #[arg(long)]
    data: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the split to `--out`.
pub fn run(args: Args) -> Result<()> {
    let dataset = Dataset::load(&args.data)?;
    let users = eval::export(&dataset, &args.out)?;
    println!(
        "exported {} items, {users} training users (training and validation windows), {} test cases to {}",
        dataset.items(),
        dataset.test.len(),
        args.out.display()
    );
    Ok(())
}
