//! The host's one cache directory: compiled components (`.cwasm`),
//! pre-initialized snapshots (`.preinit.wasm`) and the digests of the files
//! they were made from (`digests.json`).
//!
//! - **Entries are named by what made them**, so an entry is valid for as
//!   long as its name is: a compiled component by the sha256 of its source
//!   (or of its snapshot key) and the engine's compatibility hash; a
//!   snapshot by the component, every mounted file and its environment.
//! - **Writes are atomic**: each goes to a temporary name unique to the
//!   process, the thread's call and the moment, then is renamed into place,
//!   so two hosts starting at once on one directory both end up with whole
//!   files (whichever rename lands last wins; both wrote the same bytes).
//! - **Pruning** keeps the directory under [`Cache::LIMIT_BYTES`], least
//!   recently used first (use touches the file's modification time).
//! - **File digests are remembered** by path, size, modification time and
//!   inode, so a start with everything cached does not hash the 69 MB
//!   encoder again for each function that mounts it.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedFrom {
    /// Precompiled code found in the cache.
    Cache,
    /// Compiled now (and written to the cache).
    Compiled,
}

/// The cache directory.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    limit: u64,
    digests: Mutex<BTreeMap<PathBuf, FileDigest>>,
}

/// A remembered file digest and what the file looked like when it was taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileDigest {
    len: u64,
    modified_ns: u128,
    inode: u64,
    sha256: String,
}

const DIGESTS_FILE: &str = "digests.json";
const COMPILED: &str = ".cwasm";
const SNAPSHOT: &str = ".preinit.wasm";

impl Cache {
    /// Entries beyond this many bytes are pruned, least recently used first:
    /// a pre-initialized component and its compiled code are ~240 MB each.
    pub const LIMIT_BYTES: u64 = 4 << 30;

