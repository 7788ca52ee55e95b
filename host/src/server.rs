//! `edgerec serve`: the registry's functions over HTTP/1.1, a fresh
//! instance per request, as Spin does.
//!
//! A request is routed in the app the registry holds at that moment,
//! instantiated from its function's pre-instantiated component in a store
//! its capabilities prepare, and handed the request through
//! `wasi:http/incoming-handler`. Every failure becomes a JSON error here,
//! in one place: no route 404, a trap 500, a deadline or memory overrun
//! 503 (the details go to the log, never to the client). The host adds to
//! the function's `server-timing`: `instantiate` and `host`, its own time
//! from the request's arrival to the response head minus the function's
//! `guest` time.
//!
//! `SIGHUP` reloads the app ([`crate::registry::Registry::reload`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use edgerec_core::api::ApiError;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::capability::Purpose;
use crate::config::HostConfig;
use crate::function::Function;
use crate::registry::{Registry, Reload};
use crate::runtime::Runtime;

/// A loaded application, ready to serve.
pub struct Server {
    registry: Registry,
    cors_origin: http::HeaderValue,
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
    /// Builds the runtime for `config` and loads every component of
    /// `manifest` (verify, compile or take from the cache, pre-initialize,
    /// pre-instantiate).
    pub fn new(manifest: &Path, config: HostConfig) -> Result<Self> {
        let origin = config.cors_origin.as_deref().unwrap_or("*");
        let cors_origin = http::HeaderValue::from_str(origin)?;
        let runtime = Arc::new(Runtime::new(config)?);
        let registry = Registry::load(runtime, manifest)?;
        Ok(Self { registry, cors_origin })
    }

    /// The registry of served functions.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Re-reads the manifest and swaps in what changed, while serving.
    pub fn reload(&self) -> Result<Reload> {
        self.registry.reload()
    }

    /// The application's routes, for the start-up banner.
    pub fn routes(&self) -> Vec<String> {
        let app = self.registry.current();
        app.manifest
            .routes
            .iter()
            .map(|r| match &r.pattern {
                crate::manifest::RoutePattern::Exact(p) => format!("{p} -> {}", r.component),
                crate::manifest::RoutePattern::Wildcard(p) => format!("{p}/... -> {}", r.component),
            })
            .collect()
    }

