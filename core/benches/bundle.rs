//! Reading the model bundle, as every fresh component instance must: the
//! binary `items.bin` (int8 embeddings) against the same items as JSON with
//! f32 embeddings (the obvious first design), both from memory, natively. The component's own figure (in wasm,
//! through WASI) is the `load` entry of `server-timing`, measured by
//! `scripts/bench-recommend`.
//!
//! `cargo bench -p edgerec-core --bench bundle` (needs the demo bundle from scripts/setup)

use std::path::Path;
use std::time::{Duration, Instant};

use edgerec_core::index::ItemIndex;

#[derive(serde::Serialize, serde::Deserialize)]
struct JsonItem {
    id: String,
    title: String,
    popularity: f32,
    embedding: Vec<f32>,
}

fn median(mut f: impl FnMut(), n: usize) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/online-retail/1/items.bin");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipping: {} is missing; run scripts/setup", path.display());
        return;
    };
    let index = ItemIndex::from_bytes(&bytes).unwrap();
    let json = serde_json::to_vec(
        &(0..index.len())
            .map(|i| JsonItem {
                id: index.id(i).into(),
                title: index.title(i).into(),
                popularity: index.popularity()[i],
                embedding: index.embedding(i),
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();

    let binary = median(|| drop(std::hint::black_box(ItemIndex::from_bytes(&bytes).unwrap())), 50);
    let from_file = median(|| drop(std::hint::black_box(ItemIndex::read(&path).unwrap())), 50);
    let parsed = median(|| drop(std::hint::black_box(serde_json::from_slice::<Vec<JsonItem>>(&json).unwrap())), 10);
    println!("{} items x {} dims", index.len(), index.dims());
    println!("| layout | size | load, p50 | vs binary |");
    println!("|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| JSON (serde_json, from memory) | {:.1} MB | {:.2} ms | {:.0}x |",
        json.len() as f64 / 1e6,
        ms(parsed),
        ms(parsed) / ms(binary)
    );
    println!("| items.bin (from memory) | {:.1} MB | {:.3} ms | 1x |", bytes.len() as f64 / 1e6, ms(binary));
    println!(
        "| items.bin (one read from the page cache) | {:.1} MB | {:.3} ms | {:.1}x |",
        bytes.len() as f64 / 1e6,
        ms(from_file),
        ms(from_file) / ms(binary)
    );
}
