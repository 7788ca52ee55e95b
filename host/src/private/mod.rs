//! The private zone: what a host with `zone = "private"` does before and
//! besides calling the functions.
//!
//! - **Its own routes** (`/api/feedback`, `/api/users/{id}/history`,
//!   `DELETE /api/users/{id}`, `/metrics`), answered by the host from the
//!   user store; they never reach a component, and neither does the key.
//! - **`user_id` on a function route**: the host checks the token
//!   (`users:personalize`), looks the user's recent history up, and calls
//!   the very same component with a body that has the `history` and no
//!   `user_id`. The component never sees who the user is.
//! - **Placement**: a route the config places on an edge goes there (with
//!   the history, never the id) and is served here when the edge does not
//!   answer within its deadline.
//!
//! Every private route needs a bearer token with its scope ([`tokens`]),
//! rate-limited per token (`governor`).

pub mod tokens;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use edgerec_core::ads::online::AdStats;
use edgerec_core::api::{
    ApiError, EraseResponse, EventType, FeedbackEvent, FeedbackRequest, FeedbackResponse, HistoryResponse,
    MAX_BODY_BYTES, MAX_FEEDBACK_EVENTS, MAX_ID_BYTES, ModelRef, parse_body,
};
use governor::{Quota, RateLimiter};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::config::{Placement, PrivateConfig};
use crate::metrics::Metrics;
use crate::users::{DataKey, Users};

pub use tokens::{Refusal, Scope, Tokens};

type Limiter = governor::DefaultKeyedRateLimiter<String>;

/// A host-made answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON text.
    pub body: String,
    /// Seconds to wait, for a 429.
    pub retry_after: Option<u64>,
    /// `content-type` (JSON unless said).
    pub content_type: &'static str,
}

impl Answer {
    pub(crate) fn json<T: serde::Serialize>(value: &T) -> Self {
        let body = serde_json::to_string(value).expect("API types serialize");
        Self { status: 200, body, retry_after: None, content_type: "application/json" }
    }

    fn error(err: ApiError) -> Self {
        Self { status: err.status, body: err.to_json(), retry_after: None, content_type: "application/json" }
    }
}

impl From<ApiError> for Answer {
    fn from(err: ApiError) -> Self {
        Self::error(err)
    }
}

/// A private route, as matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateRoute {
    /// `POST /api/feedback`.
    Feedback,
    /// `GET /api/users/{id}/history`.
    History(String),
    /// `DELETE /api/users/{id}`.
    Erase(String),
    /// `GET /metrics`.
    Metrics,
}

impl PrivateRoute {
    /// The private route at `path`, if it is one (any method).
    pub fn at(path: &str) -> Option<(Self, &'static str)> {
        if path == "/api/feedback" {
            return Some((Self::Feedback, "/api/feedback"));
        }
        if path == "/metrics" {
            return Some((Self::Metrics, "/metrics"));
        }
        let rest = path.strip_prefix("/api/users/")?;
        if let Some(id) = rest.strip_suffix("/history") {
            return Some((Self::History(percent_decode(id)), "/api/users/{user_id}/history"));
        }
        (!rest.contains('/')).then(|| (Self::Erase(percent_decode(rest)), "/api/users/{user_id}"))
    }

    fn method_and_scope(&self) -> (&'static str, Scope) {
        match self {
            Self::Feedback => ("POST", Scope::FeedbackWrite),
            Self::History(_) => ("GET", Scope::UsersRead),
            Self::Erase(_) => ("DELETE", Scope::UsersDelete),
            Self::Metrics => ("GET", Scope::MetricsRead),
        }
    }
}

