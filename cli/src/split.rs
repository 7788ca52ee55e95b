//! `edgerec split`: cut a prepared event log into train / validation / test.

use std::path::PathBuf;

use anyhow::{Result, bail};
use edgerec_core::data::{
    self,
    split::{Protocol, SPLIT_DIR, Split},
};

#[derive(Clone, Copy, clap::ValueEnum)]
enum By {
    Time,
    LeaveOneOut,
}

/// `edgerec split` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A directory written by `edgerec prepare`.
    #[arg(long)]
    data: PathBuf,
    /// `time`: the last days are the test; `leave-one-out`: each user's last step.
    #[arg(long, value_enum, default_value = "time")]
    by: By,
    /// Length of the validation window in days (time split; default: the 80-90% quantile of events).
    #[arg(long)]
    valid_days: Option<f64>,
    /// Length of the test window in days (time split; default: the last 10% of events).
    #[arg(long)]
    test_days: Option<f64>,
}

/// Splits and writes `DATA/split/`, printing the split's table.
pub fn run(args: Args) -> Result<()> {
    let protocol = match args.by {
        By::Time => Protocol::Time { valid_days: args.valid_days, test_days: args.test_days },
        By::LeaveOneOut => Protocol::LeaveOneOut,
    };
    let data_dir = &args.data;
    if let Ok(existing) = Split::read(data_dir)
        && existing.meta.source != "edgerec split"
    {
        bail!(
            "--data {}: this data set came split by its source ({}); train and eval use that split as it is",
            data_dir.display(),
            existing.meta.source
        );
    }
    let events = data::read_events(data_dir)?;
    let split = data::split::split_events(&events, protocol)?;
    split.write(data_dir)?;
    println!("{}", split.table());
    println!("wrote {}", data_dir.join(SPLIT_DIR).display());
    Ok(())
}
