//! The embedded user store: one SQLite file (rusqlite, SQLite compiled in).
//!
//! WAL journal with `synchronous = FULL`: a commit is fsynced to the WAL
//! before `append` returns, so an acknowledged event survives a crash or a
//! power cut. `secure_delete` overwrites erased rows with zeros, and an
//! erasure checkpoints the WAL into the file and truncates it, so nothing of
//! an erased user stays in either file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Backend, KeyClaim, Pseudonym, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_key BLOB NOT NULL,
    event_key BLOB,
    sealed BLOB NOT NULL,
    UNIQUE (user_key, event_key)
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_key, seq);
";

/// A SQLite user store. One connection, used by one request at a time:
/// SQLite has one writer anyway, and reads are microseconds.
pub struct Sqlite {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("opening the user store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(SCHEMA).with_context(|| format!("creating the schema in {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic mid-transaction rolled it back; the connection is fine.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn stored_check(tx: &rusqlite::Transaction<'_>) -> Result<Option<Vec<u8>>> {
    Ok(tx.query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| r.get(0)).optional()?)
}

fn pseudonym(bytes: Vec<u8>) -> Result<Pseudonym> {
    bytes.try_into().map_err(|b: Vec<u8>| anyhow::anyhow!("a stored pseudonym is {} bytes, not 32", b.len()))
}

impl Backend for Sqlite {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn claim_key(&self, check: &[u8; 16]) -> Result<KeyClaim> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claim = match stored_check(&tx)? {
            Some(stored) if stored == check => KeyClaim::Matched,
            Some(_) => KeyClaim::Mismatch,
            None => {
                tx.execute("INSERT INTO meta (name, value) VALUES ('key_check', ?1)", [&check[..]])?;
                KeyClaim::Claimed
            }
        };
        tx.commit()?;
        Ok(claim)
    }

    fn append(&self, check: &[u8; 16], rows: &[Row]) -> Result<Vec<bool>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if stored_check(&tx)?.as_deref() != Some(&check[..]) {
            anyhow::bail!("the data key of {} was rotated; restart the host with the new key", self.describe());
        }
        let mut added = Vec::with_capacity(rows.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (user_key, event_key, sealed) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            for row in rows {
                added
                    .push(insert.execute(params![&row.user[..], row.event.as_ref().map(|e| &e[..]), row.sealed])? == 1);
            }
        }
        tx.commit().with_context(|| format!("committing to {}", self.describe()))?;
        Ok(added)
    }

    fn recent(&self, user: &Pseudonym, limit: usize) -> Result<Vec<Vec<u8>>> {
        let conn = self.conn();
        let mut select =
            conn.prepare_cached("SELECT sealed FROM events WHERE user_key = ?1 ORDER BY seq DESC LIMIT ?2")?;
        let rows = select.query_map(params![&user[..], limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<Vec<u8>>>>()?)
    }

    fn scan(&self, after: i64, limit: usize) -> Result<Vec<(i64, Row)>> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT seq, user_key, event_key, sealed FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = select.query_map(params![after, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Option<Vec<u8>>>(2)?, r.get(3)?))
        })?;
        rows.map(|r| {
            let (seq, user, event, sealed) = r?;
            Ok((seq, Row { user: pseudonym(user)?, event: event.map(pseudonym).transpose()?, sealed }))
        })
        .collect()
    }

    fn erase(&self, user: &Pseudonym) -> Result<usize> {
        let conn = self.conn();
        let erased = conn.execute("DELETE FROM events WHERE user_key = ?1", [&user[..]])?;
        // Move the zeroed pages from the WAL into the file, then empty the WAL.
        let (busy, _, _): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if busy != 0 {
            tracing::warn!("{}: the WAL could not be truncated after an erasure (busy)", self.describe());
        }
        Ok(erased)
    }

    fn reseal(&self, old: &[u8; 16], new: &[u8; 16], reseal: &mut dyn FnMut(Row) -> Result<Row>) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        if stored_check(&tx)?.as_deref() != Some(&old[..]) {
            anyhow::bail!("{} is not sealed under the current key", self.describe());
        }
        let rows = {
            let mut select = tx.prepare("SELECT seq, user_key, event_key, sealed FROM events ORDER BY seq")?;
            let rows = select.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Option<Vec<u8>>>(2)?, r.get(3)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<(i64, Vec<u8>, Option<Vec<u8>>, Vec<u8>)>>>()?
        };
        let count = rows.len();
        {
            let mut update =
                tx.prepare("UPDATE events SET user_key = ?2, event_key = ?3, sealed = ?4 WHERE seq = ?1")?;
            for (seq, user, event, sealed) in rows {
                let row = Row { user: pseudonym(user)?, event: event.map(pseudonym).transpose()?, sealed };
                let row = reseal(row)?;
                update.execute(params![seq, &row.user[..], row.event.as_ref().map(|e| &e[..]), row.sealed])?;
            }
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'key_check'", [&new[..]])?;
        tx.commit()?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_meets_the_backend_contract() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.sqlite");
        super::super::tests::contract(&|| Box::new(Sqlite::open(&path).unwrap()));
    }
}
