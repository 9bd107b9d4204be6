//! Running past one process: several servers on one database, database
//! outages, draining on shutdown, and the guards of a shared deployment
//! (several API keys, read keys, rotation, rate limits, CORS).

mod common;

use axum::http::StatusCode;
use because_server::events::{testing, Database};
use because_server::{KeyFiles, RateLimit, State};
use common::{call_with, Answer};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "write-key-0123456789";
const OTHER: &str = "other-key-0123456789";
const READER: &str = "read-key-0123456789a";

fn save_model(dir: &Path) {
    common::save_model("ease:lambda=10", dir);
}

async fn call(state: &State, method: &str, uri: &str, body: &str, key: Option<&str>) -> Answer {
    call_with(state, method, uri, body, key, &[]).await
}

/// Stores one keyed event through `state` with the write key.
async fn post_event(state: &State, user: &str, item: &str, key: &str) -> Answer {
    call(
        state,
        "POST",
        "/v1/events",
        &event(user, item, key),
        Some(KEY),
    )
    .await
}

async fn open(folder: &Path, db: Database) -> State {
    let folder = folder.to_path_buf();
    tokio::task::spawn_blocking(move || State::open(folder, Some(KEY.into()), Some(db)).unwrap())
        .await
        .unwrap()
}

fn event(user: &str, item: &str, key: &str) -> String {
    format!(r#"{{"events": [{{"user": "{user}", "item": "{item}", "idempotency_key": "{key}"}}]}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_through_one_replica_is_folded_in_by_the_other_at_once() {
    let dir = tempfile::tempdir().unwrap();
    save_model(&dir.path().join("model"));
    let path = dir.path().to_path_buf();
    let databases = tokio::task::spawn_blocking(move || testing::databases(&path))
        .await
        .unwrap();
    for db in databases {
        eprintln!("against {db}");
        // Two servers on one database and one model folder.
        let a = open(&dir.path().join("model"), db.clone()).await;
        let b = open(&dir.path().join("model"), db.clone()).await;
        let before = call(
            &b,
            "GET",
            "/v1/users/newcomer/recommendations?k=5",
            "",
            None,
        )
        .await;
        assert!(before.json["fallback"].is_object(), "{}", before.json);
        let user = "u3";
        let first = call(
            &b,
            "GET",
            &format!("/v1/users/{user}/recommendations?k=30"),
            "",
            None,
        )
        .await;
        let top = first.json["items"][0]["item"].as_str().unwrap().to_string();
        for (n, item) in [top.as_str(), "i29"].iter().enumerate() {
            let r = post_event(&a, user, item, &format!("e{n}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        }
        let r = post_event(&a, "newcomer", "i1", "n1").await;
        assert_eq!(r.status, StatusCode::OK);
        // The very next request to the other replica folds them in.
        let after = call(
            &b,
            "GET",
            &format!("/v1/users/{user}/recommendations?k=30"),
            "",
            None,
        )
        .await;
        assert_eq!(after.json["events_used"], 2, "{}", after.json);
        let ids: Vec<&str> = after.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"].as_str().unwrap())
            .collect();
        assert!(
            !ids.contains(&top.as_str()),
            "the item now seen is still recommended"
        );
        let newcomer = call(
            &b,
            "GET",
            "/v1/users/newcomer/recommendations?k=5",
            "",
            None,
        )
        .await;
        assert!(newcomer.json.get("fallback").is_none(), "{}", newcomer.json);
        assert_eq!(newcomer.json["events_used"], 1);
        // A retry through the other replica is a duplicate, not a second event.
        let r = post_event(&b, user, "i29", "e1").await;
        assert_eq!(r.json["duplicates"], 1, "{}", r.json);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_for_writes_degraded_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    save_model(&dir.path().join("model"));
    let Some(db) = tokio::task::spawn_blocking(testing::fresh_postgres)
        .await
        .unwrap()
    else {
        return;
    };
    let (db, proxy) = testing::Proxy::before(&db).unwrap();
    let state = open(&dir.path().join("model"), db).await;
    // Writers stream keyed events through the outage; each keeps what was
    // acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (state, stop) = (state.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut acked, mut statuses) = (Vec::new(), Vec::new());
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let key = format!("w{w}-{n}");
                    let r = post_event(&state, &format!("w{w}"), "i1", &key).await;
                    if r.status == StatusCode::OK {
                        acked.push(key);
                    } else {
                        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
                        assert_eq!(r.json["error"]["code"], "database_unavailable");
                        assert_eq!(r.headers["retry-after"], "1");
                    }
                    statuses.push(r.status);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (acked, statuses)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = call(&state, "GET", "/readyz", "", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.json);
    assert_eq!(ready.json["database"], "ok");
    let r = post_event(&state, "u3", "i5", "before").await;
    assert_eq!(r.status, StatusCode::OK);

    proxy.cut();
    let cut = Instant::now();
    let r = post_event(&state, "u3", "i6", "during").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "database_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    // Reads go on from the training history, and say so.
    let rec = call(&state, "GET", "/v1/users/u3/recommendations?k=5", "", None).await;
    assert_eq!(rec.status, StatusCode::OK, "{}", rec.json);
    assert!(
        rec.json["degraded"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{}",
        rec.json
    );
    assert!(rec.json.get("events_used").is_none(), "{}", rec.json);
    let ex = call(
        &state,
        "POST",
        "/v1/explain",
        r#"{"user": "u3", "item": "i2"}"#,
        None,
    )
    .await;
    assert_eq!(ex.status, StatusCode::OK, "{}", ex.json);
    assert!(ex.json["degraded"].is_string());
    let ready = call(&state, "GET", "/readyz", "", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (
            ready.json["ready"].as_bool(),
            ready.json["database"].as_str()
        ),
        (Some(false), Some("unavailable"))
    );
    assert_eq!(
        call(&state, "GET", "/healthz", "", None).await.status,
        StatusCode::OK
    );
    assert!(
        cut.elapsed() < Duration::from_secs(5),
        "answers during the outage took {:?}",
        cut.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.restore();
    let back = Instant::now();
    loop {
        let r = post_event(&state, "u3", "i6", "after").await;
        if r.status == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "no recovery within 2 s: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        call(&state, "GET", "/readyz", "", None).await.status,
        StatusCode::OK
    );
    let rec = call(&state, "GET", "/v1/users/u3/recommendations?k=5", "", None).await;
    assert!(rec.json.get("degraded").is_none(), "{}", rec.json);
    assert_eq!(rec.json["events_used"], 2, "{}", rec.json);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    // Every acknowledged event is stored; writes failed only with 503.
    for (w, writer) in writers.into_iter().enumerate() {
        let (acked, statuses) = writer.await.unwrap();
        assert!(
            statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
            "writer {w} saw no outage"
        );
        assert!(
            statuses.last() == Some(&StatusCode::OK),
            "writer {w} did not recover"
        );
        let r = call(
            &state,
            "GET",
            &format!("/v1/users/w{w}/events"),
            "",
            Some(KEY),
        )
        .await;
        let stored: std::collections::HashSet<&str> = r.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["idempotency_key"].as_str().unwrap())
            .collect();
        for k in &acked {
            assert!(
                stored.contains(k.as_str()),
                "acknowledged event {k} was lost"
            );
        }
    }
    let metrics = call(&state, "GET", "/metrics", "", None).await;
    let text = metrics.json.as_str().unwrap();
    assert!(
        !text.contains("because_database_unavailable_total 0\n"),
        "{text}"
    );
    assert!(!text.contains("because_degraded_total 0\n"), "{text}");
}

/// Sends one request over a socket; the status, or `None` when there is
/// no answer.
fn http(addr: &str, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.get(9..12)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_readiness_and_drains_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    save_model(&dir.path().join("model"));
    let file = dir.path().join("events.sqlite");
    let state = open(&dir.path().join("model"), Database::Sqlite(file.clone()))
        .await
        .shutdown_delay(Duration::from_millis(600));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(because_server::serve_until(
        state.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    // Another writer holds the file's lock: the next batch waits for it.
    let lock = rusqlite::Connection::open(&file).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let a = addr.clone();
    let in_flight = tokio::task::spawn_blocking(move || {
        http(&a, "POST", "/v1/events", &event("u1", "i1", "in-flight"))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(state.draining());
    // During the shutdown delay, readiness fails and requests are still
    // answered: a balancer has time to stop sending.
    let a = addr.clone();
    let during = tokio::task::spawn_blocking(move || {
        (
            http(&a, "GET", "/readyz", ""),
            http(&a, "GET", "/healthz", ""),
        )
    })
    .await
    .unwrap();
    assert_eq!(during, (Some(503), Some(200)));
    let ready = call(&state, "GET", "/readyz", "", None).await;
    assert_eq!(ready.json["draining"], true);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Then new connections are refused; the one in flight is still served.
    let a = addr.clone();
    let refused = tokio::task::spawn_blocking(move || http(&a, "GET", "/healthz", ""))
        .await
        .unwrap();
    assert_eq!(refused, None);
    assert!(
        !server.is_finished(),
        "the server stopped before its request finished"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    assert_eq!(in_flight.await.unwrap(), Some(200));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server did not stop once drained")
        .unwrap()
        .unwrap();
    assert_eq!(state.events().history("u1", 10).unwrap().len(), 1);
}

#[tokio::test]
async fn several_keys_read_keys_and_rotation_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    save_model(&dir.path().join("model"));
    let (writes, reads) = (dir.path().join("keys"), dir.path().join("read-keys"));
    std::fs::write(&writes, format!("# who may write\nalice {KEY}\n{OTHER}\n")).unwrap();
    std::fs::write(&reads, format!("dashboard {READER}\n")).unwrap();
    let db = Database::Sqlite(dir.path().join("e.sqlite"));
    let state = State::open(dir.path().join("model"), None, Some(db))
        .unwrap()
        .with_key_files(KeyFiles {
            write: Some(writes.clone()),
            read: Some(reads.clone()),
        })
        .unwrap()
        .protect_reads(true);
    let batch = event("u1", "i1", "k");
    for key in [KEY, OTHER] {
        assert_eq!(
            call(&state, "POST", "/v1/events", &batch, Some(key))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            call(&state, "GET", "/v1/model", "", Some(key)).await.status,
            StatusCode::OK
        );
    }
    // A read key reads, and cannot write.
    assert_eq!(
        call(&state, "GET", "/v1/model", "", Some(READER))
            .await
            .status,
        StatusCode::OK
    );
    let r = call(&state, "POST", "/v1/events", &batch, Some(READER)).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(
        call(&state, "GET", "/v1/users/u1/events", "", Some(READER))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&state, "GET", "/v1/model", "", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Rotation: the file changes, the old key stops working, no restart.
    let rotated = "rotated-key-0123456789";
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&writes, format!("alice {rotated}\n")).unwrap();
    bump(&writes);
    assert!(state.reload_keys().unwrap());
    assert!(
        !state.reload_keys().unwrap(),
        "an unchanged file is not read again"
    );
    assert_eq!(
        call(&state, "POST", "/v1/events", &batch, Some(KEY))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&state, "POST", "/v1/events", &batch, Some(rotated))
            .await
            .status,
        StatusCode::OK
    );
    // A broken file keeps the keys in use, and the error shows no key.
    std::fs::write(&writes, "alice short\n").unwrap();
    bump(&writes);
    let e = state.reload_keys().unwrap_err().to_string();
    assert!(e.contains("line 1") && !e.contains("short\n"), "{e}");
    assert_eq!(
        call(&state, "POST", "/v1/events", &batch, Some(rotated))
            .await
            .status,
        StatusCode::OK
    );
    // The metrics name keys, never show them.
    let m = call(&state, "GET", "/metrics", "", None).await;
    let text = m.json.as_str().unwrap();
    for line in [
        "because_key_requests_total{key=\"alice\"}",
        "because_key_requests_total{key=\"write-2\"}",
        "because_key_requests_total{key=\"dashboard\"}",
        "because_auth_failures_total{reason=\"read_key_on_write\"} 2",
        "because_auth_failures_total{reason=\"missing\"} 1",
        "because_key_reloads_total{result=\"ok\"} 1",
        "because_key_reloads_total{result=\"refused\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    for secret in [KEY, OTHER, READER, rotated] {
        assert!(!text.contains(secret));
    }
}

/// Moves a file's modification time forward, so a change within the
/// file system's time resolution is seen.
fn bump(path: &Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    let later = std::fs::metadata(path).unwrap().modified().unwrap() + Duration::from_secs(1);
    f.set_modified(later).unwrap();
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    save_model(&dir.path().join("model"));
    let db = Database::Sqlite(dir.path().join("e.sqlite"));
    let state = State::open(dir.path().join("model"), Some(KEY.into()), Some(db))
        .unwrap()
        .rate_limit(Some(RateLimit::new(0.5, Some(3.0)).unwrap()));
    for _ in 0..3 {
        assert_eq!(
            call(&state, "GET", "/v1/model", "", None).await.status,
            StatusCode::OK
        );
    }
    let r = call(&state, "GET", "/v1/model", "", None).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert_eq!(r.headers["retry-after"], "2");
    // A client with a key has a bucket of its own; probes are never limited.
    for _ in 0..3 {
        assert_eq!(
            call(&state, "GET", "/v1/model", "", Some(KEY)).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        call(&state, "GET", "/v1/model", "", Some(KEY)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    for uri in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            call(&state, "GET", uri, "", None).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
    let m = call(&state, "GET", "/metrics", "", None).await;
    assert!(
        m.json
            .as_str()
            .unwrap()
            .contains("because_rate_limited_total 2"),
        "{}",
        m.json
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_allowed_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    save_model(&dir.path().join("model"));
    let db = Database::Sqlite(dir.path().join("e.sqlite"));
    let closed = State::open(dir.path().join("model"), Some(KEY.into()), Some(db)).unwrap();
    let shop = [("origin", "https://shop.example.com")];
    let r = call_with(&closed, "GET", "/v1/model", "", None, &shop).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    let open = closed
        .clone()
        .cors(&["https://shop.example.com".into()])
        .unwrap();
    let r = call_with(&open, "GET", "/v1/model", "", None, &shop).await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert_eq!(r.headers["vary"], "origin");
    let preflight = [
        ("origin", "https://shop.example.com"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, content-type",
        ),
    ];
    let r = call_with(&open, "OPTIONS", "/v1/events", "", None, &preflight).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert!(r.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let evil = [
        ("origin", "https://evil.example.com"),
        ("access-control-request-method", "POST"),
    ];
    let r = call_with(&open, "OPTIONS", "/v1/events", "", None, &evil).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden_origin"))
    );
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    let r = call_with(&open, "GET", "/v1/model", "", None, &evil[..1]).await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    let m = call(&open, "GET", "/metrics", "", None).await;
    let text = m.json.as_str().unwrap();
    assert!(
        text.contains("because_cors_requests_total{allowed=\"true\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("because_cors_requests_total{allowed=\"false\"} 2"),
        "{text}"
    );
    assert!(State::open(dir.path().join("model"), None, None)
        .unwrap()
        .cors(&["shop.example.com".into()])
        .is_err());
}
