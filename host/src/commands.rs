//! The `edgerec` subcommands that are not `serve`: thin shells over
//! `edgerec-core` calls that print what they did.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::{BUNDLE_FORMAT, ITEMS_FILE, Manifest, write_bundle};
use edgerec_core::data::{self, Prepared};
use edgerec_core::encoder::Encoder;
use edgerec_core::index::{IndexItem, ItemIndex};
use indicatif::{ProgressBar, ProgressStyle};

/// Input formats `edgerec prepare` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// UCI Online Retail invoice lines (CSV, optionally gzipped).
    OnlineRetail,
}

/// `edgerec prepare`: clean raw logs, write catalog, events and report.
pub fn prepare(format: Format, inputs: &[PathBuf], out: &Path) -> Result<Prepared> {
    let started = Instant::now();
    let prepared = match format {
        Format::OnlineRetail => data::prepare_online_retail(inputs)?,
    };
    data::write_prepared(out, &prepared).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", prepared.report.table());
    println!(
        "wrote {}, {} and {} to {} in {:.1?}",
        data::CATALOG_FILE,
        data::EVENTS_FILE,
        data::REPORT_FILE,
        out.display(),
        started.elapsed()
    );
    Ok(prepared)
}

/// Resolves `--model`: a directory holding `encoder.json`, or a name under
/// `encoders_dir`.
pub fn encoder_dir(model: &str, encoders_dir: &Path) -> Result<PathBuf> {
    let direct = PathBuf::from(model);
    let dir = if direct.join(edgerec_core::encoder::ENCODER_FILE).exists() { direct } else { encoders_dir.join(model) };
    if !dir.join(edgerec_core::encoder::ENCODER_FILE).exists() {
        bail!(
            "--model {model}: no encoder at {} (expected {}); run scripts/setup to fetch it",
            dir.display(),
            edgerec_core::encoder::ENCODER_FILE
        );
    }
    Ok(dir)
}

/// Splits `models/<name>/<version>` into name and version.
pub fn bundle_name_version(out: &Path) -> Result<(String, String)> {
    let part = |p: Option<&std::ffi::OsStr>| p.map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
    match (part(out.parent().and_then(Path::file_name)), part(out.file_name())) {
        (Some(name), Some(version)) if !version.starts_with('.') => Ok((name, version)),
        _ => bail!("--out {}: expected models/<name>/<version>, e.g. models/online-retail/1", out.display()),
    }
}

/// `edgerec index`: embed every catalog title and write a bundle.
pub fn index(data_dir: &Path, encoder_dir: &Path, out: &Path, batch_size: usize) -> Result<Manifest> {
    let (name, version) = bundle_name_version(out)?;
    let catalog = data::read_catalog(data_dir)?;
    let events = data::read_events(data_dir)?;
    if catalog.is_empty() {
        bail!("--data {}: the catalog is empty; nothing to index", data_dir.display());
    }
    let started = Instant::now();
    let encoder = Encoder::load(encoder_dir)?;
    let loaded = started.elapsed();

    let bar = ProgressBar::new(catalog.len() as u64).with_style(
        ProgressStyle::with_template("encoding {bar:40} {pos}/{len} titles  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let popularity = data::distinct_buyers(&events);
    let mut items = Vec::with_capacity(catalog.len());
    let encode_started = Instant::now();
    for chunk in catalog.chunks(batch_size.max(1)) {
        let titles: Vec<&str> = chunk.iter().map(|c| c.title.as_str()).collect();
        let embeddings = encoder.encode_batch(&titles)?;
        for (item, embedding) in chunk.iter().zip(embeddings) {
            items.push(IndexItem {
                id: item.item_id.clone(),
                title: item.title.clone(),
                popularity: popularity.get(item.item_id.as_str()).copied().unwrap_or(0.0),
                embedding,
            });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let encode_time = encode_started.elapsed();

    let bytes = ItemIndex::encode(&items)?;
    let info = encoder.info();
    let manifest = Manifest {
        format: BUNDLE_FORMAT,
        name,
        version,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        dims: info.dims,
        encoder: info,
        items: items.len(),
        metrics: Default::default(),
        files: Default::default(),
    };
    write_bundle(out, manifest, &[(ITEMS_FILE, &bytes)])?;
    let manifest = Manifest::verify(out)?;
    println!(
        "indexed {} items with {} ({} dims) in {:.1?} ({:.0} titles/s; model load {:.1?}); bundle {} {} at {} ({:.1} MB)",
        manifest.items,
        manifest.encoder.name,
        manifest.dims,
        encode_time,
        manifest.items as f64 / encode_time.as_secs_f64(),
        loaded,
        manifest.name,
        manifest.version,
        out.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(manifest)
}
