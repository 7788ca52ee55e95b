//! The `edgerec` subcommands that are not `serve`: thin shells over
//! `edgerec-core` calls that print what they did.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::{BUNDLE_FORMAT, EncoderInfo, ITEMS_FILE, Manifest, write_bundle};
use edgerec_core::data::split::{Protocol, SPLIT_DIR, Split};
use edgerec_core::data::{self, CatalogItem, Prepared};
use edgerec_core::encoder::Encoder;
use edgerec_core::eval::{
    self, Boosted, Dataset, Embeddings, ItemKnn, Popularity, Random, RecentPopularity, Report, ScoreMatrix, Scorer,
};
use edgerec_core::index::{IndexItem, ItemIndex};
use edgerec_core::search::{BM25_FILE, Bm25};
use edgerec_core::tower::{ITEM_TOWER_FILE, MAX_HISTORY, USER_TOWER_FILE, UserTower};
use edgerec_core::train::{self, EpochStats, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

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

/// `edgerec prepare`: clean raw logs, write catalog, events and report.
pub fn prepare(format: Format, mapping: Option<&Path>, inputs: &[PathBuf], out: &Path) -> Result<Prepared> {
    let started = Instant::now();
    if mapping.is_some() && format != Format::Csv {
        bail!("--mapping is only read with --format csv (the other formats have built-in mappings)");
    }
    let prepared = match format {
        Format::OnlineRetail => data::prepare_online_retail(inputs)?,
        Format::AmazonJsonl => data::mapped::prepare_amazon(inputs)?,
        Format::Recbole => data::recbole::prepare_recbole(inputs)?,
        Format::Csv => {
            let path = mapping.context("--format csv needs --mapping FILE (which column is user, item, time, ...)")?;
            data::mapped::prepare_mapped(&data::mapped::Mapping::read(path)?, inputs)?
        }
    };
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
    Ok(prepared)
}

/// `edgerec split`: cut the event log into train / validation / test.
pub fn split(data_dir: &Path, protocol: Protocol) -> Result<Split> {
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
    Ok(split)
}

/// Pretrained text embeddings of `texts`, cached in
/// `CACHE/embeddings/<name>.<encoder>.f32` (keyed by the encoder's and the
/// texts' sha256, so changed texts or a changed model re-encode).
pub fn text_embeddings(
    cache_dir: &Path,
    name: &str,
    texts: &[&str],
    encoder_dir: &Path,
    batch_size: usize,
) -> Result<(Vec<f32>, EncoderInfo)> {
    let config = edgerec_core::encoder::EncoderConfig::read(encoder_dir)?;
    let mut hasher = sha2::Sha256::new();
    use sha2::Digest;
    for text in texts {
        hasher.update(text.as_bytes());
        hasher.update([0u8]);
    }
    let key = format!("{}-{}", config.onnx_sha256, hex::encode(hasher.finalize()));
    let dir = cache_dir.join("embeddings");
    let cache = dir.join(format!("{name}.{}.f32", config.name));
    let key_file = dir.join(format!("{name}.{}.key", config.name));
    if std::fs::read_to_string(&key_file).is_ok_and(|k| k.trim() == key)
        && let Ok(bytes) = std::fs::read(&cache)
        && bytes.len() == texts.len() * config.dims * 4
    {
        let values = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        return Ok((values, config.info()));
    }
    let started = Instant::now();
    let encoder = Encoder::load(encoder_dir)?;
    let bar = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template("encoding {bar:40} {pos}/{len} texts  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut values = Vec::with_capacity(texts.len() * config.dims);
    for chunk in texts.chunks(batch_size.max(1)) {
        for embedding in encoder.encode_batch(chunk)? {
            values.extend(embedding);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    println!(
        "encoded {} {name} with {} in {:.1?} ({:.0}/s)",
        texts.len(),
        config.name,
        started.elapsed(),
        texts.len() as f64 / started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&cache, bytes).with_context(|| format!("writing {}", cache.display()))?;
    std::fs::write(&key_file, key).with_context(|| format!("writing {}", key_file.display()))?;
    Ok((values, encoder.info()))
}

fn catalog_texts(catalog: &[CatalogItem]) -> Vec<&str> {
    catalog.iter().map(|c| c.text.as_str()).collect()
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

/// The BM25 index of `/api/search` over the titles of `items.bin`,
/// numbered like it.
fn title_index(items_bin: &[u8]) -> Result<Vec<u8>> {
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

/// `edgerec index`: embed every catalog item's text and write a zero-shot
/// bundle (the untrained towers: text embeddings, recency pooling).
pub fn index(data_dir: &Path, encoder_dir: &Path, out: &Path, batch_size: usize) -> Result<Manifest> {
    let (name, version) = bundle_name_version(out)?;
    let catalog = data::read_catalog(data_dir)?;
    let events = data::read_events(data_dir)?;
    if catalog.is_empty() {
        bail!("--data {}: the catalog is empty; nothing to index", data_dir.display());
    }
    let (text, info) = text_embeddings(data_dir, "catalog", &catalog_texts(&catalog), encoder_dir, batch_size)?;
    let items = index_items(&catalog, &events, &text, info.dims);
    let bytes = ItemIndex::encode(&items)?;
    let manifest = new_manifest(name, version, info.dims, info, items.len());
    write_bundle(out, manifest, &[(ITEMS_FILE, &bytes), (BM25_FILE, &title_index(&bytes)?)])?;
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
    Ok(manifest)
}

fn index_items(catalog: &[CatalogItem], events: &[data::Event], vectors: &[f32], dims: usize) -> Vec<IndexItem> {
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

pub(crate) fn new_manifest(name: String, version: String, dims: usize, encoder: EncoderInfo, items: usize) -> Manifest {
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
    }
}

/// `metrics.json` of a trained bundle.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainMetrics {
    /// The settings used.
    pub config: TrainConfig,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Training examples per epoch.
    pub examples: usize,
    /// Mean examples per second over the trained epochs.
    pub examples_per_second: f64,
    /// Wall time of training (encoding excluded), seconds.
    pub train_seconds: f64,
    /// Epoch 0 (zero-shot) and every trained epoch.
    pub epochs: Vec<EpochStats>,
}

/// File name of the training history inside a trained bundle.
pub const METRICS_FILE: &str = "metrics.json";

/// `edgerec train`: fine-tune the two towers and write a bundle.
pub fn train(data_dir: &Path, encoder_dir: &Path, out: &Path, config: &TrainConfig) -> Result<Manifest> {
    let (name, version) = bundle_name_version(out)?;
    let dataset = Dataset::load(data_dir)?;
    let events = data::read_events(data_dir)?;
    let (text, info) = text_embeddings(data_dir, "catalog", &catalog_texts(&dataset.catalog), encoder_dir, 32)?;
    println!("{}", dataset.split.table());

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut recent_loss = 0.0;
    let trained = train::train(&dataset, &text, info.dims, config, |p| match p {
        Progress::Start { examples, steps } => {
            bar.suspend(|| {
                println!("{examples} examples per epoch, {steps} steps of {}", config.batch_size.min(examples))
            });
            bar.set_length(steps as u64);
        }
        Progress::Step { epoch, step, loss } => {
            recent_loss = if step == 1 { loss } else { 0.9 * recent_loss + 0.1 * loss };
            bar.set_prefix(epoch.to_string());
            bar.set_position(step as u64);
            bar.set_message(format!("loss {recent_loss:.3}"));
        }
        Progress::Epoch(e) => {
            bar.suspend(|| println!(
                "epoch {:>2}  loss {}  valid Recall@20 {:.4}  NDCG@10 {:.4}  cold Recall@20 {:.4}  {:.1}s  {:.0} examples/s",
                e.epoch,
                e.loss.map_or("  -   ".into(), |l| format!("{l:.4}")),
                e.valid.all.recall_20,
                e.valid.all.ndcg_10,
                e.valid.cold.recall_20,
                e.seconds,
                e.examples_per_second
            ));
            bar.set_position(0);
        }
    })?;
    bar.finish_and_clear();

    let items = index_items(&dataset.catalog, &events, &trained.item_vectors, config.dims);
    let items_bytes = ItemIndex::encode(&items)?;
    let trained_epochs: Vec<&EpochStats> = trained.history.iter().filter(|e| e.epoch > 0).collect();
    let metrics = TrainMetrics {
        config: config.clone(),
        best_epoch: trained.best_epoch,
        examples: trained.examples,
        examples_per_second: trained_epochs.iter().map(|e| e.examples_per_second).sum::<f64>()
            / trained_epochs.len().max(1) as f64,
        train_seconds: trained.seconds,
        epochs: trained.history.clone(),
    };
    let metrics_bytes = serde_json::to_vec_pretty(&metrics)?;
    let best = &trained.history[trained.best_epoch].valid;
    let mut manifest = new_manifest(name, version, config.dims, info, items.len());
    for (key, value) in [
        ("valid_recall@20", best.all.recall_20),
        ("valid_ndcg@10", best.all.ndcg_10),
        ("examples_per_second", metrics.examples_per_second),
    ] {
        manifest.metrics.insert(key.into(), value.into());
    }
    manifest.metrics.insert("best_epoch".into(), trained.best_epoch.into());
    write_bundle(
        out,
        manifest,
        &[
            (ITEMS_FILE, &items_bytes),
            (BM25_FILE, &title_index(&items_bytes)?),
            (USER_TOWER_FILE, &trained.user_tower.to_bytes()),
            (ITEM_TOWER_FILE, &trained.item_tower.to_bytes()),
            (METRICS_FILE, &metrics_bytes),
        ],
    )?;
    let manifest = Manifest::verify(out)?;
    println!(
        "trained in {:.1}s ({:.0} examples/s); best epoch {} (valid Recall@20 {:.4}, zero-shot {:.4}); bundle {} {} at {}",
        trained.seconds,
        metrics.examples_per_second,
        trained.best_epoch,
        best.all.recall_20,
        trained.history[0].valid.all.recall_20,
        manifest.name,
        manifest.version,
        out.display()
    );
    Ok(manifest)
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

/// `edgerec eval` options.
pub struct EvalOptions<'a> {
    /// Prepared and split data.
    pub data: &'a Path,
    /// The bundle to evaluate.
    pub model: &'a Path,
    /// Where encoders live (for the zero-shot baseline).
    pub encoders: &'a Path,
    /// Peer scores: (name, score file).
    pub external: &'a [(String, PathBuf)],
    /// Recent-popularity window.
    pub recent_days: i64,
    /// HTML report path.
    pub report: &'a Path,
    /// Print JSON on stdout (the table goes to stderr).
    pub json: bool,
    /// Exploration boosts for new items to evaluate on top of the bundle.
    pub new_item_boosts: &'a [f32],
    /// Evaluate on the validation cases (to choose settings) instead of the test cases.
    pub validation: bool,
}

/// `edgerec eval`: test metrics of the bundle, the baselines and any peers.
pub fn eval(opts: &EvalOptions) -> Result<Vec<(String, Report)>> {
    let dataset = Dataset::load(opts.data)?;
    let manifest = Manifest::verify(opts.model)?;
    let index = ItemIndex::read(&opts.model.join(ITEMS_FILE))?;
    let tower = load_user_tower(opts.model, &manifest)?;
    let mut bundle_vectors = Vec::with_capacity(dataset.items() * manifest.dims);
    for item in &dataset.catalog {
        let i = index.find(&item.item_id).with_context(|| {
            format!(
                "--model {}: item `{}` of the catalog is not in the bundle; train or index it on this --data",
                opts.model.display(),
                item.item_id
            )
        })?;
        bundle_vectors.extend(index.embedding(i));
    }
    let trained = manifest.files.contains_key(USER_TOWER_FILE);
    let bundle_name = if trained { "two-tower".to_string() } else { format!("{}/{}", manifest.name, manifest.version) };
    let encoder_dir = encoder_dir(&manifest.encoder.name, opts.encoders)?;
    let (text, info) = text_embeddings(opts.data, "catalog", &catalog_texts(&dataset.catalog), &encoder_dir, 32)?;

    let mut models: Vec<(String, Box<dyn Scorer>)> = vec![
        ("random".into(), Box::new(Random { seed: 7 })),
        ("popularity".into(), Box::new(Popularity::fit(&dataset))),
        ("recent-popularity".into(), Box::new(RecentPopularity::fit(&dataset, opts.recent_days))),
        ("item-knn".into(), Box::new(ItemKnn::fit(&dataset, 100))),
        ("zero-shot".into(), Box::new(Embeddings { items: text, tower: UserTower::recency(info.dims, MAX_HISTORY) })),
    ];
    for (name, path) in opts.external {
        models.push((name.clone(), Box::new(ScoreMatrix::read(path, dataset.test.len(), dataset.items())?)));
    }
    for &boost in opts.new_item_boosts {
        let inner = Embeddings { items: bundle_vectors.clone(), tower: tower.clone() };
        let boosted = Boosted { inner, new: dataset.cold.clone(), boost };
        models.push((format!("{bundle_name} +{boost} new"), Box::new(boosted)));
    }
    models.push((bundle_name, Box::new(Embeddings { items: bundle_vectors, tower })));

    let cases = if opts.validation { &dataset.valid } else { &dataset.test };
    if opts.validation && !opts.external.is_empty() {
        bail!("--external scores cover the test cases; leave out --validation");
    }
    let mut results = Vec::new();
    for (name, scorer) in &models {
        let started = Instant::now();
        let report = eval::evaluate(scorer.as_ref(), cases, &dataset.cold);
        tracing::debug!("{name}: evaluated in {:.1?}", started.elapsed());
        results.push((name.clone(), report));
    }

    let table = metrics_table(&results);
    let mut json = serde_json::Map::new();
    for (name, r) in &results {
        json.insert(name.clone(), r.to_json());
    }
    let json = serde_json::Value::Object(json);
    if opts.json {
        eprintln!("{table}");
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{table}");
    }
    let training: Option<TrainMetrics> = manifest
        .files
        .contains_key(METRICS_FILE)
        .then(|| std::fs::read(opts.model.join(METRICS_FILE)).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let protocol = format!(
        "{} ({}), {} {} cases",
        dataset.split.meta.by,
        dataset.split.meta.source,
        cases.len(),
        if opts.validation { "validation" } else { "test" }
    );
    let html = edgerec_core::report::render(&edgerec_core::report::ReportInput {
        data: &opts.data.display().to_string(),
        protocol: &protocol,
        models: &results,
        training: training.as_ref().map(|t| t.epochs.as_slice()),
    })?;
    if let Some(parent) = opts.report.parent() {
        std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    std::fs::write(opts.report, html).with_context(|| opts.report.display().to_string())?;
    let json_path = opts.report.with_extension("json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)? + "\n")?;
    let note = format!("report: {} (metrics: {})", opts.report.display(), json_path.display());
    if opts.json {
        eprintln!("{note}")
    } else {
        println!("{note}")
    }
    Ok(results)
}

/// The metrics of several models as an aligned table.
pub fn metrics_table(results: &[(String, Report)]) -> String {
    let w = results.iter().map(|(n, _)| n.len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:<w$}", "model");
    for (header, _, _) in eval::columns() {
        out += &format!("  {header:>9}");
    }
    for (name, r) in results {
        out += &format!("\n{name:<w$}");
        for (header, value, decimals) in eval::columns() {
            out += &format!("  {:>width$.decimals$}", value(r), width = header.len().max(9));
        }
    }
    out + "\n"
}

/// `edgerec export`: the split in plain files for peer libraries.
pub fn export(data_dir: &Path, out: &Path) -> Result<()> {
    let dataset = Dataset::load(data_dir)?;
    eval::export(&dataset, out)?;
    println!(
        "exported {} items, {} training users, {} test cases to {}",
        dataset.items(),
        dataset.split.train.len(),
        dataset.test.len(),
        out.display()
    );
    Ok(())
}
