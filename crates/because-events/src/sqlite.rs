//! Events in a SQLite file: WAL, `synchronous=FULL`, one writing
//! connection and a pool of read-only ones, which WAL lets read while the
//! writer commits (and other processes on the host write the same file).

use super::{Backend, Event, StoreError, SCHEMA_VERSION, STATEMENT_TIMEOUT};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Read-only connections kept open between calls.
const READERS: usize = 8;

pub(super) struct Sqlite {
    path: PathBuf,
    conn: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        user: r.get(0)?,
        item: r.get(1)?,
        event: r.get(2)?,
        value: r.get(3)?,
        time: Some(r.get(4)?),
        idempotency_key: r.get(5)?,
    })
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(STATEMENT_TIMEOUT)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )?;
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten()
            .unwrap_or(0);
        if version > SCHEMA_VERSION {
            return Err(StoreError::Database {
                backend: "sqlite",
                message: format!(
                    "{} has schema version {version}; this build knows {SCHEMA_VERSION} at most",
                    path.display()
                ),
            });
        }
        if version < 1 {
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS events (
                     id INTEGER PRIMARY KEY,
                     user TEXT NOT NULL,
                     item TEXT NOT NULL,
                     event TEXT,
                     value REAL,
                     time INTEGER NOT NULL,
                     idempotency_key TEXT UNIQUE,
                     received INTEGER NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS events_by_user ON events (user, time, id);
                 INSERT INTO schema_version (version) VALUES (1);
                 COMMIT;",
            )?;
        }
        // Events by the time they were received (the dashboard's events per
        // minute): an index only, so added wherever it is missing without a
        // new schema version that older servers would refuse.
        conn.execute_batch("CREATE INDEX IF NOT EXISTS events_by_received ON events (received);")?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs the read `f` on a pooled read-only connection (opened when
    /// none is idle).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(STATEMENT_TIMEOUT)?;
                c
            }
        };
        let out = f(&conn)?;
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < READERS {
            idle.push(conn);
        }
        Ok(out)
    }
}

impl Backend for Sqlite {
    fn insert(&self, events: &[Event], now_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction()?;
        let mut stored = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (user, item, event, value, time, idempotency_key, received)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in events {
                stored += insert.execute(params![
                    e.user,
                    e.item,
                    e.event,
                    e.value,
                    e.time.unwrap_or(now_ms),
                    e.idempotency_key,
                    now_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(stored)
    }

    fn latest(&self, user: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT user, item, event, value, time, idempotency_key FROM events
                 WHERE user = ?1 ORDER BY time DESC, id DESC LIMIT ?2",
            )?;
            let out = q
                .query_map(params![user, limit as i64], row)?
                .collect::<Result<_, _>>()?;
            Ok(out)
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.read(|conn| conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }

    fn received_per_minute(&self, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        self.read(|conn| {
            let mut q = conn.prepare_cached(
                "SELECT received / 60000 AS minute, COUNT(*) FROM events
                 WHERE received >= ?1 GROUP BY minute ORDER BY minute",
            )?;
            let out = q
                .query_map(params![since_ms], |r| {
                    Ok((r.get::<_, i64>(0)? * 60_000, r.get::<_, i64>(1)? as u64))
                })?
                .collect::<Result<_, _>>()?;
            Ok(out)
        })
    }

    fn scan(&self, visit: &mut dyn FnMut(Event)) -> Result<(), StoreError> {
        self.read(|conn| {
            let mut q = conn.prepare(
                "SELECT user, item, event, value, time, idempotency_key FROM events ORDER BY id",
            )?;
            for e in q.query_map([], row)? {
                visit(e?);
            }
            Ok(())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT COUNT(*) FROM schema_version", [], |_| Ok(())))
    }
}
