//! `edgerec verify`: check a model bundle's files against its manifest.

use std::path::PathBuf;

use anyhow::Result;
use edgerec_core::bundle::Manifest;

/// `edgerec verify` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Bundle directory.
    bundle: PathBuf,
}

/// Prints `<name> <version>: N files match their checksums`, or fails naming the file.
pub fn run(args: Args) -> Result<()> {
    let m = Manifest::verify(&args.bundle)?;
    println!("{} {}: {} files match their checksums", m.name, m.version, m.files.len());
    Ok(())
}
