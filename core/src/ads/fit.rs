//! Fitting and judging the ad-click model on headline A/B tests (the
//! Upworthy Research Archive: each test shows several headlines of one
//! story to random visitors and counts impressions and clicks).
//!
//! Tests, not variants, are split (hash of the test id: 70% train, 10%
//! validation, 20% test), so no story is seen in training and judged later.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{AdModel, DEFAULT_CONTEXT_WEIGHT, WORD_BUCKETS, length_feature, sigmoid, word_features};
use crate::{Error, Result};

/// One headline variant of a test.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The A/B test (story) it belongs to.
    pub test: String,
    /// The headline.
    pub text: String,
    /// Times it was shown.
    pub impressions: f64,
    /// Times it was clicked.
    pub clicks: f64,
}

/// Which part of the split a test belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Fitting.
    Train,
    /// Choosing the regularization.
    Valid,
    /// The reported numbers.
    Test,
}

impl Part {
    /// The part of a test id: the first byte of its sha256, so the split is
    /// stable across runs, machines and file orders.
    pub fn of(test: &str) -> Self {
        let byte = Sha256::digest(test.as_bytes())[0] as f32 / 256.0;
        if byte < 0.7 {
            Part::Train
        } else if byte < 0.8 {
            Part::Valid
        } else {
            Part::Test
        }
    }

    /// `train`, `valid` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Valid => "valid",
            Part::Test => "test",
        }
    }
}

/// Reads the archive's CSV (optionally gzipped): `clickability_test_id`,
/// `headline`, `impressions`, `clicks`. Rows with no impressions or more
/// clicks than impressions are dropped and counted.
pub fn read_upworthy(path: &Path) -> Result<(Vec<Variant>, usize)> {
    let (mut csv, [test, headline, impressions, clicks]) =
        crate::data::csv_columns(path, ["clickability_test_id", "headline", "impressions", "clicks"])?;
    let (mut out, mut dropped) = (Vec::new(), 0);
    for (line, record) in csv.records().enumerate() {
        let record = record.map_err(|e| Error::Data(format!("{} row {}: {e}", path.display(), line + 2)))?;
        let number = |i: usize| record.get(i).and_then(|v| v.trim().parse::<f64>().ok());
        match (number(impressions), number(clicks), record.get(headline), record.get(test)) {
            (Some(n), Some(c), Some(h), Some(t)) if n > 0.0 && (0.0..=n).contains(&c) && !h.trim().is_empty() => {
                out.push(Variant { test: t.into(), text: h.trim().into(), impressions: n, clicks: c })
            }
            _ => dropped += 1,
        }
    }
    Ok((out, dropped))
}

/// Settings of [`fit`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FitConfig {
    /// L2 penalty on the weights (not the intercept), per impression.
    pub l2: f32,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam step size.
    pub learning_rate: f32,
    /// Whether the embedding and the words are used (false: the
    /// length-only baseline).
    pub use_embedding: bool,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self { l2: 1e-4, steps: 400, learning_rate: 0.05, use_embedding: true }
    }
}

