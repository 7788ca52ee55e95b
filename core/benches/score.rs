//! The catalog scan behind every ranking, natively: how close the integer
//! kernel (`QueryVector` · int8 rows, `ItemIndex::scores`) comes to what one
//! core can do, next to the f32 loop over dequantized rows it replaced, and
//! the whole of `recommend` (user tower, scan, top-k, reasons) around it.
//! The function's own figure (in wasm, `simd128`) is the `score` entry of
//! `server-timing`, measured by `scripts/bench-recommend`. Last, a search
//! with and without the learned re-ranker over its top 50.
//!
//! `cargo bench -p edgerec-core --bench score` (needs the demo bundle from scripts/setup)

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{RecommendQuery, recommend};
use edgerec_core::score::{QueryVector, dot};
use edgerec_core::search::rerank::{Candidate, features};
use edgerec_core::search::{Bm25, Ranker, Ranking, SearchQuery, search, terms};
use edgerec_core::tower::{SequenceBlock, UserTower};

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

/// The same integer dot product with AVX2 (`vpmovsxbw` + `vpmaddwd`, 16
/// multiply-adds per instruction): what one core of this machine does
/// with the instructions it has, for comparison only (wasm `simd128`
/// stops at 128-bit vectors).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// All rows (`dims` a multiple of 16) against `query`.
    pub fn scan(query: &[i16], rows: &[i8], dims: usize, out: &mut Vec<i32>) {
        assert!(available() && dims.is_multiple_of(16) && query.len() == dims);
        out.clear();
        // SAFETY: AVX2 was detected above.
        unsafe { scan_avx2(query, rows, dims, out) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(query: &[i16], rows: &[i8], dims: usize, out: &mut Vec<i32>) {
        for row in rows.chunks_exact(dims) {
            let mut acc = _mm256_setzero_si256();
            for (q, r) in query.chunks_exact(16).zip(row.chunks_exact(16)) {
                // SAFETY: each chunk holds 16 values: 32 bytes of i16, 16 bytes of i8.
                let (q, r) = unsafe { (_mm256_loadu_si256(q.as_ptr().cast()), _mm_loadu_si128(r.as_ptr().cast())) };
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q, _mm256_cvtepi8_epi16(r)));
            }
            let mut lanes = [0i32; 8];
            // SAFETY: `lanes` is 32 writable bytes.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
            out.push(lanes.iter().sum());
        }
    }
}

