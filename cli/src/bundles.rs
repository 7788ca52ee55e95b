//! Writing bundles: where `--out` says they go, what their manifest says,
//! and the files every catalog bundle carries (item index, BM25).

use std::path::Path;

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::{BUNDLE_FORMAT, EncoderInfo, Manifest};
use edgerec_core::data::{self, CatalogItem};
use edgerec_core::index::{IndexItem, ItemIndex};
use edgerec_core::search::Bm25;
use edgerec_core::tower::{MAX_HISTORY, USER_TOWER_FILE, UserTower};

/// The BM25 index of `/api/search` over the titles of `items.bin`,
/// numbered like it.
pub fn title_index(items_bin: &[u8]) -> Result<Vec<u8>> {
    let index = ItemIndex::from_bytes(items_bin)?;
    let titles: Vec<&str> = (0..index.len()).map(|i| index.title(i)).collect();
    Ok(Bm25::build(&titles).to_bytes())
}

/// Splits `models/<name>/<version>` into name and version.
pub fn bundle_name_version(out: &Path) -> Result<(String, String)> {
    let part = |p: Option<&std::ffi::OsStr>| p.map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
    match (part(out.parent().and_then(Path::file_name)), part(out.file_name())) {
        (Some(name), Some(version)) if !version.starts_with('.') => Ok((name, version)),
        _ => bail!("--out {}: expected models/<name>/<version>, e.g. models/online-retail/1", out.display()),
    }
}

/// Index entries of the catalog: text (or tower) vectors and popularity.
pub fn index_items(catalog: &[CatalogItem], events: &[data::Event], vectors: &[f32], dims: usize) -> Vec<IndexItem> {
    let popularity = data::distinct_buyers(events);
    catalog
        .iter()
        .zip(vectors.chunks_exact(dims))
        .map(|(item, v)| IndexItem {
            id: item.item_id.clone(),
            title: item.title.clone(),
            popularity: popularity.get(item.item_id.as_str()).copied().unwrap_or(0.0),
            embedding: v.to_vec(),
        })
        .collect()
}

/// A manifest for a new bundle (files are filled in when it is written).
pub fn new_manifest(name: String, version: String, dims: usize, encoder: EncoderInfo, items: usize) -> Manifest {
    Manifest {
        format: BUNDLE_FORMAT,
        name,
        version,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        dims,
        encoder,
        items,
        metrics: Default::default(),
        files: Default::default(),
        lineage: None,
    }
}

/// Loads a bundle's user tower, or the untrained recency tower when it has none.
pub fn load_user_tower(bundle: &Path, manifest: &Manifest) -> Result<UserTower> {
    if manifest.files.contains_key(USER_TOWER_FILE) {
        let path = bundle.join(USER_TOWER_FILE);
        Ok(UserTower::from_bytes(&std::fs::read(&path).with_context(|| path.display().to_string())?)?)
    } else {
        Ok(UserTower::recency(manifest.dims, MAX_HISTORY))
    }
}
