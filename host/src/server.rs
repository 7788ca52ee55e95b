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

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use edgerec_core::api::{ApiError, ModelRef};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::Instrument;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::capability::Purpose;
use crate::config::HostConfig;
use crate::function::Function;
use crate::metrics::Metrics;
use crate::private::{Answer, PrivateRoute, PrivateZone, read_body};
use crate::registry::{Registry, Reload};
use crate::runtime::Runtime;

/// A loaded application, ready to serve.
pub struct Server {
    registry: Registry,
    cors_origin: http::HeaderValue,
    metrics: Metrics,
    /// The private zone's routes and user store (zone `private` only).
    private: Option<PrivateZone>,
    next_request: AtomicU64,
    /// What runs model updates ([`crate::lifecycle`]), when installed.
    pub(crate) updater: std::sync::OnceLock<Arc<crate::lifecycle::Updater>>,
    /// Held while an update runs.
    pub(crate) updating: Mutex<()>,
    /// Whether the lifecycle threads run.
    lifecycle: std::sync::Once,
}

/// The header a front end sends with a shopper's anonymous id, which
/// buckets them in an A/B test of model versions.
pub const ANONYMOUS_ID: &str = "x-edgerec-anonymous-id";

/// The route whose ads a private host scores with their recorded
/// impressions and clicks.
const ADS_ROUTE: &str = "/api/ads/score";

