//! The public HTTP contract (`API.md`): request and response bodies, input
//! limits, and the one JSON error shape every route answers with.
//!
//! Functions are thin adapters: they hand the raw body to [`parse_body`] and
//! turn an [`ApiError`] into a response with [`ApiError::to_json`], so every
//! route reports bad input the same way.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest request body any route accepts (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Default and bounds of `k`, the number of results a route returns.
pub const DEFAULT_K: usize = 10;
/// Largest `k` a caller may ask for.
pub const MAX_K: usize = 200;

/// An error answered to the client: an HTTP status, a stable machine code and
/// a message that names the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (4xx for the caller's mistakes, 5xx for ours).
    pub status: u16,
    /// Stable, machine-readable code such as `bad_request`.
    pub code: &'static str,
    /// Human-readable explanation naming the field that is wrong.
    pub message: String,
}

impl ApiError {
    /// 400: the body is not what the route expects.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: 400, code: "bad_request", message: message.into() }
    }
    /// 404: no such route.
    pub fn not_found(path: &str) -> Self {
        Self { status: 404, code: "not_found", message: format!("no route for `{path}`") }
    }
    /// 405: the route exists but not for this method.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        Self {
            status: 405,
            code: "method_not_allowed",
            message: format!("`{method} {path}` is not supported; use {allowed}"),
        }
    }
    /// 413: the body is larger than [`MAX_BODY_BYTES`].
    pub fn payload_too_large(len: usize) -> Self {
        Self {
            status: 413,
            code: "payload_too_large",
            message: format!("request body is {len} bytes or more; the limit is {MAX_BODY_BYTES} bytes (1 MiB)"),
        }
    }
    /// 415: the body is declared as something other than JSON.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self {
            status: 415,
            code: "unsupported_media_type",
            message: format!("content-type `{content_type}` is not supported; send `application/json`"),
        }
    }
    /// 500: our fault. The message stays generic; details belong in the log.
    pub fn internal() -> Self {
        Self { status: 500, code: "internal", message: "internal error; see the server log".into() }
    }
    /// 503: the function has no usable model bundle.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { status: 503, code: "unavailable", message: message.into() }
    }

    /// The body of the error response: `{"error": {"code": ..., "message": ...}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Parses a JSON request body into `T`, with errors that name the field.
///
/// Checks, in order: size, UTF-8, JSON syntax, then the shape of `T`
/// (unknown fields are refused, so a typo such as `"histroy"` is reported
/// instead of silently ignored).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(body.len()));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid UTF-8 (byte {})", e.valid_up_to())))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("request body is empty; send a JSON object"));
    }
    // serde would accept a struct written as an array; the contract is an object.
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request("request body must be a JSON object, e.g. {\"k\": 10}"));
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid JSON body: {inner}; send a JSON object"))
        } else {
            ApiError::bad_request(format!("field `{path}`: {inner}"))
        }
    })
}

/// Model name and version, as reported by every route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    /// Bundle name, e.g. `online-retail`.
    pub name: String,
    /// Bundle version, e.g. `1`.
    pub version: String,
}

/// `POST /api/recommend` request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendRequest {
    /// Honoured only by the private host, which looks the history up itself.
    pub user_id: Option<String>,
    /// Item ids the shopper interacted with, oldest first.
    pub history: Option<Vec<String>>,
    /// Number of items to return (1..=200, default 10).
    pub k: Option<i64>,
    /// Item ids that must not be returned.
    pub exclude: Option<Vec<String>>,
    /// Whether items of the history are left out (default true).
    pub exclude_history: Option<bool>,
}

/// Validates `k` against `1..=MAX_K`, defaulting to [`DEFAULT_K`].
pub fn validate_k(k: Option<i64>) -> Result<usize, ApiError> {
    match k {
        None => Ok(DEFAULT_K),
        Some(k) if (1..=MAX_K as i64).contains(&k) => Ok(k as usize),
        Some(k) => Err(ApiError::bad_request(format!("field `k` must be between 1 and {MAX_K}, got {k}"))),
    }
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredItem {
    /// Catalog id.
    pub item_id: String,
    /// Catalog title.
    pub title: String,
    /// Ranking score (higher is better; cosine similarity or a popularity share).
    pub score: f32,
    /// Why the item is here, for people reading the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /api/recommend` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendResponse {
    /// Ranked items, best first.
    pub items: Vec<ScoredItem>,
    /// Ids from `history` or `exclude` that the catalog does not know.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub unknown: Vec<String>,
    /// The bundle that produced the ranking.
    pub model: ModelRef,
}

/// `GET /api/health` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `ok` when the function can serve.
    pub status: String,
    /// `edge` or `private`.
    pub zone: String,
    /// Bundles the function serves.
    pub models: Vec<ModelRef>,
}

