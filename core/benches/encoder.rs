//! Every engine on every encoder it can run, side by side in one process:
//! load time, one 16-token query (p50, the request-time cost) and titles
//! per second in batches of 32 (the catalog-indexing cost).
//!
//! | engine | runs | threads |
//! |---|---|---|
//! | tract | ONNX | 1 |
//! | ONNX Runtime (`libonnxruntime.so`, scripts/fetch-onnxruntime) | ONNX | all cores |
//! | candle BERT | safetensors | all cores |
//!
//! Run `scripts/setup` first (it fetches the encoders and the library), then
//! `cargo bench -p edgerec-core --bench encoder` from the repository root.

use std::path::Path;
use std::time::{Duration, Instant};

use edgerec_core::encoder::bert::BertEncoder;
use edgerec_core::encoder::onnx_runtime::{OrtEncoder, environment};
use edgerec_core::encoder::{Device, EncoderConfig, TextEncoder, TractEncoder, WeightsFormat};

const QUERY: &str = "set of four red retrospot ceramic tea cups with matching saucers";
const TITLES: [&str; 8] = [
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "REGENCY CAKESTAND 3 TIER",
    "JUMBO BAG RED RETROSPOT",
    "PARTY BUNTING",
    "LUNCH BAG RED RETROSPOT",
    "ASSORTED COLOUR BIRD ORNAMENT",
    "SET OF 3 CAKE TINS PANTRY DESIGN",
    "PACK OF 72 RETROSPOT CAKE CASES",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(name: &str, engine: &str, load: impl FnOnce() -> Box<dyn TextEncoder>) {
    let started = Instant::now();
    let encoder = load();
    let load = started.elapsed();
    for _ in 0..3 {
        encoder.encode(QUERY).unwrap();
    }
    let single = median(
        (0..40)
            .map(|_| {
                let t = Instant::now();
                encoder.encode(QUERY).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let batch: Vec<&str> = TITLES.iter().cycle().take(32).copied().collect();
    encoder.encode_batch(&batch).unwrap();
    let started = Instant::now();
    let rounds = 8;
    for _ in 0..rounds {
        encoder.encode_batch(&batch).unwrap();
    }
    let per_sec = (rounds * batch.len()) as f64 / started.elapsed().as_secs_f64();
    println!(
        "| {name} | {engine} ({}) | {:.0} ms | {:.2} ms | {per_sec:.0} |",
        encoder.engine(),
        load.as_secs_f64() * 1e3,
        single.as_secs_f64() * 1e3
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/encoders");
    // The library relative to the repository, wherever cargo runs the bench.
    let library =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(edgerec_core::encoder::onnx_runtime::DEFAULT_LIBRARY);
    if library.exists() {
        edgerec_core::encoder::onnx_runtime::init(&library).expect("ONNX Runtime loads");
    }
    println!("| encoder | engine | load | 1 query (16 tokens), p50 | titles/s (batch 32) |");
    println!("|---|---|---|---|---|");
    for name in ["paraphrase-MiniLM-L3-v2", "all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2"] {
        let dir = root.join(name);
        let Ok(config) = EncoderConfig::read(&dir) else {
            eprintln!("skipping {name}: run scripts/fetch-encoder {name}");
            continue;
        };
        match config.format {
            WeightsFormat::Onnx => measure(name, "tract", || Box::new(TractEncoder::load(&dir).unwrap())),
            WeightsFormat::Safetensors => {
                measure(name, "candle", || Box::new(BertEncoder::load(&dir, Device::Auto).unwrap()))
            }
        }
        match (config.onnx_graph(&dir).unwrap(), environment()) {
            (Some(_), Some(ort)) => {
                measure(name, "ONNX Runtime", || Box::new(OrtEncoder::load(ort, &dir, Device::Auto).unwrap()))
            }
            (None, _) => eprintln!("skipping ONNX Runtime on {name}: run scripts/export-onnx"),
            (_, None) => eprintln!("skipping ONNX Runtime: run scripts/fetch-onnxruntime"),
        }
    }
}
