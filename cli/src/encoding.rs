//! The pretrained text encoder as the offline commands use it: which one
//! (`--model`, `--encoders`) and the embeddings of many texts, cached.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgerec_core::bundle::EncoderInfo;
use edgerec_core::data::CatalogItem;
use edgerec_core::encoder::{Device, TextEncoder, encode_bucketed, load_native};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::Digest;

/// The pretrained text encoder to use (`index`, `train`, `eval-search`, `train-ads`).
#[derive(clap::Args)]
pub struct EncoderArgs {
    /// Encoder name (under --encoders) or directory.
    #[arg(long, default_value = "all-MiniLM-L6-v2")]
    pub model: String,
    /// Where encoders live.
    #[arg(long, env = "EDGEREC_ENCODERS", default_value = "models/encoders")]
    pub encoders: PathBuf,
}

impl EncoderArgs {
    /// The encoder's directory.
    pub fn dir(&self) -> Result<PathBuf> {
        encoder_dir(&self.model, &self.encoders)
    }
}

/// Pretrained text embeddings of `texts`, cached in
/// `CACHE/embeddings/<name>.<encoder>.f32` (keyed by the encoder's and the
/// texts' sha256, so changed texts or a changed model re-encode).
///
/// Encodes with the fastest engine this machine has for the encoder
/// ([`edgerec_core::encoder::load_native`]: the GPU where there is one), in
/// batches of texts of similar length: sorted by length, a batch pads to its
/// own longest text, not the catalog's.
pub fn text_embeddings(
    cache_dir: &Path,
    name: &str,
    texts: &[&str],
    encoder_dir: &Path,
    batch_size: usize,
) -> Result<(Vec<f32>, EncoderInfo)> {
    let config = edgerec_core::encoder::EncoderConfig::read(encoder_dir)?;
    let mut hasher = sha2::Sha256::new();
    for text in texts {
        hasher.update(text.as_bytes());
        hasher.update([0u8]);
    }
    let key = format!("{}-{}", config.weights_sha256, hex::encode(hasher.finalize()));
    let dir = cache_dir.join("embeddings");
    let cache = dir.join(format!("{name}.{}.f32", config.name));
    let key_file = dir.join(format!("{name}.{}.key", config.name));
    if std::fs::read_to_string(&key_file).is_ok_and(|k| k.trim() == key)
        && let Ok(bytes) = std::fs::read(&cache)
        && bytes.len() == texts.len() * config.dims * 4
    {
        let values = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        return Ok((values, config.info()));
    }
    let started = Instant::now();
    let encoder = load_native(encoder_dir, Device::Auto)?;
    let values = encode_with_progress(encoder.as_ref(), texts, batch_size, &format!("encoding {name}"))?;
    println!(
        "encoded {} {name} with {} on {} in {:.1?} ({:.0}/s)",
        texts.len(),
        config.name,
        encoder.engine(),
        started.elapsed(),
        texts.len() as f64 / started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&cache, bytes).with_context(|| format!("writing {}", cache.display()))?;
    std::fs::write(&key_file, key).with_context(|| format!("writing {}", key_file.display()))?;
    Ok((values, encoder.info()))
}

/// [`encode_bucketed`] with a progress bar; the vectors flattened.
fn encode_with_progress(encoder: &dyn TextEncoder, texts: &[&str], batch_size: usize, label: &str) -> Result<Vec<f32>> {
    let bar = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template(&format!("{label} {{bar:40}} {{pos}}/{{len}} texts  {{per_sec}}  eta {{eta}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let vectors = encode_bucketed(encoder, texts, batch_size, |done| bar.inc(done.batch as u64))?;
    bar.finish_and_clear();
    Ok(vectors.into_iter().flatten().collect())
}

pub fn catalog_texts(catalog: &[CatalogItem]) -> Vec<&str> {
    catalog.iter().map(|c| c.text.as_str()).collect()
}

/// Resolves `--model`: a directory holding `encoder.json`, or a name under
/// `encoders_dir`.
pub fn encoder_dir(model: &str, encoders_dir: &Path) -> Result<PathBuf> {
    let direct = PathBuf::from(model);
    let dir = if direct.join(edgerec_core::encoder::ENCODER_FILE).exists() { direct } else { encoders_dir.join(model) };
    if !dir.join(edgerec_core::encoder::ENCODER_FILE).exists() {
        bail!(
            "--model {model}: no encoder at {} (expected {}); run scripts/setup to fetch it",
            dir.display(),
            edgerec_core::encoder::ENCODER_FILE
        );
    }
    Ok(dir)
}
