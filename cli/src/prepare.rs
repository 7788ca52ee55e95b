//! `edgerec prepare`: clean raw logs into a catalog, an event log and
//! `report.json` (rows in, kept, dropped per rule).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::data::{self, split::SPLIT_DIR};

/// Input formats `edgerec prepare` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// UCI Online Retail invoice lines (CSV, optionally gzipped).
    OnlineRetail,
    /// Amazon Review Data (2018): reviews JSON lines plus `meta_*.json.gz`.
    AmazonJsonl,
    /// RecBole atomic files (`.inter` split files + `.text`), used as split.
    Recbole,
    /// Any CSV or JSON-lines log, read through `--mapping`.
    #[value(alias = "jsonl")]
    Csv,
}

/// `edgerec prepare` arguments.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Cleans the logs, writes catalog, events and report, prints the report.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    if args.mapping.is_some() && args.format != Format::Csv {
        bail!("--mapping is only read with --format csv (the other formats have built-in mappings)");
    }
    let inputs = &args.input;
    let prepared = match args.format {
        Format::OnlineRetail => data::prepare_online_retail(inputs)?,
        Format::AmazonJsonl => data::mapped::prepare_amazon(inputs)?,
        Format::Recbole => data::recbole::prepare_recbole(inputs)?,
        Format::Csv => {
            let path =
                args.mapping.context("--format csv needs --mapping FILE (which column is user, item, time, ...)")?;
            data::mapped::prepare_mapped(&data::mapped::Mapping::read(&path)?, inputs)?
        }
    };
    let out = &args.out;
    // A stale split of an earlier run would not match the new catalog.
    let _ = std::fs::remove_dir_all(out.join(SPLIT_DIR));
    data::write_prepared(out, &prepared).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", prepared.report.table());
    if let Some(split) = &prepared.split {
        println!("the source comes split; using its split:\n{}", split.table());
    }
    println!(
        "wrote {}, {} and {} to {} in {:.1?}",
        data::CATALOG_FILE,
        data::EVENTS_FILE,
        data::REPORT_FILE,
        out.display(),
        started.elapsed()
    );
    Ok(())
}
