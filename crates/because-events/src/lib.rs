//! Durable feedback. Events go to SQLite (WAL, `synchronous=FULL`) or to
//! PostgreSQL, one transaction per batch, and a batch is acknowledged only
//! after its transaction commits. An event whose idempotency key is already
//! stored is not stored again.
//!
//! [`EventStore`] validates every batch once, times every call to the
//! database (reported to the observer a server installs with
//! [`EventStore::observe`], for its metrics), and hands the rest to a
//! [`Backend`]: both backends keep the same versioned schema and pass the
//! same contract tests (`tests/store.rs`).
//!
//! Faults are bounded and typed. PostgreSQL connections time out after
//! [`CONNECT_TIMEOUT`] and statements after [`STATEMENT_TIMEOUT`]; a
//! database that cannot be reached, or a SQLite file locked past its busy
//! timeout, is [`StoreError::Unavailable`] (nothing was done; retry later),
//! unlike [`StoreError::Database`] (the database answered with an error).
//! After a connection fails, calls fail at once for [`HOLD_OFF`] instead of
//! piling up on a database that is down, then connect again by themselves.
//! Reads that fail on a pooled connection are tried once more on a new one;
//! a batch is never resent (its commit may have landed: the client retries,
//! and idempotency keys make that safe).
//!
//! SQLite keeps one writer and a pool of read-only connections (WAL lets
//! them read while the writer commits); several processes may share the
//! file on one host.
//!
//! The command line reads stored events for training (`because train
//! --database`) and the server stores and reads them; neither this crate
//! nor the command line's training needs the HTTP stack.

mod postgres;
mod sqlite;
pub mod testing;

use because_core::{Columns, Dataset, Interactions, Vocab};
use because_service::SequenceEvent;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// The schema version this build writes; older databases are migrated.
pub const SCHEMA_VERSION: i64 = 1;

/// The most events one batch may hold.
pub const MAX_BATCH: usize = 10_000;

/// How long connecting to PostgreSQL may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long one PostgreSQL statement may run (`statement_timeout`, unless
/// the connection URL's `options` set one), and how long a SQLite call
/// waits for a lock another connection holds.
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// After the database could not be reached, calls fail at once for this
/// long before the next one tries to connect again.
pub const HOLD_OFF: std::time::Duration = std::time::Duration::from_millis(250);

/// The largest event value accepted.
pub const MAX_VALUE: f64 = 3.0e38;

/// The longest ID, event type or idempotency key accepted, in characters.
pub const MAX_ID: usize = 256;

/// One feedback event, as clients send it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "StoredEvent")]
pub struct Event {
    /// The user's ID.
    pub user: String,
    /// The item's ID.
    pub item: String,
    /// The event type (`view`, `addtocart`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Its value (by default the model's weight of its type, or 1): finite,
    /// from 0 to [`MAX_VALUE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
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
    /// The database setting does not name a database.
    #[error("--database {given:?}: {reason}")]
    Setting {
        /// The setting as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be reached or did not answer in time
    /// (connection refused or lost, a timeout, a lock held too long): the
    /// call did nothing, and the same call may succeed later.
    #[error("the event database ({backend}) is unavailable: {message}")]
    Unavailable {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What the driver said (for logs, never for clients).
        message: String,
    },
    /// The database failed (the message is for logs, never for clients).
    #[error("the event database ({backend}) failed: {message}")]
    Database {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What the driver said.
        message: String,
    },
}

impl StoreError {
    /// Whether the database could not be reached or did not answer in
    /// time: nothing was done, and retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        let message = e.to_string();
        // Another process held the file's lock past the busy timeout.
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy {
            StoreError::Unavailable {
                backend: "sqlite",
                message,
            }
        } else {
            StoreError::Database {
                backend: "sqlite",
                message,
            }
        }
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        let message = e.to_string();
        if postgres::unavailable(&e) {
            StoreError::Unavailable {
                backend: "postgres",
                message,
            }
        } else {
            StoreError::Database {
                backend: "postgres",
                message,
            }
        }
    }
}

/// Where events are stored: `sqlite:PATH` (or a bare path) or a
/// `postgres://` / `postgresql://` connection URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (with its password, if any: never shown).
    Postgres(String),
}

