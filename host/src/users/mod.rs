//! The user store of the private zone: every user's events, sealed.
//!
//! [`Users`] is the one way in. It turns user ids into keyed pseudonyms and
//! events into sealed blobs ([`seal::DataKey`]) before a [`Backend`] sees
//! them, so both backends store the same opaque rows:
//!
//! | column | holds |
//! |---|---|
//! | `seq` | arrival order |
//! | `user_key` | HMAC-SHA-256 pseudonym of the user id |
//! | `event_key` | pseudonym of the caller's `event_id` (unique per user; null without one) |
//! | `sealed` | AES-256-GCM of the event as JSON (user id, item, type, time, ...) |
//!
//! and a `meta` row with the key's fingerprint. A row is only readable with
//! the key; the user id inside the sealed event is what lets
//! [`Users::rotate`] compute the pseudonyms under a new key.
//!
//! | backend | for |
//! |---|---|
//! | [`sqlite`] | the embedded default: one file, WAL, every commit on disk before it is acknowledged |
//! | [`postgres`] | several private hosts behind one load balancer, on the PostgreSQL the shop runs |

pub mod postgres;
pub mod seal;
pub mod sqlite;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgerec_core::api::FeedbackEvent;

pub use seal::{DataKey, Pseudonym};

/// A row as the backends store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The user's pseudonym.
    pub user: Pseudonym,
    /// The pseudonym of the caller's event id, if it gave one.
    pub event: Option<Pseudonym>,
    /// The sealed event.
    pub sealed: Vec<u8>,
}

/// What the key check found when a store was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClaim {
    /// A new store: it now belongs to this key.
    Claimed,
    /// The store's key.
    Matched,
    /// The store was sealed under another key.
    Mismatch,
}

/// Storage of sealed rows; implemented once per database engine, with the
/// same schema and the same tests ([`Users`] does all the sealing).
pub trait Backend: Send + Sync {
    /// Where the rows live, for messages (never with a password).
    fn describe(&self) -> String;
    /// Compares `check` with the store's key fingerprint, claiming a new store.
    fn claim_key(&self, check: &[u8; 16]) -> Result<KeyClaim>;
    /// Appends `rows` in one transaction that commits to disk before it
    /// returns, unless the store's key is no longer `check` (it was
    /// rotated). A row whose `(user, event)` is stored already is skipped.
    /// Returns, per row, whether it was added.
    fn append(&self, check: &[u8; 16], rows: &[Row]) -> Result<Vec<bool>>;
    /// The sealed events of `user`, newest first, at most `limit`.
    fn recent(&self, user: &Pseudonym, limit: usize) -> Result<Vec<Vec<u8>>>;
    /// Rows in arrival order after sequence number `after`, at most
    /// `limit`, each with its sequence number (for reading the whole log in pages).
    fn scan(&self, after: i64, limit: usize) -> Result<Vec<(i64, Row)>>;
    /// Removes every row of `user` from the store and its files; returns how many.
    fn erase(&self, user: &Pseudonym) -> Result<usize>;
    /// In one transaction that holds writers off: replaces every row by
    /// `reseal(row)` and the key fingerprint `old` by `new`. Returns the rows.
    fn reseal(&self, old: &[u8; 16], new: &[u8; 16], reseal: &mut dyn FnMut(Row) -> Result<Row>) -> Result<usize>;
}

/// Where the user store is: `sqlite:PATH` (default) or a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string.
    Postgres(String),
}

impl StoreUrl {
    /// Parses a `store` setting; relative SQLite paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = Path::new(path.trim_start_matches("//"));
            if path.as_os_str().is_empty() {
                bail!("store `{text}` names no file; use sqlite:PATH, e.g. sqlite:.edgerec/users.sqlite");
            }
            return Ok(Self::Sqlite(if path.is_relative() { base.join(path) } else { path.to_path_buf() }));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_string()));
        }
        bail!("store `{text}` is neither sqlite:PATH nor a postgres:// URL")
    }
}

/// The users' events, sealed on the way in and opened on the way out.
pub struct Users {
    backend: Box<dyn Backend>,
    key: DataKey,
}

/// What [`Users::record`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Events now durable (all of the batch).
    pub accepted: usize,
    /// Events whose event id was stored before.
    pub duplicates: usize,
    /// Per event of the batch, whether it was new (not a repeated event id).
    pub added: Vec<bool>,
}

impl Users {
    /// Opens the store at `url` for `key`; refuses a store sealed under another key.
    pub fn open(url: &StoreUrl, key: DataKey) -> Result<Self> {
        let backend: Box<dyn Backend> = match url {
            StoreUrl::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
            StoreUrl::Postgres(url) => Box::new(postgres::Postgres::connect(url)?),
        };
        Self::with_backend(backend, key)
    }

