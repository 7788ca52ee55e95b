//! The registry of served functions: a component is swapped to another
//! bundle while clients keep calling it, a broken bundle is refused while
//! the old one serves on, `SIGHUP` reloads a running `edgerec serve`, and
//! hosts sharing one cache directory start side by side.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgerec_core::bundle::ITEMS_FILE;
use edgerec_host::config::Settings;
use edgerec_tests::{Host, component, demo_bundle, edgerec_bin, require};
use serde_json::{Value, json};

/// An app directory serving `recommend` with `bundle` (a symbolic link the
/// tests repoint) mounted at `/bundle`, and two versions of the demo
/// bundle beside it: `shop/1` and `shop/2`.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for version in ["1", "2"] {
            copy_bundle(&demo_bundle(), &dir.path().join("shop").join(version), version);
        }
        let app = Self { dir };
        app.point_at("shop/1");
        let manifest = format!(
            "spin_manifest_version = 2\n[application]\nname = \"swap\"\n[[trigger.http]]\nroute = \"/api/...\"\n\
             component = \"recommend\"\n[component.recommend]\nsource = \"{}\"\n\
             files = [{{ source = \"bundle\", destination = \"/bundle\" }}]\n",
            component("recommend").display(),
        );
        std::fs::write(app.manifest(), manifest).unwrap();
        app
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn manifest(&self) -> PathBuf {
        self.path("spin.toml")
    }

    /// Points `bundle` at `target` in one rename, as a deploy would.
    fn point_at(&self, target: &str) {
        let tmp = self.path("bundle.new");
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(self.path(target), &tmp).unwrap();
        std::fs::rename(&tmp, self.path("bundle")).unwrap();
    }

    fn settings(&self) -> Settings {
        Settings { kv_dir: Some(self.path("kv")), ..Default::default() }
    }
}

/// A copy of `from` at `to`, its manifest renamed to `shop` `version`
/// (the checksums cover the data files, not the manifest).
fn copy_bundle(from: &Path, to: &Path, version: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    let manifest_path = to.join("manifest.json");
    let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["name"] = json!("shop");
    manifest["version"] = json!(version);
    std::fs::write(manifest_path, manifest.to_string()).unwrap();
}

const BODY: &str = r#"{"history": ["85099B", "20725"], "k": 5}"#;

/// The version a recommend answer names, or the failure.
fn version(host: &Host) -> Result<String, String> {
    let reply = host.post("/api/recommend", BODY);
    match reply.status {
        200 => Ok(reply.json()["model"]["version"].as_str().unwrap_or_default().to_string()),
        status => Err(format!("{status}: {}", reply.body)),
    }
}

#[test]
fn a_bundle_swapped_under_load_drops_no_request() {
    require!(component("recommend"), demo_bundle());
    let app = App::new();
    let host = Host::start(&app.manifest(), &app.settings());
    assert_eq!(version(&host).unwrap(), "1");
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    // (started, finished, result) of every request, per client.
    let (answers, reloaded) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let at = started.elapsed();
                        let answer = version(&host);
                        seen.push((at, started.elapsed(), answer));
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        app.point_at("shop/2");
        let swap_began = started.elapsed();
        let report = host.server().reload().unwrap();
        let swap_done = started.elapsed();
        assert_eq!(report.swapped, ["recommend"], "{report:?}");
        // Keep the load on for 10 s at least, and 2 s past the swap.
        std::thread::sleep(Duration::from_secs(10).saturating_sub(swap_done).max(Duration::from_secs(2)));
        stop.store(true, Ordering::Relaxed);
        let answers: Vec<_> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        (answers, (swap_began, swap_done))
    });
    let (swap_began, swap_done) = reloaded;
    let failed: Vec<_> = answers.iter().filter_map(|(_, _, r)| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), answers.len(), &failed[..1]);
    let before: Vec<&str> =
        answers.iter().filter(|(_, done, _)| *done < swap_began).map(|(_, _, r)| r.as_deref().unwrap()).collect();
    let after: Vec<&str> =
        answers.iter().filter(|(at, _, _)| *at > swap_done).map(|(_, _, r)| r.as_deref().unwrap()).collect();
    assert!(before.len() > 50 && after.len() > 50, "{} before, {} after", before.len(), after.len());
    assert!(before.iter().all(|v| *v == "1"), "answers before the swap name version 1");
    assert!(after.iter().all(|v| *v == "2"), "answers after the swap name version 2");
    eprintln!(
        "{} requests from 8 clients in {:.1?}, none failed; the swap took {:.1?}",
        answers.len(),
        started.elapsed(),
        swap_done - swap_began
    );
}

