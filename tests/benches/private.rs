//! The private zone's costs, measured side by side in one run:
//!
//! - **feedback events per second** with durability on (every answer after
//!   the commit is on disk), SQLite and PostgreSQL (when
//!   `EDGEREC_TEST_POSTGRES` names a server: `eval "$(scripts/postgres start)"`),
//!   1 client and 8, one event per request and 100 per request;
//! - **resolving `user_id`** on `/api/recommend`: the same request with the
//!   history sent by the front end and with a `user_id` whose 50 events the
//!   host reads and opens, interleaved, p50 and the ratio.
//!
//! Run: `cargo bench -p edgerec-tests --bench private` (after scripts/setup).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgerec_core::bundle::ITEMS_FILE;
use edgerec_core::index::ItemIndex;
use edgerec_host::config::Settings;
use edgerec_host::private::{Scope, tokens};
use edgerec_host::users::DataKey;
use edgerec_tests::{Host, component, demo_bundle};
use serde_json::json;

fn p(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// A private host over recommend with `store` (None: SQLite in the app dir).
fn private_host(dir: &Path, store: Option<&str>) -> (Host, String) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(demo_bundle(), dir.join("bundle")).unwrap();
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"bench\"\n[[trigger.http]]\nroute = \"/api/recommend\"\n\
         component = \"recommend\"\n[component.recommend]\nsource = \"{}\"\n\
         files = [{{ source = \"bundle\", destination = \"/bundle\" }}]\n",
        component("recommend").display()
    );
    std::fs::write(dir.join("spin.toml"), manifest).unwrap();
    tokens::write_private(&dir.join("data.key"), DataKey::generate().unwrap().as_bytes()).unwrap();
    let store = store.map(|s| format!("store = \"{s}\"\n")).unwrap_or_default();
    std::fs::write(
        dir.join("private.toml"),
        format!(
            "zone = \"private\"\nkey_file = \"data.key\"\nkv_dir = \"kv\"\nrate_limit_per_second = 1000000\n\
             rate_limit_burst = 1000000\n{store}"
        ),
    )
    .unwrap();
    let token =
        tokens::create(&dir.join(".edgerec/tokens.json"), &[Scope::FeedbackWrite, Scope::UsersPersonalize]).unwrap().0;
    let settings = Settings::read(&dir.join("private.toml")).unwrap();
    (Host::start(&dir.join("spin.toml"), &settings), token)
}

fn items() -> Vec<String> {
    let index = ItemIndex::read(&demo_bundle().join(ITEMS_FILE)).unwrap();
    (0..index.len().min(500)).map(|i| index.id(i).to_string()).collect()
}

/// Events per second from `clients` threads for `duration`, `batch` events a request.
fn feedback_rate(host: &Host, token: &str, clients: usize, batch: usize, duration: Duration) -> f64 {
    let items = Arc::new(items());
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (host, token, items) = (host.clone(), token.to_string(), items.clone());
            std::thread::spawn(move || {
                let mut sent = 0usize;
                let mut n = 0usize;
                while started.elapsed() < duration {
                    let events: Vec<_> = (0..batch)
                        .map(|i| {
                            n += 1;
                            json!({"user_id": format!("bench-{c}-{}", n % 97), "item_id": items[(n + i) % items.len()],
                                   "type": "click", "event_id": format!("{c}-{n}")})
                        })
                        .collect();
                    let reply = host.send(
                        "POST",
                        "/api/feedback",
                        Some(&token),
                        Some(&json!({ "events": events }).to_string()),
                    );
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    sent += batch;
                }
                sent
            })
        })
        .collect();
    let sent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    sent as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    if !component("recommend").exists() || !demo_bundle().exists() {
        eprintln!("run scripts/setup first");
        return;
    }
    let duration = Duration::from_secs(std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5));
    let mut stores = vec![("sqlite", None)];
    if let Ok(url) = std::env::var("EDGEREC_TEST_POSTGRES") {
        let db = format!("edgerec_bench_{}", std::process::id());
        let ok = std::process::Command::new("psql").args([&url, "-qc", &format!("CREATE DATABASE {db}")]).status();
        assert!(ok.is_ok_and(|s| s.success()), "creating the bench database");
        stores.push(("postgres", Some(format!("{}/{db}", url.rsplit_once('/').unwrap().0))));
    } else {
        eprintln!("EDGEREC_TEST_POSTGRES is not set: PostgreSQL is left out");
    }
    println!("feedback events per second, durable ({} s each):", duration.as_secs());
    println!("{:<10} {:>12} {:>12} {:>14} {:>14}", "store", "1 client", "8 clients", "1 client x100", "8 clients x100");
    let mut hosts = Vec::new();
    for (name, store) in &stores {
        let dir = tempfile::tempdir().unwrap();
        let (host, token) = private_host(dir.path(), store.as_deref());
        let rates: Vec<f64> = [(1, 1), (8, 1), (1, 100), (8, 100)]
            .iter()
            .map(|&(clients, batch)| feedback_rate(&host, &token, clients, batch, duration))
            .collect();
        println!("{name:<10} {:>12.0} {:>12.0} {:>14.0} {:>14.0}", rates[0], rates[1], rates[2], rates[3]);
        hosts.push((name, dir, host, token));
    }

    println!("\n/api/recommend, history sent vs user_id resolved by the host (50 stored events), one client:");
    let items = items();
    for (name, _dir, host, token) in &hosts {
        let history: Vec<String> = items[100..150].to_vec();
        let events: Vec<_> = history
            .iter()
            .enumerate()
            .map(|(i, item)| {
                json!({"user_id": "resolved", "item_id": item, "type": "purchase",
                                     "ts": format!("2026-12-01T10:{:02}:{:02}Z", i / 60, i % 60)})
            })
            .collect();
        assert_eq!(
            host.send("POST", "/api/feedback", Some(token), Some(&json!({"events": events}).to_string())).status,
            200
        );
        let sent = json!({"history": history, "k": 10}).to_string();
        let resolved = json!({"user_id": "resolved", "k": 10}).to_string();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..1200 {
            for (body, out) in [(&sent, &mut a), (&resolved, &mut b)] {
                let started = Instant::now();
                let reply = host.send("POST", "/api/recommend", Some(token), Some(body));
                assert_eq!(reply.status, 200, "{}", reply.body);
                if round >= 200 {
                    out.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let (pa, pb) = (p(a.clone(), 0.5), p(b.clone(), 0.5));
        println!(
            "{name:<10} history sent p50 {pa:.3} ms (p99 {:.3}); user_id p50 {pb:.3} ms (p99 {:.3}); added {:.3} ms ({:.2}x)",
            p(a, 0.99),
            p(b, 0.99),
            pb - pa,
            pb / pa
        );
    }
}
