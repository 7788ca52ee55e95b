//! `POST /api/ads/score`: the click probability of an ad copy.
//!
//! The model is a logistic regression on the copy's pretrained text
//! embedding, its words (hashed into [`WORD_BUCKETS`] buckets) and its
//! length, fitted on headline A/B tests (impressions and
//! clicks per variant) by `edgerec train-ads`. When the request carries
//! context (a search query or a shopping history), the cosine between the
//! copy and that context shifts the logit by [`AdModel::context_weight`]:
//! the same copy is likelier to be clicked by someone looking for what it
//! talks about. A/B-test logs carry no such context, so that weight is a
//! documented prior, not a fitted value.

#[cfg(feature = "data")]
pub mod bandit;
#[cfg(feature = "data")]
pub mod fit;
pub mod online;

use crate::Result;
use crate::codec::{self, Reader, Writer};
use crate::score::dot;

pub use crate::bundle::AD_MODEL_FILE;

/// Buckets of the hashed bag of words. The embedding knows what a headline
/// means; the words carry what the topic draws (on Upworthy a TF-IDF model
/// beat the embedding alone on AUC; together they beat both).
pub const WORD_BUCKETS: usize = 4096;

/// The word features of a text: each distinct term ([`crate::search::terms`])
/// hashed (FNV-1a, 32 bit) into a bucket, with weight 1/√(distinct terms).
pub fn word_features(text: &str) -> Vec<(usize, f32)> {
    let mut terms = crate::search::terms(text);
    terms.sort_unstable();
    terms.dedup();
    let value = 1.0 / (terms.len().max(1) as f32).sqrt();
    let mut out: Vec<(usize, f32)> = terms
        .iter()
        .map(|t| {
            let hash = t.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
            (hash as usize % WORD_BUCKETS, value)
        })
        .collect();
    out.sort_unstable_by_key(|&(b, _)| b);
    out
}

/// The default [`AdModel::context_weight`]: a copy that matches the context
/// perfectly (cosine 1) gets e² ≈ 7.4× the odds of an unrelated one.
pub const DEFAULT_CONTEXT_WEIGHT: f32 = 2.0;

/// A fitted ad-click model.
#[derive(Debug, Clone, PartialEq)]
pub struct AdModel {
    /// One weight per embedding dimension.
    pub weights: Vec<f32>,
    /// One weight per word bucket ([`WORD_BUCKETS`]).
    pub word_weights: Vec<f32>,
    /// Weight of `ln(1 + words)`.
    pub length_weight: f32,
    /// Intercept.
    pub bias: f32,
    /// Logit shift per unit of context cosine.
    pub context_weight: f32,
}

/// The length feature: `ln(1 + words)`.
pub fn length_feature(text: &str) -> f32 {
    (1.0 + text.split_whitespace().count() as f32).ln()
}

/// `1 / (1 + e^-x)`, computed without overflow.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl AdModel {
    /// The logit for a copy without context.
    pub fn logit(&self, embedding: &[f32], text: &str) -> f32 {
        let words: f32 = word_features(text).iter().map(|&(b, v)| self.word_weights[b] * v).sum();
        dot(&self.weights, embedding) + words + self.length_weight * length_feature(text) + self.bias
    }

    /// Click probability of a copy, given its embedding and, optionally,
    /// the embedding of the shopper's context (both L2-normalized).
    pub fn probability(&self, embedding: &[f32], text: &str, context: Option<&[f32]>) -> f32 {
        let shift = context.map_or(0.0, |c| self.context_weight * dot(embedding, c));
        sigmoid(self.logit(embedding, text) + shift)
    }

    /// Serializes to `ad_model.bin`: magic `ERAD`, `u32` version 2, `u32`
    /// dims, `u32` buckets, then f32 little-endian: `weights[dims]`,
    /// `word_weights[buckets]`, length weight, bias, context weight.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(codec::AD_MODEL);
        w.u32(self.weights.len() as u32).u32(self.word_weights.len() as u32);
        w.f32s(&self.weights).f32s(&self.word_weights);
        w.f32s(&[self.length_weight, self.bias, self.context_weight]);
        w.finish()
    }

    /// Parses `ad_model.bin`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::open(codec::AD_MODEL, bytes)?;
        let dims = r.count("dims")?;
        let buckets = r.count("buckets")?;
        if buckets != WORD_BUCKETS {
            return Err(r.error(format!("{buckets} word buckets, this build hashes into {WORD_BUCKETS}")));
        }
        let weights = r.f32s(dims, "weights")?;
        let word_weights = r.f32s(buckets, "word weights")?;
        let [length_weight, bias, context_weight] = [r.f32("length weight")?, r.f32("bias")?, r.f32("context weight")?];
        r.finish()?;
        let all = weights.iter().chain(&word_weights).chain([&length_weight, &bias, &context_weight]);
        if all.into_iter().any(|x| !x.is_finite()) {
            return Err(crate::Error::Format { what: AD_MODEL_FILE.into(), reason: "weights are not finite".into() });
        }
        Ok(Self { weights, word_weights, length_weight, bias, context_weight })
    }
}

/// Validates an ads request: 1..=[`crate::api::MAX_ADS`] copies with
/// non-empty, distinct ids and non-blank texts. Texts are cut to
/// [`crate::search::MAX_QUERY_BYTES`]; the flags say which were cut.
pub fn validate(ads: &[crate::api::AdCopy]) -> Result<Vec<(String, bool)>, crate::api::ApiError> {
    use crate::api::{ApiError, MAX_ADS};
    if ads.is_empty() || ads.len() > MAX_ADS {
        return Err(ApiError::bad_request(format!("field `ads` must hold 1 to {MAX_ADS} copies, got {}", ads.len())));
    }
    let mut texts = Vec::with_capacity(ads.len());
    for (i, ad) in ads.iter().enumerate() {
        if ad.id.trim().is_empty() {
            return Err(ApiError::bad_request(format!("field `ads[{i}].id` is empty")));
        }
        if ads[..i].iter().any(|a| a.id == ad.id) {
            return Err(ApiError::bad_request(format!("field `ads[{i}].id`: `{}` appears twice", ad.id)));
        }
        texts.push(crate::search::clean_query(&ad.text, &format!("ads[{i}].text"))?);
    }
    Ok(texts)
}