/// `%XX` escapes of a path segment decoded (user ids may hold any character).
fn percent_decode(segment: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The private zone of a host.
pub struct PrivateZone {
    /// Swapped when another host (or `edgerec keys rotate`) moved the
    /// store to a new key and the key file now holds it.
    users: arc_swap::ArcSwap<Users>,
    tokens: Tokens,
    limiter: Limiter,
    config: PrivateConfig,
    client: Client<HttpConnector, Full<Bytes>>,
    ad_counts: Arc<std::sync::Mutex<AdCounts>>,
}

/// Impressions and clicks per ad id, counted from the stored feedback and
/// brought up to date by reading only the rows stored since (so hosts on
/// one PostgreSQL count the same). Counts are anonymous aggregates: erasing
/// a user later does not take their impressions back out until a restart.
#[derive(Debug, Default)]
struct AdCounts {
    /// The last sequence number counted.
    after: i64,
    counts: std::collections::HashMap<String, AdStats>,
}

impl AdCounts {
    fn count(&mut self, event: &FeedbackEvent) {
        let Some(ad) = &event.ad_id else { return };
        let stats = self.counts.entry(ad.clone()).or_default();
        match event.kind {
            EventType::Impression => stats.impressions += 1,
            EventType::Click => stats.clicks += 1,
            EventType::Cart | EventType::Purchase => {}
        }
    }

    /// An ad's stats, impressions at least its clicks (a front end may
    /// report clicks without the impressions).
    fn get(&self, ad: &str) -> Option<AdStats> {
        self.counts.get(ad).map(|s| AdStats { impressions: s.impressions.max(s.clicks), clicks: s.clicks })
    }
}

impl PrivateZone {
    /// Opens the user store with the data key and reads the tokens.
    pub fn open(config: &PrivateConfig) -> Result<Self> {
        let users = open_store(config)?;
        let tokens = Tokens::open(&config.tokens_file)?;
        if tokens.is_empty() {
            tracing::warn!(
                "no tokens in {}: private routes answer 401 until `edgerec tokens create` makes one",
                config.tokens_file.display()
            );
        }
        let quota = Quota::per_second(NonZeroU32::new(config.rate_per_second).expect("validated: at least 1"))
            .allow_burst(NonZeroU32::new(config.rate_burst).expect("validated: at least 1"));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        tracing::info!("private zone: user store {}, {} tokens", users.describe(), tokens.len());
        Ok(Self {
            users: arc_swap::ArcSwap::from_pointee(users),
            tokens,
            limiter: RateLimiter::keyed(quota),
            config: config.clone(),
            client,
            ad_counts: Default::default(),
        })
    }

    /// The user store.
    pub fn users(&self) -> Arc<Users> {
        self.users.load_full()
    }

    /// Runs `op` on the user store off the async threads. When it fails,
    /// the store is opened again with the configured key once: after a
    /// `keys rotate` the key file holds the new key, and this host moves to
    /// it without a restart (a request that failed on the old key is
    /// retried on the new one, never acknowledged half-done).
    async fn with_store<T: Send + 'static>(
        &self,
        op: impl Fn(&Users) -> Result<T> + Send + Sync + 'static,
    ) -> Result<T, Answer> {
        let op = Arc::new(op);
        let users = self.users.load_full();
        let first = {
            let op = op.clone();
            tokio::task::spawn_blocking(move || op(&users)).await
        };
        let err = match first {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e,
            Err(e) => return Err(store_failure(e.into())),
        };
        let config = self.config.clone();
        let current = self.users.load().key_check();
        let reopened = tokio::task::spawn_blocking(move || open_store(&config)).await;
        match reopened {
            Ok(Ok(users)) if users.key_check() != current => {
                tracing::warn!("the user store's data key changed; using the new key from now on");
                let users = Arc::new(users);
                self.users.store(users.clone());
                match tokio::task::spawn_blocking(move || op(&users)).await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => Err(store_failure(e)),
                    Err(e) => Err(store_failure(e.into())),
                }
            }
            _ => Err(store_failure(err)),
        }
    }

    /// Checks the request's token for `scope` and its rate.
    pub fn authorize(&self, headers: &http::HeaderMap, scope: Scope) -> Result<String, Answer> {
        let authorization = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let id = self.tokens.authorize(authorization, scope).map_err(|refusal| {
            // The log names the token's id at most, never the token.
            let (status, code, message) = match refusal {
                Refusal::Missing => {
                    (401, "unauthorized", "this route needs `authorization: Bearer <token>`".to_string())
                }
                Refusal::Unknown => (401, "unauthorized", "the bearer token is not valid here".to_string()),
                Refusal::Forbidden(id) => {
                    tracing::warn!(token = %id, scope = scope.as_str(), "token lacks the scope");
                    (403, "forbidden", format!("the token lacks the `{}` scope", scope.as_str()))
                }
            };
            if status == 401 {
                tracing::warn!(scope = scope.as_str(), "missing or unknown token");
            }
            Answer::error(ApiError { status, code, message })
        })?;
        if let Err(not_until) = self.limiter.check_key(&id) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::warn!(token = %id, "rate limited");
            let mut answer = Answer::error(ApiError {
                status: 429,
                code: "rate_limited",
                message: format!(
                    "this token is over its rate of {} requests per second; retry after {seconds} s",
                    self.config.rate_per_second
                ),
            });
            answer.retry_after = Some(seconds.max(1));
            return Err(answer);
        }
        Ok(id)
    }

    /// Answers a private route (token, scope, rate, then the route).
    pub async fn serve(
        &self,
        route: PrivateRoute,
        method: &http::Method,
        headers: &http::HeaderMap,
        body: Bytes,
        metrics: &Metrics,
        served_models: &[ModelRef],
    ) -> Answer {
        let (allowed, scope) = route.method_and_scope();
        if method.as_str() != allowed {
            let path = match &route {
                PrivateRoute::Feedback => "/api/feedback",
                PrivateRoute::History(_) => "/api/users/{user_id}/history",
                PrivateRoute::Erase(_) => "/api/users/{user_id}",
                PrivateRoute::Metrics => "/metrics",
            };
            return ApiError::method_not_allowed(method.as_str(), path, allowed).into();
        }
        if let Err(answer) = self.authorize(headers, scope) {
            return answer;
        }
        match route {
            PrivateRoute::Metrics => Answer {
                status: 200,
                body: metrics.encode(),
                retry_after: None,
                content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            },
            PrivateRoute::Feedback => {
                let events = match parse_feedback(&body) {
                    Ok(events) => events,
                    Err(err) => return err.into(),
                };
                let stored = {
                    let events = events.clone();
                    self.with_store(move |users| users.record(&events)).await
                };
                match stored {
                    Ok(recorded) => {
                        for (event, _) in events.iter().zip(&recorded.added).filter(|(_, added)| **added) {
                            metrics.feedback(event.kind, event.model.as_ref(), |m| served_models.contains(m));
                        }
                        Answer::json(&FeedbackResponse { accepted: recorded.accepted, duplicates: recorded.duplicates })
                    }
                    Err(answer) => answer,
                }
            }
            PrivateRoute::History(user_id) => {
                if let Err(err) = check_id("user_id", &user_id) {
                    return err.into();
                }
                let limit = self.config.history_limit;
                let uid = user_id.clone();
                match self.with_store(move |users| users.recent(&uid, limit)).await {
                    Ok(events) => Answer::json(&HistoryResponse { user_id, events }),
                    Err(answer) => answer,
                }
            }
            PrivateRoute::Erase(user_id) => {
                if let Err(err) = check_id("user_id", &user_id) {
                    return err.into();
                }
                match self.with_store(move |users| users.erase(&user_id)).await {
                    Ok(erased) => Answer::json(&EraseResponse { erased }),
                    Err(answer) => answer,
                }
            }
        }
    }

    /// For a function route: when the body names a `user_id`, checks the
    /// token and returns the body with the user's stored history (before
    /// any `history` the body sent) and without the id. Bodies without one
    /// pass unchanged.
    pub async fn personalize(&self, headers: &http::HeaderMap, body: Bytes) -> Result<Bytes, Answer> {
        // Cheap test first: most bodies have no user id.
        if !body.windows(9).any(|w| w == b"\"user_id\"") {
            return Ok(body);
        }
        let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice::<serde_json::Value>(&body) else {
            // Not a JSON object: the function reports what is wrong with it.
            return Ok(body);
        };
        let user_id = match object.remove("user_id") {
            None | Some(serde_json::Value::Null) => return Ok(body),
            Some(serde_json::Value::String(id)) => id,
            Some(_) => return Err(ApiError::bad_request("field `user_id` must be a string").into()),
        };
        check_id("user_id", &user_id).map_err(Answer::from)?;
        self.authorize(headers, Scope::UsersPersonalize)?;
        let limit = self.config.history_limit;
        let stored = self.with_store(move |users| users.history(&user_id, limit)).await?;
        let mut history: Vec<serde_json::Value> = stored.into_iter().map(serde_json::Value::String).collect();
        match object.remove("history") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(sent)) => history.extend(sent),
            // The function names the field.
            Some(other) => {
                object.insert("history".into(), other);
                return Ok(serde_json::to_vec(&object).expect("JSON values serialize").into());
            }
        }
        object.insert("history".into(), serde_json::Value::Array(history));
        Ok(serde_json::to_vec(&object).expect("JSON values serialize").into())
    }

    /// For `/api/ads/score`: the body with `stats`, the impressions and
    /// clicks stored for each of its ads (replacing any the caller sent),
    /// so the function ranks them by what they earned on top of their text
    /// ([`edgerec_core::ads::online`]). Bodies it cannot read pass unchanged
    /// (the function names what is wrong).
    pub async fn with_ad_stats(&self, body: Bytes) -> Result<Bytes, Answer> {
        let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return Ok(body);
        };
        let Some(serde_json::Value::Array(ads)) = object.get("ads") else { return Ok(body) };
        let ids: Vec<String> =
            ads.iter().filter_map(|ad| ad.get("id").and_then(|id| id.as_str()).map(str::to_string)).collect();
        let counts = self.ad_counts.clone();
        let stats = self
            .with_store(move |users| {
                let mut counts = counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let after = counts.after;
                counts.after = users.events_after(after, |_, _, event| counts.count(&event))?;
                Ok(ids.iter().filter_map(|id| counts.get(id).map(|s| (id.clone(), s))).collect::<Vec<_>>())
            })
            .await?;
        object.remove("stats");
        if !stats.is_empty() {
            let stats: serde_json::Map<String, serde_json::Value> =
                stats.into_iter().map(|(id, s)| (id, serde_json::to_value(s).expect("stats serialize"))).collect();
            object.insert("stats".into(), serde_json::Value::Object(stats));
        }
        Ok(serde_json::to_vec(&object).expect("JSON values serialize").into())
    }

    /// The id an A/B test buckets this body's shopper by: the pseudonym of
    /// its `user_id` (a keyed hash; never the id itself).
    pub fn bucket_id(&self, body: &[u8]) -> Option<String> {
        if !body.windows(9).any(|w| w == b"\"user_id\"") {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let user_id = value.get("user_id")?.as_str()?;
        Some(self.users().pseudonym(user_id))
    }

    /// Where `route` is placed, if on an edge.
    pub fn placement(&self, route: &str) -> Option<&Placement> {
        self.config.placement.get(route)
    }

    /// Sends `body` to the edge for `path`; `None` when the edge fails or
    /// misses the deadline (the caller serves it locally).
    pub async fn forward(
        &self,
        placement: &Placement,
        path: &str,
        content_type: Option<&http::HeaderValue>,
        body: Bytes,
    ) -> Option<hyper::Response<hyper::body::Incoming>> {
        let uri = format!("{}{path}", placement.edge.trim_end_matches('/'));
        let mut request = hyper::Request::post(uri);
        if let Some(ct) = content_type {
            request = request.header(http::header::CONTENT_TYPE, ct);
        }
        let request = request.body(Full::new(body)).ok()?;
        let deadline = Duration::from_millis(placement.deadline_ms);
        match tokio::time::timeout(deadline, self.client.request(request)).await {
            Ok(Ok(resp)) if !resp.status().is_server_error() => Some(resp),
            Ok(Ok(resp)) => {
                tracing::warn!("edge {} answered {}; serving {path} here", placement.edge, resp.status());
                None
            }
            Ok(Err(e)) => {
                tracing::warn!("edge {} failed ({e}); serving {path} here", placement.edge);
                None
            }
            Err(_) => {
                tracing::warn!("edge {} missed its {deadline:?} deadline; serving {path} here", placement.edge);
                None
            }
        }
    }
}