    /// The store over `backend`.
    pub fn with_backend(backend: Box<dyn Backend>, key: DataKey) -> Result<Self> {
        match backend.claim_key(&key.check())? {
            KeyClaim::Claimed => tracing::info!("user store {} is new; sealed under key {key:?}", backend.describe()),
            KeyClaim::Matched => {}
            KeyClaim::Mismatch => bail!(
                "the user store {} was sealed under another data key than {key:?}; start with the key it was \
                 made with (EDGEREC_DATA_KEY or key_file), or `edgerec keys rotate` finished with a new one",
                backend.describe()
            ),
        }
        Ok(Self { backend, key })
    }

    /// The fingerprint of the key this store is opened with.
    pub fn key_check(&self) -> [u8; 16] {
        self.key.check()
    }

    /// Where the store is.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Seals and stores `events` (validated by the caller, each with its
    /// `ts`), durably, in one transaction.
    pub fn record(&self, events: &[FeedbackEvent]) -> Result<Recorded> {
        let rows = events
            .iter()
            .map(|e| {
                let user = self.key.user(&e.user_id);
                let event = e.event_id.as_deref().map(|id| self.key.event(&e.user_id, id));
                let plain = serde_json::to_vec(e)?;
                Ok(Row { user, event, sealed: self.key.seal(&user, &plain)? })
            })
            .collect::<Result<Vec<_>>>()?;
        let added = self.backend.append(&self.key.check(), &rows)?;
        let duplicates = added.iter().filter(|a| !**a).count();
        Ok(Recorded { accepted: events.len(), duplicates, added })
    }

    /// The user's events, newest first (by time, then arrival), at most `limit`.
    pub fn recent(&self, user_id: &str, limit: usize) -> Result<Vec<FeedbackEvent>> {
        let user = self.key.user(user_id);
        let mut events = self
            .backend
            .recent(&user, limit)?
            .iter()
            .map(|sealed| {
                let plain = self.key.open(&user, sealed)?;
                serde_json::from_slice::<FeedbackEvent>(&plain).context("a stored event is not valid JSON")
            })
            .collect::<Result<Vec<_>>>()?;
        // Arrival order, newest first, is the backend's; a stable sort by
        // time puts late-arriving older events where they belong (RFC 3339
        // UTC times, as the host writes them, sort as text).
        events.sort_by(|a, b| b.ts.cmp(&a.ts));
        Ok(events)
    }

    /// The item ids the user interacted with (impressions left out), oldest
    /// first, from their `limit` most recent events: the `history` a
    /// function gets.
    pub fn history(&self, user_id: &str, limit: usize) -> Result<Vec<String>> {
        let mut items: Vec<String> =
            self.recent(user_id, limit)?.into_iter().filter(|e| e.kind.is_interaction()).map(|e| e.item_id).collect();
        items.reverse();
        Ok(items)
    }

    /// Every stored event in arrival order, opened, with its user as a
    /// pseudonym (hex): what an update learns from, with no user id in it.
    pub fn all_events(&self) -> Result<Vec<(String, FeedbackEvent)>> {
        let mut out = Vec::new();
        self.events_after(0, |_, user, event| out.push((user, event)))?;
        Ok(out)
    }

    /// Calls `each(sequence, pseudonym, event)` for every event stored
    /// after sequence number `after`, in arrival order; returns the last
    /// sequence number seen (`after` when there was none): where the next
    /// call picks up.
    pub fn events_after(&self, mut after: i64, mut each: impl FnMut(i64, String, FeedbackEvent)) -> Result<i64> {
        const PAGE: usize = 10_000;
        loop {
            let page = self.backend.scan(after, PAGE)?;
            for (seq, row) in &page {
                let plain = self.key.open(&row.user, &row.sealed)?;
                let event: FeedbackEvent =
                    serde_json::from_slice(&plain).context("a stored event is not valid JSON")?;
                each(*seq, hex::encode(row.user), event);
                after = *seq;
            }
            if page.len() < PAGE {
                return Ok(after);
            }
        }
    }

    /// The pseudonym (hex) a user id is stored under: what
    /// [`Users::all_events`] names users by.
    pub fn pseudonym(&self, user_id: &str) -> String {
        hex::encode(self.key.user(user_id))
    }

    /// Erases every event of the user; returns how many.
    pub fn erase(&self, user_id: &str) -> Result<usize> {
        self.backend.erase(&self.key.user(user_id))
    }

