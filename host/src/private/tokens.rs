//! Bearer tokens of the private zone: scopes per token, only hashes on disk.
//!
//! A token reads `edgerec_<id>_<secret>`: the id (8 hex digits) names it in
//! logs, metrics and `edgerec tokens revoke`; the secret is 32 random bytes.
//! The tokens file keeps the id, the SHA-256 of the whole token, its scopes
//! and when it was made. The host re-reads the file when it changes
//! (checked at most once a second), so a revoked token stops working
//! without a restart.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// `POST /api/feedback`.
    #[serde(rename = "feedback:write")]
    FeedbackWrite,
    /// `GET /api/users/{id}/history`.
    #[serde(rename = "users:read")]
    UsersRead,
    /// `DELETE /api/users/{id}`.
    #[serde(rename = "users:delete")]
    UsersDelete,
    /// A function route called with a `user_id`: the answer is built from
    /// that user's stored history.
    #[serde(rename = "users:personalize")]
    UsersPersonalize,
    /// `GET /metrics`.
    #[serde(rename = "metrics:read")]
    MetricsRead,
    /// Model administration (promote, rollback).
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::FeedbackWrite,
        Scope::UsersRead,
        Scope::UsersDelete,
        Scope::UsersPersonalize,
        Scope::MetricsRead,
        Scope::Admin,
    ];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::FeedbackWrite => "feedback:write",
            Scope::UsersRead => "users:read",
            Scope::UsersDelete => "users:delete",
            Scope::UsersPersonalize => "users:personalize",
            Scope::MetricsRead => "metrics:read",
            Scope::Admin => "admin",
        }
    }

    /// Parses a comma-separated list, naming an unknown scope.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>> {
        let mut scopes = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Scope::ALL.iter().find(|s| s.as_str() == name) {
                Some(s) => scopes.push(*s),
                None => bail!(
                    "--scopes: unknown scope `{name}`; the scopes are {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                ),
            }
        }
        if scopes.is_empty() {
            bail!("--scopes is empty; name at least one of {}", Scope::ALL.map(Scope::as_str).join(", "));
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

/// One token as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Public id.
    pub id: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was made (RFC 3339).
    pub created: String,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

/// Why a request's token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `authorization: Bearer ...` header (401).
    Missing,
    /// Not a token this host knows (401).
    Unknown,
    /// A known token without the scope (403); its id.
    Forbidden(String),
}

/// The tokens file, as the host reads it.
pub struct Tokens {
    path: PathBuf,
    state: RwLock<Loaded>,
}

struct Loaded {
    modified: Option<SystemTime>,
    checked: Instant,
    entries: Vec<TokenEntry>,
}

fn read_file(path: &Path) -> Result<(Option<SystemTime>, Vec<TokenEntry>)> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let file: TokenFile =
                serde_json::from_slice(&bytes).with_context(|| format!("tokens file {}", path.display()))?;
            Ok((modified, file.tokens))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, Vec::new())),
        Err(e) => Err(e).with_context(|| format!("reading the tokens file {}", path.display())),
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// Reads the tokens file at `path` (none yet is no tokens).
    pub fn open(path: &Path) -> Result<Self> {
        let (modified, entries) = read_file(path)?;
        Ok(Self { path: path.to_path_buf(), state: RwLock::new(Loaded { modified, checked: Instant::now(), entries }) })
    }

    /// How many tokens the host knows.
    pub fn len(&self) -> usize {
        self.state.read().unwrap_or_else(|p| p.into_inner()).entries.len()
    }

    /// Whether the host knows no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the file if it changed; a broken file keeps the last good tokens.
    fn refresh(&self) {
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if state.checked.elapsed() < Duration::from_secs(1) {
                return;
            }
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.checked = Instant::now();
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified == state.modified {
            return;
        }
        match read_file(&self.path) {
            Ok((modified, entries)) => {
                tracing::info!("tokens file changed: {} tokens", entries.len());
                state.modified = modified;
                state.entries = entries;
            }
            Err(e) => tracing::error!("{e:#}; keeping the tokens read before"),
        }
    }

    /// The id of the token in `authorization` if it has `scope`.
    pub fn authorize(&self, authorization: Option<&str>, scope: Scope) -> Result<String, Refusal> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let id = parse_id(token).ok_or(Refusal::Unknown)?;
        self.refresh();
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let entry = state.entries.iter().find(|e| e.id == id).ok_or(Refusal::Unknown)?;
        if entry.sha256 != hash(token) {
            return Err(Refusal::Unknown);
        }
        if entry.scopes.contains(&scope) { Ok(entry.id.clone()) } else { Err(Refusal::Forbidden(entry.id.clone())) }
    }
}