/// The body of a request on its way to a function: as it arrived, or
/// rewritten by the private zone.
type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// A route the host answers itself (private host only).
enum HostRoute {
    /// Feedback, users, metrics.
    Private(PrivateRoute),
    /// Model administration.
    Admin(crate::lifecycle::AdminRoute),
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
        let metrics = Metrics::new(config.zone.as_str());
        let private = config.private.as_ref().map(PrivateZone::open).transpose()?;
        let runtime = Arc::new(Runtime::new(config)?);
        let registry = Registry::load(runtime, manifest)?;
        let server = Self {
            registry,
            cors_origin,
            metrics,
            private,
            next_request: AtomicU64::new(1),
            updater: std::sync::OnceLock::new(),
            updating: Mutex::new(()),
            lifecycle: std::sync::Once::new(),
        };
        server.publish_models();
        Ok(server)
    }

    /// The private zone, on a private host.
    pub fn private(&self) -> Option<&PrivateZone> {
        self.private.as_ref()
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sets `edgerec_model_info` from the functions the registry serves.
    fn publish_models(&self) {
        let app = self.registry.current();
        let challengers = app.challengers.iter().map(|(id, c)| (id, &c.function));
        self.metrics.set_models(
            app.functions.iter().chain(challengers).flat_map(|(id, f)| f.models.iter().map(move |m| (id.as_str(), m))),
        );
    }

    fn served_models(&self) -> Vec<ModelRef> {
        let app = self.registry.current();
        let challengers = app.challengers.values().map(|c| &c.function);
        let mut models: Vec<ModelRef> =
            app.functions.values().chain(challengers).flat_map(|f| f.models.iter().cloned()).collect();
        models.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        models.dedup();
        models
    }

    /// The registry of served functions.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Re-reads the manifest and swaps in what changed, while serving.
    pub fn reload(&self) -> Result<Reload> {
        let reload = self.registry.reload();
        self.publish_models();
        reload
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
        self.lifecycle.call_once(|| self.start_lifecycle());
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

    /// Serves one request: gives it an id (`x-request-id`, logged on every
    /// line about it), routes it, and counts it in the metrics.
    pub async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<HyperOutgoingBody> {
        let arrived = Instant::now();
        let id = request_id(req.headers(), &self.next_request);
        let span = tracing::info_span!("request", id = %id);
        let (route, mut resp) = self.route(req, arrived).instrument(span.clone()).await;
        let status = resp.status().as_u16();
        let elapsed = arrived.elapsed();
        self.metrics.request(&route, status, elapsed);
        span.in_scope(|| {
            let route = route.as_ref();
            if status >= 500 {
                tracing::warn!(route, status, ms = elapsed.as_secs_f64() * 1e3, "answered");
            } else {
                tracing::debug!(route, status, ms = elapsed.as_secs_f64() * 1e3, "answered");
            }
        });
        if let Ok(value) = http::HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", value);
        }
        resp
    }

    /// Routes one request: a private route to the private zone, a function
    /// route to its function (through the private zone's `user_id` lookup
    /// and placement on a private host). Returns the route's label for the
    /// metrics (a pattern, never a raw path) and the response.
    async fn route(
        &self,
        req: hyper::Request<Incoming>,
        arrived: Instant,
    ) -> (Cow<'static, str>, hyper::Response<HyperOutgoingBody>) {
        let path = req.uri().path().to_string();
        // The host's own routes on a private host: the private zone's and the admin routes.
        let own = self.private.as_ref().and_then(|private| {
            let admin = crate::lifecycle::AdminRoute::at(&path).map(|(route, label)| (HostRoute::Admin(route), label));
            let route =
                admin.or_else(|| PrivateRoute::at(&path).map(|(route, label)| (HostRoute::Private(route), label)));
            route.map(|route| (private, route))
        });
        if let Some((private, (route, label))) = own {
            if req.method() == http::Method::OPTIONS {
                return (label.into(), self.preflight());
            }
            let (parts, body) = req.into_parts();
            let body = match read_body(body).await {
                Ok(body) => body,
                Err(answer) => return (label.into(), self.answer(answer)),
            };
            let route = match route {
                HostRoute::Private(route) => route,
                HostRoute::Admin(admin) => {
                    use crate::private::Scope;
                    // Reading the version log is an operator's read (the
                    // dashboard's): `metrics:read` will do; changes need `admin`.
                    let authorized = if admin.action.is_none() {
                        let read = private.authorize(&parts.headers, Scope::MetricsRead);
                        read.clone().or_else(|_| private.authorize(&parts.headers, Scope::Admin)).or(read)
                    } else {
                        private.authorize(&parts.headers, Scope::Admin)
                    };
                    if let Err(answer) = authorized {
                        return (label.into(), self.answer(answer));
                    }
                    // Promotes reload and updates train: off the async workers' queue.
                    let answer = match tokio::task::block_in_place(|| self.admin(&admin, &parts.method, &body)) {
                        Ok(value) => Answer::json(&value),
                        Err(err) => Answer::from(err),
                    };
                    return (label.into(), self.answer(answer));
                }
            };
            let models = self.served_models();
            let answer = private.serve(route, &parts.method, &parts.headers, body, &self.metrics, &models).await;
            return (label.into(), self.answer(answer));
        }
        let app = self.registry.current();
        let Some((route, function)) = app.route(&path) else {
            return ("unmatched".into(), self.error_response(&ApiError::not_found(&path)));
        };
        let label: Cow<'static, str> = route.label().into();
        let component = route.component.clone();
        let Some(function) = function.cloned() else {
            let message = format!("component `{component}` is not loaded; see the server log");
            return (label, self.error_response(&ApiError::unavailable(message)));
        };
        let challenger = app.challengers.get(&component).cloned();
        drop(app);
        let method = req.method().clone();
        // The shopper an A/B test buckets: the front end's anonymous id, or
        // on the private host the user id's pseudonym (read below).
        let anonymous = req.headers().get(ANONYMOUS_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut function = function;
        let mut choose = |id: Option<String>| {
            if let (Some(challenger), Some(id)) = (&challenger, id)
                && challenger.serves(&id)
            {
                function = challenger.function.clone();
            }
        };
        let req = match &self.private {
            // A private host looks `user_id` up; a POST may be placed on an edge.
            Some(private) if method == http::Method::POST => {
                let (parts, body) = req.into_parts();
                let body = match read_body(body).await {
                    Ok(body) => body,
                    Err(answer) => return (label, self.answer(answer)),
                };
                if challenger.is_some() {
                    choose(anonymous.or_else(|| private.bucket_id(&body)));
                }
                let body = match private.personalize(&parts.headers, body).await {
                    Ok(body) => body,
                    Err(answer) => return (label, self.answer(answer)),
                };
                let body = if path == ADS_ROUTE {
                    match private.with_ad_stats(body).await {
                        Ok(body) => body,
                        Err(answer) => return (label, self.answer(answer)),
                    }
                } else {
                    body
                };
                if let Some(placement) = private.placement(&path)
                    && let Some(resp) = private
                        .forward(placement, &path, parts.headers.get(http::header::CONTENT_TYPE), body.clone())
                        .await
                {
                    let (mut head, body) = resp.into_parts();
                    head.headers.insert("x-edgerec-served-by", http::HeaderValue::from_static("edge"));
                    let body = body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync();
                    return (label, hyper::Response::from_parts(head, body));
                }
                let mut parts = parts;
                // The function reads the body it gets, not the one sent.
                parts.headers.remove(http::header::CONTENT_LENGTH);
                parts.headers.remove(http::header::AUTHORIZATION);
                let body = Full::new(body).map_err(|never| match never {}).boxed_unsync();
                hyper::Request::from_parts(parts, body)
            }
            _ => {
                choose(anonymous);
                req.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync())
            }
        };
        match self.call(function, req, arrived).await {
            Ok(resp) => (label, resp),
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
                (label, self.error_response(&err))
            }
        }
    }

    async fn call(
        &self,
        function: Arc<Function>,
        req: hyper::Request<RequestBody>,
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

    /// A private-zone answer, with CORS.
    fn answer(&self, answer: Answer) -> hyper::Response<HyperOutgoingBody> {
        let body = Full::new(Bytes::from(answer.body)).map_err(|never| match never {}).boxed_unsync();
        let mut resp = hyper::Response::new(body);
        *resp.status_mut() =
            hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert("content-type", http::HeaderValue::from_static(answer.content_type));
        headers.insert("access-control-allow-origin", self.cors_origin.clone());
        if let Some(seconds) = answer.retry_after {
            headers.insert("retry-after", http::HeaderValue::from(seconds));
        }
        resp
    }

    /// The CORS preflight of a private route: bearer tokens need the
    /// `authorization` header allowed.
    fn preflight(&self) -> hyper::Response<HyperOutgoingBody> {
        let body = Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync();
        let mut resp = hyper::Response::new(body);
        *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
        let headers = resp.headers_mut();
        headers.insert("access-control-allow-origin", self.cors_origin.clone());
        headers.insert("access-control-allow-methods", http::HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
        headers.insert("access-control-allow-headers", http::HeaderValue::from_static("authorization, content-type"));
        headers.insert("access-control-max-age", http::HeaderValue::from_static("86400"));
        resp
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

/// The request's id: the caller's `x-request-id` when it is short and
/// printable (to follow a request across hosts), else a new one.
fn request_id(headers: &http::HeaderMap, next: &AtomicU64) -> String {
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok())
        && !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return id.to_string();
    }
    format!("{:x}-{}", std::process::id(), next.fetch_add(1, Ordering::Relaxed))
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
