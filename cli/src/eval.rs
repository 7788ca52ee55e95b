//! `edgerec eval`: full-ranking metrics of a bundle, the baselines and any
//! peer scores on the same split, a table, JSON and an HTML report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::coldstart::{NEW_ITEM_BOOST_METRIC, bundle_new_item_boost};
use edgerec_core::crowd::{CROWD_FILE, Crowd, WithCrowd};
use edgerec_core::eval::{
    self, Boosted, Dataset, Embeddings, ItemKnn, Popularity, Random, RecentPopularity, Report, ScoreMatrix, Scorer,
};
use edgerec_core::index::ItemIndex;
use edgerec_core::tower::{MAX_HISTORY, USER_TOWER_FILE, UserTower};

use crate::bundles::{load_crowd, load_user_tower};
use crate::encoding::{catalog_texts, encoder_dir, text_embeddings};
use crate::train::{METRICS_FILE, TrainMetrics};

/// Default recent-popularity window, days.
pub const RECENT_DAYS: i64 = edgerec_core::crowd::RECENT_DAYS;

/// `edgerec eval` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// A prepared, split data directory.
    #[arg(long)]
    data: PathBuf,
    /// The bundle to evaluate.
    #[arg(long)]
    model: PathBuf,
    /// Where encoders live (the zero-shot baseline uses the bundle's encoder).
    #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
    encoders: PathBuf,
    /// Print {"<model>": {"recall@10": ..}} JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Peer scores, NAME=FILE (f32 test cases × items, from `edgerec export`).
    #[arg(long, value_parser = crate::parse_external)]
    external: Vec<(String, PathBuf)>,
    /// More bundles trained on this --data, NAME=DIR, ranked side by side.
    #[arg(long, value_parser = crate::parse_external)]
    also: Vec<(String, PathBuf)>,
    /// Recent-popularity window in days.
    #[arg(long, default_value_t = RECENT_DAYS)]
    recent_days: i64,
    /// HTML report (default DATA/eval/report.html; metrics JSON beside it).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also evaluate the bundle with these boosts added to new items
    /// (no training events), e.g. `0.02,0.05,0.1`: the exploration
    /// boost of /api/recommend for cold-started items. Default: the boost
    /// the bundle serves, when its training chose one.
    #[arg(long, value_delimiter = ',')]
    new_item_boost: Vec<f32>,
    /// Score the validation cases instead of the test cases (to choose settings such as the boost).
    #[arg(long)]
    validation: bool,
}

/// Evaluates and prints; writes the report.
pub fn run(args: Args) -> Result<()> {
    let report = args.report.clone().unwrap_or_else(|| args.data.join("eval").join("report.html"));
    let opts = Options {
        data: &args.data,
        model: &args.model,
        encoders: &args.encoders,
        external: &args.external,
        also: &args.also,
        recent_days: args.recent_days,
        report: &report,
        json: args.json,
        new_item_boosts: &args.new_item_boost,
        validation: args.validation,
    };
    evaluate(&opts).map(|_| ())
}

/// What to evaluate, and where the report goes.
struct Options<'a> {
    /// Prepared and split data.
    data: &'a Path,
    /// The bundle to evaluate.
    model: &'a Path,
    /// Where encoders live (for the zero-shot baseline).
    encoders: &'a Path,
    /// Peer scores: (name, score file).
    external: &'a [(String, PathBuf)],
    /// More bundles: (name, directory).
    also: &'a [(String, PathBuf)],
    /// Recent-popularity window.
    recent_days: i64,
    /// HTML report path.
    report: &'a Path,
    /// Print JSON on stdout (the table goes to stderr).
    json: bool,
    /// Exploration boosts for new items to evaluate on top of the bundle.
    new_item_boosts: &'a [f32],
    /// Evaluate on the validation cases (to choose settings) instead of the test cases.
    validation: bool,
}

/// The baselines a shop could serve instead of a trained model.
pub fn baselines(data: &Dataset, recent_days: i64) -> Vec<(&'static str, Box<dyn Scorer>)> {
    vec![
        ("popularity", Box::new(Popularity::fit(data))),
        ("recent-popularity", Box::new(RecentPopularity::fit(data, recent_days))),
        ("item-knn", Box::new(ItemKnn::fit(data, edgerec_core::crowd::NEIGHBORS))),
    ]
}

/// A bundle as `/api/recommend` ranks with it: its item vectors in the
/// catalog's order, its user tower and its crowd prior, if it has one.
struct Served {
    manifest: Manifest,
    vectors: Vec<f32>,
    tower: UserTower,
    crowd: Option<Crowd>,
}

