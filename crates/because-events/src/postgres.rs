//! Events in PostgreSQL: table `because_events`, schema version in
//! `because_schema_version`, migrations under an advisory lock so that
//! servers starting together migrate once. Connections are pooled; a
//! broken one is dropped and a new one opened for the next call.

use super::{Backend, Event, StoreError, SCHEMA_VERSION};
use postgres::{Client, Config, NoTls};
use std::sync::Mutex;

/// Connections kept open between calls.
const POOL: usize = 8;

/// The advisory lock key that serializes migrations ("because" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6563_6175_7365;

pub(super) struct Postgres {
    config: Config,
    idle: Mutex<Vec<Client>>,
}

fn row(r: &postgres::Row) -> Result<Event, postgres::Error> {
    Ok(Event {
        user: r.try_get(0)?,
        item: r.try_get(1)?,
        event: r.try_get(2)?,
        value: r.try_get(3)?,
        time: Some(r.try_get(4)?),
        idempotency_key: r.try_get(5)?,
    })
}

impl Postgres {
    pub(super) fn open(url: &str) -> Result<Postgres, StoreError> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        config.application_name("because");
        let store = Postgres {
            config,
            idle: Mutex::new(Vec::new()),
        };
        let mut client = store.connect()?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS because_schema_version (version INTEGER NOT NULL)",
        )?;
        let version: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM because_schema_version",
                &[],
            )?
            .try_get(0)?;
        if i64::from(version) > SCHEMA_VERSION {
            return Err(StoreError::Database {
                backend: "postgres",
                message: format!(
                    "the database has schema version {version}; this build knows {SCHEMA_VERSION} at most"
                ),
            });
        }
        if version < 1 {
            tx.batch_execute(
                "CREATE TABLE because_events (
                     id BIGSERIAL PRIMARY KEY,
                     \"user\" TEXT NOT NULL,
                     item TEXT NOT NULL,
                     event TEXT,
                     value DOUBLE PRECISION,
                     time BIGINT NOT NULL,
                     idempotency_key TEXT UNIQUE,
                     received BIGINT NOT NULL
                 );
                 CREATE INDEX because_events_by_user ON because_events (\"user\", time, id);
                 INSERT INTO because_schema_version (version) VALUES (1);",
            )?;
        }
        // Events by the time they were received (the dashboard's events per
        // minute): an index only, so added wherever it is missing without a
        // new schema version that older servers would refuse. (On a large
        // table, the first server to start builds it under the lock.)
        tx.batch_execute(
            "CREATE INDEX IF NOT EXISTS because_events_by_received ON because_events (received)",
        )?;
        tx.commit()?;
        store.give_back(client);
        Ok(store)
    }

    fn connect(&self) -> Result<Client, StoreError> {
        Ok(self.config.connect(NoTls)?)
    }

    /// An idle connection, or a new one.
    fn take(&self) -> Result<Client, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) if !c.is_closed() => Ok(c),
            _ => self.connect(),
        }
    }

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL {
            idle.push(client);
        }
    }

    /// Runs `f` on a pooled connection; a connection that failed is not
    /// reused.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut client = self.take()?;
        match f(&mut client) {
            Ok(v) => {
                self.give_back(client);
                Ok(v)
            }
            // A failed statement may leave the connection in any state:
            // drop it rather than guess.
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Postgres {
    /// Closing a connection blocks on its runtime, which must not happen
    /// on an async thread (a server shutting down drops its store there):
    /// close them on a thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl Backend for Postgres {
    fn insert(&self, events: &[Event], now_ms: i64) -> Result<usize, StoreError> {
        let users: Vec<&str> = events.iter().map(|e| e.user.as_str()).collect();
        let items: Vec<&str> = events.iter().map(|e| e.item.as_str()).collect();
        let types: Vec<Option<&str>> = events.iter().map(|e| e.event.as_deref()).collect();
        let values: Vec<Option<f64>> = events.iter().map(|e| e.value).collect();
        let times: Vec<i64> = events.iter().map(|e| e.time.unwrap_or(now_ms)).collect();
        let keys: Vec<Option<&str>> = events
            .iter()
            .map(|e| e.idempotency_key.as_deref())
            .collect();
        self.with(|c| {
            let mut tx = c.transaction()?;
            // One statement for the batch; WITH ORDINALITY keeps its order
            // in the IDs. A key repeated inside the batch, or already
            // stored, is skipped.
            let n = tx.execute(
                "INSERT INTO because_events (\"user\", item, event, value, time, idempotency_key, received)
                 SELECT u, i, e, v, t, k, $7
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::int8[], $6::text[])
                      WITH ORDINALITY AS b(u, i, e, v, t, k, n)
                 ORDER BY n
                 ON CONFLICT (idempotency_key) DO NOTHING",
                &[&users, &items, &types, &values, &times, &keys, &now_ms],
            )?;
            tx.commit()?;
            Ok(n as usize)
        })
    }

    fn latest(&self, user: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            c.query(
                "SELECT \"user\", item, event, value, time, idempotency_key FROM because_events
                 WHERE \"user\" = $1 ORDER BY time DESC, id DESC LIMIT $2",
                &[&user, &limit],
            )?
            .iter()
            .map(row)
            .collect()
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_one("SELECT COUNT(*) FROM because_events", &[])?
                .try_get(0)?;
            Ok(n as u64)
        })
    }

    fn received_per_minute(&self, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT received / 60000 AS minute, COUNT(*) FROM because_events
                 WHERE received >= $1 GROUP BY minute ORDER BY minute",
                &[&since_ms],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)? * 60_000,
                    r.try_get::<_, i64>(1)? as u64,
                ))
            })
            .collect()
        })
    }

    fn scan(&self, visit: &mut dyn FnMut(Event)) -> Result<(), StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        self.with(|c| {
            let mut tx = c.transaction()?;
            let params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
            let mut rows = tx.query_raw(
                "SELECT \"user\", item, event, value, time, idempotency_key FROM because_events ORDER BY id",
                params,
            )?;
            while let Some(r) = rows.next()? {
                visit(row(&r)?);
            }
            drop(rows);
            tx.commit()
        })
    }
}
