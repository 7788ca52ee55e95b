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

/// The names a component imports and exports at its top level (nested
/// modules and components have their own).
struct TopLevel {
    imports: Vec<String>,
    exports: Vec<String>,
}

fn top_level(wasm: &[u8]) -> TopLevel {
    let mut depth = 0usize;
    let mut names = TopLevel { imports: Vec::new(), exports: Vec::new() };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("component parses") {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    names.imports.push(import.expect("import reads").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    names.exports.push(export.expect("export reads").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    names
}

/// The rules every edgerec Spin manifest keeps (ours and what `edgerec
/// publish` writes): Spin v2 with unknown keys refused, valid under our
/// host's Spin rules, no outbound hosts, a build command per component,
/// only model bundles mounted, only edgerec settings in the environment.
pub fn assert_spin_v2(path: &std::path::Path) -> (RawManifest, App) {
    let text = std::fs::read_to_string(path).unwrap();
    let raw: RawManifest = toml::from_str(&text).expect("spin.toml parses with unknown keys refused");
    assert_eq!(raw.spin_manifest_version, 2);
    let app = App::load(path).expect("spin.toml validates");
    for c in raw.component.values() {
        assert!(c.allowed_outbound_hosts.is_empty(), "edge functions call no other host");
        let build = c.build.as_ref().expect("every component says how `spin build` builds it");
        assert!(build.command.contains("wasm32-wasip2") && build.command.contains("--release"));
        for f in &c.files {
            match f {
                edgerec_host::manifest::RawFileMount::Mapping { source, destination } => {
                    assert!(
                        source.starts_with("models/") || source == "web",
                        "only public model artifacts and the pages of web/ are mounted: {source}"
                    );
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
    (raw, app)
}

#[test]
fn spin_toml_follows_spin_v2_rules() {
    let path = repo().join("spin.toml");
    let (raw, app) = assert_spin_v2(&path);
    for route in ["/api/recommend", "/api/health"] {
        assert_eq!(app.route(route).expect(route).component, "recommend");
    }
    // Every other path is the storefront's; the functions keep theirs.
    for (path, component) in [("/", "storefront"), ("/dashboard.html", "storefront"), ("/api/search", "search")] {
        assert_eq!(app.route(path).expect(path).component, component, "{path}");
    }
    assert!(app.components["storefront"].ai_models.is_empty(), "the pages encode nothing");
    // Text is encoded by the host's all-MiniLM-L6-v2 unless `encoder` says
    // otherwise; the functions that encode may use that model and no other.
    let encoder = &raw.variables["encoder"];
    assert_eq!((encoder.default.as_deref(), encoder.required), (Some("llm"), false));
    if std::env::var_os("SPIN_VARIABLE_ENCODER").is_none() {
        for id in ["search", "ad-score", "cold-start"] {
            let c = &app.components[id];
            assert_eq!(c.ai_models, ["all-minilm-l6-v2"], "{id}");
            assert_eq!(c.variables["encoder"], "llm", "{id}");
            assert!(c.files.iter().all(|(_, guest)| guest != "/encoder"), "{id}: no encoder in the component");
        }
        assert!(app.components["recommend"].ai_models.is_empty(), "recommend encodes nothing");
    }
    // The variant for edges with no AI interface.
    let tract = App::load(&repo().join("examples/spin-tract.toml")).expect("examples/spin-tract.toml validates");
    for id in ["search", "cold-start"] {
        let c = &tract.components[id];
        assert_eq!((c.variables["encoder"].as_str(), c.ai_models.len()), ("tract", 0), "{id}");
        assert!(c.files.iter().any(|(_, guest)| guest == "/encoder"), "{id} mounts its encoder");
    }
}

/// The app `spin deploy` uploads (components and the files they mount)
/// fits a Spin edge app (about 50 MiB), and each function's memory after
/// loading its model stays under the edge's 128 MiB.
#[test]
fn the_edge_app_fits_the_edge() {
    use edgerec_host::config::{HostConfig, Settings};
    use edgerec_host::runtime::Runtime;
    let path = repo().join("spin.toml");
    let app = App::load(&path).expect("spin.toml validates");
    let mut total = 0u64;
    let mut counted = std::collections::BTreeSet::new();
    for c in app.components.values() {
        require!(c.source.clone());
        total += std::fs::metadata(&c.source).unwrap().len();
        for (host, _) in &c.files {
            require!(host.clone());
            if counted.insert(host.clone()) {
                total += dir_size(host);
            }
        }
    }
    eprintln!("edge app: {:.1} MiB", total as f64 / (1 << 20) as f64);
    assert!(total < 50 << 20, "the edge app is {:.1} MiB, over 50 MiB", total as f64 / (1 << 20) as f64);

    let kv = tempfile::tempdir().unwrap();
    let settings = Settings { kv_dir: Some(kv.path().to_path_buf()), ..Default::default() };
    let runtime = Runtime::new(HostConfig::new(settings, &path).unwrap()).unwrap();
    for (id, c) in &app.components {
        let states = runtime.capabilities().configure(c).unwrap();
        let wasm = std::fs::read(&c.source).unwrap();
        if !edgerec_host::preinit::exports_preinit(&wasm).unwrap() {
            continue; // the storefront: it loads nothing, each request reads one small file
        }
        let snapshot = edgerec_host::preinit::snapshot(runtime.capabilities(), &states, &wasm).unwrap();
        eprintln!("{id}: {} MiB after loading", snapshot.memory >> 20);
        assert!(snapshot.memory < 128 << 20, "{id} needs {} MiB after loading", snapshot.memory >> 20);
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() { dir_size(&path) } else { std::fs::metadata(&path).unwrap().len() }
        })
        .sum()
}

/// What a component imports, by interface: Spin 4 links WASI 0.2,
/// `fermyon:spin/*@2.0.0` and `spin:*@3.0.0`, and nothing else (no `wasi:nn`).
#[test]
fn components_import_only_what_spin_4_links() {
    for name in ["recommend", "search", "ad-score", "cold-start", "ai-probe"] {
        require!(component(name));
        let wasm = std::fs::read(component(name)).unwrap();
        for import in top_level(&wasm).imports {
            let linked = (import.starts_with("wasi:") && import.contains("@0.2.") && !import.starts_with("wasi:nn"))
                || (import.starts_with("fermyon:spin/") && import.ends_with("@2.0.0"))
                || (import.starts_with("spin:") && import.contains("@3.0.0"));
            assert!(linked, "{name} imports `{import}`, which Spin 4 does not link");
        }
    }
}

/// The `wasi-nn` build variants import `wasi:nn`: why they are variants
/// (Spin cannot instantiate them).
#[test]
fn the_wasi_nn_variants_import_wasi_nn() {
    for name in ["search_wasi_nn", "ad-score_wasi_nn", "cold-start_wasi_nn"] {
        require!(component(name));
        let imports = top_level(&std::fs::read(component(name)).unwrap()).imports;
        assert!(imports.iter().any(|i| i.starts_with("wasi:nn/graph@")), "{name} imports {imports:?}");
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
        let exports = top_level(&wasm).exports;
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