fn main() {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/online-retail/2");
    let Ok(index) = ItemIndex::read(&bundle.join("items.bin")) else {
        eprintln!("skipping: {} is missing; run scripts/setup", bundle.display());
        return;
    };
    let tower = std::fs::read(bundle.join("user_tower.bin"))
        .ok()
        .and_then(|b| UserTower::from_bytes(&b).ok())
        .unwrap_or_else(|| UserTower::recency(index.dims(), 50));
    let user = index.embedding(index.find("85099B").unwrap_or(0));
    let (n, d) = (index.len(), index.dims());
    let macs = (n * d) as f64;
    let dequantized: Vec<Vec<f32>> = (0..n).map(|i| index.embedding(i)).collect();
    let runs = 2000;

    let quantize = median(|| drop(black_box(QueryVector::new(black_box(&user)))), runs);
    let query = QueryVector::new(&user);
    let int8 = median(|| drop(black_box(index.scores(black_box(&query)))), runs);
    let f32_loop = median(|| drop(black_box(dequantized.iter().map(|r| dot(&user, r)).collect::<Vec<f32>>())), runs);
    #[cfg(target_arch = "x86_64")]
    let simd = avx2::available().then(|| {
        let q: Vec<i16> = user.iter().map(|x| (x * 16383.0) as i16).collect();
        let rows: Vec<i8> = (0..n).flat_map(|i| index.quantized(i).0.to_vec()).collect();
        let mut out = Vec::with_capacity(n);
        median(|| avx2::scan(black_box(&q), black_box(&rows), d, &mut out), runs)
    });
    #[cfg(not(target_arch = "x86_64"))]
    let simd: Option<Duration> = None;
    let history: Vec<String> = ["85099B", "20725", "22423"].map(String::from).to_vec();
    let q = RecommendQuery { history, k: 10, exclude: vec![], exclude_history: true };
    let whole = median(|| drop(black_box(recommend(&index, &tower, black_box(&q)))), runs);

    println!("catalog scan: {n} items x {d} dims = {:.2} M multiply-adds, median of {runs} runs\n", macs / 1e6);
    println!("| step | time | G multiply-adds/s |");
    println!("|---|---|---|");
    let rate = |t: Duration| macs / t.as_secs_f64() / 1e9;
    println!("| quantize the query (i16) | {:.2} us | - |", quantize.as_secs_f64() * 1e6);
    println!(
        "| scan, int8 rows x i16 query (exact integer) | {:.1} us | {:.1} |",
        int8.as_secs_f64() * 1e6,
        rate(int8)
    );
    if let Some(t) = simd {
        let t_us = t.as_secs_f64() * 1e6;
        println!("| scan, the same kernel in AVX2 (reference: what one core does) | {t_us:.1} us | {:.1} |", rate(t));
    }
    println!(
        "| scan, f32 loop over dequantized rows | {:.1} us | {:.1} |",
        f32_loop.as_secs_f64() * 1e6,
        rate(f32_loop)
    );
    println!("| recommend (user tower, scan, top-10, reasons) | {:.1} us | - |", whole.as_secs_f64() * 1e6);

    // The user tower alone on 50 history items, by recency position and
    // with the attention query (`edgerec train --attention true`).
    let fifty: Vec<usize> = (0..50.min(n)).map(|i| i * (n / 50).max(1) % n).collect();
    let rows = |i: usize, out: &mut [f32]| out.copy_from_slice(&dequantized[i]);
    let pooled = median(|| drop(black_box(tower.user_vector(black_box(&fifty), rows))), runs);
    let attending_tower = UserTower {
        query: Some((0..d * d).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.1).collect()),
        ..tower.clone()
    };
    let attending = median(|| drop(black_box(attending_tower.user_vector(black_box(&fifty), rows))), runs);
    // And with a sequence block (`--sequence-block true`), every weight
    // non-zero so no part is skipped.
    let made_up = |n: usize, seed: usize| -> Vec<f32> {
        (0..n).map(|i| (((i + seed) * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.1).collect()
    };
    let max_history = tower.max_history();
    let sequence_tower = UserTower {
        block: Some(SequenceBlock {
            positions: made_up(max_history * d, 1),
            w_query: made_up(d * d, 3),
            w_key: made_up(d * d, 4),
            w_value: made_up(d * d, 5),
            norm: [vec![1.0; d], made_up(d, 6)],
            w_in: made_up(d * d, 7),
            b_in: made_up(d, 8),
            w_out: made_up(d * d, 9),
            b_out: made_up(d, 10),
        }),
        ..tower.clone()
    };
    let sequence = median(|| drop(black_box(sequence_tower.user_vector(black_box(&fifty), rows))), runs);
    println!("| user tower, 50 history items, recency pooling | {:.1} us | - |", pooled.as_secs_f64() * 1e6);
    println!("| user tower, 50 history items, with attention | {:.1} us | - |", attending.as_secs_f64() * 1e6);
    println!("| user tower, 50 history items, sequence block | {:.1} us | - |", sequence.as_secs_f64() * 1e6);

    // Search, fused, and the same with a re-ranker over the top 50. The
    // ranker is fitted to made-up grades (word coverage): only its cost
    // counts here, its quality is `edgerec eval-search`'s.
    let Some(bm25) = std::fs::read(bundle.join("bm25.bin")).ok().and_then(|b| Bm25::from_bytes(&b).ok()) else {
        return;
    };
    let words = ["red heart", "glass candle holder", "vintage christmas", "lunch bag", "cake stand"];
    let lists: Vec<_> = words
        .iter()
        .map(|q| {
            let lexical = bm25.scores(&terms(q));
            let listed: Vec<Candidate> =
                (0..200).map(|i| Candidate { title: index.title(i), lexical: lexical[i], semantic: 0.5 }).collect();
            let rows = features(&bm25, q, &listed);
            let grades = rows.iter().map(|r| r[2]).collect();
            (rows, grades)
        })
        .collect();
    let ranker = Ranker::fit(&lists).expect("fits");
    let q = SearchQuery { text: "red heart glass candle holder".into(), truncated: false, history: vec![], k: 10 };
    let fused = median(|| drop(black_box(search(&index, &bm25, &q, &user, None, Ranking::default()))), runs / 4);
    let learned =
        median(|| drop(black_box(search(&index, &bm25, &q, &user, None, Ranking::Learned(&ranker)))), runs / 4);
    println!("| search, fused (BM25, scan, RRF, top-10) | {:.1} us | - |", fused.as_secs_f64() * 1e6);
    println!("| search, fused + learned re-ranker over the top 50 | {:.1} us | - |", learned.as_secs_f64() * 1e6);
}