/// Opens the user store with the configured data key. When the key file
/// has a `.new` sibling that opens the store instead (a `keys rotate` that
/// stopped between its commit and the rename), the rotation is finished here.
pub fn open_store(config: &PrivateConfig) -> Result<Users> {
    let key = DataKey::load(config.key_file.as_deref())?;
    match Users::open(&config.store, key) {
        Ok(users) => Ok(users),
        Err(e) => {
            let Some(path) =
                config.key_file.as_deref().filter(|_| std::env::var_os(crate::users::seal::KEY_ENV).is_none())
            else {
                return Err(e);
            };
            let pending = rotated_key_path(path);
            if !pending.exists() {
                return Err(e);
            }
            let users = Users::open(&config.store, DataKey::read(&pending)?).map_err(|_| e)?;
            std::fs::rename(&pending, path)
                .with_context(|| format!("finishing the key rotation: {}", path.display()))?;
            tracing::warn!("finished an interrupted key rotation: {} now holds the new key", path.display());
            Ok(users)
        }
    }
}

/// Where `keys rotate` writes the new key before re-sealing.
pub fn rotated_key_path(key_file: &std::path::Path) -> std::path::PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".new");
    name.into()
}

fn store_failure(e: anyhow::Error) -> Answer {
    tracing::error!("user store: {e:#}");
    Answer::error(ApiError::unavailable("the user store failed; nothing was stored; retry later"))
}

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::bad_request(format!("field `{field}` is empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ApiError::bad_request(format!("field `{field}` is {} bytes; at most {MAX_ID_BYTES}", id.len())));
    }
    Ok(())
}