/// `POST /api/search` request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What the shopper typed; must contain a non-space character.
    pub query: String,
    /// Honoured only by the private host, which looks the history up itself.
    pub user_id: Option<String>,
    /// Item ids the shopper interacted with, oldest first; personalizes the ranking.
    pub history: Option<Vec<String>>,
    /// Number of items to return (1..=200, default 10).
    pub k: Option<i64>,
}

/// `POST /api/search` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Ranked items, best first.
    pub items: Vec<ScoredItem>,
    /// Whether the query was longer than the encoder's window and was cut.
    pub truncated: bool,
    /// Ids from `history` that the catalog does not know.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub unknown: Vec<String>,
    /// The bundle that produced the ranking.
    pub model: ModelRef,
}

/// Most ads one `POST /api/ads/score` may score.
pub const MAX_ADS: usize = 100;

/// One ad copy to score.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdCopy {
    /// The caller's id of the copy, echoed back.
    pub id: String,
    /// The copy's text (headline).
    pub text: String,
}

/// `POST /api/ads/score` request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdsRequest {
    /// 1..=100 ad copies.
    pub ads: Vec<AdCopy>,
    /// Honoured only by the private host.
    pub user_id: Option<String>,
    /// Item ids the shopper interacted with, oldest first.
    pub history: Option<Vec<String>>,
    /// The shopper's current search, if any.
    pub query: Option<String>,
    /// Impressions and clicks recorded per ad id: the private host fills
    /// them in from its feedback; ads are then ranked by what they earned
    /// on top of the text model's prior ([`crate::ads::online`]).
    pub stats: Option<std::collections::BTreeMap<String, crate::ads::online::AdStats>>,
}

/// One scored ad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdScore {
    /// The caller's id.
    pub id: String,
    /// Predicted click probability, in [0, 1].
    pub score: f32,
    /// Whether the copy was longer than the encoder's window and was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub truncated: bool,
    /// With `stats`: the text model's click probability alone.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prior: Option<f32>,
    /// With `stats`: the posterior mean click rate (`score` is its upper
    /// confidence bound, what the ads are ranked by).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean: Option<f32>,
}

/// `POST /api/ads/score` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdsResponse {
    /// Best first.
    pub ads: Vec<AdScore>,
    /// The ad model that scored them.
    pub model: ModelRef,
}

/// Most new items one `POST /api/items/cold-start` may carry.
pub const MAX_NEW_ITEMS: usize = 1000;

/// A product nobody has interacted with yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Catalog id.
    pub item_id: String,
    /// Display title.
    pub title: String,
    /// Longer text, if any.
    pub description: Option<String>,
    /// Category path or name, if any.
    pub category: Option<String>,
    /// Price, if known (non-negative).
    pub price: Option<f64>,
}

/// `POST /api/items/cold-start` request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdStartRequest {
    /// 1..=1000 new items.
    pub items: Vec<NewItem>,
}

/// A warm catalog item close to a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbor {
    /// Catalog id.
    pub item_id: String,
    /// Cosine similarity in the towers' space.
    pub score: f32,
}

/// What happened to one new item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdStartItem {
    /// The new item's id.
    pub item_id: String,
    /// Its nearest warm items, best first.
    pub neighbors: Vec<Neighbor>,
    /// Whether it was stored, so `/api/recommend` can now return it.
    pub indexed: bool,
}

/// `POST /api/items/cold-start` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdStartResponse {
    /// One entry per request item, in request order.
    pub items: Vec<ColdStartItem>,
    /// The bundle whose towers embedded them.
    pub model: ModelRef,
}

/// An item added through `POST /api/items/cold-start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewArrival {
    /// Its id.
    pub item_id: String,
    /// Its title.
    pub title: String,
}

