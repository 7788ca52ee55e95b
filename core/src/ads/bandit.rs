//! Ad copy that learns online, replayed offline: an A/B test of headlines
//! served as a bandit, with the text model's click probability as a prior.
//!
//! Each arm is a headline with a true click-through rate (its observed
//! rate in the real test) and a prior (the ad model's prediction, never
//! fitted on this test). A policy shows one arm per impression and sees
//! a click with the arm's true rate. Policies:
//!
//! - [`Policy::AbTest`]: the classic fixed-horizon test: arms in turn, for
//!   the whole traffic (how the real tests spent it);
//! - [`Policy::Ucb`]: upper confidence bound on each arm's rate with a
//!   Bernoulli-scaled bonus, `mean + sqrt(2 · mean · (1 − mean) · ln t / n)`,
//!   no prior (each arm shown once first);
//! - [`Policy::UcbPrior`]: the same with the prior as `strength`
//!   pseudo-impressions at the predicted rate;
//! - [`Policy::ThompsonPrior`]: Thompson sampling from Beta posteriors
//!   started at the prior (`strength` pseudo-impressions).

use rand::{Rng, SeedableRng};

use super::online::upper_bound;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// One headline of a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// Its true click-through rate (the observed rate in the real test).
    pub rate: f64,
    /// The model's predicted click probability.
    pub prior: f64,
}

/// How impressions are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Policy {
    /// Arms in turn, the whole traffic.
    AbTest,
    /// UCB with no prior.
    Ucb,
    /// UCB starting from the prior, `strength` pseudo-impressions.
    UcbPrior {
        /// Pseudo-impressions of the prior.
        strength: f64,
    },
    /// Thompson sampling from Beta posteriors started at the prior.
    ThompsonPrior {
        /// Pseudo-impressions of the prior.
        strength: f64,
    },
}

impl Policy {
    /// A name for tables.
    pub fn label(&self) -> String {
        match self {
            Policy::AbTest => "A/B test (fixed horizon)".into(),
            Policy::Ucb => "UCB, no prior".into(),
            Policy::UcbPrior { strength } => format!("UCB + text prior ({strength})"),
            Policy::ThompsonPrior { strength } if *strength == 0.0 => "Thompson, no prior".into(),
            Policy::ThompsonPrior { strength } => format!("Thompson + text prior ({strength})"),
        }
    }
}

/// Clicks a policy gets over `traffic` impressions of `arms`, with `seed`.
pub fn simulate(arms: &[Arm], traffic: u64, policy: Policy, seed: u64) -> u64 {
    if arms.is_empty() {
        return 0;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = arms.len();
    let mut shown = vec![0f64; k];
    let mut clicked = vec![0f64; k];
    let (strength, uses_prior) = match policy {
        Policy::UcbPrior { strength } | Policy::ThompsonPrior { strength } => (strength, true),
        _ => (0.0, false),
    };
    let mut total = 0u64;
    for t in 0..traffic {
        let arm = match policy {
            Policy::AbTest => (t % k as u64) as usize,
            Policy::Ucb | Policy::UcbPrior { .. } => {
                if !uses_prior && let Some(unseen) = shown.iter().position(|&n| n == 0.0) {
                    unseen
                } else {
                    let ln_t = ((t + 1) as f64 + if uses_prior { strength * k as f64 } else { 0.0 }).ln();
                    argmax((0..k).map(|a| upper_bound(arms[a].prior, shown[a], clicked[a], strength, ln_t)))
                }
            }
            Policy::ThompsonPrior { .. } => argmax((0..k).map(|a| {
                let alpha = 1.0 + strength * arms[a].prior + clicked[a];
                let beta = 1.0 + strength * (1.0 - arms[a].prior) + shown[a] - clicked[a];
                beta_sample(&mut rng, alpha, beta)
            })),
        };
        shown[arm] += 1.0;
        if rng.random::<f64>() < arms[arm].rate {
            clicked[arm] += 1.0;
            total += 1;
        }
    }
    total
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// A Beta(α, β) draw as X / (X + Y) with Gamma draws (Marsaglia–Tsang).
fn beta_sample(rng: &mut ChaCha8Rng, alpha: f64, beta: f64) -> f64 {
    let x = gamma_sample(rng, alpha);
    let y = gamma_sample(rng, beta);
    x / (x + y)
}

fn gamma_sample(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma_sample(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let (x, v) = loop {
            let x = standard_normal(rng);
            let v = 1.0 + c * x;
            if v > 0.0 {
                break (x, v * v * v);
            }
        };
        let u: f64 = rng.random();
        if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_clicks(arms: &[Arm], traffic: u64, policy: Policy) -> f64 {
        (0..20).map(|seed| simulate(arms, traffic, policy, seed) as f64).sum::<f64>() / 20.0
    }

    #[test]
    fn bandits_beat_the_ab_test_and_a_good_prior_beats_no_prior() {
        let arms = [
            Arm { rate: 0.010, prior: 0.011 },
            Arm { rate: 0.013, prior: 0.012 },
            Arm { rate: 0.020, prior: 0.018 },
            Arm { rate: 0.012, prior: 0.012 },
        ];
        let traffic = 20_000;
        let ab = mean_clicks(&arms, traffic, Policy::AbTest);
        let ucb = mean_clicks(&arms, traffic, Policy::Ucb);
        let prior = mean_clicks(&arms, traffic, Policy::UcbPrior { strength: 500.0 });
        let thompson = mean_clicks(&arms, traffic, Policy::ThompsonPrior { strength: 500.0 });
        // A/B gets the mean rate: 20,000 × 0.01375 = 275 clicks.
        assert!((ab - 275.0).abs() < 15.0, "A/B {ab}");
        assert!(ucb > ab * 1.1, "UCB {ucb} vs A/B {ab}");
        assert!(prior > ucb, "UCB with a good prior {prior} vs none {ucb}");
        assert!(thompson > ab * 1.2, "Thompson {thompson} vs A/B {ab}");
    }

    #[test]
    fn a_misleading_prior_is_overcome_by_the_clicks() {
        let arms = [Arm { rate: 0.02, prior: 0.005 }, Arm { rate: 0.01, prior: 0.03 }];
        let ab = mean_clicks(&arms, 50_000, Policy::AbTest);
        let prior = mean_clicks(&arms, 50_000, Policy::ThompsonPrior { strength: 300.0 });
        assert!(prior > ab, "the data outweighs a wrong prior: {prior} vs {ab}");
    }

    #[test]
    fn gamma_draws_have_the_right_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for shape in [0.5, 2.0, 30.0] {
            let mean = (0..20_000).map(|_| gamma_sample(&mut rng, shape)).sum::<f64>() / 20_000.0;
            assert!((mean - shape).abs() < 0.05 * shape.max(1.0), "shape {shape}: mean {mean}");
        }
    }
}
