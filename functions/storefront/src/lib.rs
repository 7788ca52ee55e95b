//! The storefront and the operator dashboard: the static files of `web/`
//! (mounted at `/static` by `spin.toml`), served by a component of the app
//! itself on the route `/...`, so `spin up` and `edgerec serve` serve the
//! pages beside the functions they call, on one origin.
//!
//! Each request reads the one file it asks for (a few kilobytes; the
//! component keeps nothing between requests, as Spin gives each request a
//! fresh instance). Answers carry:
//!
//! - the file's content type and `x-content-type-options: nosniff`;
//! - an `etag` (sha256 of the bytes), answering `if-none-match` with 304,
//!   and `cache-control: no-cache`: the browser keeps the file and asks
//!   each time whether it changed, so a new app version shows at once;
//! - a content security policy that allows this origin only: the pages
//!   make no request to any other host, and a script injected into a title
//!   could not send anything elsewhere.
//!
//! `/` is `index.html`. A path with an empty, `.` or `..` segment, or one
//! naming a hidden file, is a 404: nothing outside `/static` is reachable.
//! Methods other than GET and HEAD are a 405. Errors are JSON in the shape
//! every function answers with (`{"error": {"code", "message"}}`).

use sha2::Digest;
use spin_sdk::http::{Method, Request, Response};

/// Where `spin.toml` mounts `web/`.
const STATIC_DIR: &str = "/static";

/// Only this origin: scripts, styles, fetches; images may also be inline data.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The content type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file under [`STATIC_DIR`] that `path` names, if it may be served.
fn file_for(path: &str) -> Option<String> {
    let relative = path.strip_prefix('/')?;
    let relative = if relative.is_empty() { "index.html" } else { relative };
    let safe = relative.split('/').all(|segment| !segment.is_empty() && !segment.starts_with('.'));
    safe.then(|| format!("{STATIC_DIR}/{relative}"))
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    Response::builder().status(status).header("content-type", "application/json").body(body).build()
}

/// The exported entry point (`#[http_component]` generates `unsafe` C-ABI glue).
#[allow(unsafe_code)]
mod exports {
    use super::*;

    #[spin_sdk::http_component]
    fn handle(req: Request) -> Response {
        super::serve(&req)
    }
}

fn serve(req: &Request) -> Response {
    let head = match req.method() {
        Method::Get => false,
        Method::Head => true,
        other => {
            let mut answer = error(405, "method_not_allowed", &format!("{other} is not allowed here; use GET"));
            answer.set_header("allow", "GET, HEAD");
            return answer;
        }
    };
    let path = req.path();
    let Some(file) = file_for(path) else {
        return error(404, "not_found", &format!("no page at {path}"));
    };
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return error(404, "not_found", &format!("no page at {path}"));
        }
        // A directory, or unreadable: the same answer, and the reason in the log.
        Err(e) => {
            eprintln!("{file}: {e}");
            return error(404, "not_found", &format!("no page at {path}"));
        }
    };
    let etag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&bytes))[..32]);
    let unchanged = req.header("if-none-match").and_then(|v| v.as_str()).is_some_and(|v| v == etag);
    let mut builder = Response::builder();
    builder
        .header("etag", etag.as_str())
        .header("cache-control", "no-cache")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer");
    if unchanged {
        return builder.status(304).body(Vec::new()).build();
    }
    builder.status(200).header("content-type", content_type(&file));
    if head {
        builder.header("content-length", bytes.len().to_string()).body(Vec::new()).build()
    } else {
        builder.body(bytes).build()
    }
}
