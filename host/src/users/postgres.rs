//! The user store on PostgreSQL, for several private hosts behind one load
//! balancer: the schema of the SQLite store, a pool of connections (r2d2),
//! and PostgreSQL's own durability (a commit returns once its WAL record is
//! flushed, with the default `synchronous_commit = on`).
//!
//! Writers hold the key row `FOR SHARE` while they append; a rotation holds
//! it `FOR UPDATE`, so it waits for appends in flight and appends wait for
//! it, then see the new key and refuse (their events are not acknowledged,
//! and the client's retry reaches a host with the new key).

use anyhow::{Context, Result};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::{Config, NoTls};

use super::{Backend, KeyClaim, Pseudonym, Row};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq BIGSERIAL PRIMARY KEY,
    user_key BYTEA NOT NULL,
    event_key BYTEA,
    sealed BYTEA NOT NULL,
    UNIQUE (user_key, event_key)
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_key, seq);
";

/// A PostgreSQL user store.
pub struct Postgres {
    describe: String,
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
}

impl Postgres {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`) and
    /// creates the schema if it is not there.
    pub fn connect(url: &str) -> Result<Self> {
        let config: Config = url.parse().context("the postgres:// store URL")?;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                r2d2_postgres::postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                r2d2_postgres::postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        // Never the password.
        let describe = format!(
            "postgres://{}/{}",
            hosts.join(","),
            config.get_dbname().unwrap_or(config.get_user().unwrap_or("postgres"))
        );
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)
            .with_context(|| format!("connecting to the user store {describe}"))?;
        let mut conn = pool.get().with_context(|| format!("connecting to the user store {describe}"))?;
        // Several hosts may start at once: one creates the schema.
        let mut tx = conn.transaction()?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(7363260513)")?;
        tx.batch_execute(SCHEMA).with_context(|| format!("creating the schema in {describe}"))?;
        tx.commit()?;
        drop(conn);
        Ok(Self { describe, pool })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool.get().with_context(|| format!("no connection to the user store {}", self.describe))
    }
}

fn pseudonym(bytes: Vec<u8>) -> Result<Pseudonym> {
    bytes.try_into().map_err(|b: Vec<u8>| anyhow::anyhow!("a stored pseudonym is {} bytes, not 32", b.len()))
}

impl Backend for Postgres {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn claim_key(&self, check: &[u8; 16]) -> Result<KeyClaim> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(7363260514)")?;
        let stored = tx.query_opt("SELECT value FROM meta WHERE name = 'key_check'", &[])?;
        let claim = match stored.map(|r| r.get::<_, Vec<u8>>(0)) {
            Some(stored) if stored == check => KeyClaim::Matched,
            Some(_) => KeyClaim::Mismatch,
            None => {
                tx.execute("INSERT INTO meta (name, value) VALUES ('key_check', $1)", &[&&check[..]])?;
                KeyClaim::Claimed
            }
        };
        tx.commit()?;
        Ok(claim)
    }

    fn append(&self, check: &[u8; 16], rows: &[Row]) -> Result<Vec<bool>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let stored = tx.query_opt("SELECT value FROM meta WHERE name = 'key_check' FOR SHARE", &[])?;
        if stored.map(|r| r.get::<_, Vec<u8>>(0)).as_deref() != Some(&check[..]) {
            anyhow::bail!("the data key of {} was rotated; restart the host with the new key", self.describe);
        }
        let insert =
            tx.prepare("INSERT INTO events (user_key, event_key, sealed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")?;
        let mut added = Vec::with_capacity(rows.len());
        for row in rows {
            let event = row.event.as_ref().map(|e| &e[..]);
            added.push(tx.execute(&insert, &[&&row.user[..], &event, &row.sealed])? == 1);
        }
        tx.commit().with_context(|| format!("committing to {}", self.describe))?;
        Ok(added)
    }

    fn recent(&self, user: &Pseudonym, limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut conn = self.conn()?;
        let rows = conn.query(
            "SELECT sealed FROM events WHERE user_key = $1 ORDER BY seq DESC LIMIT $2",
            &[&&user[..], &(limit as i64)],
        )?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    fn scan(&self, after: i64, limit: usize) -> Result<Vec<(i64, Row)>> {
        let mut conn = self.conn()?;
        let rows = conn.query(
            "SELECT seq, user_key, event_key, sealed FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &(limit as i64)],
        )?;
        rows.into_iter()
            .map(|r| {
                let event: Option<Vec<u8>> = r.get(2);
                Ok((
                    r.get(0),
                    Row { user: pseudonym(r.get(1))?, event: event.map(pseudonym).transpose()?, sealed: r.get(3) },
                ))
            })
            .collect()
    }

    fn erase(&self, user: &Pseudonym) -> Result<usize> {
        let mut conn = self.conn()?;
        let erased = conn.execute("DELETE FROM events WHERE user_key = $1", &[&&user[..]])? as usize;
        // Dead rows stay in the table's pages until a vacuum reclaims them.
        if erased > 0 {
            conn.batch_execute("VACUUM events")?;
        }
        Ok(erased)
    }

    fn reseal(&self, old: &[u8; 16], new: &[u8; 16], reseal: &mut dyn FnMut(Row) -> Result<Row>) -> Result<usize> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let stored = tx.query_opt("SELECT value FROM meta WHERE name = 'key_check' FOR UPDATE", &[])?;
        if stored.map(|r| r.get::<_, Vec<u8>>(0)).as_deref() != Some(&old[..]) {
            anyhow::bail!("{} is not sealed under the current key", self.describe);
        }
        let rows = tx.query("SELECT seq, user_key, event_key, sealed FROM events ORDER BY seq", &[])?;
        let update = tx.prepare("UPDATE events SET user_key = $2, event_key = $3, sealed = $4 WHERE seq = $1")?;
        let count = rows.len();
        for r in rows {
            let seq: i64 = r.get(0);
            let row = Row {
                user: pseudonym(r.get(1))?,
                event: r.get::<_, Option<Vec<u8>>>(2).map(pseudonym).transpose()?,
                sealed: r.get(3),
            };
            let row = reseal(row)?;
            let event = row.event.as_ref().map(|e| &e[..]);
            tx.execute(&update, &[&seq, &&row.user[..], &event, &row.sealed])?;
        }
        tx.execute("UPDATE meta SET value = $1 WHERE name = 'key_check'", &[&&new[..]])?;
        tx.commit()?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs when `EDGEREC_TEST_POSTGRES` names a server (`.ci/run` starts
    /// one); each run uses a schema of its own.
    #[test]
    fn postgres_meets_the_backend_contract() {
        let Some(url) = std::env::var("EDGEREC_TEST_POSTGRES").ok() else {
            assert!(std::env::var_os("CI").is_none(), "CI must set EDGEREC_TEST_POSTGRES (scripts/postgres)");
            eprintln!("skipped: set EDGEREC_TEST_POSTGRES=postgres://... to run the PostgreSQL store tests");
            return;
        };
        let db = crate::users::postgres::tests::fresh_database(&url);
        super::super::tests::contract(&|| Box::new(Postgres::connect(&db).unwrap()));
    }

    /// A new, empty database on the server at `url`; returns its URL.
    pub fn fresh_database(url: &str) -> String {
        let mut client = r2d2_postgres::postgres::Client::connect(url, NoTls).unwrap();
        let mut name = [0u8; 6];
        getrandom::fill(&mut name).unwrap();
        let name = format!("edgerec_test_{}", hex::encode(name));
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (base, _) = url.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }
}