    /// Re-seals every row under `new` (pseudonyms included), in one
    /// transaction; afterwards only `new` opens the store.
    pub fn rotate(&self, new: &DataKey) -> Result<usize> {
        let old = &self.key;
        self.backend.reseal(&old.check(), &new.check(), &mut |row| {
            let plain = old.open(&row.user, &row.sealed)?;
            let event: FeedbackEvent = serde_json::from_slice(&plain).context("a stored event is not valid JSON")?;
            let user = new.user(&event.user_id);
            let event_key = event.event_id.as_deref().map(|id| new.event(&event.user_id, id));
            Ok(Row { user, event: event_key, sealed: new.seal(&user, &plain)? })
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The contract every backend meets, run on SQLite here and on
    //! PostgreSQL by the end-to-end tests when a server is available.
    use super::*;
    use edgerec_core::api::EventType;

    pub fn event(user: &str, item: &str, kind: EventType, ts: &str, id: Option<&str>) -> FeedbackEvent {
        FeedbackEvent {
            user_id: user.into(),
            item_id: item.into(),
            kind,
            ts: Some(ts.into()),
            event_id: id.map(Into::into),
            model: None,
            ad_id: None,
            query: None,
        }
    }

    /// Runs the backend contract on `open()`, a fresh store each call.
    pub fn contract(open: &dyn Fn() -> Box<dyn Backend>) {
        let key = DataKey::from_bytes(&[7; 32]);
        let users = Users::with_backend(open(), key.clone()).unwrap();
        let batch = [
            event("alice", "A1", EventType::Impression, "2026-12-01T10:00:00Z", Some("e1")),
            event("alice", "A2", EventType::Click, "2026-12-01T10:01:00Z", Some("e2")),
            event("bob", "B1", EventType::Purchase, "2026-12-01T09:00:00Z", None),
            event("alice", "A3", EventType::Cart, "2026-12-01T09:59:00Z", None),
        ];
        let recorded = users.record(&batch).unwrap();
        assert_eq!((recorded.accepted, recorded.duplicates), (4, 0));
        // A retried batch: event ids count once, events without one again.
        let retried = users.record(&[batch[0].clone(), batch[2].clone(), batch[1].clone()]).unwrap();
        assert_eq!((retried.accepted, retried.duplicates, retried.added), (3, 2, vec![false, true, false]));
        assert_eq!(users.history("alice", 50).unwrap(), ["A3", "A2"], "by time, impressions left out");
        assert_eq!(users.recent("alice", 50).unwrap().len(), 3);
        assert_eq!(users.history("bob", 50).unwrap(), ["B1", "B1"]);
        assert!(users.history("carol", 50).unwrap().is_empty());
        // The whole log, in arrival order, users only as pseudonyms.
        let all = users.all_events().unwrap();
        let items: Vec<&str> = all.iter().map(|(_, e)| e.item_id.as_str()).collect();
        assert_eq!(items, ["A1", "A2", "B1", "A3", "B1"]);
        assert_eq!(all[0].0, users.pseudonym("alice"));
        assert!(all.iter().all(|(user, _)| user.len() == 64 && user != "alice" && user != "bob"));

        // Another key can neither open nor claim the store.
        let other = DataKey::from_bytes(&[8; 32]);
        drop(users);
        let err = Users::with_backend(open(), other.clone()).err().expect("another key is refused").to_string();
        assert!(err.contains("another data key"), "{err}");

        // Rotation keeps every event and moves the store to the new key.
        let users = Users::with_backend(open(), key.clone()).unwrap();
        assert_eq!(users.rotate(&other).unwrap(), 5);
        assert!(users.record(&batch[..1]).is_err(), "a writer still on the old key is refused");
        drop(users);
        assert!(Users::with_backend(open(), key).is_err(), "the old key no longer opens it");
        let users = Users::with_backend(open(), other).unwrap();
        assert_eq!(users.history("alice", 50).unwrap(), ["A3", "A2"]);
        assert_eq!(users.record(&batch[..2]).unwrap().duplicates, 2, "event ids survive rotation");

        // Erasure.
        assert_eq!(users.erase("alice").unwrap(), 3);
        assert!(users.recent("alice", 50).unwrap().is_empty());
        assert_eq!(users.history("bob", 50).unwrap(), ["B1", "B1"]);
        assert_eq!(users.erase("alice").unwrap(), 0);
    }

    #[test]
    fn store_urls_name_the_engine_and_resolve_paths() {
        let base = Path::new("/etc/edgerec");
        assert_eq!(StoreUrl::parse("sqlite:users.db", base).unwrap(), StoreUrl::Sqlite("/etc/edgerec/users.db".into()));
        assert_eq!(StoreUrl::parse("sqlite:/var/u.db", base).unwrap(), StoreUrl::Sqlite("/var/u.db".into()));
        assert!(matches!(StoreUrl::parse("postgres://h/db", base).unwrap(), StoreUrl::Postgres(_)));
        assert!(StoreUrl::parse("mysql://h/db", base).unwrap_err().to_string().contains("neither"));
        assert!(StoreUrl::parse("sqlite:", base).unwrap_err().to_string().contains("names no file"));
    }
}