impl Served {
    /// Scores the catalog as the bundle serves it.
    fn scorer(&self) -> Box<dyn Scorer> {
        let towers = Embeddings { items: self.vectors.clone(), tower: self.tower.clone() };
        match &self.crowd {
            Some(crowd) => Box::new(WithCrowd { inner: towers, crowd: crowd.clone() }),
            None => Box::new(towers),
        }
    }
}

fn load_bundle(dataset: &Dataset, dir: &Path) -> Result<Served> {
    let manifest = Manifest::verify(dir)?;
    let index = ItemIndex::read(&dir.join(ITEMS_FILE))?;
    let tower = load_user_tower(dir, &manifest)?;
    let mut vectors = Vec::with_capacity(dataset.items() * manifest.dims);
    let mut same_order = index.len() == dataset.items();
    for (n, item) in dataset.catalog.iter().enumerate() {
        let i = index.find(&item.item_id).with_context(|| {
            format!(
                "{}: item `{}` of the catalog is not in the bundle; train or index it on this --data",
                dir.display(),
                item.item_id
            )
        })?;
        same_order &= i == n;
        vectors.extend(index.embedding(i));
    }
    let crowd = load_crowd(dir, &manifest)?;
    if crowd.as_ref().is_some_and(|c| !same_order || c.items() != index.len()) {
        bail!(
            "{}: its {CROWD_FILE} covers another catalog than this --data's; evaluate it on the data it was trained on",
            dir.display()
        );
    }
    Ok(Served { manifest, vectors, tower, crowd })
}

/// Test metrics of the bundle, the baselines and any peers.
fn evaluate(opts: &Options<'_>) -> Result<Vec<(String, Report)>> {
    let dataset = Dataset::load(opts.data)?;
    let bundle = load_bundle(&dataset, opts.model)?;
    let manifest = &bundle.manifest;
    let trained = manifest.files.contains_key(USER_TOWER_FILE);
    let bundle_name = if trained { "two-tower".to_string() } else { format!("{}/{}", manifest.name, manifest.version) };
    let encoder_dir = encoder_dir(&manifest.encoder.name, opts.encoders)?;
    let (text, info) = text_embeddings(opts.data, "catalog", &catalog_texts(&dataset.catalog), &encoder_dir, 32)?;

    // The test window is judged on what every model may learn from before
    // it (the training and validation windows, as `edgerec train` and the
    // peers' export do); validation on the training window alone.
    let before_test = if opts.validation { None } else { dataset.with_validation_window()? };
    let fitted = before_test.as_ref().unwrap_or(&dataset);
    let cold = &fitted.cold;
    let mut models: Vec<(String, Box<dyn Scorer>)> = vec![("random".into(), Box::new(Random { seed: 7 }))];
    models.extend(baselines(fitted, opts.recent_days).into_iter().map(|(name, scorer)| (name.to_string(), scorer)));
    models.push((
        "zero-shot".into(),
        Box::new(Embeddings { items: text, tower: UserTower::recency(info.dims, MAX_HISTORY) }),
    ));
    for (name, path) in opts.external {
        models.push((name.clone(), Box::new(ScoreMatrix::read(path, dataset.test.len(), dataset.items())?)));
    }
    for (name, dir) in opts.also {
        models.push((name.clone(), load_bundle(&dataset, dir)?.scorer()));
    }
    // Without --new-item-boost, the boost the bundle serves (if it chose one).
    let served_boost = manifest.metrics.get(NEW_ITEM_BOOST_METRIC).map(|_| bundle_new_item_boost(manifest));
    let boosts =
        if opts.new_item_boosts.is_empty() { Vec::from_iter(served_boost) } else { opts.new_item_boosts.to_vec() };
    for boost in boosts {
        let boosted = Boosted { inner: bundle.scorer(), new: cold.clone(), boost };
        models.push((format!("{bundle_name} +{boost} new"), Box::new(boosted)));
    }
    models.push((bundle_name, bundle.scorer()));

    let cases = if opts.validation { &dataset.valid } else { &dataset.test };
    if opts.validation && !opts.external.is_empty() {
        bail!("--external scores cover the test cases; leave out --validation");
    }
    let mut results = Vec::new();
    for (name, scorer) in &models {
        let started = Instant::now();
        let report = eval::evaluate(scorer.as_ref(), cases, cold);
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
fn metrics_table(results: &[(String, Report)]) -> String {
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
