//! The data key and what it does: personal data is sealed here, before it
//! reaches any database, so a stolen database file, backup or replica
//! holds no user id and no history in clear.
//!
//! One 32-byte key (`EDGEREC_DATA_KEY`, base64, or a key file) is expanded
//! with HKDF-SHA-256 into three independent keys:
//! - **pseudonyms**: HMAC-SHA-256 of a user id (and of an event id), the
//!   only form in which users are looked up in the database;
//! - **sealing**: AES-256-GCM of every event, with a random 96-bit nonce and
//!   the user's pseudonym as associated data (a sealed event moved to
//!   another user's row fails to open);
//! - **check**: a fingerprint the store keeps, so a host started with the
//!   wrong key refuses to start instead of writing unreadable rows.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of a user or event pseudonym.
pub const PSEUDONYM_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// A user's (or an event's) keyed pseudonym.
pub type Pseudonym = [u8; PSEUDONYM_BYTES];

/// Where the data key comes from.
pub const KEY_ENV: &str = "EDGEREC_DATA_KEY";

/// The key that seals personal data at rest.
#[derive(Clone)]
pub struct DataKey {
    pseudonym: Hmac<Sha256>,
    seal: Aes256Gcm,
    check: [u8; 16],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself, not even in a debug print.
        write!(f, "DataKey({})", hex::encode(self.check))
    }
}

impl DataKey {
    /// A key from its 32 raw bytes.
    pub fn from_bytes(raw: &[u8; 32]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"edgerec data key v1"), raw);
        let mut pseudonym = [0u8; 32];
        let mut seal = [0u8; 32];
        let mut check = [0u8; 16];
        hk.expand(b"pseudonym", &mut pseudonym).expect("32 bytes is a valid HKDF length");
        hk.expand(b"seal", &mut seal).expect("32 bytes is a valid HKDF length");
        hk.expand(b"check", &mut check).expect("16 bytes is a valid HKDF length");
        Self {
            pseudonym: <Hmac<Sha256> as Mac>::new_from_slice(&pseudonym).expect("HMAC takes any key length"),
            seal: Aes256Gcm::new(&seal.into()),
            check,
        }
    }

    /// A key from base64 text (what `EDGEREC_DATA_KEY` and key files hold);
    /// `what` names the source in errors.
    pub fn from_base64(text: &str, what: &str) -> Result<Self> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .with_context(|| format!("{what} is not base64; make one with `openssl rand -base64 32`"))?;
        let raw: [u8; 32] = raw.try_into().map_err(|raw: Vec<u8>| {
            anyhow::anyhow!(
                "{what} decodes to {} bytes; it must be 32 (make one with `openssl rand -base64 32`)",
                raw.len()
            )
        })?;
        Ok(Self::from_bytes(&raw))
    }

    /// The key from `EDGEREC_DATA_KEY`, else from `key_file`.
    pub fn load(key_file: Option<&Path>) -> Result<Self> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return Self::from_base64(&text, KEY_ENV);
        }
        match key_file {
            Some(path) => Self::read(path),
            None => bail!(
                "the private zone needs a data key: set {KEY_ENV} (base64 of 32 random bytes, e.g. \
                 `openssl rand -base64 32`) or key_file = \"...\" in --config"
            ),
        }
    }

    /// The key in the file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading key_file {}", path.display()))?;
        Self::from_base64(&text, &format!("key_file {}", path.display()))
    }

    /// A new random key, as base64 text.
    pub fn generate() -> Result<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// The fingerprint the store keeps to recognise its key.
    pub fn check(&self) -> [u8; 16] {
        self.check
    }

    /// The pseudonym of a user id.
    pub fn user(&self, user_id: &str) -> Pseudonym {
        self.mac(&[b"user", user_id.as_bytes()])
    }

    /// The pseudonym of one of a user's event ids (what makes a retried
    /// event count once, without storing the id).
    pub fn event(&self, user_id: &str, event_id: &str) -> Pseudonym {
        self.mac(&[b"event", user_id.as_bytes(), event_id.as_bytes()])
    }

    fn mac(&self, parts: &[&[u8]]) -> Pseudonym {
        let mut mac = self.pseudonym.clone();
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// `plain` sealed for the user `owner`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, owner: &Pseudonym, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        let sealed = self
            .seal
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: owner })
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`DataKey::seal`] sealed for `owner`; fails on any other
    /// key, owner or a changed byte.
    pub fn open(&self, owner: &Pseudonym, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_BYTES + 16 {
            bail!("a sealed record is {} bytes, too short to be one", sealed.len());
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.seal
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: owner })
            .map_err(|_| anyhow::anyhow!("a sealed record does not open with this key (tampered, or another key)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_its_owner() {
        let k = key(1);
        let alice = k.user("alice");
        let sealed = k.seal(&alice, b"item-42").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"item-42"));
        assert_eq!(k.open(&alice, &sealed).unwrap(), b"item-42");
        assert!(k.open(&k.user("bob"), &sealed).is_err(), "moved to another user");
        assert!(key(2).open(&alice, &sealed).is_err(), "another key");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(k.open(&alice, &flipped).is_err(), "a changed byte");
        assert_ne!(k.seal(&alice, b"item-42").unwrap(), sealed, "fresh nonce each time");
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_unlinkable_across_keys() {
        assert_eq!(key(1).user("alice"), key(1).user("alice"));
        assert_ne!(key(1).user("alice"), key(2).user("alice"));
        assert_ne!(key(1).user("alice"), key(1).user("alicf"));
        assert_ne!(key(1).event("ab", "c"), key(1).event("a", "bc"));
        assert_ne!(key(1).check(), key(2).check());
    }

    #[test]
    fn keys_from_text_name_what_is_wrong() {
        let good = DataKey::generate().unwrap();
        assert!(DataKey::from_base64(&good, "x").is_ok());
        let err = DataKey::from_base64("c2hvcnQ=", "EDGEREC_DATA_KEY").unwrap_err().to_string();
        assert!(err.contains("EDGEREC_DATA_KEY decodes to 5 bytes; it must be 32"), "{err}");
        let err = DataKey::from_base64("not base64!", "key_file k").unwrap_err().to_string();
        assert!(err.contains("key_file k is not base64"), "{err}");
        assert!(!format!("{:?}", key(1)).contains("0101"), "debug shows the check, not the key");
    }
}