#[test]
fn a_broken_bundle_is_refused_and_the_old_one_serves_on() {
    require!(component("recommend"), demo_bundle());
    let app = App::new();
    let host = Host::start(&app.manifest(), &app.settings());
    let broken = app.path("shop/broken");
    copy_bundle(&demo_bundle(), &broken, "3");
    let mut items = std::fs::read(broken.join(ITEMS_FILE)).unwrap();
    items[100] ^= 0x01;
    std::fs::write(broken.join(ITEMS_FILE), items).unwrap();
    app.point_at("shop/broken");
    let report = host.server().reload().unwrap();
    assert_eq!(report.refused.len(), 1, "{report:?}");
    let (id, reason) = &report.refused[0];
    assert!(id == "recommend" && reason.contains("`items.bin`") && reason.contains("checksum"), "{reason}");
    assert_eq!(version(&host).unwrap(), "1", "the old bundle serves on");
    // A manifest that no longer parses changes nothing.
    std::fs::write(app.manifest(), "spin_manifest_version = 2\n[application\n").unwrap();
    assert!(host.server().reload().is_err());
    assert_eq!(version(&host).unwrap(), "1");
}

/// Kills the child when dropped, so a failed test leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sighup_reloads_a_running_edgerec_serve() {
    require!(edgerec_bin(), component("recommend"), demo_bundle());
    let app = App::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Running(
        Command::new(edgerec_bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--manifest"])
            .arg(app.manifest())
            .env("EDGEREC_KV_DIR", app.path("kv"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let host = Host::at(([127, 0, 0, 1], port).into());
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let answered = host.try_post("/api/recommend", BODY).filter(|r| r.status == 200);
            if answered.is_some_and(|r| r.json()["model"]["version"] == want) {
                return;
            }
            assert!(Instant::now() < deadline, "the server never answered version {want}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for("1");
    app.point_at("shop/2");
    let status = Command::new("kill").args(["-HUP", &server.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_for("2");
}

#[test]
fn two_hosts_starting_at_once_on_one_cache_directory_both_serve() {
    require!(component("recommend"), demo_bundle());
    let app = App::new();
    let cache = tempfile::tempdir().unwrap();
    let hosts: Vec<Host> = std::thread::scope(|s| {
        let starts: Vec<_> = ["kv-a", "kv-b"]
            .into_iter()
            .map(|kv| {
                let settings = Settings {
                    cache_dir: Some(cache.path().to_path_buf()),
                    kv_dir: Some(app.path(kv)),
                    ..Default::default()
                };
                let manifest = app.manifest();
                s.spawn(move || Host::start(&manifest, &settings))
            })
            .collect();
        starts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for host in &hosts {
        assert_eq!(version(host).unwrap(), "1");
    }
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".cwasm")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "no temporary file is left: {names:?}");
    // A third host finds everything cached.
    let third = Host::start(
        &app.manifest(),
        &Settings { cache_dir: Some(cache.path().to_path_buf()), kv_dir: Some(app.path("kv-c")), ..Default::default() },
    );
    let app_now = third.server().registry().current();
    assert_eq!(app_now.functions["recommend"].compiled_from, edgerec_host::cache::LoadedFrom::Cache);
}