impl Database {
    /// Reads a `--database` setting.
    pub fn parse(s: &str) -> Result<Database, StoreError> {
        let bad = |reason: &str| StoreError::Setting {
            given: redact(s),
            reason: reason.into(),
        };
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s.parse::<::postgres::Config>()
                .map_err(|e| bad(&format!("not a PostgreSQL connection URL ({e})")))?;
            return Ok(Database::Postgres(s.to_string()));
        }
        let path = s.strip_prefix("sqlite:").unwrap_or(s);
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(bad(
                "names no file; use sqlite:PATH or postgres://USER@HOST/DATABASE",
            ));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if scheme != "sqlite" {
                return Err(bad(&format!(
                    "unknown scheme {scheme:?}; use sqlite:PATH or postgres://USER@HOST/DATABASE"
                )));
            }
        }
        Ok(Database::Sqlite(PathBuf::from(path)))
    }

    /// The backend's name, as metrics and logs show it.
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

/// A URL with its password replaced by `***`.
fn redact(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return s.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => s.to_string(),
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Database::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a database must do; [`EventStore`] has validated every batch
/// before it gets here.
trait Backend: Send + Sync {
    /// Stores the batch in one transaction and returns how many events were
    /// written (the rest had a stored idempotency key).
    fn insert(&self, events: &[Event], now_ms: i64) -> Result<usize, StoreError>;
    /// The user's latest `limit` events, newest first.
    fn latest(&self, user: &str, limit: usize) -> Result<Vec<Event>, StoreError>;
    /// How many events are stored.
    fn count(&self) -> Result<u64, StoreError>;
    /// Events received since `since_ms`, counted per minute of receipt
    /// (minute start, count), oldest first; minutes without events left out.
    fn received_per_minute(&self, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError>;
    /// Every stored event in the order it was stored.
    fn scan(&self, visit: &mut dyn FnMut(Event)) -> Result<(), StoreError>;
    /// Checks that the database answers (a trivial read).
    fn ping(&self) -> Result<(), StoreError>;
}

/// Hears how long each database operation (`insert`, `latest`, ...) took.
pub type Observer = Box<dyn Fn(&'static str, std::time::Duration) + Send + Sync>;

/// The event store: validation, timing, and a database behind them.
pub struct EventStore {
    backend: Box<dyn Backend>,
    database: Database,
    observer: Mutex<Option<Observer>>,
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
    if s.chars().count() > MAX_ID {
        return Err(bad(&format!("is longer than {MAX_ID} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad("has control characters"));
    }
    Ok(())
}

/// Checks a batch: its size, every ID, every value.
pub fn validate(events: &[Event]) -> Result<(), StoreError> {
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
            if !(v.is_finite() && (0.0..=MAX_VALUE).contains(&v)) {
                return Err(StoreError::Invalid {
                    index,
                    field: "value",
                    reason: format!("{v} is not a number from 0 to {MAX_VALUE}"),
                });
            }
        }
    }
    Ok(())
}

impl EventStore {
    /// Opens the database, creating it and migrating its schema to
    /// [`SCHEMA_VERSION`]. Blocking; with PostgreSQL, call it outside an
    /// async context (or in `spawn_blocking`), as every other method.
    pub fn open(database: &Database) -> Result<EventStore, StoreError> {
        let backend: Box<dyn Backend> = match database {
            Database::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
            Database::Postgres(url) => Box::new(postgres::Postgres::open(url)?),
        };
        Ok(EventStore {
            backend,
            database: database.clone(),
            observer: Mutex::new(None),
        })
    }

    /// Reports how long every later database operation takes to
    /// `observer` (replacing any observer before it).
    pub fn observe(&self, observer: Observer) {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(observer);
    }

    /// The database (its password redacted when shown).
    pub fn database(&self) -> &Database {
        &self.database
    }

    fn timed<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        let observer = self.observer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = observer.as_ref() {
            o(operation, took);
        }
        out
    }

    /// Validates and stores a batch in one transaction; returns after it
    /// has committed. An invalid batch stores nothing.
    pub fn insert(&self, events: &[Event], now_ms: i64) -> Result<Stored, StoreError> {
        validate(events)?;
        let stored = self.timed("insert", || self.backend.insert(events, now_ms))?;
        Ok(Stored {
            stored,
            duplicates: events.len() - stored,
        })
    }

    /// A user's stored events, oldest first (at most `limit`, the latest).
    pub fn history(&self, user: &str, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = self.timed("history", || self.backend.latest(user, limit))?;
        out.reverse();
        Ok(out)
    }

    /// Checks that the database answers now (a trivial read, bounded by
    /// the connection and statement timeouts): for readiness probes.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", || self.backend.ping())
    }

    /// How many events are stored.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.timed("count", || self.backend.count())
    }

    /// Events received in the `minutes` minutes up to `now_ms`, per minute
    /// of receipt, oldest first, every minute listed (zero when none).
    pub fn received_per_minute(
        &self,
        now_ms: i64,
        minutes: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let last = now_ms.div_euclid(60_000) * 60_000;
        let first = last - (minutes.max(1) as i64 - 1) * 60_000;
        let counted = self.timed("per_minute", || self.backend.received_per_minute(first))?;
        Ok((0..minutes.max(1) as i64)
            .map(|m| {
                let start = first + m * 60_000;
                let n = counted
                    .iter()
                    .find(|&&(s, _)| s == start)
                    .map_or(0, |&(_, n)| n);
                (start, n)
            })
            .collect())
    }

    /// Visits every stored event in the order it was stored (for training).
    pub fn scan(&self, mut visit: impl FnMut(Event)) -> Result<(), StoreError> {
        self.timed("scan", || self.backend.scan(&mut visit))
    }

    /// Every stored event as a dataset to train on: users, items and event
    /// types numbered in the order first stored (an event without a type is
    /// `(none)`, as in a log), times in milliseconds, and each event's value
    /// its own or else `weight` of its type. Duplicates are kept: the
    /// caller merges them as it merges a log's.
    pub fn dataset(&self, weight: impl Fn(&str) -> f32) -> Result<Dataset, StoreError> {
        let (mut users, mut items) = (Vocab::new(), Vocab::new());
        let mut types: Vec<String> = Vec::new();
        let mut cols = Columns::default();
        let mut too_many = None;
        self.scan(|e| {
            let name = e.event.as_deref().unwrap_or("(none)");
            let code = match types.iter().position(|t| t == name) {
                Some(c) => c,
                None => {
                    types.push(name.to_string());
                    types.len() - 1
                }
            };
            let Ok(code) = u8::try_from(code) else {
                too_many = Some(types.len());
                return;
            };
            let value = e.value.map_or_else(|| weight(name), |v| v as f32);
            let (u, i) = (users.intern(&e.user), items.intern(&e.item));
            cols.push(u, i, value, e.time.unwrap_or(0), Some(code));
        })?;
        let bad = |message: String| StoreError::Database {
            backend: self.database.backend(),
            message,
        };
        if let Some(n) = too_many {
            return Err(bad(format!(
                "at least {n} distinct event types are stored; at most 255 can be trained on"
            )));
        }
        let interactions = Interactions::from_columns(users.len(), items.len(), cols)
            .map_err(|e| bad(e.to_string()))?;
        Ok(Dataset {
            users,
            items,
            interactions,
            event_names: types,
            has_time: true,
            has_ratings: false,
        })
    }
}

impl Event {
    /// The event as a step of a sequence, for fold-in.
    pub fn as_sequence_event(&self) -> SequenceEvent {
        SequenceEvent {
            item: self.item.clone(),
            time: self.time,
            event: self.event.clone(),
            value: self.value.map(|v| v as f32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_settings() {
        assert_eq!(
            Database::parse("sqlite:/tmp/x.db").unwrap(),
            Database::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            Database::parse("sqlite:///tmp/x.db").unwrap(),
            Database::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            Database::parse("events.sqlite").unwrap(),
            Database::Sqlite("events.sqlite".into())
        );
        let pg = Database::parse("postgres://me:secret@localhost:5432/db").unwrap();
        assert_eq!(pg.backend(), "postgres");
        assert_eq!(pg.to_string(), "postgres://me:***@localhost:5432/db");
        for bad in ["sqlite:", "mysql://x/y", ""] {
            assert!(Database::parse(bad).is_err(), "{bad}");
        }
        let e = Database::parse("mysql://me:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
