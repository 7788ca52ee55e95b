//! `edgerec eval-ads`: held-out metrics of an ad bundle, a constant, a
//! length-only model and any peers; a table, JSON and an HTML report with
//! the calibration plot.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgerec_core::ads::bandit::{self, Arm, Policy};
use edgerec_core::ads::fit::{self, AdMetrics, FitConfig, Part, Variant};
use edgerec_core::ads::{AD_MODEL_FILE, AdModel};
use edgerec_core::bundle::Manifest;

use crate::encoding::{encoder_dir, text_embeddings};
use crate::upworthy::read_ads;

/// `edgerec eval-ads` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The Upworthy CSV.
    #[arg(long)]
    data: PathBuf,
    /// The ad bundle.
    #[arg(long)]
    model: PathBuf,
    /// Where encoders live.
    #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
    encoders: PathBuf,
    /// Where embeddings are cached.
    #[arg(long, default_value = ".edgerec/work/ads")]
    work: PathBuf,
    /// Peer predictions, NAME=FILE (CSV `row,p` over WORK/variants.csv).
    #[arg(long, value_parser = crate::parse_external)]
    external: Vec<(String, PathBuf)>,
    /// HTML report with the calibration plot (JSON beside it).
    #[arg(long, default_value = ".edgerec/work/ads/report.html")]
    report: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Replay the held-out tests as bandits instead: clicks of a fixed-horizon
    /// A/B test, of bandits with no prior and with the model as their prior.
    #[arg(long)]
    simulate: bool,
    /// With --simulate: runs per test (seeds), averaged.
    #[arg(long, default_value_t = 5)]
    runs: u64,
}

/// Evaluates and prints; writes the report.
pub fn run(args: Args) -> Result<()> {
    if args.simulate {
        if args.runs == 0 || args.runs > 1000 {
            bail!("--runs {}: expected 1 to 1000", args.runs);
        }
        return simulate(&args);
    }
    evaluate(&Options {
        data: &args.data,
        model: &args.model,
        encoders: &args.encoders,
        work: &args.work,
        external: &args.external,
        report: &args.report,
        json: args.json,
    })
    .map(|_| ())
}

/// What to evaluate, and where the report goes.
pub struct Options<'a> {
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
pub fn evaluate(opts: &Options<'_>) -> Result<Vec<(String, AdMetrics)>> {
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

/// One test replayed: its arms, traffic and seed base.
struct Replay {
    arms: Vec<Arm>,
    traffic: u64,
}

/// The tests of `part` as bandit replays, the model's predictions as priors.
fn replays(ads: &crate::upworthy::AdData, rows: &[&[f32]], model: &AdModel, part: Part) -> Vec<Replay> {
    let mut tests: std::collections::BTreeMap<&str, Replay> = std::collections::BTreeMap::new();
    for i in ads.select(part) {
        let v = &ads.variants[i];
        let replay = tests.entry(v.test.as_str()).or_insert(Replay { arms: Vec::new(), traffic: 0 });
        replay
            .arms
            .push(Arm { rate: v.clicks / v.impressions, prior: f64::from(model.probability(rows[i], &v.text, None)) });
        replay.traffic += v.impressions.round() as u64;
    }
    tests.into_values().filter(|r| r.arms.len() >= 2).collect()
}

/// Mean clicks of `policy` over every replay and `runs` seeds.
fn clicks(replays: &[Replay], policy: Policy, runs: u64) -> f64 {
    let mut total = 0u64;
    for (n, r) in replays.iter().enumerate() {
        for run in 0..runs {
            total += bandit::simulate(&r.arms, r.traffic, policy, n as u64 * 1_000 + run);
        }
    }
    total as f64 / runs as f64
}

/// `edgerec eval-ads --simulate`: the held-out tests as bandits (see
/// `edgerec_core::ads::bandit`); the prior's strength chosen on the
/// validation tests.
fn simulate(args: &Args) -> Result<()> {
    let manifest = Manifest::verify(&args.model)?;
    let model = AdModel::from_bytes(&std::fs::read(args.model.join(AD_MODEL_FILE))?)?;
    let ads = read_ads(&args.data)?;
    let encoder = encoder_dir(&manifest.encoder.name, &args.encoders)?;
    let texts: Vec<&str> = ads.variants.iter().map(|v| v.text.as_str()).collect();
    let (vectors, info) = text_embeddings(&args.work, "headlines", &texts, &encoder, 64)?;
    let rows: Vec<&[f32]> = vectors.chunks_exact(info.dims).collect();
    let valid = replays(&ads, &rows, &model, Part::Valid);
    let test = replays(&ads, &rows, &model, Part::Test);
    let strengths = [30.0, 100.0, 300.0, 1_000.0, 3_000.0, 10_000.0];
    let best = |make: fn(f64) -> Policy| {
        strengths
            .iter()
            .map(|&s| (s, clicks(&valid, make(s), args.runs)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0.0, |(s, _)| s)
    };
    let ucb_strength = best(|strength| Policy::UcbPrior { strength });
    let thompson_strength = best(|strength| Policy::ThompsonPrior { strength });
    let traffic: u64 = test.iter().map(|r| r.traffic).sum();
    let oracle: f64 = test.iter().map(|r| r.traffic as f64 * r.arms.iter().map(|a| a.rate).fold(0.0, f64::max)).sum();
    let policies = [
        Policy::AbTest,
        Policy::Ucb,
        Policy::UcbPrior { strength: ucb_strength },
        Policy::ThompsonPrior { strength: 0.0 },
        Policy::ThompsonPrior { strength: thompson_strength },
    ];
    let results: Vec<(Policy, f64)> = policies.iter().map(|&p| (p, clicks(&test, p, args.runs))).collect();
    let ab = results[0].1;
    let no_prior = results[1].1.max(results[3].1);
    println!(
        "Upworthy replay: {} held-out tests, {traffic} impressions (each test's real traffic), {} runs each; \
         prior strength chosen on {} validation tests",
        test.len(),
        args.runs,
        valid.len()
    );
    println!("{:<34} {:>10} {:>10} {:>9} {:>15}", "policy", "clicks", "per 1,000", "vs A/B", "vs best no-prior");
    for (policy, c) in &results {
        println!(
            "{:<34} {:>10.1} {:>10.3} {:>+8.2}% {:>+14.2}%",
            policy.label(),
            c,
            c * 1_000.0 / traffic as f64,
            (c / ab - 1.0) * 100.0,
            (c / no_prior - 1.0) * 100.0
        );
    }
    println!(
        "{:<34} {:>10.1} {:>10.3} {:>+8.2}%",
        "(always the best headline)",
        oracle,
        oracle * 1_000.0 / traffic as f64,
        (oracle / ab - 1.0) * 100.0
    );
    Ok(())
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