fn parse_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("edgerec_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty()).then_some(id)
}

/// Makes a token with `scopes`, keeps its hash in the file at `path`, and
/// returns the token (the only time it exists in clear).
pub fn create(path: &Path, scopes: &[Scope]) -> Result<(String, TokenEntry)> {
    let (_, mut entries) = read_file(path)?;
    let mut random = [0u8; 36];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let id = hex::encode(&random[..4]);
    if entries.iter().any(|e| e.id == id) {
        bail!("token id {id} is taken (a one-in-four-billion chance); run the command again");
    }
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random[4..]);
    let token = format!("edgerec_{id}_{secret}");
    let entry = TokenEntry {
        id,
        sha256: hash(&token),
        scopes: scopes.to_vec(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    entries.push(entry.clone());
    write_file(path, entries)?;
    Ok((token, entry))
}

/// Removes the token `id`; an error names the ids there are.
pub fn revoke(path: &Path, id: &str) -> Result<TokenEntry> {
    let (_, mut entries) = read_file(path)?;
    let Some(at) = entries.iter().position(|e| e.id == id) else {
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        bail!("no token with id `{id}` in {}; its tokens are: {}", path.display(), ids.join(", "));
    };
    let entry = entries.remove(at);
    write_file(path, entries)?;
    Ok(entry)
}

/// Every token of the file (ids, scopes, dates; no secrets exist there).
pub fn list(path: &Path) -> Result<Vec<TokenEntry>> {
    Ok(read_file(path)?.1)
}

/// Writes the file whole, through a temporary file and a rename, readable
/// by its owner only.
fn write_file(path: &Path, tokens: Vec<TokenEntry>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let text = serde_json::to_string_pretty(&TokenFile { tokens })?;
    write_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Writes `bytes` to a new file only its owner can read, synced to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_for_its_scopes_until_revoked_and_only_its_hash_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let (token, entry) = create(&path, &[Scope::FeedbackWrite]).unwrap();
        let on_disk = std::fs::read_to_string(&path).unwrap();
        // The secret is URL-safe base64, which may itself hold `_`: it is
        // what follows the id, not what follows the last `_`.
        let secret = token.strip_prefix(&format!("edgerec_{}_", entry.id)).unwrap();
        assert!(!on_disk.contains(&token) && !on_disk.contains(secret));
        assert!(on_disk.contains(&entry.sha256));

        let tokens = Tokens::open(&path).unwrap();
        let bearer = format!("Bearer {token}");
        assert_eq!(tokens.authorize(Some(&bearer), Scope::FeedbackWrite), Ok(entry.id.clone()));
        assert_eq!(tokens.authorize(Some(&bearer), Scope::UsersRead), Err(Refusal::Forbidden(entry.id.clone())));
        assert_eq!(tokens.authorize(None, Scope::FeedbackWrite), Err(Refusal::Missing));
        assert_eq!(tokens.authorize(Some("Basic abc"), Scope::FeedbackWrite), Err(Refusal::Missing));
        let forged = format!("Bearer edgerec_{}_forged", entry.id);
        assert_eq!(tokens.authorize(Some(&forged), Scope::FeedbackWrite), Err(Refusal::Unknown));

        revoke(&path, &entry.id).unwrap();
        // The host notices within a second.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(tokens.authorize(Some(&bearer), Scope::FeedbackWrite), Err(Refusal::Unknown));
        assert!(revoke(&path, &entry.id).unwrap_err().to_string().contains("no token with id"));
    }

    #[test]
    fn scope_lists_name_an_unknown_scope() {
        assert_eq!(Scope::parse_list("users:read, feedback:write").unwrap(), [Scope::FeedbackWrite, Scope::UsersRead]);
        let err = Scope::parse_list("feedback:write,users:write").unwrap_err().to_string();
        assert!(err.contains("unknown scope `users:write`") && err.contains("users:read"), "{err}");
        assert!(Scope::parse_list(" , ").is_err());
    }
}