/// Parses and validates a feedback body; every event gets a UTC RFC 3339
/// `ts` (now, when it had none). Nothing is stored when any event is bad.
pub fn parse_feedback(body: &[u8]) -> Result<Vec<FeedbackEvent>, ApiError> {
    let request: FeedbackRequest = parse_body(body)?;
    let n = request.events.len();
    if n == 0 {
        return Err(ApiError::bad_request("field `events` is empty; send 1 to 10000 events"));
    }
    if n > MAX_FEEDBACK_EVENTS {
        return Err(ApiError::bad_request(format!(
            "field `events` holds {n} events; at most {MAX_FEEDBACK_EVENTS} per request"
        )));
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut events = request.events;
    for (i, event) in events.iter_mut().enumerate() {
        check_id(&format!("events[{i}].user_id"), &event.user_id)?;
        check_id(&format!("events[{i}].item_id"), &event.item_id)?;
        if let Some(id) = &event.event_id {
            check_id(&format!("events[{i}].event_id"), id)?;
        }
        if let Some(id) = &event.ad_id {
            check_id(&format!("events[{i}].ad_id"), id)?;
        }
        if let Some(query) = &event.query
            && query.len() > 1024
        {
            return Err(ApiError::bad_request(format!("field `events[{i}].query` is over 1024 bytes")));
        }
        event.ts = Some(match &event.ts {
            None => now.clone(),
            Some(ts) => chrono::DateTime::parse_from_rfc3339(ts)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "field `events[{i}].ts`: `{ts}` is not an RFC 3339 time such as 2026-12-03T10:00:00Z"
                    ))
                })?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
    }
    Ok(events)
}

