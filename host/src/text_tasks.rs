//! `edgerec eval-search`, `edgerec train-ads` and `edgerec eval-ads`: the
//! offline side of the functions that encode text at request time.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgerec_core::ads::fit::{self, AdMetrics, FitConfig, Part, Variant};
use edgerec_core::ads::{AD_MODEL_FILE, AdModel};
use edgerec_core::bundle::{Manifest, write_bundle};
use edgerec_core::search::Bm25;
use edgerec_core::search::relevance::{self, SearchReport};

use crate::commands::{bundle_name_version, encoder_dir, new_manifest, text_embeddings};

/// `edgerec eval-search`: BM25, semantic and hybrid nDCG@10 on graded
/// judgments (Home Depot), on held-out queries.
pub fn eval_search(data: &Path, encoder: &Path, work: &Path, json: bool) -> Result<SearchReport> {
    let judgments = relevance::read_home_depot(data)?;
    if judgments.queries.is_empty() {
        bail!("--data {}: no query has two different grades; nothing to rank", data.display());
    }
    let bm25 = Bm25::build(&judgments.titles);
    let titles: Vec<&str> = judgments.titles.iter().map(String::as_str).collect();
    let queries: Vec<&str> = judgments.queries.iter().map(|q| q.text.as_str()).collect();
    let (title_vectors, info) = text_embeddings(work, "titles", &titles, encoder, 64)?;
    let (query_vectors, _) = text_embeddings(work, "queries", &queries, encoder, 64)?;
    let report = relevance::evaluate(&judgments, &bm25, &title_vectors, &query_vectors, info.dims);
    let table = format!(
        "Home Depot search relevance, nDCG@10 on {} held-out queries ({} used to fit the linear weight, {} without signal left out)\n\
         {:<38} {:>8}\n{:<38} {:>8.4}\n{:<38} {:>8.4}\n{:<38} {:>8.4}\n{:<38} {:>8.4}",
        report.test_queries,
        report.fit_queries,
        report.uninformative_queries,
        "method",
        "nDCG@10",
        "bm25",
        report.bm25,
        format!("semantic ({})", info.name),
        report.semantic,
        "hybrid, RRF (k = 60)",
        report.hybrid_rrf,
        format!("hybrid, linear (w = {:.2})", report.linear_semantic_weight),
        report.hybrid_linear,
    );
    if json {
        eprintln!("{table}");
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{table}");
    }
    Ok(report)
}

/// The variants of the Upworthy file with their split parts.
struct AdData {
    variants: Vec<Variant>,
    parts: Vec<Part>,
    dropped: usize,
}

fn read_ads(data: &Path) -> Result<AdData> {
    let (variants, dropped) = fit::read_upworthy(data)?;
    if variants.is_empty() {
        bail!("--data {}: no usable variant (impressions > 0, clicks <= impressions, a headline)", data.display());
    }
    let parts = variants.iter().map(|v| Part::of(&v.test)).collect();
    Ok(AdData { variants, parts, dropped })
}

impl AdData {
    fn select(&self, part: Part) -> Vec<usize> {
        (0..self.variants.len()).filter(|&i| self.parts[i] == part).collect()
    }
}

/// `edgerec train-ads`: fit the ad-click model on the training tests,
/// choose its L2 penalty on the validation tests, write the ad bundle, and
/// evaluate it on the held-out tests against the baselines.
pub fn train_ads(data: &Path, encoder: &Path, out: &Path, work: &Path) -> Result<Manifest> {
    let (name, version) = bundle_name_version(out)?;
    let ads = read_ads(data)?;
    let texts: Vec<&str> = ads.variants.iter().map(|v| v.text.as_str()).collect();
    let (vectors, info) = text_embeddings(work, "headlines", &texts, encoder, 64)?;
    let rows: Vec<&[f32]> = vectors.chunks_exact(info.dims).collect();
    let pick = |idx: &[usize]| -> (Vec<&Variant>, Vec<&[f32]>) {
        (idx.iter().map(|&i| &ads.variants[i]).collect(), idx.iter().map(|&i| rows[i]).collect())
    };
    let (train_v, train_x) = pick(&ads.select(Part::Train));
    let (valid_v, valid_x) = pick(&ads.select(Part::Valid));
    let mut best: Option<(f64, f32, AdModel)> = None;
    for l2 in [1e-5f32, 1e-4, 1e-3, 1e-2] {
        let model = fit::fit(&train_v, &train_x, FitConfig { l2, ..FitConfig::default() });
        let predictions: Vec<f64> =
            valid_v.iter().zip(&valid_x).map(|(v, x)| f64::from(model.probability(x, &v.text, None))).collect();
        let m = fit::metrics(&valid_v, &predictions);
        println!("l2 {l2:e}: validation pairwise accuracy {:.4}, AUC {:.4}", m.pairwise_accuracy, m.auc);
        if best.as_ref().is_none_or(|(score, _, _)| m.pairwise_accuracy + m.auc > *score) {
            best = Some((m.pairwise_accuracy + m.auc, l2, model));
        }
    }
    let (_, l2, model) = best.context("no model was fitted")?;
    println!(
        "chose l2 {l2:e}; {} training, {} validation, {} test variants ({} rows dropped)",
        train_v.len(),
        valid_v.len(),
        ads.select(Part::Test).len(),
        ads.dropped
    );
    let mut manifest = new_manifest(name, version, info.dims, info, 0);
    manifest.metrics.insert("l2".into(), f64::from(l2).into());
    write_bundle(out, manifest, &[(AD_MODEL_FILE, &model.to_bytes())])?;
    export_variants(&ads, &work.join("variants.csv"))?;
    Manifest::verify(out).map_err(Into::into)
}

