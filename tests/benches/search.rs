//! `/api/search` through our host, each way the query can be encoded, side
//! by side in one process on one machine, against the same work done
//! natively:
//!
//! - **native**: the host's engine for all-MiniLM-L6-v2 (ONNX Runtime where
//!   its library is, else candle) + `search::search`, called directly;
//! - **host, `llm`**: the `search` component of `spin.toml`, pre-initialized,
//!   encoding through Spin's llm interface (the default);
//! - **host, `llm`, loaded per request**: the same without the snapshot
//!   (`preinit = false`: what `spin up` does);
//! - **host, `wasi-nn`**: the `search_wasi_nn` build variant on the same
//!   bundle (the component tokenizes and pools, the host runs the graph);
//! - **host, `tract` in the component**: `examples/spin-tract.toml`
//!   (paraphrase-MiniLM-L3-v2 inside the component, the path before the host
//!   held models).
//!
//! Each request is split by its `server-timing` (instantiate, model,
//! tokenize, encode, score; all measured inside the component). Needs
//! `scripts/setup`. Run: `cargo bench -p edgerec-tests --bench search`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::encoder::{Device, load_native, onnx_runtime};
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{resolve, user_vector};
use edgerec_core::search::{BM25_FILE, Bm25, Ranking, SearchQuery, search};
use edgerec_core::tower::{ITEM_TOWER_FILE, ItemTower, USER_TOWER_FILE, UserTower};
use edgerec_host::config::Settings;
use edgerec_tests::{Host, SEARCH_QUERIES as QUERIES, demo_bundle, host_encoder_dir, onnxruntime_library, repo};

const HISTORY: [&str; 2] = ["85099B", "20725"];

