//! Durable feedback: events stored in SQLite (WAL, `synchronous=FULL`), one
//! transaction per batch, acknowledged only after it commits. An event with
//! an idempotency key already stored is not stored again.

use because_service::SequenceEvent;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// The schema version this build writes; older databases are migrated.
pub const SCHEMA_VERSION: i64 = 1;

/// The most events one batch may hold.
pub const MAX_BATCH: usize = 10_000;

/// The longest ID or event type accepted, in bytes.
pub const MAX_ID: usize = 256;

/// One feedback event, as clients send it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The user's ID.
    pub user: String,
    /// The item's ID.
    pub item: String,
    /// The event type (`view`, `addtocart`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Its value (by default the model's weight of its type, or 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
    /// Milliseconds since the epoch (by default, when it was received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// A key that makes retries safe: an event is stored once per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// What a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// Events written.
    pub stored: usize,
    /// Events whose idempotency key was already stored (not written again).
    pub duplicates: usize,
}

/// Errors of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An event is invalid (names the field and the event's position).
    #[error("events[{index}].{field}: {reason}")]
    Invalid {
        /// Position in the batch.
        index: usize,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The batch is empty or too large.
    #[error("events: {0}")]
    Batch(String),
    /// The database failed.
    #[error("the event database failed: {0}")]
    Database(#[from] rusqlite::Error),
}

/// The event store.
pub struct EventStore {
    conn: Mutex<Connection>,
}

fn check_id(index: usize, field: &'static str, s: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::Invalid {
        index,
        field,
        reason: reason.into(),
    };
    if s.is_empty() {
        return Err(bad("is empty"));
    }
    if s.len() > MAX_ID {
        return Err(bad(&format!("is longer than {MAX_ID} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("has control characters"));
    }
    Ok(())
}

impl EventStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<EventStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )?;
        let version: Option<i64> = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten();
        if version.unwrap_or(0) < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE events (
                     id INTEGER PRIMARY KEY,
                     user TEXT NOT NULL,
                     item TEXT NOT NULL,
                     event TEXT,
                     value REAL,
                     time INTEGER NOT NULL,
                     idempotency_key TEXT UNIQUE,
                     received INTEGER NOT NULL
                 );
                 CREATE INDEX events_by_user ON events (user, time, id);
                 INSERT INTO schema_version (version) VALUES (1);
                 COMMIT;",
            )?;
        }
        Ok(EventStore {
            conn: Mutex::new(conn),
        })
    }

    /// Validates and stores a batch in one transaction; returns after it
    /// has committed.
    pub fn insert(&self, events: &[Event], now_ms: i64) -> Result<Stored, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Batch("the batch is empty".into()));
        }
        if events.len() > MAX_BATCH {
            return Err(StoreError::Batch(format!(
                "{} events; at most {MAX_BATCH} per batch",
                events.len()
            )));
        }
        for (index, e) in events.iter().enumerate() {
            check_id(index, "user", &e.user)?;
            check_id(index, "item", &e.item)?;
            if let Some(t) = &e.event {
                check_id(index, "event", t)?;
            }
            if let Some(k) = &e.idempotency_key {
                check_id(index, "idempotency_key", k)?;
            }
            if let Some(v) = e.value {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(StoreError::Invalid {
                        index,
                        field: "value",
                        reason: format!("{v} is not a finite non-negative number"),
                    });
                }
            }
        }
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
                    e.value.map(f64::from),
                    e.time.unwrap_or(now_ms),
                    e.idempotency_key,
                    now_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(Stored {
            stored,
            duplicates: events.len() - stored,
        })
    }

    /// A user's stored events, oldest first (at most `limit`, the latest).
    pub fn history(&self, user: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut q = conn.prepare_cached(
            "SELECT user, item, event, value, time, idempotency_key FROM events
             WHERE user = ?1 ORDER BY time DESC, id DESC LIMIT ?2",
        )?;
        let mut out: Vec<Event> = q
            .query_map(params![user, limit as i64], |r| {
                Ok(Event {
                    user: r.get(0)?,
                    item: r.get(1)?,
                    event: r.get(2)?,
                    value: r.get::<_, Option<f64>>(3)?.map(|v| v as f32),
                    time: Some(r.get(4)?),
                    idempotency_key: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// How many events are stored.
    pub fn count(&self) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        Ok(conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
    }
}

impl Event {
    /// The event as a step of a sequence, for fold-in.
    pub fn as_sequence_event(&self) -> SequenceEvent {
        SequenceEvent {
            item: self.item.clone(),
            time: self.time,
            event: self.event.clone(),
            value: self.value,
        }
    }
}
