//! The shape every edgerec function has, so that each function is a model
//! type, its routes and calls into `edgerec-core`, and nothing more.
//!
//! A function implements [`Function`]: [`Function::load`] reads everything
//! it serves from into memory (the bundle at `/bundle`, the encoder at
//! `/encoder`), and [`Function::handle`] answers one of its
//! [`Function::ROUTES`]. [`export!`] turns the type into a Spin HTTP
//! component with two exports:
//!
//! - `wasi:http/incoming-handler`: every request. The model is loaded at
//!   most once per instance (a `static`), on first use.
//! - `preinit: func()`: loads the model. The edgerec host calls it once at
//!   start-up and snapshots the instance's memory (wasmtime-wizer, see the
//!   host's `preinit` module), so under our host every request starts with
//!   the model already in memory and reads no file. Spin gives each request
//!   a fresh instance and never calls `preinit`, so there the first use in
//!   each request loads the model.
//!
//! Around [`Function::handle`], [`serve`] does what every route shares:
//! CORS (`OPTIONS` preflight for any route, `access-control-allow-origin`
//! on every answer), 404 and 405 naming what is allowed, bodies streamed
//! with the 1 MiB limit enforced while reading ([`read_json`]), errors in
//! one shape (`{"error": {"code", "message"}}`) and `server-timing`: the
//! parts a handler times with [`Exchange::timed`] plus `guest`, the
//! function's whole time.
//!
//! Configuration comes from the component's environment (`environment` in
//! `spin.toml`), which Spin and the edgerec host both provide:
//! `EDGEREC_CORS_ORIGIN` (default `*`) and `EDGEREC_ZONE` (default `edge`).

pub mod bundle;
pub mod encoding;
pub mod store;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use edgerec_core::api::{ApiError, MAX_BODY_BYTES, parse_body};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use spin_sdk::http::{IncomingRequest, Method, Response};

/// Where `spin.toml` mounts the model bundle inside every component.
pub const BUNDLE_DIR: &str = "/bundle";

/// An edgerec function: the model it serves from and its routes.
pub trait Function: Sized + Send + Sync + 'static {
    /// The routes it answers; [`serve`] answers 404 for any other path and
    /// 405 for another method on one of these.
    const ROUTES: &'static [Route];

    /// Reads everything the function serves from into memory. A failure is
    /// kept for the instance (every request answers 503, the reason goes to
    /// the log) and, under the edgerec host, refuses the component at
    /// start-up or reload.
    fn load() -> Result<Self, String>;

    /// Answers a request for `route` (its method already checked).
    fn handle(
        &'static self,
        route: &'static Route,
        exchange: &mut Exchange,
        request: IncomingRequest,
    ) -> impl Future<Output = Result<Json, ApiError>>;
}

/// The HTTP methods a route can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET` (and `HEAD`).
    Get,
    /// `POST`.
    Post,
}

impl Verb {
    fn accepts(self, method: &Method) -> bool {
        matches!((self, method), (Verb::Get, Method::Get | Method::Head) | (Verb::Post, Method::Post))
    }

    fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// One route of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The method it takes.
    pub verb: Verb,
    /// Its path, e.g. `/api/search`.
    pub path: &'static str,
}

impl Route {
    /// `POST path`.
    pub const fn post(path: &'static str) -> Self {
        Self { verb: Verb::Post, path }
    }

    /// `GET path`.
    pub const fn get(path: &'static str) -> Self {
        Self { verb: Verb::Get, path }
    }
}

/// A response body, serialized once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json(String);

/// Serializes a response body.
pub fn json<T: Serialize>(body: &T) -> Result<Json, ApiError> {
    serde_json::to_string(body).map(Json).map_err(|e| {
        eprintln!("serializing the response failed: {e}");
        ApiError::internal()
    })
}

/// Free heap a pre-initialized instance starts with (see [`Loaded::preload`]).
pub const HEAP_HEADROOM: usize = 4 << 20;