    /// Serves until Ctrl-C, reloading on `SIGHUP` (on a blocking thread,
    /// while requests go on).
    pub async fn run(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        #[cfg(unix)]
        {
            let server = self.clone();
            let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading");
                    let server = server.clone();
                    let reloaded = tokio::task::spawn_blocking(move || server.reload()).await;
                    match reloaded {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::error!("{e:#}"),
                        Err(e) => tracing::error!("reload failed: {e}"),
                    }
                }
            });
        }
        tokio::select! {
            r = self.serve(listener) => r,
            _ = tokio::signal::ctrl_c() => { tracing::info!("shutting down"); Ok(()) }
        }
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
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = server.clone();
                    async move { Ok::<_, std::convert::Infallible>(server.handle(req).await) }
                });
                // `half_close`: a request that arrived whole is served even if
                // the client closed its side right after sending it.
                let http = http1::Builder::new()
                    .keep_alive(true)
                    .half_close(true)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = http.await {
                    tracing::debug!("connection from {peer}: {e}");
                }
            });
        }
    }

    /// Routes one request to its function and turns every failure into a
    /// JSON error response.
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<HyperOutgoingBody> {
        let arrived = Instant::now();
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let app = self.registry.current();
        let Some((route, function)) = app.route(&path) else {
            return self.error_response(&ApiError::not_found(&path));
        };
        let component = route.component.clone();
        let Some(function) = function.cloned() else {
            let message = format!("component `{component}` is not loaded; see the server log");
            return self.error_response(&ApiError::unavailable(message));
        };
        drop(app);
        match self.call(function, req, arrived).await {
            Ok(resp) => resp,
            Err(failure) => {
                let limits = self.registry.runtime().config().limits;
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
                tracing::error!("{method} {path} -> {} ({component}): {detail}", err.status);
                self.error_response(&err)
            }
        }
    }

    async fn call(
        &self,
        function: Arc<Function>,
        req: hyper::Request<Incoming>,
        arrived: Instant,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Failure> {
        let runtime = self.registry.runtime();
        let limits = runtime.config().limits;
        let purpose = if function.preinitialized { Purpose::RequestFromSnapshot } else { Purpose::Request };
        let mut store =
            runtime.capabilities().store(runtime.engine(), &function.states, purpose).map_err(Failure::Host)?;
        let memory_hit = store.data().limits.hit.clone();

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming =
            store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(|e| Failure::Host(e.into()))?;
        let outparam = store.data_mut().http().new_response_outparam(sender).map_err(|e| Failure::Host(e.into()))?;
        let instantiate = Arc::new(Mutex::new(None::<Duration>));
        let instantiate_slot = instantiate.clone();
        // The future owns the function: a request in flight finishes on the
        // version it started with, whatever a reload swaps in meanwhile.
        let mut guest = RunsToCompletion(Some(Box::pin(async move {
            let started = Instant::now();
            let result = async {
                let proxy = function.pre.instantiate_async(&mut store).await?;
                *instantiate_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(started.elapsed());
                proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
            }
            .await;
            // The store goes back with the result: dropping it resets the
            // instance's memory, which is no work for the request's path.
            (result, store)
        })));
        // Run the guest on this task until it sends the response head (no
        // hand-over to another thread on the way in); what is left of it
        // (streaming the body, tearing the instance down) goes to a task of
        // its own. The epoch deadline stops wasm; the backstop also covers a
        // guest parked in a host call that never completes.
        let backstop = limits.deadline + Duration::from_secs(1);
        let mut receiver = receiver;
        let first = tokio::time::timeout(backstop, async {
            tokio::select! {
                biased;
                head = &mut receiver => Ok(head),
                done = guest.running() => Err(done),
            }
        })
        .await;
        let head = match first {
            Err(_) => {
                // Parked past its deadline in a host call: stop it here.
                drop(guest.take());
                return Err(Failure::Deadline);
            }
            // The response handle was dropped unanswered: the guest failed.
            Ok(Ok(Err(_))) => {
                let err = match tokio::time::timeout(backstop, guest.take()).await {
                    Err(_) => return Err(Failure::Deadline),
                    Ok((Ok(()), store)) => {
                        drop_later(store);
                        anyhow!("the component returned without sending a response")
                    }
                    Ok((Err(e), store)) => {
                        drop_later(store);
                        e.into()
                    }
                };
                return Err(classify(err, memory_hit.load(Ordering::Relaxed)));
            }
            Ok(Ok(Ok(head))) => {
                tokio::spawn(async move {
                    let (result, store) = guest.take().await;
                    if let Err(e) = result {
                        tracing::warn!("the component failed after its response head: {e:#}");
                    }
                    drop(store);
                });
                head
            }
            // The guest returned first: it answered just before, or never.
            Ok(Err((done, store))) => {
                guest.finished();
                drop_later(store);
                match (receiver.await, done) {
                    (Ok(head), _) => head,
                    (Err(_), Ok(())) => {
                        return Err(Failure::Guest(anyhow!("the component returned without sending a response")));
                    }
                    (Err(_), Err(e)) => return Err(classify(e.into(), memory_hit.load(Ordering::Relaxed))),
                }
            }
        };
        match head {
            Ok(mut resp) => {
                let instantiate = *instantiate.lock().unwrap_or_else(|p| p.into_inner());
                add_host_timing(resp.headers_mut(), instantiate, arrived.elapsed());
                Ok(resp)
            }
            Err(code) => Err(Failure::Guest(anyhow!("the component answered with error code {code:?}"))),
        }
    }

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

/// A guest's run, driven by the request's task; if that task is dropped
/// first (the client went away), the run goes on in a task of its own, so a
/// function never stops half-way through its work (a store write, say).
struct RunsToCompletion<F: Future<Output: Send + 'static> + Send + 'static>(Option<std::pin::Pin<Box<F>>>);

impl<F: Future<Output: Send + 'static> + Send + 'static> RunsToCompletion<F> {
    fn running(&mut self) -> &mut std::pin::Pin<Box<F>> {
        self.0.as_mut().expect("the run is still here")
    }

    /// The run completed while the request's task drove it.
    fn finished(&mut self) {
        self.0 = None;
    }

    fn take(mut self) -> std::pin::Pin<Box<F>> {
        self.0.take().expect("the run is still here")
    }
}

impl<F: Future<Output: Send + 'static> + Send + 'static> Drop for RunsToCompletion<F> {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            tokio::spawn(async move {
                run.await;
            });
        }
    }
}

/// Drops an instance's store on a task of its own, off the request's path.
fn drop_later<T: Send + 'static>(store: T) {
    tokio::spawn(async move { drop(store) });
}

/// Appends `instantiate` and `host` (time in the host up to the response
/// head, minus the guest's own `guest` time) to `server-timing`.
fn add_host_timing(headers: &mut http::HeaderMap, instantiate: Option<Duration>, elapsed: Duration) {
    let guest_ms = headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| part.trim().strip_prefix("guest;dur="))
        .and_then(|ms| ms.parse::<f64>().ok());
    let mut parts = Vec::new();
    if let Some(d) = instantiate {
        parts.push(format!("instantiate;dur={:.3}", d.as_secs_f64() * 1e3));
    }
    if let Some(guest) = guest_ms {
        parts.push(format!("host;dur={:.3}", (elapsed.as_secs_f64() * 1e3 - guest).max(0.0)));
    }
    if let Ok(value) = http::HeaderValue::from_str(&parts.join(", "))
        && !parts.is_empty()
    {
        headers.append("server-timing", value);
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

/// Starts `server` on an ephemeral port of 127.0.0.1 in a background thread
/// with its own runtime, for tests and benchmarks. Returns the address.
pub fn spawn_local(server: Arc<Server>) -> Result<SocketAddr> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new().name("edgerec-serve".into()).spawn(move || {
        if let Err(e) = rt.block_on(server.serve(listener)) {
            tracing::error!("server stopped: {e:#}");
        }
    })?;
    Ok(addr)
}
