//! `spin.toml` stays a valid Spin v2 manifest, and every built component
//! exports only a WASI HTTP world that released Spin runtimes accept.

use edgerec_host::manifest::{App, RawManifest};
use edgerec_tests::{component, repo, require};
use wasmparser::{Parser, Payload};

/// Exports a Spin 4.x runtime accepts from an HTTP component. Spin refuses
/// the final `wasi:http/handler@0.3.0` that spin-sdk 7 emits.
fn spin_accepts(export: &str) -> bool {
    export.starts_with("wasi:http/incoming-handler@0.2.") || export == "wasi:http/handler@0.3.0-rc-2026-03-15"
}

fn top_level_exports(wasm: &[u8]) -> Vec<String> {
    let mut depth = 0usize;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("component parses") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export.expect("export reads").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    exports
}

#[test]
fn spin_toml_follows_spin_v2_rules() {
    let path = repo().join("spin.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let raw: RawManifest = toml::from_str(&text).expect("spin.toml parses with unknown keys refused");
    assert_eq!(raw.spin_manifest_version, 2);
    let app = App::load(&path).expect("spin.toml validates");
    for route in ["/api/recommend", "/api/health"] {
        assert_eq!(app.route(route).expect(route).component, "recommend");
    }
    for c in raw.component.values() {
        assert!(c.allowed_outbound_hosts.is_empty(), "edge functions call no other host");
        let build = c.build.as_ref().expect("every component says how `spin build` builds it");
        assert!(build.command.contains("wasm32-wasip2") && build.command.contains("--release"));
        for f in &c.files {
            match f {
                edgerec_host::manifest::RawFileMount::Mapping { source, destination } => {
                    assert!(source.starts_with("models/"), "only public model artifacts are mounted: {source}");
                    assert!(destination.starts_with('/'));
                }
                other => panic!("unexpected files entry {other:?}"),
            }
        }
    }
    for (id, c) in &app.components {
        assert!(
            c.environment.keys().all(|k| k.starts_with("EDGEREC_")),
            "{id}: only edgerec settings in the environment"
        );
    }
}

/// Each component exports one HTTP handler Spin runs and, besides it, at
/// most `preinit` (a plain function Spin leaves alone: the team ran search,
/// ad-score and cold-start with it under Spin 4.0.2).
#[test]
fn components_export_a_wasi_http_version_spin_runs() {
    let names = ["recommend", "search", "ad-score", "cold-start", "misbehave"];
    for name in names {
        require!(component(name));
        let wasm = std::fs::read(component(name)).unwrap();
        let exports = top_level_exports(&wasm);
        let handlers = exports.iter().filter(|e| spin_accepts(e)).count();
        assert_eq!(handlers, 1, "{name} exports {exports:?}");
        for export in &exports {
            assert!(
                spin_accepts(export) || export == "preinit",
                "{name} exports `{export}`, which Spin 4 does not run"
            );
        }
    }
}

#[test]
fn the_export_check_refuses_what_spin_refuses() {
    assert!(spin_accepts("wasi:http/incoming-handler@0.2.0"));
    assert!(spin_accepts("wasi:http/incoming-handler@0.2.6"));
    assert!(!spin_accepts("wasi:http/handler@0.3.0"));
    assert!(!spin_accepts("wasi:cli/run@0.2.0"));
}