/// The model of a function, loaded at most once per instance.
pub struct Loaded<F: Function> {
    cell: OnceLock<Result<F, String>>,
}

impl<F: Function> Default for Loaded<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Function> Loaded<F> {
    /// Nothing loaded yet.
    pub const fn new() -> Self {
        Self { cell: OnceLock::new() }
    }

    /// The model, loading it on first use; a 503 when it cannot be loaded
    /// (the reason goes to the log).
    pub fn get(&self) -> Result<&F, ApiError> {
        self.cell.get_or_init(F::load).as_ref().map_err(|reason| {
            eprintln!("model not available: {reason}");
            // The reason names files inside the component and models, which
            // the operator who reads the answer needs and nobody else could misuse.
            ApiError::unavailable(format!("the function's model could not be loaded: {reason}"))
        })
    }

    /// Loads now, for `preinit`. Panics (a trap, which fails
    /// pre-initialization with the reason) when the model cannot be loaded.
    ///
    /// Then grows the heap by [`HEAP_HEADROOM`] and frees it again, so the
    /// snapshot starts with free heap: a request then never grows linear
    /// memory (each growth changes page protections in the host, which
    /// costs more than the work of a small request). Free heap is zero
    /// pages, which the snapshot does not store.
    pub fn preload(&self) {
        if let Err(reason) = self.cell.get_or_init(F::load) {
            panic!("pre-initialization failed: {reason}");
        }
        drop(std::hint::black_box(Vec::<u8>::with_capacity(HEAP_HEADROOM)));
    }
}

/// One request and the response taking shape: the request line, the
/// configured CORS origin and the parts of `server-timing`.
#[derive(Debug)]
pub struct Exchange {
    /// HTTP method.
    pub method: Method,
    /// Path without the query string.
    pub path: String,
    origin: String,
    started: Instant,
    timings: Vec<(&'static str, f64)>,
}

impl Exchange {
    /// Reads method, path and configuration from the request.
    pub fn new(req: &IncomingRequest) -> Self {
        let started = Instant::now();
        let full = req.path_with_query().unwrap_or_else(|| "/".into());
        let path = full.split('?').next().unwrap_or("/").to_string();
        let origin = std::env::var("EDGEREC_CORS_ORIGIN").unwrap_or_else(|_| "*".into());
        Self { method: req.method(), path, origin, started, timings: Vec::new() }
    }

    /// `edge` or `private`, as configured by the host.
    pub fn zone(&self) -> String {
        std::env::var("EDGEREC_ZONE").unwrap_or_else(|_| "edge".into())
    }

    /// Runs `f`, recording its duration under `name` for `server-timing`.
    pub fn timed<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        // A part timed several times (batches) is reported once, summed.
        match self.timings.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += ms,
            None => self.timings.push((name, ms)),
        }
        out
    }

    fn builder(&self, status: u16) -> spin_sdk::http::ResponseBuilder {
        let mut b = Response::builder();
        b.status(status).header("access-control-allow-origin", self.origin.as_str()).header("vary", "origin");
        let guest = ("guest", self.started.elapsed().as_secs_f64() * 1e3);
        let timing: Vec<String> =
            self.timings.iter().chain([&guest]).map(|(n, ms)| format!("{n};dur={ms:.3}")).collect();
        b.header("server-timing", timing.join(", "));
        b
    }

    fn json(&self, status: u16, body: String) -> Response {
        self.builder(status).header("content-type", "application/json").body(body).build()
    }

    /// The JSON error response for `err`.
    pub fn error(&self, err: &ApiError) -> Response {
        if err.status >= 500 {
            eprintln!("{} {}: {err}", self.method, self.path);
        }
        self.json(err.status, err.to_json())
    }

    /// `Ok` as JSON with status 200, `Err` as the JSON error.
    pub fn respond(&self, result: Result<Json, ApiError>) -> Response {
        match result {
            Ok(Json(body)) => self.json(200, body),
            Err(e) => self.error(&e),
        }
    }

    /// The CORS preflight answer.
    pub fn preflight(&self) -> Response {
        self.builder(204)
            .header("access-control-allow-methods", "GET, POST, OPTIONS")
            // x-edgerec-anonymous-id: the shopper's id for A/B buckets.
            .header("access-control-allow-headers", "content-type, authorization, x-edgerec-anonymous-id")
            .header("access-control-max-age", "86400")
            .body(Vec::new())
            .build()
    }
}