/// Writes every variant with its part, for peer baselines (`scripts/peers.py ads`).
fn export_variants(ads: &AdData, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| path.display().to_string())?;
    w.write_record(["row", "part", "test", "headline", "impressions", "clicks"])?;
    for (i, (v, p)) in ads.variants.iter().zip(&ads.parts).enumerate() {
        w.write_record([
            &i.to_string(),
            p.as_str(),
            &v.test,
            &v.text,
            &v.impressions.to_string(),
            &v.clicks.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// `edgerec eval-ads` options.
pub struct EvalAdsOptions<'a> {
    /// The Upworthy CSV.
    pub data: &'a Path,
    /// The ad bundle.
    pub model: &'a Path,
    /// Where encoders live.
    pub encoders: &'a Path,
    /// Embedding cache.
    pub work: &'a Path,
    /// Peer predictions: (name, CSV of `row,p`).
    pub external: &'a [(String, PathBuf)],
    /// HTML report path.
    pub report: &'a Path,
    /// Print JSON on stdout.
    pub json: bool,
}

/// `edgerec eval-ads`: held-out metrics of the ad bundle, a constant, a
/// length-only model and any peers.
pub fn eval_ads(opts: &EvalAdsOptions) -> Result<Vec<(String, AdMetrics)>> {
    let manifest = Manifest::verify(opts.model)?;
    let model = AdModel::from_bytes(&std::fs::read(opts.model.join(AD_MODEL_FILE))?)?;
    let ads = read_ads(opts.data)?;
    let encoder = encoder_dir(&manifest.encoder.name, opts.encoders)?;
    let texts: Vec<&str> = ads.variants.iter().map(|v| v.text.as_str()).collect();
    let (vectors, info) = text_embeddings(opts.work, "headlines", &texts, &encoder, 64)?;
    let rows: Vec<&[f32]> = vectors.chunks_exact(info.dims).collect();
    let train: Vec<usize> = ads.select(Part::Train);
    let test: Vec<usize> = ads.select(Part::Test);
    let test_v: Vec<&Variant> = test.iter().map(|&i| &ads.variants[i]).collect();
    let train_v: Vec<&Variant> = train.iter().map(|&i| &ads.variants[i]).collect();
    let train_x: Vec<&[f32]> = train.iter().map(|&i| rows[i]).collect();

    let mut results = Vec::new();
    let ctr = train_v.iter().map(|v| v.clicks).sum::<f64>() / train_v.iter().map(|v| v.impressions).sum::<f64>();
    results.push(("constant".to_string(), fit::metrics(&test_v, &vec![ctr; test.len()])));
    let length = fit::fit(&train_v, &train_x, FitConfig { use_embedding: false, ..FitConfig::default() });
    let predict = |m: &AdModel| -> Vec<f64> {
        test.iter().map(|&i| f64::from(m.probability(rows[i], &ads.variants[i].text, None))).collect()
    };
    results.push(("headline length".to_string(), fit::metrics(&test_v, &predict(&length))));
    for (name, path) in opts.external {
        let predictions = read_predictions(path, ads.variants.len())?;
        let p: Vec<f64> = test.iter().map(|&i| predictions[i]).collect();
        results.push((name.clone(), fit::metrics(&test_v, &p)));
    }
    results.push((format!("{} {}", manifest.name, manifest.version), fit::metrics(&test_v, &predict(&model))));

    let mut table = format!(
        "Upworthy headline tests: {} held-out variants in {} tests\n{:<24} {:>9} {:>8} {:>9} {:>11} {:>7}\n",
        test.len(),
        test_v.iter().map(|v| v.test.as_str()).collect::<std::collections::BTreeSet<_>>().len(),
        "model",
        "pairwise",
        "AUC",
        "log loss",
        "calib. err",
        "pairs"
    );
    for (name, m) in &results {
        table += &format!(
            "{name:<24} {:>9.4} {:>8.4} {:>9.5} {:>11.5} {:>7}\n",
            m.pairwise_accuracy, m.auc, m.log_loss, m.calibration_error, m.pairs
        );
    }
    let json: serde_json::Map<String, serde_json::Value> =
        results.iter().map(|(n, m)| Ok((n.clone(), serde_json::to_value(m)?))).collect::<Result<_>>()?;
    if opts.json {
        eprint!("{table}");
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{table}");
    }
    if let Some(parent) = opts.report.parent() {
        std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    std::fs::write(opts.report, edgerec_core::report::render_ads(&opts.data.display().to_string(), &results)?)
        .with_context(|| opts.report.display().to_string())?;
    std::fs::write(opts.report.with_extension("json"), serde_json::to_string_pretty(&json)?)?;
    println!("report: {}", opts.report.display());
    Ok(results)
}

/// Reads `row,p` predictions (one per variant of the exported file).
fn read_predictions(path: &Path, rows: usize) -> Result<Vec<f64>> {
    let mut out = vec![f64::NAN; rows];
    let mut r = csv::Reader::from_path(path).with_context(|| format!("--external {}", path.display()))?;
    for record in r.records() {
        let record = record?;
        let row: usize = record.get(0).unwrap_or("").parse().with_context(|| format!("{}: bad row", path.display()))?;
        let p: f64 = record.get(1).unwrap_or("").parse().with_context(|| format!("{}: bad p", path.display()))?;
        if row >= rows || !(0.0..=1.0).contains(&p) {
            bail!("{}: row {row} / p {p} out of range", path.display());
        }
        out[row] = p;
    }
    if out.iter().any(|p| p.is_nan()) {
        bail!("{}: predictions missing for some rows; predict every row of variants.csv", path.display());
    }
    Ok(out)
}
