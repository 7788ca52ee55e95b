//! `POST /api/search` as a Spin HTTP component: BM25 over titles fused with
//! the semantic similarity of the query's embedding (encoded here, at
//! request time) and, given a history, the shopper's user vector.
//!
//! Mounts: the catalog bundle at `/bundle` (items.bin, bm25.bin, towers)
//! and its encoder at `/encoder`. The model is loaded once per instance
//! ([`edgerec_adapter::model::Lazy`]); the edgerec host pre-initializes the
//! component through its `preinit` export so that no request pays for it.

use edgerec_adapter::model::{self, Lazy, encoder_failed};
use edgerec_adapter::{BUNDLE_DIR, Call, read_json, serve_post};
use edgerec_core::api::{ApiError, SearchRequest, SearchResponse};
use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::encoder::Encoder;
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{resolve, user_vector};
use edgerec_core::search::{BM25_FILE, Bm25, Fusion, SearchQuery, search};
use edgerec_core::tower::{ItemTower, MAX_HISTORY, USER_TOWER_FILE, UserTower, item_space};
use spin_sdk::http::{IncomingRequest, Response};

/// The exported HTTP entry point. `#[http_component]` generates C-ABI
/// export glue, which is `unsafe`; the `allow` covers that glue.
#[allow(unsafe_code)]
mod entry {
    #[spin_sdk::http_component]
    async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
        super::handle(req).await
    }
}

struct Model {
    manifest: Manifest,
    index: ItemIndex,
    bm25: Bm25,
    encoder: Encoder,
    item_tower: Option<ItemTower>,
    user_tower: UserTower,
}

static MODEL: Lazy<Model> = Lazy::new(load);
edgerec_adapter::export_preinit!(crate::MODEL);

fn load() -> Result<Model, String> {
    let manifest = model::manifest()?;
    let index = model::item_index(&manifest)?;
    let bm25 = Bm25::from_bytes(&model::file(BUNDLE_DIR, &manifest, BM25_FILE)?).map_err(|e| e.to_string())?;
    if bm25.len() != index.len() {
        return Err(format!("{BM25_FILE} has {} titles, {ITEMS_FILE} {} items", bm25.len(), index.len()));
    }
    let item_tower = model::item_tower(&manifest)?;
    let user_tower = match model::optional_file(BUNDLE_DIR, &manifest, USER_TOWER_FILE)? {
        Some(bytes) => UserTower::from_bytes(&bytes).map_err(|e| e.to_string())?,
        None => UserTower::recency(index.dims(), MAX_HISTORY),
    };
    let encoder = model::encoder(&manifest)?;
    Ok(Model { manifest, index, bm25, encoder, item_tower, user_tower })
}

async fn handle(req: IncomingRequest) -> Response {
    serve_post(req, "/api/search", handle_search).await
}

async fn handle_search(call: &mut Call, req: IncomingRequest) -> Result<SearchResponse, ApiError> {
    let request: SearchRequest = read_json(req).await?;
    let query = SearchQuery::try_from(request)?;
    let model = call.timed("model", || MODEL.get())?;
    let tokens = call.timed("tokenize", || model.encoder.tokenize(&[query.text.as_str()])).map_err(encoder_failed)?;
    let text_vector = call.timed("encode", || model.encoder.embed(&tokens)).map_err(encoder_failed)?.remove(0);
    let query_vector = item_space(model.item_tower.as_ref(), text_vector);
    let (history, unknown) = resolve(&model.index, &query.history);
    let user = user_vector(&model.index, &model.user_tower, &history);
    let items = call.timed("score", || {
        search(&model.index, &model.bm25, &query, &query_vector, user.as_deref(), Fusion::default())
    });
    Ok(SearchResponse {
        items,
        truncated: query.truncated || tokens.truncated[0],
        unknown,
        model: model.manifest.model_ref(),
    })
}