fn p(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Wall times and the encode part, ms.
fn native(rounds: usize) -> (Vec<f64>, Vec<f64>, String) {
    let bundle = demo_bundle();
    let manifest = Manifest::verify(&bundle).expect("demo bundle; run scripts/setup");
    let read = |f: &str| std::fs::read(bundle.join(f)).expect("bundle file");
    let index = ItemIndex::from_bytes(&read(ITEMS_FILE)).unwrap();
    let bm25 = Bm25::from_bytes(&read(BM25_FILE)).unwrap();
    let item_tower = ItemTower::from_bytes(&read(ITEM_TOWER_FILE)).unwrap();
    let user_tower = UserTower::from_bytes(&read(USER_TOWER_FILE)).unwrap();
    let encoder = load_native(&host_encoder_dir(), Device::Auto).unwrap();
    assert_eq!(encoder.config().weights_sha256, manifest.encoder.sha256);
    let (mut total, mut encode) = (Vec::new(), Vec::new());
    for round in 0..rounds + 2 {
        for q in QUERIES {
            let started = Instant::now();
            let query =
                SearchQuery { text: q.into(), truncated: false, history: HISTORY.map(String::from).to_vec(), k: 10 };
            let text = encoder.encode(q).unwrap();
            let encoded = started.elapsed();
            let qv = item_tower.project(&text);
            let (history, _) = resolve(&index, &query.history);
            let user = user_vector(&index, &user_tower, &history);
            let items = search(&index, &bm25, &query, &qv, user.as_deref(), Ranking::default());
            assert_eq!(items.len(), 10);
            if round >= 2 {
                total.push(started.elapsed().as_secs_f64() * 1e3);
                encode.push(encoded.as_secs_f64() * 1e3);
            }
        }
    }
    (total, encode, encoder.engine())
}

/// Wall times and the server-timing parts, ms.
fn hosted(manifest: &Path, preinit: bool, history: bool, rounds: usize) -> (Vec<f64>, BTreeMap<String, Vec<f64>>) {
    let kv = tempfile::tempdir().unwrap();
    let settings = Settings { preinit: Some(preinit), kv_dir: Some(kv.path().to_path_buf()), ..Default::default() };
    let host = Host::start(manifest, &settings);
    let (mut wall, mut parts): (Vec<f64>, BTreeMap<String, Vec<f64>>) = (Vec::new(), BTreeMap::new());
    for round in 0..rounds + 1 {
        for q in QUERIES {
            // The tract app serves a zero-shot bundle, where these history
            // ids exist too.
            let history: &[&str] = if history { &HISTORY } else { &[] };
            let body = serde_json::json!({"query": q, "history": history, "k": 10}).to_string();
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

/// An app of the `search_wasi_nn` variant on the demo bundle, the model's
/// tokenizer mounted, the models directory of `spin.toml`.
fn wasi_nn_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"search\"\n\
         [[trigger.http]]\nroute = \"/api/search\"\ncomponent = \"search\"\n\
         [component.search]\nsource = \"{}\"\n\
         files = [{{ source = \"bundle\", destination = \"/bundle\" }}, {{ source = \"encoder\", destination = \"/encoder\" }}]\n\
         ai_models = [\"all-minilm-l6-v2\"]\nvariables = {{ encoder = \"wasi-nn\" }}\n",
        edgerec_tests::component("search_wasi_nn").display(),
    );
    std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
    std::os::unix::fs::symlink(demo_bundle(), dir.path().join("bundle")).unwrap();
    std::os::unix::fs::symlink(host_encoder_dir(), dir.path().join("encoder")).unwrap();
    std::os::unix::fs::symlink(repo().join(".spin"), dir.path().join(".spin")).unwrap();
    if onnxruntime_library().exists() {
        std::fs::create_dir_all(dir.path().join(".edgerec/lib")).unwrap();
        std::os::unix::fs::symlink(onnxruntime_library(), dir.path().join(".edgerec/lib/libonnxruntime.so")).unwrap();
    }
    dir
}

fn main() {
    let library = onnxruntime_library();
    if library.exists() {
        onnx_runtime::init(&library).expect("ONNX Runtime loads");
    }
    let rounds = 25;
    let (native_total, native_encode, engine) = native(rounds);
    let spin = repo().join("spin.toml");
    let wasi_nn = wasi_nn_app();
    let runs = [
        ("host, `llm`, pre-initialized", hosted(&spin, true, true, rounds)),
        ("host, `llm`, loaded per request", hosted(&spin, false, true, 3)),
        ("host, `wasi-nn`, pre-initialized", hosted(&wasi_nn.path().join("spin.toml"), true, true, rounds)),
        (
            "host, `tract` in the component (L3), pre-initialized",
            hosted(&repo().join("examples/spin-tract.toml"), true, true, rounds),
        ),
    ];
    let n50 = p(native_total.clone(), 0.5);
    println!("/api/search, {} queries x {rounds} rounds, history of 2 items, k = 10\n", QUERIES.len());
    println!("| run | p50 ms | p90 ms | vs native p50 |");
    println!("|---|---|---|---|");
    println!("| native ({engine}: encode + search, in process) | {n50:.2} | {:.2} | 1.00x |", p(native_total, 0.9));
    for (name, (wall, _)) in &runs {
        let w50 = p(wall.clone(), 0.5);
        println!("| {name} (HTTP) | {w50:.2} | {:.2} | {:.2}x |", p(wall.clone(), 0.9), w50 / n50);
    }
    println!("\nPer-request split (p50 ms; host parts from server-timing, measured inside the component):\n");
    println!("| part | native | {} |", runs.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" | "));
    println!("|---|---|{}", "---|".repeat(runs.len()));
    for part in ["instantiate", "model", "tokenize", "encode", "score", "guest"] {
        let nat = if part == "encode" { format!("{:.3}", p(native_encode.clone(), 0.5)) } else { "-".into() };
        let cells: Vec<String> = runs
            .iter()
            .map(|(_, (_, parts))| parts.get(part).map_or("-".into(), |v| format!("{:.3}", p(v.clone(), 0.5))))
            .collect();
        println!("| {part} | {nat} | {} |", cells.join(" | "));
    }
    let llm_encode = p(runs[0].1.1["encode"].clone(), 0.5);
    let native_encode = p(native_encode, 0.5);
    println!(
        "\nQuery encoding through the host interface (inside the component) / {engine} natively: {llm_encode:.3} / {native_encode:.3} ms = {:.2}x",
        llm_encode / native_encode
    );
}
