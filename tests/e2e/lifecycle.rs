//! Models that keep learning in production, end to end: `edgerec update`
//! on the private host's feedback with its lineage and gate, a crash in
//! the middle of one, promote and rollback under load, A/B buckets, and
//! `edgerec publish` for the edge.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgerec_core::bundle::{MANIFEST_FILE, Manifest};
use edgerec_core::versions::{self, Action, VersionLog};
use edgerec_host::config::Settings;
use edgerec_host::private::{Scope, tokens};
use edgerec_host::users::{DataKey, StoreUrl, Users};
use edgerec_tests::{Host, component, demo_bundle, edgerec_bin, repo, require};
use serde_json::{Value, json};

/// A private app in a temporary directory whose recommend function mounts
/// `models/shop/2` (the demo's fine-tuned bundle) and, when asked,
/// `models/shop/3` (the same bundle under version 3).
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new(extra_config: &str, with_v3: bool) -> App {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models/shop");
        copy_bundle(&demo_bundle(), &models.join("2"), "2");
        if with_v3 {
            copy_bundle(&demo_bundle(), &models.join("3"), "3");
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(component("recommend"), dir.path().join("recommend.wasm")).unwrap();
        let manifest = "spin_manifest_version = 2\n[application]\nname = \"shop\"\n\
             [[trigger.http]]\nroute = \"/api/recommend\"\ncomponent = \"recommend\"\n\
             [component.recommend]\nsource = \"recommend.wasm\"\n\
             files = [{ source = \"models/shop/2\", destination = \"/bundle\" }]\n\
             [component.recommend.build]\ncommand = \"cargo build --target wasm32-wasip2 --release -p recommend\"\n";
        std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        tokens::write_private(&dir.path().join("state/data.key"), DataKey::generate().unwrap().as_bytes()).unwrap();
        let config = format!(
            "zone = \"private\"\nkey_file = \"state/data.key\"\ntokens_file = \"state/tokens.json\"\n\
             kv_dir = \"state/kv\"\nstore = \"sqlite:state/users.sqlite\"\nrate_limit_per_second = 100000\n\
             rate_limit_burst = 100000\n{extra_config}\n"
        );
        std::fs::write(dir.path().join("private.toml"), config).unwrap();
        App { dir }
    }

    /// Adds the cold-start function (the host's encoder) and the key-value
    /// store both functions share, as in the real spin.toml.
    fn with_cold_start(self) -> App {
        #[cfg(unix)]
        std::os::unix::fs::symlink(component("cold-start"), self.path("cold-start.wasm")).unwrap();
        let mut manifest = std::fs::read_to_string(self.path("spin.toml")).unwrap().replace(
            "files = [{ source = \"models/shop/2\", destination = \"/bundle\" }]\n",
            "files = [{ source = \"models/shop/2\", destination = \"/bundle\" }]\nkey_value_stores = [\"default\"]\n",
        );
        manifest.push_str(
            "[[trigger.http]]\nroute = \"/api/items/cold-start\"\ncomponent = \"cold-start\"\n\
             [component.cold-start]\nsource = \"cold-start.wasm\"\n\
             files = [{ source = \"models/shop/2\", destination = \"/bundle\" }]\n\
             ai_models = [\"all-minilm-l6-v2\"]\nkey_value_stores = [\"default\"]\n\
             [component.cold-start.build]\ncommand = \"cargo build --target wasm32-wasip2 --release -p cold-start\"\n",
        );
        std::fs::write(self.path("spin.toml"), manifest).unwrap();
        let mut config = std::fs::read_to_string(self.path("private.toml")).unwrap();
        config.insert_str(0, &format!("ai_models_dir = \"{}\"\n", edgerec_tests::ai_models_dir().display()));
        std::fs::write(self.path("private.toml"), config).unwrap();
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn model(&self) -> PathBuf {
        self.path("models/shop")
    }

    fn start(&self) -> Host {
        Host::start(&self.path("spin.toml"), &Settings::read(&self.path("private.toml")).unwrap())
    }

    fn users(&self) -> Users {
        let store = StoreUrl::Sqlite(self.path("state/users.sqlite"));
        Users::open(&store, DataKey::read(&self.path("state/data.key")).unwrap()).unwrap()
    }

    fn update(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(edgerec_bin());
        cmd.arg("update")
            .arg("--model")
            .arg(self.model())
            .arg("--data")
            .arg(repo().join("data/online-retail/prepared"))
            .arg("--config")
            .arg(self.path("private.toml"))
            .arg("--encoders")
            .arg(repo().join("models/encoders"))
            .args(extra)
            .env("EDGEREC_LOG", "warn");
        cmd
    }
}

/// Copies a bundle, naming it `version` in its manifest (the files, and so
/// their checksums, are unchanged).
fn copy_bundle(from: &Path, to: &Path, version: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(to.join(MANIFEST_FILE)).unwrap()).unwrap();
    manifest["name"] = json!("shop");
    manifest["version"] = json!(version);
    std::fs::write(to.join(MANIFEST_FILE), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

fn version_of(reply: &edgerec_tests::Reply) -> String {
    let json = reply.json();
    match json["model"]["version"].as_str() {
        Some(version) => version.to_string(),
        None => panic!("the answer names no version: {} {}", reply.status, reply.body),
    }
}

fn items(n: usize) -> Vec<String> {
    let index = edgerec_core::index::ItemIndex::read(&demo_bundle().join(edgerec_core::bundle::ITEMS_FILE)).unwrap();
    (0..n).map(|i| index.id(i * 7).to_string()).collect()
}

fn have_demo() -> bool {
    edgerec_tests::available(&demo_bundle())
        && edgerec_tests::available(&repo().join("data/online-retail/prepared/split/meta.json"))
        && edgerec_tests::available(&repo().join("models/encoders/all-MiniLM-L6-v2"))
}

#[test]
fn an_update_learns_from_feedback_and_writes_the_next_version_with_its_lineage_and_the_gate_decision() {
    if !have_demo() {
        return;
    }
    let app = App::new("", false);
    // Feedback after the demo log ends: a shopper buying pairs of items.
    let picked = items(20);
    let events: Vec<_> = (0..200)
        .map(|u| edgerec_core::api::FeedbackEvent {
            user_id: format!("fresh-{}", u % 40),
            item_id: picked[u % picked.len()].clone(),
            kind: edgerec_core::api::EventType::Purchase,
            ts: Some(format!("2011-12-{:02}T10:00:00Z", 10 + u / 40)),
            event_id: None,
            model: None,
            ad_id: None,
            query: None,
        })
        .collect();
    app.users().record(&events).unwrap();
    let out = app.update(&["--json", "--compare", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["parent"].as_str(), summary["version"].as_str()), (Some("2"), Some("3")));
    let manifest = Manifest::verify(&app.model().join("3")).expect("version 3 is whole and verified");
    let lineage = manifest.lineage.expect("an updated version records its lineage");
    assert_eq!((lineage.parent.as_str(), lineage.kind.as_str()), ("2", "incremental"));
    assert!(lineage.new_examples > 0 && lineage.replayed_examples > 0, "{lineage:?}");
    assert_eq!(lineage.gate_to, "2011-12-14T10:00:00Z", "the gate window ends at the newest feedback");
    // Version 2 was refit on its split's validation window: the update's
    // new events start where that split's test window does.
    let split: Value =
        serde_json::from_slice(&std::fs::read(repo().join("data/online-retail/prepared/split/meta.json")).unwrap())
            .unwrap();
    assert_eq!(Some(lineage.events_from.as_str()), split["test_start"].as_str());
    assert!(summary["scores"]["candidate"]["recall@20"].as_f64().is_some() && summary["scores"]["2"].is_object());

    // The log: a baseline for the version served before, the candidate,
    // and the gate's decision, which the summary reports too.
    let log = VersionLog::read(&app.model()).unwrap();
    let actions: Vec<(Action, &str)> = log.entries().iter().map(|e| (e.action, e.version.as_str())).collect();
    let promoted = summary["promoted"].as_bool().unwrap();
    let decision = if promoted { Action::Promote } else { Action::Reject };
    assert_eq!(actions, [(Action::Promote, "2"), (Action::Candidate, "3"), (decision, "3")]);
    assert_eq!(log.serving(), Some(if promoted { "3" } else { "2" }));
    assert!(log.entries()[2].reason.as_deref().unwrap().contains("recall@20"));

    // Bad flags get one line that names them.
    for (flag, value, needle) in [
        ("--gate-margin", "1.5", "gate margin 1.5"),
        ("--gate-metric", "auc", "gate metric `auc`"),
        ("--compare", "9", "version 9"),
    ] {
        let out = app.update(&[flag, value]).env("RUST_BACKTRACE", "1").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle) && err.lines().count() <= 2, "{flag}: {err}");
    }

    // A mount of any version of the model now serves the log's choice.
    let served = versions::resolve_mount(&app.model().join("2")).unwrap();
    assert_eq!(served, app.model().join(log.serving().unwrap()));
}

