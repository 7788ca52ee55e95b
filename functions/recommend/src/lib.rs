//! `POST /api/recommend` and `GET /api/health` as a Spin HTTP component.
//!
//! Build: `scripts/build-components` (release, `wasm32-wasip2`, `+simd128`).
//! Run: `edgerec serve --manifest spin.toml --listen 127.0.0.1:3000` (or
//! `spin up`), then
//! `curl -d '{"history": ["85123A"], "k": 3}' localhost:3000/api/recommend`
//! prints three items with scores and reasons.
//!
//! The model bundle is mounted at `/bundle` (`files` in `spin.toml`). The
//! edgerec host pre-initializes the component, so requests start with the
//! bundle in memory; under Spin each request reads it (one `read` of
//! `items.bin`, see `edgerec_core::index`). New items come from the
//! key-value store `default`: one `get` per page of new items
//! (`edgerec_core::coldstart`), however many are stored.

use edgerec_core::api::{ApiError, HealthResponse, RecommendRequest, RecommendResponse};
use edgerec_core::bundle::Manifest;
use edgerec_core::coldstart::{NewItems, bundle_new_item_boost};
use edgerec_core::crowd::Crowd;
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{Model, RecommendQuery, recommend_with_new};
use edgerec_core::tower::UserTower;
use edgerec_function::store::DefaultStore;
use edgerec_function::{BUNDLE_DIR, Exchange, Function, Json, Route, bundle, json, read_json};
use spin_sdk::http::IncomingRequest;

/// What recommend serves from: the bundle's index, user tower and crowd prior.
struct Recommend {
    manifest: Manifest,
    index: ItemIndex,
    tower: UserTower,
    crowd: Option<Crowd>,
    new_item_boost: f32,
}

const RECOMMEND: Route = Route::post("/api/recommend");
const HEALTH: Route = Route::get("/api/health");

impl Function for Recommend {
    const ROUTES: &'static [Route] = &[RECOMMEND, HEALTH];

    fn load() -> Result<Self, String> {
        let manifest = bundle::manifest(BUNDLE_DIR)?;
        let index = bundle::item_index(&manifest)?;
        let tower = bundle::user_tower(&manifest, &index)?;
        let crowd = bundle::crowd(&manifest, &index)?;
        let new_item_boost = new_item_boost(&manifest)?;
        Ok(Self { manifest, index, tower, crowd, new_item_boost })
    }

    async fn handle(
        &'static self,
        route: &'static Route,
        exchange: &mut Exchange,
        req: IncomingRequest,
    ) -> Result<Json, ApiError> {
        if *route == HEALTH {
            let models = vec![self.manifest.model_ref()];
            return json(&HealthResponse { status: "ok".into(), zone: exchange.zone(), models });
        }
        let request: RecommendRequest = read_json(req).await?;
        let query = RecommendQuery::try_from(request)?;
        let new_items = exchange.timed("new-items", || self.new_items());
        let result = exchange.timed("score", || {
            let model = Model { index: &self.index, tower: &self.tower, crowd: self.crowd.as_ref() };
            recommend_with_new(&model, &query, &new_items, self.new_item_boost)
        });
        json(&RecommendResponse { items: result.items, unknown: result.unknown, model: self.manifest.model_ref() })
    }
}

impl Recommend {
    /// Items stored by `/api/items/cold-start` for this bundle; none when the
    /// component has no key-value store (not granted in `spin.toml`) or it
    /// cannot be read (logged: recommendations without new items beat none).
    fn new_items(&self) -> NewItems {
        let Some(store) = DefaultStore::open() else { return NewItems::default() };
        NewItems::load(&store, &self.manifest.model_ref()).unwrap_or_else(|e| {
            eprintln!("new items: {e}");
            NewItems::default()
        })
    }
}

/// `EDGEREC_NEW_ITEM_BOOST` (environment), else the one the bundle's
/// training chose on validation, else the evaluated default.
fn new_item_boost(manifest: &Manifest) -> Result<f32, String> {
    match std::env::var("EDGEREC_NEW_ITEM_BOOST") {
        Err(_) => Ok(bundle_new_item_boost(manifest)),
        Ok(v) => v
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|b| b.is_finite())
            .ok_or_else(|| format!("EDGEREC_NEW_ITEM_BOOST=`{v}` is not a number")),
    }
}

edgerec_function::export!(Recommend);
