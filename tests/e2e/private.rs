//! The private zone, driven over HTTP as a shop's back end would: tokens
//! and scopes, durable feedback that changes the next answer, user ids that
//! never leave the host, sealed data at rest, key rotation, erasure,
//! placement on an edge, and PostgreSQL shared by two hosts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgerec_core::bundle::ITEMS_FILE;
use edgerec_core::index::ItemIndex;
use edgerec_host::config::Settings;
use edgerec_host::private::{Scope, tokens};
use edgerec_host::users::{DataKey, StoreUrl, Users};
use edgerec_tests::{Host, ai_models_dir, component, demo_bundle, edgerec_bin, require};
use serde_json::{Value, json};

/// A private app in a temporary directory: spin.toml (recommend, and
/// search when asked), examples/private.toml's shape, a data key.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new(with_search: bool, extra: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(demo_bundle(), dir.path().join("bundle")).unwrap();
        }
        let mut manifest = format!(
            "spin_manifest_version = 2\n[application]\nname = \"private\"\n\
             [[trigger.http]]\nroute = \"/api/recommend\"\ncomponent = \"recommend\"\n\
             [[trigger.http]]\nroute = \"/api/health\"\ncomponent = \"recommend\"\n\
             [component.recommend]\nsource = \"{}\"\nfiles = [{{ source = \"bundle\", destination = \"/bundle\" }}]\n",
            component("recommend").display()
        );
        if with_search {
            manifest.push_str(&format!(
                "[[trigger.http]]\nroute = \"/api/search\"\ncomponent = \"search\"\n\
                 [component.search]\nsource = \"{}\"\nfiles = [{{ source = \"bundle\", destination = \"/bundle\" }}]\n\
                 ai_models = [\"all-minilm-l6-v2\"]\n",
                component("search").display()
            ));
        }
        std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        tokens::write_private(&dir.path().join("state/data.key"), DataKey::generate().unwrap().as_bytes()).unwrap();
        let config = format!(
            "zone = \"private\"\nkey_file = \"state/data.key\"\ntokens_file = \"state/tokens.json\"\n\
             kv_dir = \"state/kv\"\nai_models_dir = \"{}\"\n{extra}\n",
            ai_models_dir().display()
        );
        std::fs::write(dir.path().join("private.toml"), config).unwrap();
        App { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self) -> PathBuf {
        self.path("private.toml")
    }

    fn token(&self, scopes: &[Scope]) -> String {
        tokens::create(&self.path("state/tokens.json"), scopes).unwrap().0
    }

    fn settings(&self) -> Settings {
        Settings::read(&self.config()).unwrap()
    }

    fn start(&self) -> Host {
        Host::start(&self.path("spin.toml"), &self.settings())
    }

    /// `edgerec serve` on `port` in a process of its own; its log goes to `log`.
    fn spawn(&self, port: u16, log: &Path) -> Running {
        let log = std::fs::File::create(log).unwrap();
        Running(
            Command::new(edgerec_bin())
                .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifest"])
                .arg(self.path("spin.toml"))
                .arg("--config")
                .arg(self.config())
                .env("EDGEREC_LOG", "debug,wasmtime=warn,cranelift=warn")
                .env_remove("EDGEREC_DATA_KEY")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// The store, opened beside the host with its key.
    fn users(&self, store: &StoreUrl) -> Users {
        Users::open(store, DataKey::read(&self.path("state/data.key")).unwrap()).unwrap()
    }

    fn sqlite(&self) -> StoreUrl {
        StoreUrl::Sqlite(self.path(".edgerec/users.sqlite"))
    }
}

/// Kills the child when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until_up(host: &Host) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while host.try_post("/api/recommend", "{}").is_none_or(|r| r.status != 200) {
        assert!(Instant::now() < deadline, "the host never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Catalog ids, most popular first.
fn popular(n: usize) -> Vec<String> {
    let index = ItemIndex::read(&demo_bundle().join(ITEMS_FILE)).unwrap();
    let mut order: Vec<usize> = (0..index.len()).collect();
    order.sort_by(|&a, &b| index.popularity()[b].total_cmp(&index.popularity()[a]));
    order.into_iter().take(n).map(|i| index.id(i).to_string()).collect()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["items"].as_array().expect("items").iter().map(|i| i["item_id"].as_str().unwrap().to_string()).collect()
}

fn purchases(user: &str, items: &[String]) -> String {
    let events: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            json!({"user_id": user, "item_id": item, "type": "purchase",
                   "ts": format!("2026-12-01T10:{i:02}:00Z"), "event_id": format!("{user}-{item}")})
        })
        .collect();
    json!({ "events": events }).to_string()
}