#[test]
fn a_crash_in_the_middle_of_an_update_leaves_the_serving_version_and_no_half_written_version() {
    if !have_demo() {
        return;
    }
    let app = App::new("", false);
    versions::promote(&app.model(), "2", "test", None, None).unwrap();
    let before = std::fs::read(app.model().join(versions::LOG_FILE)).unwrap();
    // A full retrain of 20 epochs runs for minutes: the kill lands in it.
    let mut child =
        app.update(&["--full", "--epochs", "20"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    assert!(child.try_wait().unwrap().is_none(), "the update ended before the kill");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(versions::versions(&app.model()).unwrap(), [2], "no version 3 after the kill");
    assert_eq!(std::fs::read(app.model().join(versions::LOG_FILE)).unwrap(), before, "the log is as it was");
    assert_eq!(VersionLog::read(&app.model()).unwrap().serving(), Some("2"));

    // What a kill during the write would leave: swept by the next update,
    // never served meanwhile.
    let partial = app.model().join(".3.partial-4242");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("items.bin"), b"half").unwrap();
    assert_eq!(versions::versions(&app.model()).unwrap(), [2]);
    let out = app.update(&["--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!partial.exists(), "the next update removes what the crash left");
    Manifest::verify(&app.model().join("3")).unwrap();
}

#[test]
fn promote_and_rollback_under_load_switch_versions_with_zero_failed_requests() {
    require!(demo_bundle(), component("recommend"));
    let app = App::new("", true);
    let admin = tokens::create(&app.path("state/tokens.json"), &[Scope::Admin]).unwrap().0;
    let reader = tokens::create(&app.path("state/tokens.json"), &[Scope::MetricsRead]).unwrap().0;
    let host = Arc::new(app.start());
    let body = json!({"history": items(3), "k": 5}).to_string();
    assert_eq!(version_of(&host.post("/api/recommend", &body)), "2");

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (host, stop, body) = (host.clone(), stop.clone(), body.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let reply = host.post("/api/recommend", &body);
                    seen.push((reply.status, if reply.status == 200 { version_of(&reply) } else { reply.body }));
                }
                seen
            })
        })
        .collect();
    let settle = || std::thread::sleep(Duration::from_millis(400));
    settle();
    let promote = host.send("POST", "/api/admin/models/shop/promote", Some(&admin), Some(r#"{"version": "3"}"#));
    assert_eq!(promote.status, 200, "{}", promote.body);
    assert_eq!(version_of(&host.post("/api/recommend", &body)), "3", "promote answers once it serves");
    settle();
    let rollback = host.send("POST", "/api/admin/models/shop/rollback", Some(&admin), Some("{}"));
    assert_eq!(rollback.status, 200, "{}", rollback.body);
    assert_eq!(version_of(&host.post("/api/recommend", &body)), "2", "rolled back to the mounted version");
    settle();
    // From a shell (`edgerec models promote`): the host notices the log.
    versions::promote(&app.model(), "3", "cli", None, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while version_of(&host.post("/api/recommend", &body)) != "3" {
        assert!(Instant::now() < deadline, "the host never picked up the log change");
        std::thread::sleep(Duration::from_millis(50));
    }
    settle();
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<(u16, String)> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(3)]
    );
    for v in ["2", "3"] {
        assert!(seen.iter().any(|(_, version)| version == v), "version {v} answered during the run");
    }

    // Refusals name what is wrong; no token or the wrong scope never changes anything.
    let missing = host.send("POST", "/api/admin/models/shop/promote", Some(&admin), Some(r#"{"version": "9"}"#));
    assert!(missing.status == 409 && missing.error_message().contains("no version `9`"), "{}", missing.body);
    assert_eq!(host.send("POST", "/api/admin/models/shop/rollback", Some(&reader), Some("{}")).status, 403);
    assert_eq!(host.send("POST", "/api/admin/models/shop/rollback", None, Some("{}")).status, 401);
    assert_eq!(host.send("POST", "/api/admin/models/other/rollback", Some(&admin), Some("{}")).status, 404);
    let log = host.send("GET", "/api/admin/models/shop", Some(&admin), None).json();
    assert_eq!(log["serving"], "3");
    assert_eq!(log["log"].as_array().unwrap().len(), 4, "baseline, promote, rollback, promote: {log}");
}

#[test]
fn a_challenger_serves_its_share_by_anonymous_id_or_user_and_ab_report_tests_the_difference() {
    require!(demo_bundle(), component("recommend"));
    let app = App::new("[models.shop]\nchallenger = \"3\"\nchallenger_share = 0.3\n", true);
    let token = tokens::create(
        &app.path("state/tokens.json"),
        &[Scope::FeedbackWrite, Scope::UsersPersonalize, Scope::MetricsRead],
    )
    .unwrap()
    .0;
    let host = app.start();
    let body = json!({"history": items(3), "k": 3}).to_string();
    let mut challenger = 0;
    for i in 0..200 {
        let id = format!("anon-{i}");
        let first = version_of(&host.post_with("/api/recommend", &[("x-edgerec-anonymous-id", &id)], &body));
        let again = version_of(&host.post_with("/api/recommend", &[("x-edgerec-anonymous-id", &id)], &body));
        assert_eq!(first, again, "{id} stays in its bucket");
        challenger += usize::from(first == "3");
    }
    assert!((35..=85).contains(&challenger), "{challenger} of 200 shoppers got the 30% challenger");
    assert_eq!(version_of(&host.post("/api/recommend", &body)), "2", "no id: the serving version");
    let preflight = host.preflight("/api/recommend");
    let allowed = preflight.header("access-control-allow-headers").unwrap_or_default();
    assert!(allowed.contains("x-edgerec-anonymous-id"), "browsers may send the id cross-origin: {allowed}");
    // On the private host a user id buckets the user (by its pseudonym).
    let personal = |user: &str| {
        let body = json!({"user_id": user, "k": 3}).to_string();
        version_of(&host.send("POST", "/api/recommend", Some(&token), Some(&body)))
    };
    let users: Vec<String> = (0..60).map(|i| format!("user-{i}")).collect();
    let versions: Vec<String> = users.iter().map(|u| personal(u)).collect();
    assert!(versions.iter().any(|v| v == "3") && versions.iter().any(|v| v == "2"), "{versions:?}");
    assert!(users.iter().zip(&versions).all(|(u, v)| personal(u) == *v), "stable per user");

    // Feedback names the version; the report tests the difference.
    let mut events = Vec::new();
    for (version, shown, clicked) in [("2", 2000, 40), ("3", 2000, 80)] {
        for i in 0..shown {
            let model = json!({"name": "shop", "version": version});
            events.push(
                json!({"user_id": format!("u{}", i % 50), "item_id": "85099B", "type": "impression", "model": model}),
            );
            if i < clicked {
                events.push(
                    json!({"user_id": format!("u{}", i % 50), "item_id": "85099B", "type": "click", "model": model}),
                );
            }
        }
    }
    let fed = host.send("POST", "/api/feedback", Some(&token), Some(&json!({"events": events}).to_string()));
    assert_eq!(fed.status, 200, "{}", fed.body);
    let metrics = host.send("GET", "/metrics", Some(&token), None).body;
    assert!(metrics.contains("edgerec_model_ab_p_value{name=\"shop\",versions=\"2,3\"}"), "{metrics}");
    drop(host);
    let out = Command::new(edgerec_bin())
        .args(["ab", "report", "--model", "shop", "--json", "--config"])
        .arg(app.path("private.toml"))
        .env("EDGEREC_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["versions"]["3"]["clicks"], 80);
    assert_eq!(report["versions"]["2"]["impressions"], 2000);
    assert_eq!(report["test"]["result"]["significant"], true, "{report}");
}

#[test]
fn publish_writes_a_spin_app_and_refuses_private_data_and_an_app_over_the_limit() {
    require!(demo_bundle(), component("recommend"));
    let app = App::new("", true);
    versions::promote(&app.model(), "3", "test", None, None).unwrap();
    app.users()
        .record(&[edgerec_core::api::FeedbackEvent {
            user_id: "shopper-4242".into(),
            item_id: "85099B".into(),
            kind: edgerec_core::api::EventType::Purchase,
            ts: Some("2026-12-01T10:00:00Z".into()),
            event_id: None,
            model: None,
            ad_id: None,
            query: None,
        }])
        .unwrap();
    let publish = |out: &Path, extra: &[&str]| {
        Command::new(edgerec_bin())
            .args(["publish", "--edge", "--manifest"])
            .arg(app.path("spin.toml"))
            .arg("--out")
            .arg(out)
            .arg("--config")
            .arg(app.path("private.toml"))
            .args(extra)
            .env("EDGEREC_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = app.path("published");
    let ok = publish(&out, &[]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let (_, published) = crate::manifest::assert_spin_v2(&out.join("spin.toml"));
    let mounted = &published.components["recommend"].files[0].0;
    assert!(mounted.ends_with("models/shop/3"), "the serving version is published: {}", mounted.display());
    assert!(out.join("models/shop/3/items.bin").exists() && !out.join("models/shop/2").exists());
    assert!(!out.join("state").exists() && !out.join("private.toml").exists(), "nothing of the private zone");

    // A user id planted in a bundle, an e-mail address, an app too large:
    // each refused, naming the file, and nothing written.
    for (plant, contents, extra, needle) in [
        ("notes.txt", &b"best customer: shopper-4242, call her"[..], &[][..], "a user id from the private store"),
        ("contact.txt", &b"support: jane.doe@example.com"[..], &[][..], "e-mail"),
        ("", &b""[..], &["--max-app-mib", "1"][..], "over --max-app-mib 1"),
        ("", &b""[..], &["--max-memory-mib", "1"][..], "component `recommend` needs"),
    ] {
        let file = app.model().join("3").join(plant);
        if !plant.is_empty() {
            std::fs::write(&file, contents).unwrap();
        }
        let refused_out = app.path("refused");
        let refused = publish(&refused_out, extra);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success() && err.contains(needle), "{needle}: {err}");
        if !plant.is_empty() {
            assert!(err.contains(&format!("models/shop/3/{plant}")), "names the file: {err}");
            std::fs::remove_file(&file).unwrap();
        }
        assert!(!refused_out.exists(), "nothing is written when publish refuses");
        assert!(err.lines().count() <= 2, "one line a person can act on: {err}");
    }

    // An encoder our host serves by name but Spin does not (a tuned one).
    let manifest = std::fs::read_to_string(app.path("spin.toml")).unwrap();
    let tuned = manifest.replace("[component.recommend]\n", "[component.recommend]\nai_models = [\"shop-search\"]\n");
    assert_ne!(tuned, manifest);
    std::fs::write(app.path("spin.toml"), tuned).unwrap();
    let refused = publish(&app.path("refused"), &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("ai_models `shop-search`") && err.contains("tract"), "{err}");
}

#[test]
fn the_private_host_updates_on_its_schedule_and_on_the_admin_route_while_it_serves() {
    if !have_demo() {
        return;
    }
    require!(component("cold-start"), edgerec_tests::ai_models_dir());
    let data = repo().join("data/online-retail/prepared");
    let app = App::new(&format!("[models.shop]\ndata = \"{}\"\nupdate_every = \"15s\"\n", data.display()), false)
        .with_cold_start();
    let admin = tokens::create(&app.path("state/tokens.json"), &[Scope::Admin]).unwrap().0;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(app.path("serve.log")).unwrap();
    let mut serve = Command::new(edgerec_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifest"])
        .arg(app.path("spin.toml"))
        .arg("--config")
        .arg(app.path("private.toml"))
        .env("EDGEREC_ENCODERS", repo().join("models/encoders"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let host = Arc::new(Host::at(([127, 0, 0, 1], port).into()));
    let body = json!({"history": items(3), "k": 5}).to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while host.try_post("/api/recommend", &body).is_none_or(|r| r.status != 200) {
        assert!(Instant::now() < deadline, "the host never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A new item, added through the cold-start route, joins the next version's catalog.
    let added = host.post(
        "/api/items/cold-start",
        r#"{"items": [{"item_id": "NEW-HAMPER-1", "title": "RED RETROSPOT PICNIC HAMPER", "category": "bags"}]}"#,
    );
    assert_eq!(added.status, 200, "{}", added.body);
    // An update on the admin route, with requests answered meanwhile.
    let updating = {
        let (host, admin) = (host.clone(), admin.clone());
        std::thread::spawn(move || host.send("POST", "/api/admin/models/shop/update", Some(&admin), Some("{}")))
    };
    let mut slowest = Duration::ZERO;
    while !updating.is_finished() {
        let started = Instant::now();
        assert_eq!(host.post("/api/recommend", &body).status, 200);
        slowest = slowest.max(started.elapsed());
    }
    let reply = updating.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let summary = reply.json();
    assert_eq!(summary["version"], "3");
    assert_eq!(summary["lineage"]["new_items"], 1, "{summary}");
    let catalog =
        edgerec_core::index::ItemIndex::read(&app.model().join("3").join(edgerec_core::bundle::ITEMS_FILE)).unwrap();
    assert!((0..catalog.len()).any(|i| catalog.id(i) == "NEW-HAMPER-1"), "the new item is in version 3's catalog");
    assert!(slowest < Duration::from_secs(1), "a request waited {slowest:?} on the update");
    let serving = if summary["promoted"] == true { "3" } else { "2" };
    let log = || std::fs::read_to_string(app.path("serve.log")).unwrap();
    assert_eq!(version_of(&host.post("/api/recommend", &body)), serving, "{}", log());

    // New feedback from known customers, then the schedule runs the same
    // step on its own (`update_every`).
    let deadline = Instant::now() + Duration::from_secs(180);
    let customers: Vec<String> = std::fs::read_to_string(data.join("events.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next().map(str::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(80)
        .collect();
    let picked = items(30);
    let fresh: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(i, user)| edgerec_core::api::FeedbackEvent {
            user_id: user.clone(),
            item_id: picked[i % picked.len()].clone(),
            kind: edgerec_core::api::EventType::Purchase,
            ts: Some(format!("2011-12-{:02}T10:00:00Z", 12 + i % 4)),
            event_id: None,
            model: None,
            ad_id: None,
            query: None,
        })
        .collect();
    app.users().record(&fresh).unwrap();
    // (A tick that finds an update running, or nothing new yet, logs why and
    // waits for the next; the written summary is logged as JSON.)
    while !log().contains("scheduled update of shop: {") {
        assert!(Instant::now() < deadline, "no scheduled update within 3 minutes: {}", log());
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = serve.kill();
    let _ = serve.wait();
    let scheduled = VersionLog::read(&app.model()).unwrap();
    let candidate = scheduled.entries().iter().find(|e| e.by.contains("schedule")).expect("logged by the schedule");
    assert_eq!(candidate.version, "4", "the scheduled update wrote the next version");
    Manifest::verify(&app.model().join("4")).unwrap();
}

/// Issue 13's replay, from the command line: the held-out Upworthy tests as
/// bandits, every policy in the table, the bandits ahead of the A/B test.
#[test]
fn eval_ads_simulate_replays_the_held_out_tests_as_bandits() {
    let data = edgerec_tests::shared_data().join("upworthy/upworthy_dev.csv.gz");
    require!(data, edgerec_tests::ads_bundle());
    // The headline embeddings scripts/setup cached (`train-ads`): no re-encoding.
    let out = Command::new(edgerec_bin())
        .args(["eval-ads", "--simulate", "--runs", "1", "--data"])
        .arg(&data)
        .arg("--model")
        .arg(edgerec_tests::ads_bundle())
        .arg("--encoders")
        .arg(repo().join("models/encoders"))
        .arg("--work")
        .arg(repo().join(".edgerec/work/ads"))
        .current_dir(repo())
        .env("EDGEREC_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let clicks = |label: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no `{label}` in:\n{text}"));
        line[label.len()..].split_whitespace().find_map(|w| w.parse().ok()).unwrap()
    };
    let ab = clicks("A/B test (fixed horizon)");
    assert!(clicks("UCB, no prior") > ab && clicks("UCB + text prior") > clicks("UCB, no prior"), "{text}");
    assert!(clicks("Thompson, no prior") > ab, "{text}");
}