/// Reads a request body of at most [`MAX_BODY_BYTES`].
pub async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, Answer> {
    match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(MAX_BODY_BYTES + 1).into())
        }
        Err(e) => Err(ApiError::bad_request(format!("reading the request body: {e}")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_bodies_are_refused_naming_the_field() {
        let ok =
            br#"{"events": [{"user_id": "u1", "item_id": "i1", "type": "click", "ts": "2026-12-03T11:00:00+01:00"}]}"#;
        let events = parse_feedback(ok).unwrap();
        assert_eq!(events[0].ts.as_deref(), Some("2026-12-03T10:00:00.000Z"), "normalized to UTC");
        let no_ts = br#"{"events": [{"user_id": "u1", "item_id": "i1", "type": "cart"}]}"#;
        assert!(parse_feedback(no_ts).unwrap()[0].ts.is_some());
        for (body, needle) in [
            (r#"{"events": [{"user_id": "u", "item_id": "i", "type": "view"}]}"#.to_string(), "events[0].type"),
            (
                r#"{"events": [{"user_id": "u", "item_id": "i", "type": "click", "ts": "yesterday"}]}"#.into(),
                "events[0].ts",
            ),
            (
                r#"{"events": [{"user_id": " ", "item_id": "i", "type": "click"}]}"#.into(),
                "events[0].user_id` is empty",
            ),
            (r#"{"events": []}"#.into(), "`events` is empty"),
            (r#"{"events": [{"user_id": "u", "type": "click"}]}"#.into(), "item_id"),
            (
                format!(
                    r#"{{"events": [{}]}}"#,
                    vec![r#"{"user_id":"u","item_id":"i","type":"click"}"#; 10_001].join(",")
                ),
                "holds 10001 events; at most 10000",
            ),
        ] {
            let err = parse_feedback(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
    }

    #[test]
    fn private_routes_are_matched_with_their_user_ids_decoded() {
        assert_eq!(PrivateRoute::at("/api/feedback").unwrap().0, PrivateRoute::Feedback);
        assert_eq!(PrivateRoute::at("/api/users/a%2Fb/history").unwrap().0, PrivateRoute::History("a/b".into()));
        assert_eq!(PrivateRoute::at("/api/users/u%201").unwrap().0, PrivateRoute::Erase("u 1".into()));
        assert_eq!(PrivateRoute::at("/api/recommend"), None);
        assert_eq!(PrivateRoute::at("/api/users/a/b/c"), None);
        assert_eq!(percent_decode("100%"), "100%");
    }
}
