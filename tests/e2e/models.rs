//! Models held by the host and served to components through Spin's
//! `fermyon:spin/llm` interface: the host's engine against an independent
//! BERT (what Spin computes), a guest's view of the interface and its
//! errors, the allow-list, the in-component encoder against the host's on
//! a shared model, and an encoder that does not match its bundle.

use std::path::Path;

use edgerec_core::encoder::bert::BertEncoder;
use edgerec_core::encoder::onnx_runtime::{self, OrtEncoder};
use edgerec_core::encoder::{Device, ONNX_EXPORT, TextEncoder, load_native};
use edgerec_core::score::dot;
use edgerec_host::config::{HostConfig, Settings};
use edgerec_host::server::Server;
use edgerec_tests::{
    Host, SEARCH_QUERIES as QUERIES, ai_models_dir, available, component, demo_bundle, edgerec_bin, encoder_dir,
    host_encoder_dir, onnxruntime_library, repo, require, tract_bundle,
};
use serde_json::{Value, json};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

#[derive(serde::Deserialize)]
struct BertFixture {
    encoder: String,
    weights_sha256: String,
    titles: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

/// Every native engine for the host's model: candle on the safetensors
/// weights, and ONNX Runtime on their ONNX export where the library is.
fn engines() -> Vec<Box<dyn TextEncoder>> {
    let dir = host_encoder_dir();
    let mut engines: Vec<Box<dyn TextEncoder>> = vec![Box::new(BertEncoder::load(&dir, Device::Cpu).unwrap())];
    if available(&onnxruntime_library()) && available(&dir.join(ONNX_EXPORT)) {
        let runtime = onnx_runtime::init(&onnxruntime_library()).unwrap();
        engines.push(Box::new(OrtEncoder::load(runtime, &dir, Device::Cpu).unwrap()));
    }
    engines
}

/// Spin embeds one text without padding, so for single texts the host must
/// give what Spin gives, whichever engine runs. The reference is
/// `scripts/make-bert-fixture`: a BERT written in NumPy, sharing only the
/// weights and tokenizer with us.
#[test]
fn every_host_engine_gives_spins_embedding_for_every_title() {
    require!(host_encoder_dir());
    let path = repo().join("tests/fixtures/parity-all-MiniLM-L6-v2.json");
    let fixture: BertFixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let titles: Vec<&str> = fixture.titles.iter().map(String::as_str).collect();
    for encoder in engines() {
        assert_eq!(encoder.config().name, fixture.encoder);
        assert_eq!(encoder.config().weights_sha256, fixture.weights_sha256, "fixture made with these weights");
        // One by one (as Spin) and in one padded batch (the host masks padding).
        let batched = encoder.encode_batch(&titles).unwrap();
        let mut worst = 1f32;
        for (i, reference) in fixture.embeddings.iter().enumerate() {
            let single = encoder.encode(titles[i]).unwrap();
            for ours in [&single, &batched[i]] {
                let c = cosine(reference, ours);
                worst = worst.min(c);
                assert!(c >= 0.999, "{}: title {i} `{}`: cosine {c}", encoder.engine(), titles[i]);
            }
        }
        eprintln!("{} vs NumPy BERT: worst cosine {worst:.7} over 50 titles", encoder.engine());
    }
}

/// An app of the ai-probe component, which hands requests to the host's
/// llm and variables interfaces; `extra` is added to its component table.
fn probe(ai_models: &[&str], extra: &str) -> (tempfile::TempDir, Host) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"probe\"\n\
         [variables]\nencoder = {{ default = \"llm\" }}\n\
         [[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n\
         [component.probe]\nsource = \"{}\"\nai_models = {ai_models:?}\n{extra}\n",
        component("ai-probe").display()
    );
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    let settings = Settings { ai_models_dir: Some(models_dir(dir.path())), ..Default::default() };
    let host = Host::start(&path, &settings);
    (dir, host)
}

/// The models directory [`models_dir`] made beside `app`.
fn models_dir_at(app: &Path) -> std::path::PathBuf {
    app.join("ai-models")
}

