//! `POST /api/items/cold-start` as a Spin HTTP component: embed new items
//! from their text (encoded here, at request time) with the bundle's item
//! tower, return their nearest warm neighbours, and store them in the
//! key-value store so the next `/api/recommend` can return them.
//!
//! Mounts: the catalog bundle at `/bundle`, its encoder at `/encoder`.
//! Store: `key_value_stores = ["default"]` in `spin.toml`; without it the
//! items are embedded and answered but not stored (`"indexed": false`).
//! Pre-initialized like `search`.

use edgerec_adapter::model::{self, Lazy, encoder_failed};
use edgerec_adapter::{Call, read_json, serve_post};
use edgerec_core::api::{ApiError, ColdStartItem, ColdStartRequest, ColdStartResponse};
use edgerec_core::bundle::Manifest;
use edgerec_core::coldstart::{NEIGHBORS, NEW_ITEM_PREFIX, StoredItem, item_text, neighbors, validate};
use edgerec_core::encoder::Encoder;
use edgerec_core::index::ItemIndex;
use edgerec_core::tower::{ItemTower, item_space};
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::key_value::Store;

/// Texts encoded per model call: large enough for efficient matrix
/// products, small enough to bound the padded batch's memory.
const ENCODE_BATCH: usize = 64;

/// The exported HTTP entry point; see `functions/search`.
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
    item_tower: Option<ItemTower>,
    encoder: Encoder,
}

static MODEL: Lazy<Model> = Lazy::new(load);
edgerec_adapter::export_preinit!(crate::MODEL);

fn load() -> Result<Model, String> {
    let manifest = model::manifest()?;
    let index = model::item_index(&manifest)?;
    let item_tower = model::item_tower(&manifest)?;
    let encoder = model::encoder(&manifest)?;
    Ok(Model { manifest, index, item_tower, encoder })
}

async fn handle(req: IncomingRequest) -> Response {
    serve_post(req, "/api/items/cold-start", handle_cold_start).await
}

async fn handle_cold_start(call: &mut Call, req: IncomingRequest) -> Result<ColdStartResponse, ApiError> {
    let request: ColdStartRequest = read_json(req).await?;
    validate(&request.items)?;
    let model = call.timed("model", || MODEL.get())?;
    let texts: Vec<String> = request.items.iter().map(item_text).collect();
    let mut vectors = Vec::with_capacity(texts.len());
    call.timed("encode", || -> Result<(), ApiError> {
        for chunk in texts.chunks(ENCODE_BATCH) {
            let batch: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let embedded = model.encoder.encode_batch(&batch).map_err(encoder_failed)?;
            vectors.extend(embedded.into_iter().map(|t| item_space(model.item_tower.as_ref(), t)));
        }
        Ok(())
    })?;
    // No store granted (e.g. an edge without key-value): answer, store nothing.
    let store = match Store::open_default() {
        Ok(store) => Some(store),
        Err(e) => {
            eprintln!("key-value store `default` not available ({e}); new items are not stored");
            None
        }
    };
    let model_ref = model.manifest.model_ref();
    let mut items = Vec::with_capacity(request.items.len());
    call.timed("store", || -> Result<(), ApiError> {
        for (item, vector) in request.items.iter().zip(vectors) {
            let neighbors = neighbors(&model.index, &vector, NEIGHBORS);
            // A warm catalog item is already indexed; only new ids are stored.
            let is_new = model.index.find(&item.item_id).is_none();
            let mut indexed = false;
            if let (Some(store), true) = (&store, is_new) {
                let stored = StoredItem {
                    item_id: item.item_id.clone(),
                    title: item.title.trim().to_string(),
                    vector,
                    model: model_ref.clone(),
                };
                let value = serde_json::to_vec(&stored).map_err(|_| ApiError::internal())?;
                store.set(&format!("{NEW_ITEM_PREFIX}{}", item.item_id), &value).map_err(|e| {
                    eprintln!("key-value set: {e}");
                    ApiError::unavailable("the key-value store refused the write; nothing after this item was stored")
                })?;
                indexed = true;
            }
            items.push(ColdStartItem { item_id: item.item_id.clone(), neighbors, indexed });
        }
        Ok(())
    })?;
    Ok(ColdStartResponse { items, model: model_ref })
}
