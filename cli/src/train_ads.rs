//! `edgerec train-ads`: fit the ad-click model on the training tests,
//! choose its L2 penalty on the validation tests, write the ad bundle, and
//! evaluate it on the held-out tests against the baselines.

use std::path::PathBuf;

use anyhow::{Context, Result};
use edgerec_core::ads::fit::{self, FitConfig, Part, Variant};
use edgerec_core::ads::{AD_MODEL_FILE, AdModel};
use edgerec_core::bundle::{Manifest, write_bundle};

use crate::bundles::{bundle_name_version, new_manifest};
use crate::encoding::{EncoderArgs, text_embeddings};
use crate::upworthy::{export_variants, read_ads};

/// `edgerec train-ads` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The Upworthy CSV (`clickability_test_id, headline, impressions, clicks`; .gz ok).
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    encoder: EncoderArgs,
    /// Bundle directory: models/<name>/<version>.
    #[arg(long)]
    out: PathBuf,
    /// Where embeddings and the exported split (variants.csv) go.
    #[arg(long, default_value = ".edgerec/work/ads")]
    work: PathBuf,
}

/// Fits, writes the bundle, then prints its held-out evaluation.
pub fn run(args: Args) -> Result<()> {
    let encoder = args.encoder.dir()?;
    train(&args.data, &encoder, &args.out, &args.work)?;
    let report = args.work.join("report.html");
    crate::eval_ads::evaluate(&crate::eval_ads::Options {
        data: &args.data,
        model: &args.out,
        encoders: &args.encoder.encoders,
        work: &args.work,
        external: &[],
        report: &report,
        json: false,
    })?;
    Ok(())
}

fn train(
    data: &std::path::Path,
    encoder: &std::path::Path,
    out: &std::path::Path,
    work: &std::path::Path,
) -> Result<Manifest> {
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
