//! Writing bundles: where `--out` says they go, what their manifest says,
//! and the files every catalog bundle carries (item index, BM25, and the
//! search re-ranker where the shop has judgments).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::{BUNDLE_FORMAT, EncoderInfo, Manifest};
use edgerec_core::crowd::{CROWD_FILE, Crowd};
use edgerec_core::data::{self, CatalogItem};
use edgerec_core::index::{IndexItem, ItemIndex};
use edgerec_core::search::{Bm25, RANKER_FILE, relevance};
use edgerec_core::tower::{ItemTower, MAX_HISTORY, USER_TOWER_FILE, UserTower, item_space};

use crate::encoding::text_embeddings;

/// The BM25 index of `/api/search` (`bm25.bin`) over the titles of the
/// item index, numbered like it.
pub fn title_index(index: &ItemIndex) -> Bm25 {
    let titles: Vec<&str> = (0..index.len()).map(|i| index.title(i)).collect();
    Bm25::build(&titles)
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

/// Loads a bundle's crowd prior (`crowd.bin`), if its training chose one.
pub fn load_crowd(bundle: &Path, manifest: &Manifest) -> Result<Option<Crowd>> {
    if !manifest.files.contains_key(CROWD_FILE) {
        return Ok(None);
    }
    let path = bundle.join(CROWD_FILE);
    Ok(Some(Crowd::from_bytes(&std::fs::read(&path).with_context(|| path.display().to_string())?)?))
}

/// `--judgments`: a shop's graded searches, which fit the search re-ranker.
#[derive(clap::Args)]
pub struct JudgmentArgs {
    /// Graded searches, `query,item_id,relevance` (any numeric scale,
    /// higher is better; .gz ok). Fits a search re-ranker on half of the
    /// queries and serves it (ranker.bin) if it ranks the other half better
    /// than hybrid fusion; without judgments, search serves fusion.
    #[arg(long, value_name = "CSV")]
    pub judgments: Option<PathBuf>,
}

/// What `--judgments` adds to a bundle: `ranker.bin` if the re-ranker won,
/// and the comparison for the manifest's `metrics.search`.
pub struct SearchFit {
    /// The fitted re-ranker, if it beat fusion on held-out queries.
    pub ranker: Option<Vec<u8>>,
    /// Held-out nDCG@10 of fusion and of the re-ranker, and the choice.
    pub metrics: serde_json::Value,
}

impl SearchFit {
    /// Records the comparison in the manifest and adds `ranker.bin` to the
    /// bundle's files if the re-ranker won.
    pub fn add_to<'a>(&'a self, manifest: &mut Manifest, files: &mut Vec<(&'a str, &'a [u8])>) {
        manifest.metrics.insert("search".into(), self.metrics.clone());
        if let Some(ranker) = &self.ranker {
            files.push((RANKER_FILE, ranker));
        }
    }
}

/// A shop's `--judgments` against its catalog (`texts[i]` is what item
/// `ids[i]` is known by): rows naming unknown items are skipped with a
/// warning; a file with nothing to learn from is an error.
pub fn read_shop_judgments(path: &Path, ids: &[&str], texts: Vec<String>) -> Result<relevance::Judgments> {
    let (judgments, unknown) =
        relevance::read_judgments(path, ids, texts).with_context(|| format!("--judgments {}", path.display()))?;
    if unknown > 0 {
        eprintln!(
            "warning: --judgments {}: {unknown} rows name items the catalog does not have; skipped",
            path.display()
        );
    }
    if judgments.queries.is_empty() {
        bail!(
            "--judgments {}: no query has two catalog items with different grades; nothing to learn from",
            path.display()
        );
    }
    Ok(judgments)
}

/// Fits the search re-ranker of a catalog bundle (its item `index` and
/// `bm25`, queries encoded by `encoder_dir` and, for a trained bundle, its
/// `item_tower`), if `--judgments` was given; prints the comparison.
pub fn fit_search(
    args: &JudgmentArgs,
    index: &ItemIndex,
    bm25: &Bm25,
    item_tower: Option<&ItemTower>,
    encoder_dir: &Path,
    cache_dir: &Path,
) -> Result<Option<SearchFit>> {
    let Some(path) = &args.judgments else { return Ok(None) };
    let ids: Vec<&str> = (0..index.len()).map(|i| index.id(i)).collect();
    let titles: Vec<String> = (0..index.len()).map(|i| index.title(i).to_string()).collect();
    let judgments = read_shop_judgments(path, &ids, titles)?;
    let texts: Vec<&str> = judgments.queries.iter().map(|q| q.text.as_str()).collect();
    let (encoded, info) = text_embeddings(cache_dir, "judged-queries", &texts, encoder_dir, 32)?;
    let queries: Vec<f32> = encoded.chunks_exact(info.dims).flat_map(|v| item_space(item_tower, v.to_vec())).collect();
    let items: Vec<f32> = (0..index.len()).flat_map(|i| index.embedding(i)).collect();
    let (report, ranker) =
        relevance::evaluate(&judgments, bm25, &items, &queries, index.dims()).with_context(|| {
            format!(
                "--judgments {}: {} informative queries, half of them held out to check the re-ranker",
                path.display(),
                judgments.queries.len()
            )
        })?;
    let kept = report.learned > report.hybrid_rrf;
    println!(
        "search on {} held-out judged queries, nDCG@10: fusion {:.4}, learned re-ranker {:.4}: {}",
        report.test_queries,
        report.hybrid_rrf,
        report.learned,
        if kept { "serving the re-ranker" } else { "serving fusion (the re-ranker did not rank better)" }
    );
    let ranker = kept.then(|| ranker.to_bytes());
    let metrics = serde_json::json!({
        "judged_queries": report.fit_queries + report.test_queries,
        "held_out_queries": report.test_queries,
        "fused_ndcg@10": report.hybrid_rrf,
        "learned_ndcg@10": report.learned,
        "ranker": kept,
    });
    Ok(Some(SearchFit { ranker, metrics }))
}