/// Fits the model by minimizing the binomial log loss per impression
/// (`clicks·ln p + (impressions − clicks)·ln(1 − p)`) plus the L2 penalty,
/// with full-batch Adam. `embeddings[i]` belongs to `variants[i]`.
pub fn fit(variants: &[&Variant], embeddings: &[&[f32]], config: FitConfig) -> AdModel {
    let full_dims = embeddings.first().map_or(0, |e| e.len());
    let dims = if config.use_embedding { full_dims } else { 0 };
    let buckets = if config.use_embedding { WORD_BUCKETS } else { 0 };
    let total: f64 = variants.iter().map(|v| v.impressions).sum::<f64>().max(1.0);
    let clicks: f64 = variants.iter().map(|v| v.clicks).sum();
    let base = (clicks / total).clamp(1e-6, 1.0 - 1e-6);
    // Parameters: weights[dims], word weights[buckets], length weight, bias.
    let (len_at, bias_at, n) = (dims + buckets, dims + buckets + 1, dims + buckets + 2);
    let mut params = vec![0f32; n];
    params[bias_at] = (base / (1.0 - base)).ln() as f32;
    let lengths: Vec<f32> = variants.iter().map(|v| length_feature(&v.text)).collect();
    let words: Vec<Vec<(usize, f32)>> =
        variants.iter().map(|v| if buckets > 0 { word_features(&v.text) } else { Vec::new() }).collect();
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    for step in 1..=config.steps {
        let mut grad = vec![0f64; n];
        for (i, variant) in variants.iter().enumerate() {
            let x = &embeddings[i][..dims];
            let word_sum: f32 = words[i].iter().map(|&(b, val)| params[dims + b] * val).sum();
            let logit =
                crate::score::dot(&params[..dims], x) + word_sum + params[len_at] * lengths[i] + params[bias_at];
            // d(loss)/d(logit) for n trials with c successes: n·p − c.
            let g = (variant.impressions * f64::from(sigmoid(logit)) - variant.clicks) / total;
            for (gd, &xd) in grad[..dims].iter_mut().zip(x) {
                *gd += g * f64::from(xd);
            }
            for &(b, val) in &words[i] {
                grad[dims + b] += g * f64::from(val);
            }
            grad[len_at] += g * f64::from(lengths[i]);
            grad[bias_at] += g;
        }
        for d in 0..=len_at {
            grad[d] += f64::from(config.l2 * params[d]);
        }
        let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        for d in 0..n {
            let g = grad[d] as f32;
            m[d] = b1 * m[d] + (1.0 - b1) * g;
            v[d] = b2 * v[d] + (1.0 - b2) * g * g;
            params[d] -= config.learning_rate * (m[d] / c1) / ((v[d] / c2).sqrt() + eps);
        }
    }
    let pad = |from: &[f32], len: usize| if from.is_empty() { vec![0.0; len] } else { from.to_vec() };
    AdModel {
        weights: pad(&params[..dims], full_dims),
        word_weights: pad(&params[dims..dims + buckets], WORD_BUCKETS),
        length_weight: params[len_at],
        bias: params[bias_at],
        context_weight: DEFAULT_CONTEXT_WEIGHT,
    }
}

/// One calibration bin: variants sorted by prediction, cut into tenths of
/// the impressions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Impression-weighted mean predicted click probability.
    pub predicted: f64,
    /// Clicks / impressions.
    pub observed: f64,
    /// Impressions in the bin.
    pub impressions: f64,
}

/// How well predicted click probabilities fit a set of tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdMetrics {
    /// Share of within-test pairs of different headlines (and different
    /// CTRs) ordered like their observed CTRs, each pair weighted by its
    /// impressions; a tie in prediction counts one half.
    pub pairwise_accuracy: f64,
    /// Number of such pairs.
    pub pairs: usize,
    /// Probability that a random click's copy scores above a random
    /// unclicked impression's copy.
    pub auc: f64,
    /// Binomial log loss per impression.
    pub log_loss: f64,
    /// Impression-weighted mean |predicted − observed| over the bins.
    pub calibration_error: f64,
    /// Ten bins of equal impressions, lowest prediction first.
    pub calibration: Vec<CalibrationBin>,
}

