//! `/api/search` through our host against the same model and code run
//! natively by tract, side by side in one process on one machine:
//!
//! - **native**: `Encoder` + `search::search` called directly (tract,
//!   x86-64 kernels, one thread);
//! - **host, pre-initialized**: the `search` component snapshot with the
//!   model loaded, over HTTP on 127.0.0.1 (what `edgerec serve` runs);
//! - **host, model loaded per request**: the same component without the
//!   snapshot (what a per-request load costs; `preinit = false`).
//!
//! For the host runs it also splits each request by its `server-timing`
//! (instantiate, model ready, tokenize, encode, score) and reports p50s.
//! Needs `scripts/setup`. Run: `cargo bench -p edgerec-tests --bench search`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::encoder::{TextEncoder, TractEncoder};
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{resolve, user_vector};
use edgerec_core::search::{BM25_FILE, Bm25, Fusion, SearchQuery, search};
use edgerec_core::tower::{ITEM_TOWER_FILE, ItemTower, USER_TOWER_FILE, UserTower};
use edgerec_host::config::Settings;
use edgerec_tests::{Host, demo_bundle, encoder_dir, repo};

const QUERIES: [&str; 8] = [
    "red heart mug",
    "christmas decorations for the tree",
    "jumbo bag",
    "vintage tea set with saucers",
    "something to drink coffee from",
    "pink polkadot lunch box",
    "glass candle holder",
    "paper party bunting",
];
const HISTORY: [&str; 2] = ["85099B", "20725"];

fn p(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn native(rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let bundle = demo_bundle();
    let manifest = Manifest::verify(&bundle).expect("demo bundle; run scripts/setup");
    let read = |f: &str| std::fs::read(bundle.join(f)).expect("bundle file");
    let index = ItemIndex::from_bytes(&read(ITEMS_FILE)).unwrap();
    let bm25 = Bm25::from_bytes(&read(BM25_FILE)).unwrap();
    let item_tower = ItemTower::from_bytes(&read(ITEM_TOWER_FILE)).unwrap();
    let user_tower = UserTower::from_bytes(&read(USER_TOWER_FILE)).unwrap();
    let encoder = TractEncoder::load(&encoder_dir()).unwrap();
    assert_eq!(encoder.config().weights_sha256, manifest.encoder.sha256);
    let (mut total, mut encode) = (Vec::new(), Vec::new());
    for round in 0..rounds + 2 {
        for q in QUERIES {
            let started = Instant::now();
            let query =
                SearchQuery { text: q.into(), truncated: false, history: HISTORY.map(String::from).to_vec(), k: 10 };
            let tokens = encoder.tokenize(&[q]).unwrap();
            let text = encoder.embed(&tokens).unwrap().remove(0);
            let encoded = started.elapsed();
            let qv = item_tower.project(&text);
            let (history, _) = resolve(&index, &query.history);
            let user = user_vector(&index, &user_tower, &history);
            let items = search(&index, &bm25, &query, &qv, user.as_deref(), Fusion::default());
            assert_eq!(items.len(), 10);
            if round >= 2 {
                total.push(started.elapsed().as_secs_f64() * 1e3);
                encode.push(encoded.as_secs_f64() * 1e3);
            }
        }
    }
    (total, encode)
}

fn hosted(preinit: bool, rounds: usize) -> (Vec<f64>, BTreeMap<String, Vec<f64>>) {
    let kv = tempfile::tempdir().unwrap();
    let settings = Settings { preinit: Some(preinit), kv_dir: Some(kv.path().to_path_buf()), ..Default::default() };
    let host = Host::start(&repo().join("spin.toml"), &settings);
    let (mut wall, mut parts): (Vec<f64>, BTreeMap<String, Vec<f64>>) = (Vec::new(), BTreeMap::new());
    for round in 0..rounds + 1 {
        for q in QUERIES {
            let body = serde_json::json!({"query": q, "history": HISTORY, "k": 10}).to_string();
            let started = Instant::now();
            let reply = host.post("/api/search", &body);
            let elapsed = started.elapsed();
            assert_eq!(reply.status, 200, "{}", reply.body);
            if round == 0 {
                continue; // warm-up: first instantiations map the memory image
            }
            wall.push(elapsed.as_secs_f64() * 1e3);
            for part in reply.header("server-timing").unwrap_or_default().split(',') {
                if let Some((name, dur)) = part.trim().split_once(";dur=") {
                    parts.entry(name.to_string()).or_default().push(dur.parse().unwrap_or(f64::NAN));
                }
            }
        }
    }
    (wall, parts)
}

fn main() {
    let rounds = 25;
    let (native_total, native_encode) = native(rounds);
    let (snap_wall, snap_parts) = hosted(true, rounds);
    let (plain_wall, plain_parts) = hosted(false, 2);
    let n50 = p(native_total.clone(), 0.5);
    println!("/api/search, {} queries x {rounds} rounds, history of 2 items, k = 10\n", QUERIES.len());
    println!("| run | p50 ms | p90 ms | vs native p50 |");
    println!("|---|---|---|---|");
    println!("| native tract (encode + search, in process) | {n50:.2} | {:.2} | 1.00x |", p(native_total, 0.9));
    for (name, wall) in
        [("host, pre-initialized (HTTP)", &snap_wall), ("host, model loaded per request (HTTP)", &plain_wall)]
    {
        let w50 = p(wall.clone(), 0.5);
        println!("| {name} | {w50:.2} | {:.2} | {:.2}x |", p(wall.clone(), 0.9), w50 / n50);
    }
    println!("\nPer-request split (p50 ms; host parts from server-timing):\n");
    println!("| part | native | host, pre-initialized | host, per-request load |");
    println!("|---|---|---|---|");
    let get =
        |m: &BTreeMap<String, Vec<f64>>, k: &str| m.get(k).map_or("-".into(), |v| format!("{:.3}", p(v.clone(), 0.5)));
    for part in ["instantiate", "model", "tokenize", "encode", "score"] {
        let nat = if part == "encode" {
            format!("{:.3} (tokenize + encode)", p(native_encode.clone(), 0.5))
        } else {
            "-".into()
        };
        println!("| {part} | {nat} | {} | {} |", get(&snap_parts, part), get(&plain_parts, part));
    }
    std::thread::sleep(Duration::from_millis(10));
}
