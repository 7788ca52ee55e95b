//! A component that traps, loops or exhausts memory costs its own request a
//! 500/503, and the host keeps serving every other request.

use std::path::Path;
use std::sync::OnceLock;

use edgerec_host::config::Settings;
use edgerec_tests::{Host, component, demo_bundle, require};

/// A host serving the misbehaving test component next to the real
/// recommend function, with a short deadline and a small memory limit.
fn host() -> &'static Host {
    static HOST: OnceLock<(tempfile::TempDir, Host)> = OnceLock::new();
    &HOST
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            link(&demo_bundle(), &dir.path().join("bundle"));
            let manifest = format!(
                r#"
spin_manifest_version = 2
[application]
name = "isolation"
[[trigger.http]]
route = "/misbehave/..."
component = "misbehave"
[[trigger.http]]
route = "/api/recommend"
component = "recommend"
[component.misbehave]
source = "{misbehave}"
[component.recommend]
source = "{recommend}"
files = [{{ source = "bundle", destination = "/bundle" }}]
"#,
                misbehave = component("misbehave").display(),
                recommend = component("recommend").display(),
            );
            let path = dir.path().join("spin.toml");
            std::fs::write(&path, manifest).unwrap();
            let settings = Settings { deadline_ms: Some(1000), memory_limit_mib: Some(64), ..Default::default() };
            let host = Host::start(&path, &settings);
            (dir, host)
        })
        .1
}

fn link(target: &Path, at: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, at).expect("symlink the demo bundle");
}

fn still_serving(host: &Host) {
    assert_eq!(host.get("/misbehave/ok").status, 200);
    let reply = host.post("/api/recommend", r#"{"k": 3}"#);
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn a_trap_is_a_500_and_nothing_else() {
    require!(component("misbehave"), component("recommend"), demo_bundle());
    let reply = host().get("/misbehave/trap");
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "internal");
    still_serving(host());
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline() {
    require!(component("misbehave"), component("recommend"), demo_bundle());
    let started = std::time::Instant::now();
    let reply = host().get("/misbehave/loop");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "deadline_exceeded");
    assert!(started.elapsed().as_secs() < 10, "stopped near the 1 s deadline, took {:?}", started.elapsed());
    still_serving(host());
}

#[test]
fn exhausting_memory_is_a_503_at_the_limit() {
    require!(component("misbehave"), component("recommend"), demo_bundle());
    let reply = host().get("/misbehave/oom");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "out_of_memory");
    assert!(reply.error_message().contains("64 MiB"));
    still_serving(host());
}

#[test]
fn misbehaviour_under_load_leaves_good_requests_alone() {
    require!(component("misbehave"), component("recommend"), demo_bundle());
    std::thread::scope(|s| {
        let bad: Vec<_> = ["/misbehave/trap", "/misbehave/oom", "/misbehave/loop"]
            .into_iter()
            .map(|p| s.spawn(move || host().get(p).status))
            .collect();
        let good: Vec<_> = (0..12).map(|_| s.spawn(|| host().post("/api/recommend", "{}").status)).collect();
        for g in good {
            assert_eq!(g.join().unwrap(), 200);
        }
        for b in bad {
            assert!(matches!(b.join().unwrap(), 500 | 503));
        }
    });
}
