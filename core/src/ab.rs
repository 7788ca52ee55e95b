//! A/B tests of model versions: which bucket a shopper is in, and whether
//! two versions' click-through rates differ by more than chance.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where `id` falls in `[0, 1)` for `experiment`: a keyed hash, stable per
/// id and independent between experiments (a new challenger reshuffles).
/// A shopper is in the challenger's bucket when this is below its share.
pub fn bucket(experiment: &str, id: &str) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(experiment.as_bytes());
    hasher.update([0]);
    hasher.update(id.as_bytes());
    let digest = hasher.finalize();
    let top = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (top >> 11) as f64 / (1u64 << 53) as f64
}

/// One version's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    /// Impressions that named the version.
    pub impressions: u64,
    /// Clicks that named it.
    pub clicks: u64,
}

impl Arm {
    /// Clicks over impressions (0 with no impressions).
    pub fn click_through(&self) -> f64 {
        if self.impressions == 0 { 0.0 } else { self.clicks as f64 / self.impressions as f64 }
    }
}

/// A two-sided two-proportion z-test of two arms' click-through.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Test {
    /// `b`'s click-through minus `a`'s.
    pub difference: f64,
    /// The z statistic (pooled standard error).
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value` < 0.05.
    pub significant: bool,
}

/// Compares `b` with `a`; `None` while either has no impressions or no
/// arm has a click (nothing to compare yet).
pub fn compare(a: Arm, b: Arm) -> Option<Test> {
    if a.impressions == 0 || b.impressions == 0 || a.clicks + b.clicks == 0 {
        return None;
    }
    let (na, nb) = (a.impressions as f64, b.impressions as f64);
    let pooled = (a.clicks + b.clicks) as f64 / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let difference = b.click_through() - a.click_through();
    let z = if se > 0.0 { difference / se } else { 0.0 };
    let p_value = erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0);
    Some(Test { difference, z, p_value, significant: p_value < 0.05 })
}

/// The complementary error function (W. J. Cody's rational Chebyshev
/// fit as in Numerical Recipes' `erfcc`: relative error under 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_per_id_near_the_share_and_differ_between_experiments() {
        let share = 0.2;
        let ids: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let inside = ids.iter().filter(|id| bucket("online-retail/4", id) < share).count();
        assert!((1_850..=2_150).contains(&inside), "{inside} of 10,000 in a 20% bucket");
        assert!(ids.iter().all(|id| bucket("online-retail/4", id) == bucket("online-retail/4", id)));
        let moved = ids
            .iter()
            .filter(|id| (bucket("online-retail/5", id) < share) != (bucket("online-retail/4", id) < share))
            .count();
        assert!(moved > 2_000, "a new experiment reshuffles: {moved} moved");
    }

    #[test]
    fn the_z_test_matches_known_values() {
        // 200/10,000 vs 260/10,000: z = 2.83, p = 0.0047 (two-sided).
        let t = compare(Arm { impressions: 10_000, clicks: 200 }, Arm { impressions: 10_000, clicks: 260 }).unwrap();
        assert!((t.z - 2.830).abs() < 0.01, "{t:?}");
        assert!((t.p_value - 0.00466).abs() < 0.0005, "{t:?}");
        assert!(t.significant);
        let same = compare(Arm { impressions: 1_000, clicks: 20 }, Arm { impressions: 1_000, clicks: 22 }).unwrap();
        assert!(!same.significant && same.p_value > 0.5, "{same:?}");
        assert_eq!(compare(Arm::default(), Arm { impressions: 5, clicks: 1 }), None);
        assert!((erfc(0.0) - 1.0).abs() < 1e-6 && (erfc(1.0) - 0.157_299_2).abs() < 1e-6);
    }
}