/// A models directory beside `app` with the demo's model and the
/// in-component encoder's model, as a host operator would lay it out.
fn models_dir(app: &Path) -> std::path::PathBuf {
    let dir = app.join("ai-models");
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(host_encoder_dir(), dir.join("all-minilm-l6-v2")).unwrap();
        std::os::unix::fs::symlink(encoder_dir(), dir.join("paraphrase-minilm-l3-v2")).unwrap();
    }
    dir
}

fn embed(host: &Host, model: &str, texts: &[String]) -> Value {
    let reply = host.post("/probe/embed", json!({"model": model, "texts": texts}).to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn error_of(answer: &Value) -> String {
    answer["error"].as_str().unwrap_or_else(|| panic!("an error, not {answer}")).to_string()
}

#[test]
fn a_guest_gets_the_hosts_embeddings_and_errors_it_can_act_on() {
    require!(component("ai-probe"), host_encoder_dir(), encoder_dir());
    let (_app, host) = probe(&["all-minilm-l6-v2"], "variables = { encoder = \"{{ encoder }}\" }");
    let texts: Vec<String> =
        ["red heart mug", "JUMBO BAG RED RETROSPOT", "a set of four vintage tea cups"].map(String::from).to_vec();
    let answer = embed(&host, "all-minilm-l6-v2", &texts);
    let native = load_native(&host_encoder_dir(), Device::Cpu).unwrap();
    let vectors: Vec<Vec<f32>> = serde_json::from_value(answer["embeddings"].clone()).unwrap();
    assert_eq!(vectors.len(), 3);
    for (text, v) in texts.iter().zip(&vectors) {
        assert_eq!(v.len(), 384);
        let c = cosine(v, &native.encode(text).unwrap());
        assert!(c >= 0.999, "`{text}`: guest and native differ, cosine {c}");
    }
    assert!(answer["prompt_token_count"].as_u64().unwrap() >= 3 * 3, "{answer}");

    // A model the host holds but this component does not list, and one
    // nobody has: the same refusal, naming what it may use.
    for model in ["paraphrase-minilm-l3-v2", "no-such-model"] {
        let err = error_of(&embed(&host, model, &texts));
        assert!(
            err.contains(&format!("may not use model `{model}`")) && err.contains("its ai_models: all-minilm-l6-v2"),
            "{err}"
        );
    }
    let err = error_of(&embed(&host, "all-minilm-l6-v2", &[]));
    assert!(err.contains("no texts to embed"), "{err}");
    let many: Vec<String> = (0..10_000).map(|i| format!("item {i}")).collect();
    let err = error_of(&embed(&host, "all-minilm-l6-v2", &many));
    assert!(err.contains("10000 texts in one call; at most 2048"), "{err}");
    // Text generation is not served.
    let reply = host.post("/probe/infer", json!({"model": "llama2-chat", "prompt": "hi"}).to_string());
    assert!(error_of(&reply.json()).contains("ModelNotSupported"), "{}", reply.body);
    // Variables: the component's own, resolved from [variables].
    assert_eq!(host.get("/probe/variable/encoder").json()["value"], "llm");
    assert!(error_of(&host.get("/probe/variable/region").json()).contains("Undefined"));
}

#[test]
fn a_component_listing_a_model_the_host_lacks_is_refused_at_start() {
    require!(component("ai-probe"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spin.toml");
    std::fs::write(
        &path,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"probe\"\n\
             [[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n\
             [component.probe]\nsource = \"{}\"\nai_models = [\"no-such-model\"]\n",
            component("ai-probe").display()
        ),
    )
    .unwrap();
    let settings = Settings { ai_models_dir: Some(dir.path().join("models")), ..Default::default() };
    let err = Server::new(&path, HostConfig::new(settings, &path).unwrap()).err().expect("refused");
    let err = format!("{err:#}");
    assert!(err.contains("model `no-such-model` is not at") && err.contains("models/no-such-model"), "{err}");
}

/// A search app on `bundle`; with the in-component encoder (the `tract`
/// build variant, the encoder mounted) or not; `component_extra` completes
/// its component.
fn search_app(bundle: &Path, with_encoder: bool, component_extra: &str) -> tempfile::TempDir {
    let (component, encoder) = if with_encoder { ("search_tract", Some(encoder_dir())) } else { ("search", None) };
    search_app_with(bundle, component, encoder.as_deref(), component_extra)
}

/// A search app serving `component` (a build of `search`) on `bundle`, with
/// `encoder` mounted at `/encoder` if given.
fn search_app_with(bundle: &Path, component: &str, encoder: Option<&Path>, component_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(bundle, dir.path().join("bundle")).unwrap();
        if let Some(encoder) = encoder {
            std::os::unix::fs::symlink(encoder, dir.path().join("encoder")).unwrap();
        }
    }
    let encoder_mount = if encoder.is_some() { ", { source = \"encoder\", destination = \"/encoder\" }" } else { "" };
    std::fs::write(
        dir.path().join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"search\"\n\
             [[trigger.http]]\nroute = \"/api/search\"\ncomponent = \"search\"\n\
             [component.search]\nsource = \"{}\"\n\
             files = [{{ source = \"bundle\", destination = \"/bundle\" }}{encoder_mount}]\n{component_extra}\n",
            edgerec_tests::component(component).display()
        ),
    )
    .unwrap();
    dir
}

fn start(app: &tempfile::TempDir, preinit: bool) -> Host {
    let settings =
        Settings { preinit: Some(preinit), ai_models_dir: Some(models_dir(app.path())), ..Default::default() };
    Host::start(&app.path().join("spin.toml"), &settings)
}

/// The same model (paraphrase-MiniLM-L3-v2, ONNX) run inside the component
/// by tract and by the host through the llm interface: the same top 10 and
/// the same scores on a fixed query set.
#[test]
fn the_in_component_encoder_and_the_hosts_agree_on_a_shared_model() {
    require!(component("search"), component("search_tract"), tract_bundle(), encoder_dir());
    let inside = search_app(&tract_bundle(), true, "variables = { encoder = \"tract\" }");
    let hosted = search_app(&tract_bundle(), false, "ai_models = [\"paraphrase-minilm-l3-v2\"]");
    let (inside, hosted) = (start(&inside, true), start(&hosted, true));
    for q in QUERIES {
        let body = json!({"query": q, "k": 10}).to_string();
        let (a, b) = (inside.post("/api/search", &body), hosted.post("/api/search", &body));
        assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
        let (a, b) = (a.json()["items"].clone(), b.json()["items"].clone());
        let ids = |v: &Value| v.as_array().unwrap().iter().map(|i| i["item_id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b), "`{q}`: the top 10 differ");
        for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
            let (x, y) = (x["score"].as_f64().unwrap(), y["score"].as_f64().unwrap());
            assert!((x - y).abs() < 1e-3, "`{q}`: score {x} inside, {y} in the host");
        }
    }
}

/// Vectors from one encoder are meaningless to another: a function whose
/// encoder is not its bundle's refuses, naming both.
#[test]
fn an_encoder_that_does_not_match_the_bundle_is_refused_naming_both() {
    require!(component("search"), component("search_tract"), demo_bundle(), tract_bundle(), encoder_dir());
    let body = json!({"query": "red heart mug"}).to_string();
    // The demo bundle (all-MiniLM-L6-v2) with the in-component L3 encoder:
    // 503 on every request without pre-initialization...
    let app = search_app(&demo_bundle(), true, "variables = { encoder = \"tract\" }");
    let reply = start(&app, false).post("/api/search", &body);
    assert_eq!(reply.status, 503, "{}", reply.body);
    let message = reply.error_message();
    assert!(message.contains("paraphrase-MiniLM-L3-v2") && message.contains("all-MiniLM-L6-v2"), "{message}");
    // ...and refused at start with it.
    let path = app.path().join("spin.toml");
    let settings = Settings { ai_models_dir: Some(ai_models_dir()), ..Default::default() };
    let err = format!("{:#}", Server::new(&path, HostConfig::new(settings, &path).unwrap()).err().expect("refused"));
    assert!(err.contains("paraphrase-MiniLM-L3-v2") && err.contains("all-MiniLM-L6-v2"), "{err}");

    // The L3 bundle through the host, which gives this component only L6.
    let app = search_app(&tract_bundle(), false, "ai_models = [\"all-minilm-l6-v2\"]");
    let reply = start(&app, true).post("/api/search", &body);
    assert_eq!(reply.status, 503, "{}", reply.body);
    let message = reply.error_message();
    assert!(message.contains("paraphrase-minilm-l3-v2") && message.contains("all-minilm-l6-v2"), "{message}");

    // An encoder nobody makes, and one this build was made without.
    for (encoder, says) in [
        ("onnx", "use `llm`, `tract` or `wasi-nn`"),
        ("tract", "serve its `tract` build variant (<name>_tract.wasm"),
        ("wasi-nn", "serve its `wasi-nn` build variant (<name>_wasi_nn.wasm"),
    ] {
        let app = search_app(&demo_bundle(), false, &format!("variables = {{ encoder = \"{encoder}\" }}"));
        let reply = start(&app, false).post("/api/search", &body);
        assert_eq!(reply.status, 503, "{}", reply.body);
        let message = reply.error_message();
        assert!(
            message.contains(&format!("the variable `encoder` is `{encoder}`")) && message.contains(says),
            "{message}"
        );
    }
}

/// The two interfaces onto one host model give the same embeddings: Spin's
/// `llm` (the host pools) and `wasi:nn` (the host gives per-token vectors,
/// the guest pools), each driven as a component would drive it.
#[test]
fn wasi_nn_and_llm_give_the_same_embeddings() {
    use edgerec_core::encoder::{TextTokenizer, mean_pool};
    use edgerec_host::capability::Capability;
    use edgerec_host::capability::models::{Models, llm};
    use edgerec_host::manifest::App;
    use wasmtime_wasi_nn::backend::{BackendExecutionContext, NamedTensor};
    use wasmtime_wasi_nn::wit::TensorType;
    use wasmtime_wasi_nn::{GraphRegistry, Tensor};

    require!(component("ai-probe"), host_encoder_dir());
    let (app, _host) = probe(&["all-minilm-l6-v2"], "");
    let path = app.path().join("spin.toml");
    let settings = Settings { ai_models_dir: Some(models_dir_at(app.path())), ..Default::default() };
    let models = Models::new(&HostConfig::new(settings, &path).unwrap()).unwrap();
    let component = App::load(&path).unwrap().components["probe"].clone();
    let allowed = models.configure(&component).unwrap();

    let texts: Vec<String> =
        QUERIES.iter().map(|q| q.to_string()).chain(["JUMBO BAG RED RETROSPOT".to_string()]).collect();
    let by_llm = llm::generate_embeddings(&allowed, "all-minilm-l6-v2", &texts).unwrap().embeddings;

    let config = edgerec_core::encoder::EncoderConfig::read(&host_encoder_dir()).unwrap();
    let tokenizer = TextTokenizer::load(&host_encoder_dir(), &config).unwrap();
    let graph = allowed.graphs().get("all-minilm-l6-v2").expect("the graph of an allowed model");
    assert!(allowed.graphs().get("paraphrase-minilm-l3-v2").is_none(), "only the component's models");
    let mut context = graph.init_execution_context().unwrap();
    let strs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens = tokenizer.tokenize(&strs).unwrap();
    let tensor = |values: &[i64]| Tensor {
        dimensions: vec![tokens.batch as u32, tokens.seq as u32],
        ty: TensorType::I64,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    let inputs = vec![
        NamedTensor { name: "input_ids".into(), tensor: tensor(&tokens.ids) },
        NamedTensor { name: "attention_mask".into(), tensor: tensor(&tokens.mask) },
    ];
    let outputs = BackendExecutionContext::compute(&mut *context, Some(inputs)).unwrap().unwrap();
    assert_eq!(outputs[0].name, "last_hidden_state");
    assert_eq!(outputs[0].tensor.dimensions, vec![tokens.batch as u32, tokens.seq as u32, 384]);
    let hidden: Vec<f32> =
        outputs[0].tensor.data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let by_wasi_nn = mean_pool(&hidden, &tokens, 384).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let c = cosine(&by_llm[i], &by_wasi_nn[i]);
        assert!(c >= 0.999, "`{text}`: llm and wasi-nn differ, cosine {c}");
    }
    // A bad input is refused with a reason, not a trap.
    let bad = vec![NamedTensor {
        name: "input_ids".into(),
        tensor: Tensor { dimensions: vec![1, 2], ty: TensorType::Fp32, data: vec![0; 8] },
    }];
    let err = format!("{:?}", BackendExecutionContext::compute(&mut *context, Some(bad)).err().expect("refused"));
    assert!(err.contains("must be i64"), "{err}");
}

/// The same search through `wasi:nn` (the component's build variant) and
/// through Spin's `llm`: the same top 10 and scores on a fixed query set.
#[test]
fn search_through_wasi_nn_ranks_as_through_llm() {
    require!(component("search"), component("search_wasi_nn"), demo_bundle(), host_encoder_dir());
    let through_llm = search_app_with(&demo_bundle(), "search", None, "ai_models = [\"all-minilm-l6-v2\"]");
    let through_nn = search_app_with(
        &demo_bundle(),
        "search_wasi_nn",
        Some(&host_encoder_dir()),
        "ai_models = [\"all-minilm-l6-v2\"]\nvariables = { encoder = \"wasi-nn\" }",
    );
    let (a, b) = (start(&through_llm, true), start(&through_nn, true));
    for q in QUERIES {
        let body = json!({"query": q, "history": ["85099B"], "k": 10}).to_string();
        let (x, y) = (a.post("/api/search", &body), b.post("/api/search", &body));
        assert_eq!((x.status, y.status), (200, 200), "{} / {}", x.body, y.body);
        let timing = y.header("server-timing").unwrap_or_default();
        assert!(timing.contains("tokenize;dur=") && timing.contains("encode;dur="), "{timing}");
        let (x, y) = (x.json()["items"].clone(), y.json()["items"].clone());
        let ids = |v: &Value| v.as_array().unwrap().iter().map(|i| i["item_id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&x), ids(&y), "`{q}`: the top 10 differ");
        for (s, t) in x.as_array().unwrap().iter().zip(y.as_array().unwrap()) {
            let (s, t) = (s["score"].as_f64().unwrap(), t["score"].as_f64().unwrap());
            assert!((s - t).abs() < 1e-3, "`{q}`: score {s} through llm, {t} through wasi-nn");
        }
    }
    // A graph the host does not give this component: 503 naming both.
    let refused = search_app_with(
        &demo_bundle(),
        "search_wasi_nn",
        Some(&host_encoder_dir()),
        "ai_models = [\"paraphrase-minilm-l3-v2\"]\nvariables = { encoder = \"wasi-nn\" }",
    );
    let reply = start(&refused, true).post("/api/search", json!({"query": "mug"}).to_string());
    assert_eq!(reply.status, 503, "{}", reply.body);
    let message = reply.error_message();
    assert!(message.contains("encoder `wasi-nn`") && message.contains("all-minilm-l6-v2"), "{message}");
}

/// What `scripts/gpu-check` runs: every engine here, parity with the CPU
/// engine, a rate; without a GPU it says it fell back to the CPU. A wrong
/// `--data` is a one-line error naming it.
#[test]
fn check_encoder_compares_every_engine_and_names_a_bad_data_dir() {
    require!(edgerec_bin(), host_encoder_dir(), repo().join("data/online-retail/prepared/catalog.csv"));
    let run = |data: &str| {
        std::process::Command::new(edgerec_bin())
            .current_dir(repo())
            .args(["check-encoder", "--data", data, "--peak-tflops", "67"])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap()
    };
    let out = run("data/online-retail/prepared");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("engine chosen automatically: "), "{stdout}");
    let gpu = stdout.contains("engine chosen automatically: onnxruntime-cuda");
    assert!(gpu || stdout.contains("fell back to the CPU"), "{stdout}");
    assert!(stdout.contains("parity ") && stdout.contains("worst cosine"), "{stdout}");
    assert!(stdout.contains("texts/s") && stdout.contains("% of 67 TFLOP/s"), "{stdout}");

    let out = run("no/such/dir");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--data no/such/dir") && stderr.lines().count() <= 3, "{stderr}");
}
