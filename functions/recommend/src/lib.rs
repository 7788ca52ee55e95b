//! `POST /api/recommend` and `GET /api/health` as a Spin HTTP component.
//!
//! Build: `scripts/build-components` (release, `wasm32-wasip2`, `+simd128`).
//! Run: `edgerec serve --manifest spin.toml --listen 127.0.0.1:3000` (or
//! `spin up`), then
//! `curl -d '{"history": ["85123A"], "k": 3}' localhost:3000/api/recommend`.
//!
//! The model bundle is mounted at `/bundle` (`files` in `spin.toml`). Each
//! request runs in a fresh instance, so the bundle is read per request; its
//! binary layout makes that one `read` (see `edgerec_core::index`).

use edgerec_adapter::{BUNDLE_DIR, Call, read_json};
use edgerec_core::api::{ApiError, HealthResponse, RecommendRequest, RecommendResponse};
use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::coldstart::{DEFAULT_NEW_ITEM_BOOST, NEW_ITEM_PREFIX, StoredItem};
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{RecommendQuery, recommend_with_new};
use edgerec_core::tower::{MAX_HISTORY, USER_TOWER_FILE, UserTower};
use spin_sdk::http::{IncomingRequest, Method, Response};

/// The exported entry point. `#[http_component]` generates the C-ABI export
/// glue, which is `unsafe`; the `allow` covers that glue and nothing else.
#[allow(unsafe_code)]
mod entry {
    #[spin_sdk::http_component]
    async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
        super::handle(req).await
    }
}

async fn handle(req: IncomingRequest) -> Response {
    let mut call = Call::new(&req);
    match (&call.method, call.path.as_str()) {
        (Method::Options, _) => call.preflight(),
        (Method::Post, "/api/recommend") => {
            let result = handle_recommend(&mut call, req).await;
            call.respond(result)
        }
        (Method::Get | Method::Head, "/api/health") => {
            let result = health(&call);
            call.respond(result)
        }
        (method, path @ ("/api/recommend" | "/api/health")) => {
            let allowed = if path == "/api/recommend" { "POST" } else { "GET" };
            call.error(&ApiError::method_not_allowed(&method.to_string(), path, allowed))
        }
        (_, path) => call.error(&ApiError::not_found(path)),
    }
}

async fn handle_recommend(call: &mut Call, req: IncomingRequest) -> Result<RecommendResponse, ApiError> {
    let request: RecommendRequest = read_json(req).await?;
    let query = RecommendQuery::try_from(request)?;
    let (manifest, index, tower) = call.timed("load", load_bundle)?;
    let new_items = call.timed("new-items", || new_items(&manifest));
    let boost = new_item_boost()?;
    let result = call.timed("score", || recommend_with_new(&index, &tower, &query, &new_items, boost));
    Ok(RecommendResponse { items: result.items, unknown: result.unknown, model: manifest.model_ref() })
}

/// Items stored by `/api/items/cold-start` for this bundle. A component
/// without a key-value store (not granted in `spin.toml`) has none.
fn new_items(manifest: &Manifest) -> Vec<StoredItem> {
    let Ok(store) = spin_sdk::key_value::Store::open_default() else { return Vec::new() };
    let keys = match store.get_keys() {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("key-value get-keys: {e}");
            return Vec::new();
        }
    };
    let model = manifest.model_ref();
    keys.iter()
        .filter(|k| k.starts_with(NEW_ITEM_PREFIX))
        .filter_map(|k| store.get(k).ok().flatten())
        .filter_map(|bytes| serde_json::from_slice::<StoredItem>(&bytes).ok())
        .filter(|item| item.model == model)
        .collect()
}

/// `EDGEREC_NEW_ITEM_BOOST` (environment), else the evaluated default.
fn new_item_boost() -> Result<f32, ApiError> {
    match std::env::var("EDGEREC_NEW_ITEM_BOOST") {
        Err(_) => Ok(DEFAULT_NEW_ITEM_BOOST),
        Ok(v) => v.trim().parse::<f32>().ok().filter(|b| b.is_finite()).ok_or_else(|| {
            eprintln!("EDGEREC_NEW_ITEM_BOOST=`{v}` is not a number");
            ApiError::unavailable("the function is misconfigured (EDGEREC_NEW_ITEM_BOOST); see the server log")
        }),
    }
}

fn health(call: &Call) -> Result<HealthResponse, ApiError> {
    let manifest = read_manifest()?;
    Ok(HealthResponse { status: "ok".into(), zone: call.zone(), models: vec![manifest.model_ref()] })
}

fn read_manifest() -> Result<Manifest, ApiError> {
    Manifest::read(BUNDLE_DIR.as_ref()).map_err(|e| {
        eprintln!("{e}");
        ApiError::unavailable("no usable model bundle is mounted at /bundle; see the server log")
    })
}

/// The manifest, the item index and the user tower: the trained one when
/// the bundle has `user_tower.bin`, else recency pooling of the text
/// embeddings (a zero-shot bundle from `edgerec index`).
fn load_bundle() -> Result<(Manifest, ItemIndex, UserTower), ApiError> {
    let manifest = read_manifest()?;
    let dir = std::path::Path::new(BUNDLE_DIR);
    let index = ItemIndex::read(&dir.join(ITEMS_FILE)).map_err(|e| {
        eprintln!("{e}");
        ApiError::unavailable("the model bundle's item index cannot be read; see the server log")
    })?;
    let tower = if manifest.files.contains_key(USER_TOWER_FILE) {
        std::fs::read(dir.join(USER_TOWER_FILE))
            .map_err(|e| e.to_string())
            .and_then(|bytes| UserTower::from_bytes(&bytes).map_err(|e| e.to_string()))
            .map_err(|e| {
                eprintln!("{USER_TOWER_FILE}: {e}");
                ApiError::unavailable("the model bundle's user tower cannot be read; see the server log")
            })?
    } else {
        UserTower::recency(index.dims(), MAX_HISTORY)
    };
    if tower.dims != index.dims() {
        eprintln!("{USER_TOWER_FILE} has {} dims, items.bin {}", tower.dims, index.dims());
        return Err(ApiError::unavailable("the model bundle's towers do not match; see the server log"));
    }
    Ok((manifest, index, tower))
}
