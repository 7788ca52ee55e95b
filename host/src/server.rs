//! `edgerec serve`: the components of a `spin.toml`, served over HTTP/1.1
//! with a fresh instance per request, as Spin does.
//!
//! Start-up does the expensive work once: verify every mounted model bundle,
//! compile (or load from the cache) and pre-instantiate every component.
//! A request then costs an instantiation from the pre-instantiated
//! component, the guest's own work, and nothing else.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use edgerec_core::api::ApiError;
use edgerec_core::bundle::{MANIFEST_FILE, Manifest};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::kv::{self, KvAccess};
use crate::manifest::{App, Component};
use crate::preinit;
use crate::runtime::{HostState, Limits, LoadedFrom, Runtime, deadline_ticks};

/// Which side of the hybrid deployment this host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Zone {
    /// Public edge: stateless, public artifacts only.
    Edge,
    /// Private on-prem zone.
    Private,
}

impl Zone {
    /// `edge` or `private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Edge => "edge",
            Zone::Private => "private",
        }
    }
}

/// Host settings from `--config FILE` (TOML).
///
/// ```toml
/// cors_origin = "https://shop.example"   # overrides EDGEREC_CORS_ORIGIN of every component
/// memory_limit_mib = 128
/// deadline_ms = 10000
/// max_instances = 128
/// cache_dir = "/var/cache/edgerec"
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// `access-control-allow-origin` for every function.
    pub cors_origin: Option<String>,
    /// Linear-memory limit per instance, MiB.
    pub memory_limit_mib: Option<usize>,
    /// Deadline per request, milliseconds.
    pub deadline_ms: Option<u64>,
    /// Concurrent instances.
    pub max_instances: Option<u32>,
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    /// Pre-initialize components that export `preinit` (default true).
    pub preinit: Option<bool>,
    /// Where key-value stores live (default `.edgerec/kv` beside the manifest).
    pub kv_dir: Option<PathBuf>,
}

impl HostConfig {
    /// Reads a config file; unknown keys are an error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading --config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("--config {}", path.display()))
    }

    /// The limits, defaults filled in.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            memory_bytes: self.memory_limit_mib.map_or(d.memory_bytes, |m| m << 20),
            deadline: self.deadline_ms.map_or(d.deadline, Duration::from_millis),
            max_instances: self.max_instances.unwrap_or(d.max_instances),
        }
    }
}

/// The default directory for compiled components: `$EDGEREC_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/edgerec`, else `~/.cache/edgerec`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDGEREC_CACHE_DIR") {
        return PathBuf::from(dir).join("components");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("edgerec").join("components")
}

struct Function {
    component: Component,
    pre: ProxyPre<HostState>,
}

/// A loaded application, ready to serve.
pub struct Server {
    app: App,
    runtime: Runtime,
    functions: BTreeMap<String, Function>,
    extra_env: Vec<(String, String)>,
    cors_origin: http::HeaderValue,
    stores: kv::Stores,
}

/// Why a request failed inside the host.
#[derive(Debug)]
enum Failure {
    Deadline,
    OutOfMemory,
    Guest(anyhow::Error),
    Host(anyhow::Error),
}

