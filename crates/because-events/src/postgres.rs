//! Events in PostgreSQL: table `because_events`, schema version in
//! `because_schema_version`, migrations under an advisory lock so that
//! servers starting together migrate once. Connections are pooled; a
//! broken one is dropped and a new one opened for the next call. When the
//! server cannot be reached, every pooled connection is dropped (a
//! restarted server has closed them all) and calls fail at once for
//! [`HOLD_OFF`].

use super::{
    Backend, Event, StoreError, CONNECT_TIMEOUT, HOLD_OFF, SCHEMA_VERSION, STATEMENT_TIMEOUT,
};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// Connections kept open between calls.
const POOL: usize = 8;

/// Connections in use at once, at most (a server never opens more than
/// this plus [`POOL`]); a call that finds them all busy waits up to
/// [`CONNECT_TIMEOUT`], then is [`StoreError::Unavailable`].
const MAX_IN_USE: usize = 16;

/// The advisory lock key that serializes migrations ("because" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6563_6175_7365;

pub(super) struct Postgres {
    config: Config,
    idle: Mutex<Vec<Client>>,
    /// When the server last could not be reached.
    failed: Mutex<Option<Instant>>,
    /// Connections in use now, and the signal that one was freed.
    busy: (Mutex<usize>, Condvar),
}

/// A connection slot held for one call.
struct Permit<'a>(&'a Postgres);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let (busy, freed) = &self.0.busy;
        *busy.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// Whether `e` says the server could not be reached or did not answer in
/// time, rather than that it refused the statement.
pub(super) fn unavailable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            // Class 08: connection exceptions.
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                    SqlState::QUERY_CANCELED,
                    SqlState::LOCK_NOT_AVAILABLE,
                ]
                .contains(code)
        }
        // No SQL state: the connection itself failed (refused, reset,
        // timed out).
        None => true,
    }
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
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            // A server that vanished without closing the connection (a
            // cable pulled, a host gone) fails the call instead of hanging.
            config.tcp_user_timeout(STATEMENT_TIMEOUT);
        }
        let options = config.get_options().unwrap_or_default().to_string();
        if !options.contains("statement_timeout") {
            let ms = STATEMENT_TIMEOUT.as_millis();
            config.options(format!("{options} -c statement_timeout={ms}").trim_start());
        }
        config.application_name("because");
        let store = Postgres {
            config,
            idle: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
            busy: (Mutex::new(0), Condvar::new()),
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
        let held = *self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = held {
            let since = at.elapsed();
            if since < HOLD_OFF {
                return Err(StoreError::Unavailable {
                    backend: "postgres",
                    message: format!(
                        "it could not be reached {} ms ago; trying again after {} ms",
                        since.as_millis(),
                        HOLD_OFF.as_millis()
                    ),
                });
            }
        }
        let client = self.config.connect(NoTls).map_err(|e| self.failure(e))?;
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(client)
    }

    /// Notes a failure: if the server could not be reached, every pooled
    /// connection goes (a restarted server closed them all) and calls hold
    /// off for a moment.
    fn failure(&self, e: postgres::Error) -> StoreError {
        let e = StoreError::from(e);
        if e.is_unavailable() {
            *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
            drop(idle);
        }
        e
    }

    /// Waits for a free connection slot (at most [`CONNECT_TIMEOUT`]).
    fn permit(&self) -> Result<Permit<'_>, StoreError> {
        let (busy, freed) = &self.busy;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let mut n = busy.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= MAX_IN_USE {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable {
                    backend: "postgres",
                    message: format!(
                        "all {MAX_IN_USE} connections stayed busy for {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                });
            }
            n = freed
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *n += 1;
        Ok(Permit(self))
    }

    /// An idle connection, or a new one; says whether it was pooled.
    fn take(&self) -> Result<(Client, bool), StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(c) if !c.is_closed() => Ok((c, true)),
            _ => Ok((self.connect()?, false)),
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
    /// reused. Writes run once: a failure after the commit was sent may
    /// have committed.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let _slot = self.permit()?;
        let (mut client, _) = self.take()?;
        match f(&mut client) {
            Ok(v) => {
                self.give_back(client);
                Ok(v)
            }
            // A failed statement may leave the connection in any state:
            // drop it rather than guess.
            Err(e) => Err(self.failure(e)),
        }
    }

    /// Runs the read `f` as [`Postgres::with`] does; if a pooled
    /// connection turns out to be dead (the server restarted since it was
    /// opened), once more on a new connection.
    fn read<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let _slot = self.permit()?;
        let (mut client, pooled) = self.take()?;
        match f(&mut client) {
            Ok(v) => {
                self.give_back(client);
                Ok(v)
            }
            Err(e) if pooled && unavailable(&e) => {
                drop(client);
                let idle =
                    std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
                drop(idle);
                let mut client = self.connect()?;
                let v = f(&mut client).map_err(|e| self.failure(e))?;
                self.give_back(client);
                Ok(v)
            }
            Err(e) => Err(self.failure(e)),
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
        self.read(|c| {
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
        self.read(|c| {
            let n: i64 = c
                .query_one("SELECT COUNT(*) FROM because_events", &[])?
                .try_get(0)?;
            Ok(n as u64)
        })
    }

    fn received_per_minute(&self, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        self.read(|c| {
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

    fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.simple_query("SELECT 1").map(drop))
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
