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

/// A TCP proxy in front of a database server, for fault tests: while
/// [`Proxy::cut`], every open connection is closed and new ones are closed
/// as soon as they are accepted (a server restarting, or unreachable);
/// [`Proxy::restore`] lets them through again.
pub struct Proxy {
    addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// Forwards a new local port to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> std::io::Result<Proxy> {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (up2, open2, upstream) = (up.clone(), open.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                if let Ok(mut o) = open2.lock() {
                    o.extend(client.try_clone());
                    o.extend(server.try_clone());
                }
                pipe(client, s2);
                pipe(server, c2);
            }
        });
        Ok(Proxy { addr, up, open })
    }

    /// `db` reached through a new proxy, for a PostgreSQL URL of the form
    /// `postgres://USER@HOST:PORT/DATABASE`; `None` for SQLite.
    pub fn before(db: &Database) -> Option<(Database, Proxy)> {
        let Database::Postgres(url) = db else {
            return None;
        };
        let (scheme, rest) = url.split_once("://")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (user, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let upstream = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:5432")
        };
        let proxy = Proxy::start(&upstream).ok()?;
        let through = format!("{scheme}://{user}{}{path}", proxy.addr);
        Some((Database::Postgres(through), proxy))
    }

    /// The local address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Closes every connection through it and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut o) = self.open.lock() {
            for s in o.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
