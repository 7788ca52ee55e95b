//! Helpers for the end-to-end tests: locate the built artifacts, start a
//! host on a free port, and speak HTTP to it like a front end would.
//!
//! Tests that need something built by `scripts/setup` (components, the
//! encoder, the demo bundle) skip with a message when it is missing, and
//! fail when `CI` is set, where `scripts/test` has built everything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edgerec_host::config::{HostConfig, Settings};
use edgerec_host::server::{Server, spawn_local};

/// The repository root.
///
/// Read from the environment `cargo test` runs the binary in before the
/// path compiled in: cargo reuses a test binary built from another checkout
/// of the same commit through a shared target directory, and the compiled
/// path would point at that other checkout.
pub fn repo() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    manifest_dir.parent().expect("tests/ has a parent").to_path_buf()
}

/// The demo bundle `scripts/setup` trains and `spin.toml` mounts.
pub fn demo_bundle() -> PathBuf {
    repo().join("models/online-retail/2")
}

/// The zero-shot bundle `scripts/setup` indexes (pretrained text, no training).
pub fn zero_shot_bundle() -> PathBuf {
    repo().join("models/online-retail/1")
}

/// The ad bundle `scripts/setup` trains on the Upworthy archive.
pub fn ads_bundle() -> PathBuf {
    repo().join("models/upworthy/1")
}

/// The in-component (tract) encoder `scripts/setup` fetches: ONNX.
pub fn encoder_dir() -> PathBuf {
    repo().join("models/encoders/paraphrase-MiniLM-L3-v2")
}

/// The encoder of the demo bundles, held by the host (`all-minilm-l6-v2`
/// through Spin's llm interface): safetensors.
pub fn host_encoder_dir() -> PathBuf {
    repo().join("models/encoders/all-MiniLM-L6-v2")
}

/// ONNX Runtime's library, where `scripts/setup` places it.
pub fn onnxruntime_library() -> PathBuf {
    repo().join(edgerec_core::encoder::onnx_runtime::DEFAULT_LIBRARY)
}

/// Where `scripts/setup` places the host's models, as `spin up` reads them.
pub fn ai_models_dir() -> PathBuf {
    repo().join(".spin/ai-models")
}

/// The zero-shot bundle indexed with the in-component encoder
/// (examples/spin-tract.toml).
pub fn tract_bundle() -> PathBuf {
    repo().join("models/online-retail-l3/1")
}

/// Queries on the demo catalog that the search tests and benchmark run:
/// exact titles, words no title uses, colours, materials, occasions.
pub const SEARCH_QUERIES: [&str; 8] = [
    "red heart mug",
    "christmas decorations for the tree",
    "jumbo bag",
    "vintage tea set with saucers",
    "something to drink coffee from",
    "pink polkadot lunch box",
    "glass candle holder",
    "paper party bunting",
];

/// The team's shared data folder (`../shared/data` beside the repository).
pub fn shared_data() -> PathBuf {
    repo().join("../shared/data")
}

/// The `edgerec` binary built next to this test binary
/// (`<target>/release/deps/e2e-*` → `<target>/release/edgerec`).
pub fn edgerec_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(Path::parent).expect("target/release").join("edgerec")
}

/// A built component, where `spin.toml` expects it (cargo writes a package
/// `cold-start` as `cold_start.wasm`).
pub fn component(name: &str) -> PathBuf {
    repo().join("target/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")))
}

/// Whether `path` exists; if not, skips the test (returns false) or, under
/// CI, fails it. `missing` says where the file should have come from.
pub fn available_or(path: &Path, missing: &str) -> bool {
    if path.exists() {
        return true;
    }
    let msg = format!("{} is missing; {missing}", path.display());
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("skipping: {msg}");
    false
}

/// [`available_or`] for what `scripts/setup` builds.
pub fn available(path: &Path) -> bool {
    available_or(path, "run scripts/setup (or scripts/test) first")
}

/// Skips the calling test unless every path exists (fails under CI).
#[macro_export]
macro_rules! require {
    ($($path:expr),+ $(,)?) => {
        if !( true $(&& $crate::available(&$path))+ ) {
            return;
        }
    };
}

