//! The Upworthy headline tests as `train-ads` and `eval-ads` read them:
//! the variants, their split parts, and the export peers predict on.

use std::path::Path;

use anyhow::{Context, Result, bail};
use edgerec_core::ads::fit::{self, Part, Variant};

/// The variants of the Upworthy file with their split parts.
pub struct AdData {
    /// Every usable variant.
    pub variants: Vec<Variant>,
    /// The split part of each variant (by test id).
    pub parts: Vec<Part>,
    /// Rows left out.
    pub dropped: usize,
}

/// Reads `--data`, refusing a file without a usable variant.
pub fn read_ads(data: &Path) -> Result<AdData> {
    let (variants, dropped) = fit::read_upworthy(data)?;
    if variants.is_empty() {
        bail!("--data {}: no usable variant (impressions > 0, clicks <= impressions, a headline)", data.display());
    }
    let parts = variants.iter().map(|v| Part::of(&v.test)).collect();
    Ok(AdData { variants, parts, dropped })
}

impl AdData {
    /// The variants of `part`.
    pub fn select(&self, part: Part) -> Vec<usize> {
        (0..self.variants.len()).filter(|&i| self.parts[i] == part).collect()
    }
}

/// Writes every variant with its part, for peer baselines (`scripts/peers.py ads`).
pub fn export_variants(ads: &AdData, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| path.display().to_string())?;
    w.write_record(["row", "part", "test", "headline", "impressions", "clicks"])?;
    for (i, (v, p)) in ads.variants.iter().zip(&ads.parts).enumerate() {
        w.write_record([
            &i.to_string(),
            p.as_str(),
            &v.test,
            &v.text,
            &v.impressions.to_string(),
            &v.clicks.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
