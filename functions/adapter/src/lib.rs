//! The HTTP side every edgerec function shares, so that each function is a
//! routing table over `edgerec-core` calls and nothing more.
//!
//! - bodies are streamed with the 1 MiB limit enforced while reading, so an
//!   oversized upload costs at most 1 MiB of guest memory before its 413;
//! - every response carries the CORS headers, and `OPTIONS` answers the
//!   preflight for any route;
//! - errors leave in one shape, `{"error": {"code", "message"}}`;
//! - `server-timing` reports where the time went (bundle load, scoring).
//!
//! Configuration comes from the component's environment (`environment` in
//! `spin.toml`), which Spin and the edgerec host both provide:
//! `EDGEREC_CORS_ORIGIN` (default `*`) and `EDGEREC_ZONE` (default `edge`).

pub mod model;

use std::time::Instant;

use edgerec_core::api::{ApiError, MAX_BODY_BYTES, parse_body};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use spin_sdk::http::{IncomingRequest, Method, Response};

/// Where `spin.toml` mounts the model bundle inside every component.
pub const BUNDLE_DIR: &str = "/bundle";

/// The request line and the settings a handler needs, read once.
#[derive(Debug)]
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Path without the query string.
    pub path: String,
    origin: String,
    timings: Vec<(&'static str, f64)>,
}

impl Call {
    /// Reads method, path and configuration from the request.
    pub fn new(req: &IncomingRequest) -> Self {
        let full = req.path_with_query().unwrap_or_else(|| "/".into());
        let path = full.split('?').next().unwrap_or("/").to_string();
        let origin = std::env::var("EDGEREC_CORS_ORIGIN").unwrap_or_else(|_| "*".into());
        Self { method: req.method(), path, origin, timings: Vec::new() }
    }

    /// `edge` or `private`, as configured by the host.
    pub fn zone(&self) -> String {
        std::env::var("EDGEREC_ZONE").unwrap_or_else(|_| "edge".into())
    }

    /// Runs `f`, recording its duration under `name` for `server-timing`.
    pub fn timed<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.timings.push((name, start.elapsed().as_secs_f64() * 1e3));
        out
    }

    fn builder(&self, status: u16) -> spin_sdk::http::ResponseBuilder {
        let mut b = Response::builder();
        b.status(status).header("access-control-allow-origin", self.origin.as_str()).header("vary", "origin");
        if !self.timings.is_empty() {
            let value: Vec<String> = self.timings.iter().map(|(n, ms)| format!("{n};dur={ms:.3}")).collect();
            b.header("server-timing", value.join(", "));
        }
        b
    }

    /// A JSON response.
    pub fn json<T: Serialize>(&self, status: u16, body: &T) -> Response {
        match serde_json::to_string(body) {
            Ok(text) => self.builder(status).header("content-type", "application/json").body(text).build(),
            Err(e) => {
                eprintln!("serializing the response failed: {e}");
                self.error(&ApiError::internal())
            }
        }
    }

    /// The JSON error response for `err`.
    pub fn error(&self, err: &ApiError) -> Response {
        if err.status >= 500 {
            eprintln!("{} {}: {err}", self.method, self.path);
        }
        self.builder(err.status).header("content-type", "application/json").body(err.to_json()).build()
    }

    /// `Ok` as JSON with status 200, `Err` as the JSON error.
    pub fn respond<T: Serialize>(&self, result: Result<T, ApiError>) -> Response {
        match result {
            Ok(body) => self.json(200, &body),
            Err(e) => self.error(&e),
        }
    }

    /// The CORS preflight answer.
    pub fn preflight(&self) -> Response {
        self.builder(204)
            .header("access-control-allow-methods", "GET, POST, OPTIONS")
            .header("access-control-allow-headers", "content-type, authorization")
            .header("access-control-max-age", "86400")
            .body(Vec::new())
            .build()
    }
}

/// Serves a function with one `POST` route: `handler` for `POST route`, the
/// CORS preflight for `OPTIONS`, 405 for other methods on the route and 404
/// elsewhere; the handler's result leaves as JSON or as the JSON error.
pub async fn serve_post<T: Serialize>(
    req: IncomingRequest,
    route: &str,
    handler: impl AsyncFnOnce(&mut Call, IncomingRequest) -> Result<T, ApiError>,
) -> Response {
    let mut call = Call::new(&req);
    let on_route = call.path == route;
    match call.method.clone() {
        Method::Options => call.preflight(),
        Method::Post if on_route => {
            let result = handler(&mut call, req).await;
            call.respond(result)
        }
        method if on_route => call.error(&ApiError::method_not_allowed(&method.to_string(), route, "POST")),
        _ => call.error(&ApiError::not_found(&call.path)),
    }
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