/// Judges `predictions[i]` (a click probability) for `variants[i]`.
pub fn metrics(variants: &[&Variant], predictions: &[f64]) -> AdMetrics {
    // Pairwise, within tests.
    let mut by_test: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, v) in variants.iter().enumerate() {
        by_test.entry(v.test.as_str()).or_default().push(i);
    }
    let (mut right, mut weight, mut pairs) = (0f64, 0f64, 0usize);
    for members in by_test.values() {
        for (a, &i) in members.iter().enumerate() {
            for &j in &members[a + 1..] {
                let (vi, vj) = (variants[i], variants[j]);
                let (ci, cj) = (vi.clicks / vi.impressions, vj.clicks / vj.impressions);
                if vi.text == vj.text || ci == cj {
                    continue;
                }
                let w = vi.impressions + vj.impressions;
                let agree = (predictions[i] - predictions[j]) * (ci - cj);
                right += w * if agree > 0.0 {
                    1.0
                } else if predictions[i] == predictions[j] {
                    0.5
                } else {
                    0.0
                };
                weight += w;
                pairs += 1;
            }
        }
    }
    // Impression-level AUC, from aggregated counts.
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by(|&a, &b| predictions[a].total_cmp(&predictions[b]));
    let total_pos: f64 = variants.iter().map(|v| v.clicks).sum();
    let total_neg: f64 = variants.iter().map(|v| v.impressions - v.clicks).sum();
    let (mut auc, mut neg_below, mut g) = (0f64, 0f64, 0usize);
    while g < order.len() {
        let mut end = g;
        while end < order.len() && predictions[order[end]] == predictions[order[g]] {
            end += 1;
        }
        let pos: f64 = order[g..end].iter().map(|&i| variants[i].clicks).sum();
        let neg: f64 = order[g..end].iter().map(|&i| variants[i].impressions - variants[i].clicks).sum();
        auc += pos * (neg_below + 0.5 * neg);
        neg_below += neg;
        g = end;
    }
    let auc = if total_pos > 0.0 && total_neg > 0.0 { auc / (total_pos * total_neg) } else { 0.5 };
    // Log loss.
    let impressions: f64 = variants.iter().map(|v| v.impressions).sum::<f64>().max(1.0);
    let log_loss = variants
        .iter()
        .zip(predictions)
        .map(|(v, &p)| {
            let p = p.clamp(1e-7, 1.0 - 1e-7);
            -(v.clicks * p.ln() + (v.impressions - v.clicks) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / impressions;
    // Calibration: ten bins of equal impressions along the prediction; a
    // variant goes to the bin that holds the middle of its impressions.
    let mut bins = [(0f64, 0f64, 0f64); 10];
    let mut before = 0f64;
    for &i in &order {
        let v = variants[i];
        let bin = ((10.0 * (before + v.impressions / 2.0) / impressions) as usize).min(9);
        bins[bin].0 += v.impressions;
        bins[bin].1 += v.clicks;
        bins[bin].2 += predictions[i] * v.impressions;
        before += v.impressions;
    }
    let calibration: Vec<CalibrationBin> = bins
        .iter()
        .filter(|b| b.0 > 0.0)
        .map(|&(n, c, pn)| CalibrationBin { predicted: pn / n, observed: c / n, impressions: n })
        .collect();
    let calibration_error =
        calibration.iter().map(|b| b.impressions * (b.predicted - b.observed).abs()).sum::<f64>() / impressions;
    AdMetrics {
        pairwise_accuracy: if weight > 0.0 { right / weight } else { 0.5 },
        pairs,
        auc,
        log_loss,
        calibration_error,
        calibration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(test: &str, text: &str, n: f64, c: f64) -> Variant {
        Variant { test: test.into(), text: text.into(), impressions: n, clicks: c }
    }

    #[test]
    fn pairwise_accuracy_and_auc_by_hand() {
        let vs = [
            variant("t1", "a", 100.0, 10.0),
            variant("t1", "b", 100.0, 5.0),
            variant("t1", "b", 300.0, 1.0), // same text as the one before: no pair
            variant("t2", "c", 100.0, 2.0),
            variant("t2", "d", 100.0, 2.0), // equal CTR: no pair
        ];
        let refs: Vec<&Variant> = vs.iter().collect();
        // Right on (a, b) and (a, b'), wrong on nothing else that counts.
        let m = metrics(&refs, &[0.2, 0.1, 0.1, 0.05, 0.05]);
        assert_eq!(m.pairs, 2);
        assert_eq!(m.pairwise_accuracy, 1.0);
        // Reversed order: every counted pair wrong.
        let m = metrics(&refs, &[0.01, 0.1, 0.1, 0.05, 0.05]);
        assert_eq!(m.pairwise_accuracy, 0.0);
        // A constant prediction: AUC one half, pairwise one half.
        let m = metrics(&refs, &[0.03; 5]);
        assert_eq!((m.pairwise_accuracy, m.auc), (0.5, 0.5));
        // Two variants: clicks 1/2 vs 0/2 ranked right → every (click, no-click) pair right.
        let two = [variant("t", "x", 2.0, 1.0), variant("t", "y", 2.0, 0.0)];
        let refs: Vec<&Variant> = two.iter().collect();
        // Positives: 1 (x). Negatives: 1 (x) + 2 (y). x's click beats y's 2 and ties x's 1.
        let m = metrics(&refs, &[0.9, 0.1]);
        assert!((m.auc - (2.0 + 0.5) / 3.0).abs() < 1e-12, "{}", m.auc);
        assert!((m.log_loss - (-(0.9f64.ln() + 0.1f64.ln() + 2.0 * 0.9f64.ln()) / 4.0)).abs() < 1e-9);
    }

    #[test]
    fn calibration_has_ten_bins_covering_every_impression() {
        let vs: Vec<Variant> = (0..100).map(|i| variant("t", &format!("h{i}"), 10.0, (i % 3) as f64)).collect();
        let refs: Vec<&Variant> = vs.iter().collect();
        let preds: Vec<f64> = (0..100).map(|i| i as f64 / 1000.0).collect();
        let m = metrics(&refs, &preds);
        assert_eq!(m.calibration.len(), 10);
        assert_eq!(m.calibration.iter().map(|b| b.impressions).sum::<f64>(), 1000.0);
        assert!(m.calibration.windows(2).all(|w| w[0].predicted < w[1].predicted));
    }

    #[test]
    fn fitting_finds_a_word_that_draws_clicks() {
        // Headlines with "you" get 4% CTR, others 1%; the embedding's first
        // axis marks "you".
        let mut vs = Vec::new();
        let mut emb = Vec::new();
        for t in 0..200 {
            let you = t % 2 == 0;
            vs.push(variant(
                &format!("t{t}"),
                if you { "you win" } else { "it wins" },
                1000.0,
                if you { 40.0 } else { 10.0 },
            ));
            emb.push(if you { vec![1.0, 0.0] } else { vec![0.0, 1.0] });
        }
        let refs: Vec<&Variant> = vs.iter().collect();
        let embs: Vec<&[f32]> = emb.iter().map(Vec::as_slice).collect();
        let model = fit(&refs, &embs, FitConfig { l2: 0.0, steps: 600, ..FitConfig::default() });
        let p_you = model.probability(&[1.0, 0.0], "you win", None);
        let p_it = model.probability(&[0.0, 1.0], "it wins", None);
        assert!((p_you - 0.04).abs() < 0.004 && (p_it - 0.01).abs() < 0.002, "{p_you} {p_it}");
        assert_eq!(AdModel::from_bytes(&model.to_bytes()).unwrap(), model);
        // Context raises the probability of a copy that matches it.
        assert!(model.probability(&[1.0, 0.0], "you win", Some(&[1.0, 0.0])) > p_you);
    }

    #[test]
    fn fitting_learns_a_word_the_embedding_does_not_show() {
        // Identical (zero) embeddings: only the word "shocking" tells the 4% headlines apart.
        let mut vs = Vec::new();
        for t in 0..200 {
            let hot = t % 2 == 0;
            let text = if hot { format!("shocking story {t}") } else { format!("calm story {t}") };
            vs.push(variant(&format!("t{t}"), &text, 1000.0, if hot { 40.0 } else { 10.0 }));
        }
        let refs: Vec<&Variant> = vs.iter().collect();
        let zero = [0f32; 2];
        let embs: Vec<&[f32]> = vs.iter().map(|_| zero.as_slice()).collect();
        let model = fit(&refs, &embs, FitConfig { l2: 0.0, steps: 600, ..FitConfig::default() });
        let hot = model.probability(&zero, "shocking news", None);
        let calm = model.probability(&zero, "calm news", None);
        assert!(hot > 2.0 * calm, "{hot} vs {calm}");
        assert_eq!(super::word_features("Shocking, shocking news"), super::word_features("news shocking"));
    }

    #[test]
    fn the_split_is_stable_and_roughly_seventy_ten_twenty() {
        let parts: Vec<Part> = (0..2000).map(|i| Part::of(&format!("test-{i}"))).collect();
        let share = |p: Part| parts.iter().filter(|&&x| x == p).count() as f64 / 2000.0;
        assert!((share(Part::Train) - 0.7).abs() < 0.04 && (share(Part::Test) - 0.2).abs() < 0.04);
        assert_eq!(Part::of("test-7"), parts[7]);
    }
}
