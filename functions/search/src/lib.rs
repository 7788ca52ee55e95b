//! `POST /api/search` as a Spin HTTP component: BM25 over titles fused with
//! the semantic similarity of the query's embedding (encoded here, at
//! request time) and, given a history, the shopper's user vector.
//!
//! Mounts: the catalog bundle at `/bundle` (items.bin, bm25.bin, towers,
//! and ranker.bin where the shop's judgments fitted a re-ranker).
//! The query is encoded by the encoder the `encoder` variable names
//! (`edgerec_function::encoding`): the host's model by default. The edgerec
//! host pre-initializes the component, so no request reads the bundle.
//! `curl -d '{"query": "red heart mug", "k": 5}' localhost:3000/api/search`
//! prints the five best matches.

use edgerec_core::api::{ApiError, SearchRequest, SearchResponse};
use edgerec_core::bundle::{ITEMS_FILE, Manifest};
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::{resolve, user_vector};
use edgerec_core::search::{BM25_FILE, Bm25, RANKER_FILE, Ranker, Ranking, SearchQuery, search};
use edgerec_core::tower::{ItemTower, UserTower, item_space};
use edgerec_function::bundle;
use edgerec_function::encoding::TextEncoding;
use edgerec_function::{BUNDLE_DIR, Exchange, Function, Json, Route, json, read_json};
use spin_sdk::http::IncomingRequest;

/// What search serves from.
struct Search {
    manifest: Manifest,
    index: ItemIndex,
    bm25: Bm25,
    encoder: TextEncoding,
    item_tower: Option<ItemTower>,
    user_tower: UserTower,
    /// Fitted to the shop's judgments (`--judgments`); fusion without one.
    ranker: Option<Ranker>,
}

impl Function for Search {
    const ROUTES: &'static [Route] = &[Route::post("/api/search")];

    fn load() -> Result<Self, String> {
        let manifest = bundle::manifest(BUNDLE_DIR)?;
        let index = bundle::item_index(&manifest)?;
        let bm25 = Bm25::from_bytes(&bundle::file(BUNDLE_DIR, &manifest, BM25_FILE)?).map_err(|e| e.to_string())?;
        if bm25.len() != index.len() {
            return Err(format!("{BM25_FILE} has {} titles, {ITEMS_FILE} {} items", bm25.len(), index.len()));
        }
        let item_tower = bundle::item_tower(&manifest)?;
        let user_tower = bundle::user_tower(&manifest, &index)?;
        let ranker = bundle::optional_file(BUNDLE_DIR, &manifest, RANKER_FILE)?
            .map(|bytes| Ranker::from_bytes(&bytes).map_err(|e| e.to_string()))
            .transpose()?;
        let encoder = TextEncoding::load(&manifest)?;
        Ok(Self { manifest, index, bm25, encoder, item_tower, user_tower, ranker })
    }

    async fn handle(
        &'static self,
        _: &'static Route,
        exchange: &mut Exchange,
        req: IncomingRequest,
    ) -> Result<Json, ApiError> {
        let request: SearchRequest = read_json(req).await?;
        let query = SearchQuery::try_from(request)?;
        let mut encoded = self.encoder.encode(exchange, &[query.text.as_str()])?;
        let text_vector = encoded.vectors.remove(0);
        let query_vector = item_space(self.item_tower.as_ref(), text_vector);
        let (history, unknown) = resolve(&self.index, &query.history);
        let user = user_vector(&self.index, &self.user_tower, &history);
        let items = exchange.timed("score", || {
            let ranking = self.ranker.as_ref().map_or(Ranking::default(), Ranking::Learned);
            search(&self.index, &self.bm25, &query, &query_vector, user.as_deref(), ranking)
        });
        json(&SearchResponse {
            items,
            truncated: query.truncated || encoded.truncated[0],
            unknown,
            model: self.manifest.model_ref(),
        })
    }
}

edgerec_function::export!(Search);