fn file_holds(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

#[test]
fn tokens_and_scopes_answer_401_403_and_429_and_only_hashes_are_kept() {
    require!(component("recommend"), demo_bundle());
    let app = App::new(false, "rate_limit_per_second = 1\nrate_limit_burst = 3");
    let writer = app.token(&[Scope::FeedbackWrite]);
    let reader = app.token(&[Scope::UsersRead]);
    let host = app.start();
    let body = purchases("u-tokens", &popular(1));

    let missing = host.send("POST", "/api/feedback", None, Some(&body));
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(missing.error_message().contains("Bearer"));
    let forged = format!("{}x", &writer[..writer.len() - 1]);
    let unknown = host.send("POST", "/api/feedback", Some(&forged), Some(&body));
    assert_eq!(unknown.status, 401);
    assert!(!unknown.body.contains(&forged), "the token is never echoed");
    let forbidden = host.send("POST", "/api/feedback", Some(&reader), Some(&body));
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.error_message().contains("feedback:write"), "{}", forbidden.body);
    // Personal answers need their own scope too.
    let personal = host.send("POST", "/api/recommend", Some(&reader), Some(r#"{"user_id": "u-tokens"}"#));
    assert_eq!(personal.status, 403, "{}", personal.body);
    assert_eq!(host.send("POST", "/api/recommend", None, Some(r#"{"user_id": "u-tokens"}"#)).status, 401);

    // A burst of 3, then 1 a second.
    let statuses: Vec<Reply> = (0..6).map(|_| host.send("POST", "/api/feedback", Some(&writer), Some(&body))).collect();
    assert_eq!(statuses.iter().filter(|r| r.status == 200).count(), 3, "burst of 3");
    let limited = statuses.iter().find(|r| r.status == 429).expect("a 429 after the burst");
    let retry: u64 = limited.header("retry-after").expect("retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert!(limited.error_message().contains("rate"));
    // Another token has its own budget.
    assert_eq!(host.send("GET", "/api/users/u-tokens/history", Some(&reader), None).status, 200);

    let on_disk = std::fs::read_to_string(app.path("state/tokens.json")).unwrap();
    for token in [&writer, &reader] {
        assert!(!on_disk.contains(token.as_str()), "a token in clear on disk");
    }
    assert_eq!(on_disk.matches("\"sha256\"").count(), 2);
}

use edgerec_tests::Reply;

#[test]
fn feedback_changes_the_users_next_recommendations_and_searches_and_erasure_undoes_it() {
    require!(component("recommend"), component("search"), demo_bundle(), ai_models_dir());
    let app = App::new(true, "");
    let token = app.token(&[Scope::FeedbackWrite, Scope::UsersRead, Scope::UsersDelete, Scope::UsersPersonalize]);
    let host = app.start();
    let user = "shopper-4711@example.com";
    let ask = |body: &str| host.send("POST", "/api/recommend", Some(&token), Some(body));

    let before = ask(&json!({"user_id": user, "k": 10}).to_string());
    assert_eq!(before.status, 200, "{}", before.body);
    let anonymous = host.post("/api/recommend", json!({"k": 10}).to_string()).json();
    assert_eq!(ids(&before.json()), ids(&anonymous), "no history yet: the popular items");

    // Items from the long tail, so the answer visibly changes.
    let bought: Vec<String> = popular(400)[300..303].to_vec();
    let fed = host.send("POST", "/api/feedback", Some(&token), Some(&purchases(user, &bought)));
    assert_eq!(fed.status, 200, "{}", fed.body);
    assert_eq!(fed.json(), json!({"accepted": 3, "duplicates": 0}));
    let again = host.send("POST", "/api/feedback", Some(&token), Some(&purchases(user, &bought)));
    assert_eq!(again.json(), json!({"accepted": 3, "duplicates": 3}), "a retried batch counts once");

    let after = ask(&json!({"user_id": user, "k": 10}).to_string()).json();
    let sent = host.post("/api/recommend", json!({"history": bought, "k": 10}).to_string()).json();
    assert_ne!(ids(&after), ids(&anonymous), "the feedback changed the recommendations");
    assert_eq!(ids(&after), ids(&sent), "as if the front end had sent the history");
    assert!(ids(&after).iter().all(|id| !bought.contains(id)), "bought items are left out");

    let search = |body: Value| host.send("POST", "/api/search", Some(&token), Some(&body.to_string())).json();
    let personal = search(json!({"query": "gift", "user_id": user, "k": 10}));
    let with_history = search(json!({"query": "gift", "history": bought, "k": 10}));
    assert_eq!(ids(&personal), ids(&with_history), "search by user_id uses the stored history");

    let history = host.send("GET", &format!("/api/users/{}/history", "shopper-4711%40example.com"), Some(&token), None);
    assert_eq!(history.status, 200, "{}", history.body);
    let events = history.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["item_id"], json!(bought[2]), "newest first");

    // Erasure: gone from the history, the recommendations and the files.
    let pseudonym = DataKey::read(&app.path("state/data.key")).unwrap().user(user);
    let erased = host.send("DELETE", &format!("/api/users/{user}"), Some(&token), None);
    assert_eq!(erased.json(), json!({"erased": 3}));
    let history = host.send("GET", &format!("/api/users/{user}/history"), Some(&token), None).json();
    assert_eq!(history["events"], json!([]));
    assert_eq!(ids(&ask(&json!({"user_id": user, "k": 10}).to_string()).json()), ids(&anonymous));
    for file in ["users.sqlite", "users.sqlite-wal"] {
        assert!(
            !file_holds(&app.path(&format!(".edgerec/{file}")), &pseudonym),
            "the erased user's pseudonym in {file}"
        );
    }
}

#[test]
fn bad_feedback_gets_a_400_naming_the_field_and_nothing_is_stored() {
    require!(component("recommend"), demo_bundle());
    let app = App::new(false, "");
    let token = app.token(&[Scope::FeedbackWrite, Scope::UsersRead]);
    let host = app.start();
    let good = r#"{"user_id": "u-bad", "item_id": "85123A", "type": "click"}"#;
    let many = format!(r#"{{"events": [{}]}}"#, vec![good; 10_001].join(","));
    for (body, field) in [
        (
            format!(r#"{{"events": [{good}, {{"user_id": "u-bad", "item_id": "x", "type": "view"}}]}}"#),
            "events[1].type",
        ),
        (
            format!(
                r#"{{"events": [{good}, {{"user_id": "u-bad", "item_id": "x", "type": "click", "ts": "03/12/2026"}}]}}"#
            ),
            "events[1].ts",
        ),
        (many, "events"),
        (format!(r#"{{"events": [{good}, {{"user_id": "", "item_id": "x", "type": "click"}}]}}"#), "events[1].user_id"),
    ] {
        let reply = host.send("POST", "/api/feedback", Some(&token), Some(&body));
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.error_message().contains(field), "{field}: {}", reply.body);
    }
    let empty_user = host.send("POST", "/api/recommend", None, Some(r#"{"user_id": " "}"#));
    assert_eq!(empty_user.status, 400);
    assert!(empty_user.error_message().contains("user_id"));
    let history = host.send("GET", "/api/users/u-bad/history", Some(&token), None).json();
    assert_eq!(history["events"], json!([]), "nothing of a refused batch is stored");
}

#[test]
fn at_rest_the_database_files_hold_no_user_id_and_no_item_id() {
    require!(component("recommend"), demo_bundle());
    let app = App::new(false, "");
    let token = app.token(&[Scope::FeedbackWrite]);
    let host = app.start();
    let items = popular(60);
    let users: Vec<String> = (0..20).map(|i| format!("customer-{i:05}")).collect();
    for (u, user) in users.iter().enumerate() {
        let mine: Vec<String> = items.iter().skip(u).step_by(7).cloned().collect();
        assert_eq!(host.send("POST", "/api/feedback", Some(&token), Some(&purchases(user, &mine))).status, 200);
    }
    let files = [app.path(".edgerec/users.sqlite"), app.path(".edgerec/users.sqlite-wal")];
    assert!(
        files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum::<u64>() > 10_000,
        "data was written"
    );
    for file in &files {
        for user in &users {
            assert!(!file_holds(file, user.as_bytes()), "user id {user} in clear in {}", file.display());
        }
        for item in &items {
            assert!(!file_holds(file, item.as_bytes()), "item id {item} in clear in {}", file.display());
        }
    }
}

#[test]
fn key_rotation_keeps_every_event_and_the_old_key_no_longer_opens_the_store() {
    require!(edgerec_bin(), component("recommend"), demo_bundle());
    let app = App::new(false, "");
    let token = app.token(&[Scope::FeedbackWrite, Scope::UsersRead]);
    // This host keeps running through the rotation.
    let running = app.start();
    for u in 0..5 {
        let body = purchases(&format!("rot-{u}"), &popular(8));
        assert_eq!(running.send("POST", "/api/feedback", Some(&token), Some(&body)).status, 200);
    }
    let old = std::fs::read_to_string(app.path("state/data.key")).unwrap();
    let out = Command::new(edgerec_bin())
        .args(["keys", "rotate", "--config"])
        .arg(app.config())
        .env_remove("EDGEREC_DATA_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("re-sealed 40 events"), "{stderr}");
    assert_ne!(std::fs::read_to_string(app.path("state/data.key")).unwrap(), old);
    assert!(!app.path("state/data.key.new").exists());
    let err = Users::open(&app.sqlite(), DataKey::from_base64(&old, "old").unwrap()).err().unwrap().to_string();
    assert!(err.contains("another data key"), "{err}");
    let users = app.users(&app.sqlite());
    for u in 0..5 {
        assert_eq!(users.recent(&format!("rot-{u}"), 1000).unwrap().len(), 8);
    }
    // A host on the new key serves the rotated histories.
    let host = app.start();
    let history = host.send("GET", "/api/users/rot-3/history", Some(&token), None).json();
    assert_eq!(history["events"].as_array().unwrap().len(), 8);
    // The host that ran through it moves to the new key from its key file.
    let more = purchases("rot-0", &popular(9)[8..]);
    let reply = running.send("POST", "/api/feedback", Some(&token), Some(&more));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let history = running.send("GET", "/api/users/rot-0/history", Some(&token), None).json();
    assert_eq!(history["events"].as_array().unwrap().len(), 9);
}

/// Streams feedback from 4 clients at a private host in its own process,
/// kills it with SIGKILL mid-stream, and checks that every acknowledged
/// event is in the store. Returns the host's log.
fn kill_mid_stream(app: &App, store: &StoreUrl) -> (String, String) {
    let token = app.token(&[Scope::FeedbackWrite]);
    let port = free_port();
    let log = app.path("serve.log");
    let mut server = app.spawn(port, &log);
    let host = Host::at(([127, 0, 0, 1], port).into());
    wait_until_up(&host);
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let items = popular(5);
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (host, token, acknowledged, items) = (host.clone(), token.clone(), acknowledged.clone(), items.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let user = format!("killed-{c}");
                    let event_id = format!("{c}-{n}");
                    let body = json!({"events": [{"user_id": user, "item_id": items[n % 5], "type": "click", "event_id": event_id}]});
                    let reply = host.try_send("POST", "/api/feedback", Some(&token), Some(&body.to_string()));
                    match reply {
                        Some(r) if r.status == 200 => acknowledged.lock().unwrap().push((user, event_id)),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    for client in clients {
        let _ = client.join();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20, "only {} events acknowledged before the kill", acknowledged.len());
    drop(server);
    let users = app.users(store);
    for c in 0..4 {
        let user = format!("killed-{c}");
        let stored: std::collections::HashSet<String> =
            users.recent(&user, 1_000_000).unwrap().into_iter().filter_map(|e| e.event_id).collect();
        for (_, id) in acknowledged.iter().filter(|(u, _)| *u == user) {
            assert!(stored.contains(id), "acknowledged event {id} of {user} was lost");
        }
    }
    // And a restarted host serves on.
    let mut again = app.spawn(port, &app.path("serve2.log"));
    wait_until_up(&host);
    let _ = again.0.kill();
    (std::fs::read_to_string(log).unwrap(), token)
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_event_on_sqlite() {
    require!(edgerec_bin(), component("recommend"), demo_bundle());
    let app = App::new(false, "");
    let (log, token) = kill_mid_stream(&app, &app.sqlite());
    // The log: request ids, never a user id, a token or an item of a history.
    assert!(log.contains("request{id="), "{log}");
    assert!(!log.contains("killed-"), "a user id in the log:\n{log}");
    assert!(!log.contains(&token), "a token in the log");
    // As a whole token: a numeric id also turns up inside timestamps and hashes.
    let item = &popular(1)[0];
    let as_token = log.match_indices(item.as_str()).any(|(at, _)| {
        let before = log[..at].chars().next_back().is_some_and(char::is_alphanumeric);
        let after = log[at + item.len()..].chars().next().is_some_and(char::is_alphanumeric);
        !before && !after
    });
    assert!(!as_token, "an item of a history in the log");
}

/// A fresh database on the test server, or `None` (skip; CI fails).
fn postgres() -> Option<String> {
    let Ok(url) = std::env::var("EDGEREC_TEST_POSTGRES") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set EDGEREC_TEST_POSTGRES (scripts/postgres start)");
        eprintln!("skipping: set EDGEREC_TEST_POSTGRES (scripts/postgres start) to run the PostgreSQL tests");
        return None;
    };
    let db = format!("edgerec_e2e_{}_{}", std::process::id(), rand_suffix());
    let status = Command::new("psql").args([&url, "-qc", &format!("CREATE DATABASE {db}")]).status().unwrap();
    assert!(status.success());
    Some(format!("{}/{db}", url.rsplit_once('/').unwrap().0))
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000_007
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_event_on_postgres() {
    require!(edgerec_bin(), component("recommend"), demo_bundle());
    let Some(db) = postgres() else { return };
    let app = App::new(false, &format!("store = \"{db}\""));
    kill_mid_stream(&app, &StoreUrl::Postgres(db));
}

#[test]
fn two_private_hosts_on_one_postgres_see_each_others_feedback() {
    require!(component("recommend"), demo_bundle());
    let Some(db) = postgres() else { return };
    let app = App::new(false, &format!("store = \"{db}\""));
    let token = app.token(&[Scope::FeedbackWrite, Scope::UsersRead, Scope::UsersPersonalize]);
    let (a, b) = (app.start(), app.start());
    let bought: Vec<String> = popular(400)[320..323].to_vec();
    let fed = a.send("POST", "/api/feedback", Some(&token), Some(&purchases("pg-user", &bought)));
    assert_eq!(fed.status, 200, "{}", fed.body);
    let history = b.send("GET", "/api/users/pg-user/history", Some(&token), None).json();
    assert_eq!(history["events"].as_array().unwrap().len(), 3, "host b sees host a's events");
    let on_b = b.send("POST", "/api/recommend", Some(&token), Some(r#"{"user_id": "pg-user"}"#)).json();
    let sent = b.post("/api/recommend", json!({"history": bought}).to_string()).json();
    assert_eq!(ids(&on_b), ids(&sent));
}

/// Accepts connections and records what arrives; never answers (an edge
/// that hangs).
fn hanging_edge() -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = stream.flush();
            });
        }
    });
    (addr, seen)
}

#[test]
fn a_route_placed_on_the_edge_goes_there_without_the_user_id_and_is_served_here_when_the_edge_fails() {
    require!(edgerec_bin(), component("recommend"), demo_bundle());
    // A real edge: `edgerec serve --zone edge` in its own process.
    let edge_app = App::new(false, "");
    std::fs::write(edge_app.config(), "zone = \"edge\"\nkv_dir = \"state/kv\"\n").unwrap();
    let edge_port = free_port();
    let edge = edge_app.spawn(edge_port, &edge_app.path("edge.log"));
    wait_until_up(&Host::at(([127, 0, 0, 1], edge_port).into()));

    let app = App::new(
        false,
        &format!("[placement.\"/api/recommend\"]\nedge = \"http://127.0.0.1:{edge_port}\"\ndeadline_ms = 2000"),
    );
    let token = app.token(&[Scope::FeedbackWrite, Scope::UsersPersonalize]);
    let host = app.start();
    let bought: Vec<String> = popular(400)[310..313].to_vec();
    assert_eq!(host.send("POST", "/api/feedback", Some(&token), Some(&purchases("placed", &bought))).status, 200);
    let ask = || host.send("POST", "/api/recommend", Some(&token), Some(r#"{"user_id": "placed", "k": 5}"#));
    let expected = ids(&host.post("/api/recommend", json!({"history": bought, "k": 5}).to_string()).json());

    let via_edge = ask();
    assert_eq!(via_edge.status, 200, "{}", via_edge.body);
    assert_eq!(via_edge.header("x-edgerec-served-by").as_deref(), Some("edge"));
    assert_eq!(ids(&via_edge.json()), expected, "the edge got the stored history");

    drop(edge);
    let started = Instant::now();
    let local = ask();
    assert_eq!(local.status, 200, "{}", local.body);
    assert_eq!(local.header("x-edgerec-served-by"), None, "served here");
    assert_eq!(ids(&local.json()), expected);
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the deadline: {:?}", started.elapsed());

    // An edge that accepts and never answers: served here once the deadline passes.
    let (hang, seen) = hanging_edge();
    let app = App::new(false, &format!("[placement.\"/api/recommend\"]\nedge = \"http://{hang}\"\ndeadline_ms = 300"));
    let token = app.token(&[Scope::FeedbackWrite, Scope::UsersPersonalize]);
    let host = app.start();
    assert_eq!(host.send("POST", "/api/feedback", Some(&token), Some(&purchases("placed", &bought))).status, 200);
    let started = Instant::now();
    let reply = host.send("POST", "/api/recommend", Some(&token), Some(r#"{"user_id": "placed", "k": 5}"#));
    assert_eq!(reply.status, 200);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
    assert_eq!(ids(&reply.json()), expected);
    let sent = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(sent.contains(&bought[0]), "the edge was sent the history: {sent}");
    assert!(!sent.contains("placed") && !sent.contains("user_id"), "the user id left the private host: {sent}");
    assert!(!sent.to_lowercase().contains("authorization"), "the token left the private host: {sent}");
}

#[test]
fn metrics_count_requests_models_feedback_and_click_through_per_version() {
    require!(component("recommend"), demo_bundle());
    let app = App::new(false, "");
    let token = app.token(&[Scope::FeedbackWrite, Scope::MetricsRead]);
    let feedback_only = app.token(&[Scope::FeedbackWrite]);
    let host = app.start();
    host.post("/api/recommend", "{}");
    let item = &popular(1)[0];
    let mut events = Vec::new();
    for i in 0..4 {
        events.push(json!({"user_id": "m", "item_id": item, "type": "impression", "event_id": format!("i{i}"),
                           "model": {"name": "online-retail", "version": "2"}}));
    }
    events.push(json!({"user_id": "m", "item_id": item, "type": "click", "event_id": "c0",
                       "model": {"name": "online-retail", "version": "2"}}));
    let body = json!({ "events": events }).to_string();
    assert_eq!(host.send("POST", "/api/feedback", Some(&token), Some(&body)).status, 200);
    assert_eq!(host.send("POST", "/api/feedback", Some(&token), Some(&body)).status, 200, "retried: counted once");
    assert_eq!(host.send("GET", "/metrics", Some(&feedback_only), None).status, 403);
    let metrics = host.send("GET", "/metrics", Some(&token), None);
    assert_eq!(metrics.status, 200);
    for line in [
        r#"edgerec_requests_total{route="/api/recommend",zone="private",status="200"} 1"#,
        r#"edgerec_model_info{function="recommend",name="online-retail",version="2"} 1"#,
        r#"edgerec_feedback_events_total{type="impression"} 4"#,
        r#"edgerec_feedback_events_total{type="click"} 1"#,
        r#"edgerec_model_click_through_rate{name="online-retail",version="2"} 0.25"#,
        r#"edgerec_request_duration_seconds_bucket{"#,
    ] {
        assert!(metrics.body.contains(line), "missing {line} in\n{}", metrics.body);
    }
    assert!(metrics.header("content-type").unwrap().starts_with("application/openmetrics-text"));
}

#[test]
fn the_edge_serves_no_private_route_and_refuses_private_settings() {
    require!(component("recommend"), demo_bundle());
    let (_dir, edge) = Host::serve_bundle(&demo_bundle());
    // The edge's routes are the app's: /api/... goes to recommend, which has no such route.
    assert_ne!(edge.send("GET", "/metrics", None, None).status, 200);
    let settings = Settings { store: Some("sqlite:users.db".into()), ..Default::default() };
    let err = edgerec_host::config::HostConfig::new(settings, Path::new("spin.toml")).unwrap_err().to_string();
    assert!(err.contains("store is a private-zone setting"), "{err}");
}

/// An ad as scored: (score, prior, mean).
type Scored = (f64, Option<f64>, Option<f64>);

/// The ads' order and each ad as the host scores it.
fn score_ads(host: &Host, body: &Value) -> (Vec<String>, Vec<Scored>) {
    let reply = host.post("/api/ads/score", body.to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ads = reply.json()["ads"].as_array().unwrap().clone();
    let order = ads.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    let scores = ads.iter().map(|a| (a["score"].as_f64().unwrap(), a["prior"].as_f64(), a["mean"].as_f64())).collect();
    (order, scores)
}

#[test]
fn ads_move_to_the_copy_that_earns_clicks_from_the_private_zones_feedback() {
    require!(component("ad-score"), edgerec_tests::ads_bundle(), demo_bundle(), ai_models_dir());
    let app = App::new(false, "");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(edgerec_tests::ads_bundle(), app.path("ads")).unwrap();
    }
    let mut manifest = std::fs::read_to_string(app.path("spin.toml")).unwrap();
    manifest.push_str(&format!(
        "[[trigger.http]]\nroute = \"/api/ads/score\"\ncomponent = \"ad-score\"\n\
         [component.ad-score]\nsource = \"{}\"\nai_models = [\"all-minilm-l6-v2\"]\n\
         files = [{{ source = \"ads\", destination = \"/ads\" }}, {{ source = \"bundle\", destination = \"/bundle\" }}]\n",
        component("ad-score").display()
    ));
    std::fs::write(app.path("spin.toml"), manifest).unwrap();
    let writer = app.token(&[Scope::FeedbackWrite]);
    let host = app.start();
    let ads = json!({"ads": [
        {"id": "story", "text": "She Thought Nobody Would Notice. Then 3 Million People Did."},
        {"id": "plain", "text": "Product catalogue, page 12"},
    ]});

    // Nothing recorded: the text model alone, as on the edge.
    let (before, scores) = score_ads(&host, &ads);
    assert!(scores.iter().all(|s| s.1.is_none() && s.2.is_none()), "no stats, no prior/mean: {scores:?}");
    let (text_first, text_second) = (before[0].clone(), before[1].clone());

    // 2,000 impressions each; the copy the text model likes less gets 5%
    // clicks, the other 0.5%.
    let mut events = Vec::new();
    for (ad, clicks) in [(&text_first, 10), (&text_second, 100)] {
        for n in 0..2_000 {
            let user = format!("shopper-{n}");
            events.push(json!({"user_id": user, "item_id": "85099B", "type": "impression", "ad_id": ad}));
            if n < clicks {
                events.push(json!({"user_id": user, "item_id": "85099B", "type": "click", "ad_id": ad}));
            }
        }
    }
    let body = json!({ "events": events }).to_string();
    let stored = host.send("POST", "/api/feedback", Some(&writer), Some(&body));
    assert_eq!(stored.status, 200, "{}", stored.body);

    // The caller's own stats are replaced by the host's records.
    let mut claimed = ads.clone();
    claimed["stats"] = json!({ text_first.clone(): {"impressions": 100, "clicks": 100} });
    let (after, scores) = score_ads(&host, &claimed);
    assert_eq!(after, [text_second.clone(), text_first.clone()], "traffic moves to the winner: {scores:?}");
    let (winner, loser) = (scores[0], scores[1]);
    let (prior, mean) = (winner.1.expect("prior"), winner.2.expect("mean"));
    // 100 clicks in 2,000 impressions on top of 30 pseudo-impressions of the prior.
    assert!((mean - (100.0 + 30.0 * prior) / 2_030.0).abs() < 1e-4, "{winner:?}");
    assert!(winner.0 >= mean && winner.0 <= 1.0, "the score is an upper bound on the rate: {winner:?}");
    assert!(loser.2.unwrap() < 0.01, "{loser:?}");
    assert!(loser.1.unwrap() > prior, "the text model still prefers the loser: {scores:?}");

    // More feedback counts on the next request (only the new rows are read).
    let late: Vec<Value> = (0..3_000)
        .map(|n| json!({"user_id": format!("late-{n}"), "item_id": "85099B", "type": "click", "ad_id": text_first}))
        .chain((0..3_000).map(
            |n| json!({"user_id": format!("late-{n}"), "item_id": "85099B", "type": "impression", "ad_id": text_first}),
        ))
        .collect();
    let stored = host.send("POST", "/api/feedback", Some(&writer), Some(&json!({ "events": late }).to_string()));
    assert_eq!(stored.status, 200, "{}", stored.body);
    let (again, _) = score_ads(&host, &ads);
    assert_eq!(again, [text_first, text_second], "3,010 clicks in 5,000 impressions now lead");
}
