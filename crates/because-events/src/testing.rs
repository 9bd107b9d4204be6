//! Databases for tests: every event-store test runs against each.
//!
//! SQLite always; PostgreSQL when `BECAUSE_TEST_POSTGRES` names a server
//! (a URL such as `postgres://postgres@127.0.0.1:55432/postgres`, which
//! `.ci/postgres` starts and prints). Each call creates a fresh database on
//! that server, so tests running at once never see each other's events.
//! With `BECAUSE_REQUIRE_POSTGRES=1` (as CI sets it), a missing server is a
//! failure, not a skip.

use super::Database;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The databases to test against: a SQLite file in `dir`, and a fresh
/// PostgreSQL database when a server is configured. Blocking.
pub fn databases(dir: &Path) -> Vec<Database> {
    let mut out = vec![Database::Sqlite(dir.join("events.sqlite"))];
    if let Some(url) = fresh_postgres() {
        out.push(url);
    }
    out
}

/// A new, empty PostgreSQL database on the configured server, if any.
/// Blocking: call it outside an async context.
pub fn fresh_postgres() -> Option<Database> {
    let Ok(admin) = std::env::var("BECAUSE_TEST_POSTGRES") else {
        if std::env::var("BECAUSE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "BECAUSE_REQUIRE_POSTGRES=1 but BECAUSE_TEST_POSTGRES is not set: \
                 start a server with .ci/postgres and export its URL"
            );
        }
        eprintln!("skipping PostgreSQL: BECAUSE_TEST_POSTGRES is not set");
        return None;
    };
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "because_test_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("BECAUSE_TEST_POSTGRES: cannot connect: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
    // The same server and credentials, the new database.
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin.as_str(), String::new()),
    };
    let server = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && !base[..i].ends_with('/') => &base[..i],
        _ => base.trim_end_matches('/'),
    };
    Some(Database::Postgres(format!("{server}/{name}{query}")))
}