    /// The cache at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let digests = std::fs::read(dir.join(DIGESTS_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self { dir, limit: Self::LIMIT_BYTES, digests: Mutex::new(digests) }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compiled form of a component whose source is identified by
    /// `key` (a sha256 hex): from the cache, else compiled from `source()`
    /// and cached. `what` names the component in errors.
    pub fn component(
        &self,
        engine: &Engine,
        key: &str,
        what: &str,
        source: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<(Component, LoadedFrom)> {
        let path = self.dir.join(format!("{}-{:016x}{COMPILED}", &key[..key.len().min(32)], engine_hash(engine)));
        if path.exists() {
            match load_precompiled(engine, &path) {
                Ok(component) => {
                    mark_used(&path);
                    return Ok((component, LoadedFrom::Cache));
                }
                Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", path.display()),
            }
        }
        let wasm = source()?;
        let started = Instant::now();
        let component =
            Component::new(engine, &wasm).map_err(anyhow::Error::from).with_context(|| format!("compiling {what}"))?;
        tracing::info!("compiled {what} in {:.1?}", started.elapsed());
        match component.serialize() {
            Ok(bytes) => {
                if let Err(e) = self.put(&path, &bytes) {
                    tracing::warn!("could not cache the compiled {what} at {}: {e:#}", path.display());
                }
            }
            Err(e) => tracing::warn!("could not serialize the compiled {what}: {e}"),
        }
        Ok((component, LoadedFrom::Compiled))
    }

    /// The snapshot of component `id` under `key`, if cached.
    pub fn snapshot(&self, id: &str, key: &str) -> Option<Vec<u8>> {
        let path = self.snapshot_path(id, key);
        let bytes = std::fs::read(&path).ok()?;
        mark_used(&path);
        Some(bytes)
    }

    /// Stores the snapshot of component `id` under `key`, replacing the
    /// component's older snapshots (each is as large as its memory).
    pub fn put_snapshot(&self, id: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.snapshot_path(id, key);
        self.put(&path, bytes)?;
        let prefix = format!("{id}-");
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // The rest of the name is a 64-hex key: `search-` never matches `search-v2-`.
            let stale = name.starts_with(&prefix)
                && name.ends_with(SNAPSHOT)
                && name.len() == prefix.len() + 64 + SNAPSHOT.len()
                && entry.path() != path;
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn snapshot_path(&self, id: &str, key: &str) -> PathBuf {
        self.dir.join(format!("{id}-{key}{SNAPSHOT}"))
    }

    /// Writes `bytes` to `path` atomically, then prunes.
    fn put(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = temporary_name(path);
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        self.prune();
        Ok(())
    }

    /// Deletes the least recently used entries until the directory holds
    /// at most the limit of them.
    pub fn prune(&self) {
        prune(&self.dir, self.limit);
    }

    /// sha256 (hex) of a file's contents, remembered while the file's size,
    /// modification time and inode stay the same.
    pub fn file_digest(&self, path: &Path) -> Result<String> {
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let seen = FileDigest {
            len: meta.len(),
            modified_ns: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
            inode: inode(&meta),
            sha256: String::new(),
        };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        {
            let digests = self.digests.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(known) = digests.get(&canonical)
                && (FileDigest { sha256: String::new(), ..known.clone() }) == seen
            {
                return Ok(known.sha256.clone());
            }
        }
        let sha256 = sha256_file(path)?;
        let mut digests = self.digests.lock().unwrap_or_else(|p| p.into_inner());
        digests.insert(canonical, FileDigest { sha256: sha256.clone(), ..seen });
        // Remembering is an optimization: a failed write costs a rehash later.
        if let Ok(json) = serde_json::to_vec(&*digests)
            && std::fs::create_dir_all(&self.dir).is_ok()
        {
            let path = self.dir.join(DIGESTS_FILE);
            let tmp = temporary_name(&path);
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        Ok(sha256)
    }

    /// Feeds every file below `dir` into `hasher`: its path relative to
    /// `dir` and its digest, in name order.
    pub fn hash_tree(&self, dir: &Path, hasher: &mut Sha256) -> Result<()> {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        for file in files {
            let rel = file.strip_prefix(dir).unwrap_or(&file);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(self.file_digest(&file)?.as_bytes());
        }
        Ok(())
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// A name beside `path` that no other writer uses: process id, a per-process
/// counter and the time, so hosts in one process, in two processes, and in
/// two containers sharing a directory (same pid) never collide.
fn temporary_name(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp-{}-{n}-{nanos}", std::process::id()))
}

fn engine_hash(engine: &Engine) -> u64 {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

#[allow(unsafe_code)]
fn load_precompiled(engine: &Engine, path: &Path) -> Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be machine code that
    // wasmtime itself produced. Cache entries are written only by
    // `Cache::component`, under a name that contains the sha256 of the
    // source and the engine's compatibility hash, and wasmtime re-checks
    // its version and configuration header on load.
    Ok(unsafe { Component::deserialize_file(engine, path) }?)
}

/// Marks a cache entry as used now (its modification time orders pruning).
fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn prune(dir: &Path, limit: u64) {
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.starts_with('.') && (name.ends_with(COMPILED) || name.ends_with(SNAPSHOT))
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!("cache over {} GiB: removed {}", limit >> 30, path.display());
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pruning_removes_the_least_recently_used_entries_first() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, age_s: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let file = std::fs::File::options().append(true).open(&path).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(age_s)).unwrap();
            path
        };
        let (old, mid, new) = (write("a.cwasm", 300), write("b.preinit.wasm", 200), write("c.cwasm", 100));
        let other = write("notes.txt", 1000);
        mark_used(&old); // used just now: the newest
        prune(dir.path(), 250);
        assert!(old.exists() && new.exists() && other.exists());
        assert!(!mid.exists(), "the least recently used entry goes first");
        prune(dir.path(), 1000);
        assert!(old.exists() && new.exists());
    }

    #[test]
    fn file_digests_are_remembered_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.onnx");
        std::fs::write(&file, b"weights").unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let first = cache.file_digest(&file).unwrap();
        assert_eq!(first, edgerec_core::bundle::sha256_hex(b"weights"));
        // A new Cache on the same directory reads what the first remembered.
        assert!(dir.path().join("cache").join(DIGESTS_FILE).exists());
        assert_eq!(Cache::new(dir.path().join("cache")).file_digest(&file).unwrap(), first);
        std::fs::write(&file, b"other weights").unwrap();
        assert_eq!(cache.file_digest(&file).unwrap(), edgerec_core::bundle::sha256_hex(b"other weights"));
    }

    #[test]
    fn snapshots_replace_the_same_components_older_ones_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = |c: char| c.to_string().repeat(64);
        cache.put_snapshot("search", &key('a'), b"old").unwrap();
        cache.put_snapshot("search-v2", &key('b'), b"other component").unwrap();
        cache.put_snapshot("search", &key('c'), b"new").unwrap();
        assert_eq!(cache.snapshot("search", &key('a')), None);
        assert_eq!(cache.snapshot("search", &key('c')).as_deref(), Some(&b"new"[..]));
        assert_eq!(cache.snapshot("search-v2", &key('b')).as_deref(), Some(&b"other component"[..]));
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
