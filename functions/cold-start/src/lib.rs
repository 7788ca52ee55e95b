//! `POST /api/items/cold-start` as a Spin HTTP component: embed new items
//! from their text (encoded here, at request time) with the bundle's item
//! tower, return their nearest warm neighbours, and store them in the
//! key-value store so the next `/api/recommend` can return them.
//! `GET /api/items/cold-start` lists the items stored so far (the
//! storefront's "new arrivals" shelf).
//!
//! Mounts: the catalog bundle at `/bundle` (and, for `encoder = "tract"`,
//! its encoder at `/encoder`); text is encoded as in `search`.
//! Store: `key_value_stores = ["default"]` in `spin.toml`; without it the
//! items are embedded and answered but not stored (`"indexed": false`).
//! Pre-initialized like `search`.

use edgerec_core::api::{
    ApiError, ColdStartItem, ColdStartRequest, ColdStartResponse, MAX_NEW_ARRIVALS, NewArrival, NewArrivalsResponse,
};
use edgerec_core::bundle::Manifest;
use edgerec_core::coldstart::{NEIGHBORS, NewItems, StoredItem, item_text, neighbors, store_new_items, validate};
use edgerec_core::index::ItemIndex;
use edgerec_core::tower::{ItemTower, item_space};
use edgerec_function::bundle;
use edgerec_function::encoding::TextEncoding;
use edgerec_function::store::DefaultStore;
use edgerec_function::{BUNDLE_DIR, Exchange, Function, Json, Route, json, read_json};
use spin_sdk::http::IncomingRequest;

/// Texts encoded per model call: large enough for efficient matrix
/// products, small enough to bound the padded batch's memory.
const ENCODE_BATCH: usize = 64;

/// New items: embed, answer their neighbours, store them.
const ADD: Route = Route::post("/api/items/cold-start");
/// The items added so far (the storefront's "new arrivals").
const LIST: Route = Route::get("/api/items/cold-start");

/// What cold-start serves from.
struct ColdStart {
    manifest: Manifest,
    index: ItemIndex,
    item_tower: Option<ItemTower>,
    encoder: TextEncoding,
}

impl Function for ColdStart {
    const ROUTES: &'static [Route] = &[ADD, LIST];

    fn load() -> Result<Self, String> {
        let manifest = bundle::manifest(BUNDLE_DIR)?;
        let index = bundle::item_index(&manifest)?;
        let item_tower = bundle::item_tower(&manifest)?;
        let encoder = TextEncoding::load(&manifest)?;
        Ok(Self { manifest, index, item_tower, encoder })
    }

    async fn handle(
        &'static self,
        route: &'static Route,
        exchange: &mut Exchange,
        req: IncomingRequest,
    ) -> Result<Json, ApiError> {
        if *route == LIST {
            return self.list(exchange);
        }
        let request: ColdStartRequest = read_json(req).await?;
        let model = self.manifest.model_ref();
        validate(&request.items, &model)?;
        let texts: Vec<String> = request.items.iter().map(item_text).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(ENCODE_BATCH) {
            let batch: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let embedded = self.encoder.encode(exchange, &batch)?;
            vectors.extend(embedded.vectors.into_iter().map(|t| item_space(self.item_tower.as_ref(), t)));
        }
        // A warm catalog item is already indexed; only new ids are stored.
        let fresh: Vec<StoredItem> = request
            .items
            .iter()
            .zip(&vectors)
            .filter(|(item, _)| self.index.find(&item.item_id).is_none())
            .map(|(item, vector)| StoredItem {
                item_id: item.item_id.clone(),
                title: item.title.trim().to_string(),
                vector: vector.clone(),
                model: model.clone(),
            })
            .collect();
        // No store granted (e.g. an edge without key-value): answer, store nothing.
        let stored = match DefaultStore::open() {
            Some(store) if !fresh.is_empty() => {
                exchange.timed("store", || store_new_items(&store, &model, &fresh)).map_err(|e| {
                    eprintln!("new items: {e}");
                    ApiError::unavailable("the new items could not be stored; see the server log and send them again")
                })?;
                true
            }
            _ => false,
        };
        let items = request
            .items
            .iter()
            .zip(&vectors)
            .map(|(item, vector)| ColdStartItem {
                item_id: item.item_id.clone(),
                neighbors: neighbors(&self.index, vector, NEIGHBORS),
                indexed: stored && self.index.find(&item.item_id).is_none(),
            })
            .collect();
        json(&ColdStartResponse { items, model })
    }
}

impl ColdStart {
    /// The items stored for this model version, none where no store is granted.
    fn list(&self, exchange: &mut Exchange) -> Result<Json, ApiError> {
        let model = self.manifest.model_ref();
        let stored = match DefaultStore::open() {
            Some(store) => exchange.timed("store", || NewItems::load(&store, &model)).map_err(|e| {
                eprintln!("new items: {e}");
                ApiError::unavailable("the new items could not be read; see the server log")
            })?,
            None => NewItems::default(),
        };
        let items = stored
            .listing(MAX_NEW_ARRIVALS)
            .into_iter()
            .map(|(id, title)| NewArrival { item_id: id.to_string(), title: title.to_string() })
            .collect();
        json(&NewArrivalsResponse { items, model })
    }
}

edgerec_function::export!(ColdStart);