impl Server {
    /// Loads `manifest`, verifies mounted bundles, compiles and
    /// pre-instantiates every component.
    pub fn new(manifest: &Path, zone: Zone, config: &HostConfig) -> Result<Self> {
        let app = App::load(manifest)?;
        for component in app.components.values() {
            for (dir, _) in &component.files {
                if dir.join(MANIFEST_FILE).exists() {
                    let m = Manifest::verify(dir).with_context(|| format!("component `{}`", component.id))?;
                    tracing::info!("bundle {} {} verified ({} items)", m.name, m.version, m.items);
                }
            }
        }
        let kv_dir = match &config.kv_dir {
            Some(dir) => dir.clone(),
            None => manifest.parent().unwrap_or(Path::new(".")).join(".edgerec").join("kv"),
        };
        let labels = app.components.values().flat_map(|c| c.key_value_stores.iter().map(String::as_str));
        let stores = kv::Stores::open(&kv_dir, labels)?;
        let cache_dir = config.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let runtime = Runtime::new(config.limits(), cache_dir)?;
        let mut functions = BTreeMap::new();
        for (id, component) in &app.components {
            let started = Instant::now();
            let source = &component.source;
            let mut wasm = std::fs::read(source).with_context(|| {
                format!("component `{id}`: reading {}; build it with scripts/build-components", source.display())
            })?;
            let mut snapshot = "";
            if config.preinit.unwrap_or(true) {
                match preinit::preinitialize(component, &wasm, runtime.cache_dir(), runtime.limits().memory_bytes) {
                    Ok(Some(preinitialized)) => (wasm, snapshot) = (preinitialized, ", pre-initialized"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("component `{id}`: serving without pre-initialization: {e:#}"),
                }
            }
            let (pre, from) = runtime.prepare(source, &wasm).with_context(|| format!("component `{id}`"))?;
            let how = if from == LoadedFrom::Cache { "loaded from cache" } else { "compiled" };
            tracing::info!("component `{id}` {how}{snapshot} in {:.1?}", started.elapsed());
            functions.insert(id.clone(), Function { component: component.clone(), pre });
        }
        let mut extra_env = vec![("EDGEREC_ZONE".to_string(), zone.as_str().to_string())];
        if let Some(origin) = &config.cors_origin {
            extra_env.push(("EDGEREC_CORS_ORIGIN".into(), origin.clone()));
        }
        let origin = config.cors_origin.as_deref().unwrap_or("*");
        let cors_origin = http::HeaderValue::from_str(origin).with_context(|| format!("cors_origin `{origin}`"))?;
        Ok(Self { app, runtime, functions, extra_env, cors_origin, stores })
    }

    /// The application's routes, for the start-up banner.
    pub fn routes(&self) -> Vec<String> {
        self.app
            .routes
            .iter()
            .map(|r| match &r.pattern {
                crate::manifest::RoutePattern::Exact(p) => format!("{p} -> {}", r.component),
                crate::manifest::RoutePattern::Wildcard(p) => format!("{p}/... -> {}", r.component),
            })
            .collect()
    }

    /// Accepts connections for as long as the process runs (a failed accept
    /// is logged and retried); each connection is served on its own task.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
                });
                if let Err(e) =
                    http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await
                {
                    tracing::debug!("connection from {peer}: {e}");
                }
            });
        }
    }

    /// Routes one request to its component and turns every failure into a
    /// JSON error response.
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<HyperOutgoingBody> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let Some(route) = self.app.route(&path) else {
            return self.error_response(&ApiError::not_found(&path));
        };
        let function = &self.functions[&route.component];
        match self.call(function, req).await {
            Ok(resp) => resp,
            Err(failure) => {
                let limits = self.runtime.limits();
                let (err, detail) = match failure {
                    Failure::Deadline => (
                        ApiError {
                            status: 503,
                            code: "deadline_exceeded",
                            message: format!("the function ran past its {:?} deadline", limits.deadline),
                        },
                        "deadline".to_string(),
                    ),
                    Failure::OutOfMemory => (
                        ApiError {
                            status: 503,
                            code: "out_of_memory",
                            message: format!(
                                "the function exceeded its {} MiB memory limit",
                                limits.memory_bytes >> 20
                            ),
                        },
                        "memory limit".to_string(),
                    ),
                    Failure::Guest(e) | Failure::Host(e) => (ApiError::internal(), format!("{e:#}")),
                };
                tracing::error!("{method} {path} -> {} ({}): {detail}", err.status, route.component);
                self.error_response(&err)
            }
        }
    }

    async fn call(
        &self,
        f: &Function,
        req: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Failure> {
        let limits = self.runtime.limits();
        let kv = KvAccess::new(self.stores.clone(), f.component.key_value_stores.clone());
        let state = HostState::new(&f.component, &self.extra_env, limits, kv).map_err(Failure::Host)?;
        let memory_hit = state.limiter.hit.clone();
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(deadline_ticks(limits.deadline));
        store.epoch_deadline_trap();

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming =
            store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(|e| Failure::Host(e.into()))?;
        let outparam = store.data_mut().http().new_response_outparam(sender).map_err(|e| Failure::Host(e.into()))?;
        let pre = f.pre.clone();
        let instantiate = Arc::new(Mutex::new(None::<Duration>));
        let instantiate_slot = instantiate.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let proxy = pre.instantiate_async(&mut store).await?;
            *instantiate_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(started.elapsed());
            proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
        });

        // The epoch deadline stops wasm; this backstop also covers a guest
        // parked in a host call that never completes.
        let backstop = limits.deadline + Duration::from_secs(1);
        match tokio::time::timeout(backstop, receiver).await {
            Ok(Ok(Ok(mut resp))) => {
                if let Some(d) = *instantiate.lock().unwrap_or_else(|p| p.into_inner()) {
                    let timing = format!("instantiate;dur={:.3}", d.as_secs_f64() * 1e3);
                    if let Ok(value) = http::HeaderValue::from_str(&timing) {
                        resp.headers_mut().append("server-timing", value);
                    }
                }
                Ok(resp)
            }
            Ok(Ok(Err(code))) => Err(Failure::Guest(anyhow!("the component answered with error code {code:?}"))),
            Ok(Err(_)) => {
                // The component ended without setting a response.
                let err = match task.await {
                    Ok(Ok(())) => anyhow!("the component returned without sending a response"),
                    Ok(Err(e)) => anyhow::Error::from(e),
                    Err(join) => anyhow!("the request task failed: {join}"),
                };
                Err(classify(err, memory_hit.load(Ordering::Relaxed)))
            }
            Err(_) => {
                task.abort();
                Err(Failure::Deadline)
            }
        }
    }
}

fn classify(err: anyhow::Error, memory_hit: bool) -> Failure {
    let trap = err.chain().find_map(|e| e.downcast_ref::<wasmtime::Trap>()).copied();
    if trap == Some(wasmtime::Trap::Interrupt) {
        Failure::Deadline
    } else if memory_hit {
        Failure::OutOfMemory
    } else {
        Failure::Guest(err)
    }
}

impl Server {
    /// A host-generated JSON error (no route, trap, deadline), with CORS so
    /// browsers can read it.
    fn error_response(&self, err: &ApiError) -> hyper::Response<HyperOutgoingBody> {
        let body = Full::new(Bytes::from(err.to_json())).map_err(|never| match never {}).boxed_unsync();
        let mut resp = hyper::Response::new(body);
        *resp.status_mut() =
            hyper::StatusCode::from_u16(err.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert("content-type", http::HeaderValue::from_static("application/json"));
        headers.insert("access-control-allow-origin", self.cors_origin.clone());
        resp
    }
}

/// Starts a server on an ephemeral port of 127.0.0.1 in a background thread
/// with its own runtime, for tests and benchmarks. Returns the address.
pub fn spawn_local(server: Server) -> Result<SocketAddr> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new().name("edgerec-serve".into()).spawn(move || {
        if let Err(e) = rt.block_on(Arc::new(server).serve(listener)) {
            tracing::error!("server stopped: {e:#}");
        }
    })?;
    Ok(addr)
}
