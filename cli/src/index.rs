//! `edgerec index`: embed every catalog item's text and write a zero-shot
//! bundle (the untrained towers: text embeddings, recency pooling).

use std::path::PathBuf;

use anyhow::{Result, bail};
use edgerec_core::bundle::{ITEMS_FILE, Manifest, write_bundle};
use edgerec_core::data;
use edgerec_core::index::ItemIndex;
use edgerec_core::search::BM25_FILE;

use crate::bundles::{JudgmentArgs, bundle_name_version, fit_search, index_items, new_manifest, title_index};
use crate::encoding::{EncoderArgs, catalog_texts, text_embeddings};

/// `edgerec index` arguments.
#[derive(clap::Args)]
pub struct Args {
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
    #[command(flatten)]
    judgments: JudgmentArgs,
}

/// Writes the bundle and prints what it holds.
pub fn run(args: Args) -> Result<()> {
    let (name, version) = bundle_name_version(&args.out)?; // cheap argument checks before loading anything
    let encoder_dir = args.encoder.dir()?;
    let (data_dir, out) = (&args.data, &args.out);
    let catalog = data::read_catalog(data_dir)?;
    let events = data::read_events(data_dir)?;
    if catalog.is_empty() {
        bail!("--data {}: the catalog is empty; nothing to index", data_dir.display());
    }
    let (text, info) = text_embeddings(data_dir, "catalog", &catalog_texts(&catalog), &encoder_dir, args.batch_size)?;
    let items = index_items(&catalog, &events, &text, info.dims);
    let bytes = ItemIndex::encode(&items)?;
    let index = ItemIndex::from_bytes(&bytes)?;
    let bm25 = title_index(&index);
    let search = fit_search(&args.judgments, &index, &bm25, None, &encoder_dir, data_dir)?;
    let mut manifest = new_manifest(name, version, info.dims, info, items.len());
    let bm25 = bm25.to_bytes();
    let mut files: Vec<(&str, &[u8])> = vec![(ITEMS_FILE, &bytes), (BM25_FILE, &bm25)];
    if let Some(search) = &search {
        search.add_to(&mut manifest, &mut files);
    }
    write_bundle(out, manifest, &files)?;
    let manifest = Manifest::verify(out)?;
    println!(
        "bundle {} {} at {}: {} items, {} ({} dims), {:.1} MB",
        manifest.name,
        manifest.version,
        out.display(),
        manifest.items,
        manifest.encoder.name,
        manifest.dims,
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