/// `GET /api/items/cold-start` response: the items added for the serving
/// model (the "new arrivals" shelf).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewArrivalsResponse {
    /// The latest stored pages first, up to [`MAX_NEW_ARRIVALS`].
    pub items: Vec<NewArrival>,
    /// The bundle they were added to.
    pub model: ModelRef,
}

/// Most items `GET /api/items/cold-start` lists.
pub const MAX_NEW_ARRIVALS: usize = 200;

/// Most events one `POST /api/feedback` may carry.
pub const MAX_FEEDBACK_EVENTS: usize = 10_000;
/// Longest user, item, event or ad id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// What a shopper did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The item was shown.
    Impression,
    /// The item was clicked.
    Click,
    /// The item was put in the cart.
    Cart,
    /// The item was bought.
    Purchase,
}

impl EventType {
    /// Every type, in the order of the funnel.
    pub const ALL: [EventType; 4] = [EventType::Impression, EventType::Click, EventType::Cart, EventType::Purchase];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Impression => "impression",
            EventType::Click => "click",
            EventType::Cart => "cart",
            EventType::Purchase => "purchase",
        }
    }

    /// Whether the event says the shopper wanted the item (it joins their
    /// history); an impression alone does not.
    pub fn is_interaction(self) -> bool {
        self != EventType::Impression
    }
}

/// One event of `POST /api/feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackEvent {
    /// The shop's id of the user.
    pub user_id: String,
    /// The item the event is about.
    pub item_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When, RFC 3339 (default: when the host received it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// The caller's id of the event: a retried event with the same id counts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The model version that produced what the user saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
    /// The ad copy shown, for ad events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// The search that led to the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `POST /api/feedback` request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// 1..=10,000 events.
    pub events: Vec<FeedbackEvent>,
}

/// `POST /api/feedback` response, sent once the events are durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackResponse {
    /// Events of the request that are now durable.
    pub accepted: usize,
    /// Of those, events whose `event_id` had been accepted before (counted once).
    pub duplicates: usize,
}

/// `GET /api/users/{user_id}/history` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The user's id, as asked.
    pub user_id: String,
    /// The user's recent events, newest first.
    pub events: Vec<FeedbackEvent>,
}

/// `DELETE /api/users/{user_id}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseResponse {
    /// Events erased.
    pub erased: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_body::<RecommendRequest>(br#"{"k": "ten"}"#).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.starts_with("field `k`"), "{}", err.message);
    }

    #[test]
    fn nested_wrong_type_names_the_element() {
        let err = parse_body::<RecommendRequest>(br#"{"history": ["a", 3]}"#).unwrap_err();
        assert!(err.message.contains("history[1]"), "{}", err.message);
    }

    #[test]
    fn unknown_field_is_refused_by_name() {
        let err = parse_body::<RecommendRequest>(br#"{"histroy": []}"#).unwrap_err();
        assert!(err.message.contains("histroy"), "{}", err.message);
    }

    #[test]
    fn malformed_json_and_non_utf8_are_bad_requests() {
        let err = parse_body::<RecommendRequest>(b"{\"history\": [").unwrap_err();
        assert!(err.message.starts_with("invalid JSON body"), "{}", err.message);
        assert_eq!(parse_body::<RecommendRequest>(b"\xff\xfe").unwrap_err().status, 400);
        assert_eq!(parse_body::<RecommendRequest>(b"  ").unwrap_err().status, 400);
        assert!(parse_body::<RecommendRequest>(b"[1,2]").unwrap_err().message.contains("JSON object"));
    }

    #[test]
    fn oversized_body_is_413() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_body::<RecommendRequest>(&body).unwrap_err().status, 413);
    }

    #[test]
    fn k_bounds() {
        assert_eq!(validate_k(None), Ok(DEFAULT_K));
        assert_eq!(validate_k(Some(1)), Ok(1));
        assert_eq!(validate_k(Some(200)), Ok(200));
        for bad in [0, -3, 201] {
            let err = validate_k(Some(bad)).unwrap_err();
            assert!(err.message.contains("`k`") && err.message.contains(&bad.to_string()));
        }
    }

    #[test]
    fn error_body_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::bad_request("field `k`: nope").to_json()).unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["message"], "field `k`: nope");
    }
}