/// Answers one request with `F`: the preflight for `OPTIONS`, 404 off its
/// routes, 405 for a method the route does not take, 503 when the model is
/// not available, else what [`Function::handle`] answers, as JSON.
pub async fn serve<F: Function>(req: IncomingRequest, model: &'static Loaded<F>) -> Response {
    let mut exchange = Exchange::new(&req);
    if exchange.method == Method::Options {
        return exchange.preflight();
    }
    let on_path: Vec<&'static Route> = F::ROUTES.iter().filter(|r| r.path == exchange.path).collect();
    let Some(route) = on_path.iter().copied().find(|r| r.verb.accepts(&exchange.method)) else {
        if on_path.is_empty() {
            return exchange.error(&ApiError::not_found(&exchange.path));
        }
        let allowed: Vec<&str> = on_path.iter().map(|r| r.verb.name()).collect();
        let err = ApiError::method_not_allowed(&exchange.method.to_string(), &exchange.path, &allowed.join(" or "));
        return exchange.error(&err);
    };
    let result = match exchange.timed("model", || model.get()) {
        Ok(function) => function.handle(route, &mut exchange, req).await,
        Err(e) => Err(e),
    };
    exchange.respond(result)
}

/// Reads and parses a JSON body, refusing other content types (form posts,
/// uploads) and bodies over [`MAX_BODY_BYTES`] before they are fully read.
pub async fn read_json<T: DeserializeOwned>(req: IncomingRequest) -> Result<T, ApiError> {
    let header = |name: &str| {
        req.headers()
            .entries()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(&v).trim().to_string())
    };
    if let Some(ct) = header("content-type") {
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        // `text/plain` is what a browser `fetch` sends when the front end
        // skips the CORS preflight on purpose; the body is still JSON.
        let json_like = essence.is_empty() || essence == "application/json" || essence.ends_with("+json");
        if !json_like && essence != "text/plain" {
            return Err(ApiError::unsupported_media_type(&ct));
        }
    }
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("could not read the request body: {e:?}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            let seen = body.len() + chunk.len();
            drop(body);
            // Read (and drop) the rest of a moderately oversized upload, so
            // the client gets its 413 instead of a connection reset.
            let mut drained = seen;
            while drained < DRAIN_LIMIT {
                match stream.next().await {
                    Some(Ok(chunk)) => drained += chunk.len(),
                    _ => break,
                }
            }
            return Err(ApiError::payload_too_large(seen));
        }
        body.extend_from_slice(&chunk);
    }
    parse_body(&body)
}

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT: usize = 16 * MAX_BODY_BYTES;

/// Exports `$function` (a [`Function`]) as a Spin HTTP component with a
/// `preinit: func()` export that loads its model. Once per function crate:
/// `edgerec_function::export!(Search);`. The crate depends on `spin-sdk`
/// and `wit-bindgen` itself: their macros name them.
#[macro_export]
macro_rules! export {
    ($function:ty) => {
        static MODEL: $crate::Loaded<$function> = $crate::Loaded::new();

        /// The exported entry points. `#[http_component]` and `export!`
        /// generate C-ABI glue, which is `unsafe`; the `allow` covers that
        /// glue and nothing else.
        #[allow(unsafe_code, missing_docs)]
        mod exports {
            #[spin_sdk::http_component]
            async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
                $crate::serve(req, &super::MODEL).await
            }

            wit_bindgen::generate!({ inline: "package edgerec:preinit; world preinit { export preinit: func(); }" });

            struct Preinit;
            impl Guest for Preinit {
                fn preinit() {
                    super::MODEL.preload();
                }
            }
            export!(Preinit);
        }
    };
}
