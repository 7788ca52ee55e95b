//! `edgerec check-encoder`: load an encoder on every engine this machine
//! has for it, check each against the CPU reference, and time catalog
//! encoding. What `scripts/gpu-check` runs on a GPU machine (where the
//! automatic choice should be the GPU) and anywhere else (where it falls
//! back to the CPU, and says so).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::encoder::bert::BertEncoder;
use edgerec_core::encoder::{Device, TextEncoder, WeightsFormat, encode_bucketed, load_native};
use edgerec_core::score::dot;

use crate::encoding::EncoderArgs;

/// `edgerec check-encoder` arguments.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    encoder: EncoderArgs,
    /// A prepared data directory whose catalog titles are encoded.
    #[arg(long, default_value = "data/online-retail/prepared")]
    data: PathBuf,
    /// Texts per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// The device's peak rate in TFLOP/s, to report the share of it used
    /// (an H200 runs 67 TFLOP/s in FP32).
    #[arg(long, value_name = "TFLOPS")]
    peak_tflops: Option<f64>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Multiply-adds of one token through a BERT encoder of `dims` wide layers
/// (attention projections 4·d², feed-forward 8·d²), ×2 for FLOPs; the
/// attention scores themselves are left out (small at catalog lengths).
fn flops_per_token(dims: usize, layers: usize) -> f64 {
    2.0 * 12.0 * (dims * dims) as f64 * layers as f64
}

/// Runs the check and prints its report.
pub fn run(args: Args) -> Result<()> {
    let dir = args.encoder.dir()?;
    let catalog =
        edgerec_core::data::read_catalog(&args.data).with_context(|| format!("--data {}", args.data.display()))?;
    let texts: Vec<&str> = catalog.iter().map(|c| c.text.as_str()).collect();
    if texts.is_empty() {
        bail!("--data {}: the catalog has no items", args.data.display());
    }
    let cpu = load_native(&dir, Device::Cpu)?;
    let auto = load_native(&dir, Device::Auto)?;
    println!("encoder: {} ({} catalog texts from {})", cpu.config().name, texts.len(), args.data.display());
    println!("engine on the CPU: {}", cpu.engine());
    println!("engine chosen automatically: {}", auto.engine());
    if auto.engine() == cpu.engine() {
        println!("no GPU engine here: the automatic choice fell back to the CPU");
    }
    // candle too, where the weights are safetensors: every engine here.
    let candle: Option<Box<dyn TextEncoder>> = match cpu.config().format {
        WeightsFormat::Safetensors => Some(Box::new(BertEncoder::load(&dir, Device::Cpu)?)),
        WeightsFormat::Onnx => None,
    };
    let mut rates = Vec::new();
    let mut reference = None;
    for encoder in [Some(&cpu), Some(&auto), candle.as_ref()].into_iter().flatten() {
        if rates.iter().any(|(engine, _)| *engine == encoder.engine()) {
            continue;
        }
        let (vectors, rate, tokens) = time(encoder.as_ref(), &texts, args.batch_size)?;
        if let Some(reference) = &reference {
            let worst = vectors.iter().zip(reference as &Vec<Vec<f32>>).map(|(a, b)| cosine(a, b)).fold(1f32, f32::min);
            println!(
                "parity {} vs {}: worst cosine {worst:.6} over {} texts",
                encoder.engine(),
                cpu.engine(),
                texts.len()
            );
            if worst < 0.999 {
                bail!("{} disagrees with {} (cosine {worst:.6} < 0.999)", encoder.engine(), cpu.engine());
            }
        }
        let layers = if cpu.config().name.contains("L3") { 3 } else { 6 };
        let tflops = rate * tokens * flops_per_token(cpu.config().dims, layers) / 1e12;
        let share = args.peak_tflops.map(|peak| format!(", {:.2}% of {peak} TFLOP/s", 100.0 * tflops / peak));
        println!(
            "{}: {rate:.0} texts/s ({tokens:.1} tokens each, about {tflops:.3} TFLOP/s{})",
            encoder.engine(),
            share.unwrap_or_default()
        );
        rates.push((encoder.engine(), rate));
        reference.get_or_insert(vectors);
    }
    Ok(())
}

/// Encodes every text (after one warm-up batch): the vectors, texts per
/// second and real tokens per text.
fn time(encoder: &dyn TextEncoder, texts: &[&str], batch: usize) -> Result<(Vec<Vec<f32>>, f64, f64)> {
    encoder.encode_batch(&texts[..texts.len().min(batch)])?;
    let mut tokens = 0;
    let started = Instant::now();
    let vectors = encode_bucketed(encoder, texts, batch, |done| tokens += done.real_tokens())?;
    let per_text = tokens as f64 / texts.len() as f64;
    Ok((vectors, texts.len() as f64 / started.elapsed().as_secs_f64(), per_text))
}