/// A running host, or the address of one.
#[derive(Clone)]
pub struct Host {
    /// Where it listens.
    pub addr: SocketAddr,
    server: Option<Arc<Server>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Header lookup by lower-case name (all values joined with ", ").
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// All values of a header, joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> =
            self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The `error.message` of a JSON error reply.
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or_default().to_string()
    }
}

impl Host {
    /// Loads `manifest` into a new host on 127.0.0.1:<free port>.
    pub fn start(manifest: &Path, settings: &Settings) -> Host {
        let config = HostConfig::new(settings.clone(), manifest).expect("valid settings");
        let server = Arc::new(Server::new(manifest, config).expect("host starts"));
        Host { addr: spawn_local(server.clone()).expect("host listens"), server: Some(server) }
    }

    /// A host listening at `addr` in another process.
    pub fn at(addr: SocketAddr) -> Host {
        Host { addr, server: None }
    }

    /// The server of a host started here (for reloads).
    pub fn server(&self) -> &Server {
        self.server.as_deref().expect("a host started with Host::start")
    }

    /// Serves the recommend component with `bundle` mounted at `/bundle`
    /// (the manifest lives in the returned directory; keep it alive).
    pub fn serve_bundle(bundle: &Path) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().expect("temp dir");
        // Spin's `files` sources are relative to spin.toml.
        #[cfg(unix)]
        std::os::unix::fs::symlink(bundle, dir.path().join("bundle")).expect("symlink the bundle");
        let manifest = format!(
            "spin_manifest_version = 2\n[application]\nname = \"bundle\"\n[[trigger.http]]\nroute = \"/api/...\"\n\
             component = \"recommend\"\n[component.recommend]\nsource = \"{}\"\n\
             files = [{{ source = \"bundle\", destination = \"/bundle\" }}]\n",
            component("recommend").display(),
        );
        let path = dir.path().join("spin.toml");
        std::fs::write(&path, manifest).expect("manifest written");
        let host = Host::start(&path, &Settings::default());
        (dir, host)
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn read(resp: ureq::http::Response<ureq::Body>) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.into_body().read_to_string().expect("body reads");
        Reply { status, headers, body }
    }

    /// `POST path` with a JSON (or any) body.
    pub fn post(&self, path: &str, body: impl AsRef<[u8]>) -> Reply {
        self.post_as(path, "application/json", body)
    }

    /// `POST path` with a JSON body, or `None` when nothing answers.
    pub fn try_post(&self, path: &str, body: &str) -> Option<Reply> {
        let resp = Self::agent().post(&self.url(path)).header("content-type", "application/json").send(body).ok()?;
        Some(Self::read(resp))
    }

    /// `POST path` with a JSON body and extra headers.
    pub fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = Self::agent().post(&self.url(path)).header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::read(req.send(body).expect("request completes"))
    }

    /// `POST path` with the given content type.
    pub fn post_as(&self, path: &str, content_type: &str, body: impl AsRef<[u8]>) -> Reply {
        let resp = Self::agent()
            .post(&self.url(path))
            .header("content-type", content_type)
            .send(body.as_ref())
            .expect("request completes");
        Self::read(resp)
    }

    /// Any request, with a bearer token and a JSON body if given.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        self.try_send(method, path, token, body).expect("request completes")
    }

    /// [`Host::send`], or `None` when the connection fails.
    pub fn try_send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Option<Reply> {
        let mut req = ureq::http::Request::builder().method(method).uri(self.url(path));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.unwrap_or_default().to_string()).expect("request builds");
        Some(Self::read(Self::agent().run(req).ok()?))
    }

    /// `GET path` with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Self::agent().get(&self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        Self::read(req.call().expect("request completes"))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        Self::read(Self::agent().get(&self.url(path)).call().expect("request completes"))
    }

    /// `OPTIONS path` as a browser preflight.
    pub fn preflight(&self, path: &str) -> Reply {
        let req = ureq::http::Request::builder()
            .method("OPTIONS")
            .uri(self.url(path))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .body(())
            .expect("request builds");
        Self::read(Self::agent().run(req).expect("request completes"))
    }
}
