//! `POST /api/ads/score` as a Spin HTTP component: the click probability of
//! each ad copy from its text embedding (encoded here, at request time),
//! shifted by its similarity to the shopper's query or history when given;
//! with recorded impressions and clicks (`stats`, filled in by the private
//! host) that probability is the prior of a UCB bandit that ranks the ads.
//!
//! Mounts: the ad bundle (`ad_model.bin`, from `edgerec train-ads`) at
//! `/ads` and the catalog bundle at `/bundle` (titles of history items);
//! text is encoded as in `search`. Pre-initialized like `search`.

use edgerec_core::ads::online::{self, AdStats};
use edgerec_core::ads::{AD_MODEL_FILE, AdModel, validate};
use edgerec_core::api::{AdScore, AdsRequest, AdsResponse, ApiError};
use edgerec_core::bundle::Manifest;
use edgerec_core::index::ItemIndex;
use edgerec_core::recommend::resolve;
use edgerec_core::score::normalize;
use edgerec_function::bundle;
use edgerec_function::encoding::TextEncoding;
use edgerec_function::{BUNDLE_DIR, Exchange, Function, Json, Route, json, read_json};
use spin_sdk::http::IncomingRequest;

/// Where `spin.toml` mounts the ad bundle.
const ADS_DIR: &str = "/ads";

/// History items whose titles make up the shopper's context.
const CONTEXT_ITEMS: usize = 5;

/// What ad scoring serves from.
struct AdScoring {
    ads: Manifest,
    ad_model: AdModel,
    index: ItemIndex,
    encoder: TextEncoding,
}

impl Function for AdScoring {
    const ROUTES: &'static [Route] = &[Route::post("/api/ads/score")];

    fn load() -> Result<Self, String> {
        let ads = bundle::manifest(ADS_DIR)?;
        let ad_model = AdModel::from_bytes(&bundle::file(ADS_DIR, &ads, AD_MODEL_FILE)?).map_err(|e| e.to_string())?;
        let catalog = bundle::manifest(BUNDLE_DIR)?;
        let index = bundle::item_index(&catalog)?;
        let encoder = TextEncoding::load(&ads)?;
        if ad_model.weights.len() != ads.dims {
            return Err(format!(
                "{AD_MODEL_FILE} has {} weights, the encoder {} dims",
                ad_model.weights.len(),
                ads.dims
            ));
        }
        Ok(Self { ads, ad_model, index, encoder })
    }

    async fn handle(
        &'static self,
        _: &'static Route,
        exchange: &mut Exchange,
        req: IncomingRequest,
    ) -> Result<Json, ApiError> {
        let request: AdsRequest = read_json(req).await?;
        let texts = validate(&request.ads)?;
        if let Some(stats) = &request.stats {
            let ids: Vec<&str> = request.ads.iter().map(|a| a.id.as_str()).collect();
            online::validate_stats(stats, &ids)?;
        }
        let query = request.query.as_deref().map(|q| edgerec_core::search::clean_query(q, "query")).transpose()?;
        // The context: the query, else the titles of the newest history items.
        let (history, _) = resolve(&self.index, request.history.as_deref().unwrap_or_default());
        let mut context_texts: Vec<&str> = Vec::new();
        if let Some((q, _)) = &query {
            context_texts.push(q);
        } else {
            context_texts.extend(history.iter().rev().take(CONTEXT_ITEMS).map(|&i| self.index.title(i)));
        }
        // One batch for copies and context.
        let mut batch: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
        batch.extend(&context_texts);
        let encoded = self.encoder.encode(exchange, &batch)?;
        let mut vectors = encoded.vectors;
        let context_vectors = vectors.split_off(texts.len());
        let context = (!context_vectors.is_empty()).then(|| {
            let mut mean = vec![0f32; context_vectors[0].len()];
            for v in &context_vectors {
                mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
            }
            normalize(&mut mean);
            mean
        });
        let mut ads: Vec<AdScore> = exchange.timed("score", || {
            request
                .ads
                .iter()
                .zip(&texts)
                .zip(&vectors)
                .enumerate()
                .map(|(i, ((ad, (text, cut)), v))| AdScore {
                    id: ad.id.clone(),
                    score: self.ad_model.probability(v, text, context.as_deref()),
                    truncated: *cut || encoded.truncated[i],
                    prior: None,
                    mean: None,
                })
                .collect()
        });
        // Recorded impressions and clicks: the text score becomes the prior.
        if let Some(stats) = request.stats.as_ref().filter(|s| !s.is_empty()) {
            let priors: Vec<f64> = ads.iter().map(|a| f64::from(a.score)).collect();
            let per_ad: Vec<Option<AdStats>> = ads.iter().map(|a| stats.get(&a.id).copied()).collect();
            for (ad, learned) in ads.iter_mut().zip(online::learn(&priors, &per_ad)) {
                ad.prior = Some(ad.score);
                ad.mean = Some(learned.mean as f32);
                ad.score = learned.score as f32;
            }
        }
        ads.sort_by(|a, b| b.score.total_cmp(&a.score));
        json(&AdsResponse { ads, model: self.ads.model_ref() })
    }
}

edgerec_function::export!(AdScoring);
