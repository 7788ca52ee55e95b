//! Encoders side by side in tract, natively: size on disk, load + optimize
//! time, latency of one 16-token query, and batch throughput on catalog
//! titles. Run `scripts/fetch-encoder NAME` for each encoder first.
//!
//! `cargo bench -p edgerec-core --bench encoder`

use std::path::Path;
use std::time::{Duration, Instant};

use edgerec_core::encoder::{TextEncoder, TractEncoder};

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

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/encoders");
    println!("| encoder | ONNX size | load + optimize | 1 query (16 tokens), p50 | titles/s (batch 32) |");
    println!("|---|---|---|---|---|");
    for name in ["paraphrase-MiniLM-L3-v2", "all-MiniLM-L6-v2-int8"] {
        let dir = root.join(name);
        if !dir.join("encoder.json").exists() {
            eprintln!("skipping {name}: run scripts/fetch-encoder {name}");
            continue;
        }
        let size = std::fs::metadata(dir.join("model.onnx")).map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        let encoder = TractEncoder::load(&dir).expect("encoder loads");
        let load = started.elapsed();
        for _ in 0..3 {
            encoder.encode(QUERY).unwrap();
        }
        let single = median(
            (0..30)
                .map(|_| {
                    let t = Instant::now();
                    encoder.encode(QUERY).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        let batch: Vec<&str> = TITLES.iter().cycle().take(32).copied().collect();
        let started = Instant::now();
        let rounds = 5;
        for _ in 0..rounds {
            encoder.encode_batch(&batch).unwrap();
        }
        let per_sec = (rounds * batch.len()) as f64 / started.elapsed().as_secs_f64();
        println!(
            "| {name} | {:.1} MB | {:.0} ms | {:.2} ms | {:.0} |",
            size as f64 / 1e6,
            load.as_secs_f64() * 1e3,
            single.as_secs_f64() * 1e3,
            per_sec
        );
    }
}
