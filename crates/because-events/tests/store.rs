//! The event store's contract, run against every database: SQLite always,
//! PostgreSQL when `BECAUSE_TEST_POSTGRES` names a server (CI requires it).

use because_events::{testing, Database, Event, EventStore, StoreError, Stored};
use std::sync::Arc;

fn event(user: &str, item: &str, time: i64, key: Option<&str>) -> Event {
    Event {
        user: user.into(),
        item: item.into(),
        event: None,
        value: None,
        time: Some(time),
        idempotency_key: key.map(str::to_string),
    }
}

fn each_database(test: impl Fn(&Database)) {
    let dir = tempfile::tempdir().unwrap();
    for db in testing::databases(dir.path()) {
        eprintln!("against {db}");
        test(&db);
    }
}

#[test]
fn batches_are_stored_once_per_key_and_read_back_in_order() {
    each_database(|db| {
        let store = EventStore::open(db).unwrap();
        assert_eq!(store.count().unwrap(), 0);
        let mut batch = vec![
            event("u1", "a", 30, Some("k1")),
            event("u1", "b", 10, Some("k2")),
            event("u2", "a", 20, None),
            // A key repeated inside the batch is stored once.
            event("u1", "c", 40, Some("k1")),
        ];
        batch[1].event = Some("purchase".into());
        batch[1].value = Some(2.5);
        assert_eq!(
            store.insert(&batch, 1_000).unwrap(),
            Stored {
                stored: 3,
                duplicates: 1
            }
        );
        // A retry stores only what has no key.
        assert_eq!(
            store.insert(&batch, 2_000).unwrap(),
            Stored {
                stored: 1,
                duplicates: 3
            }
        );
        assert_eq!(store.count().unwrap(), 4);
        // Oldest first, with every field as sent; the first of two events
        // with one key is the one kept.
        let h = store.history("u1", 100).unwrap();
        let items: Vec<&str> = h.iter().map(|e| e.item.as_str()).collect();
        assert_eq!(items, ["b", "a"]);
        assert_eq!(h[0].event.as_deref(), Some("purchase"));
        assert_eq!(h[0].value, Some(2.5));
        assert_eq!(h[0].idempotency_key.as_deref(), Some("k2"));
        // The limit keeps the latest.
        let h = store.history("u1", 1).unwrap();
        assert_eq!(h[0].item, "a");
        assert!(store.history("nobody", 10).unwrap().is_empty());
        // An event without a time gets the time it was received.
        let mut untimed = event("u3", "z", 0, None);
        untimed.time = None;
        store.insert(&[untimed], 12_345).unwrap();
        assert_eq!(store.history("u3", 10).unwrap()[0].time, Some(12_345));
        // Scan sees every event in the order it was stored.
        let mut seen = Vec::new();
        store.scan(|e| seen.push((e.user, e.item))).unwrap();
        let want: Vec<(String, String)> = [
            ("u1", "a"),
            ("u1", "b"),
            ("u2", "a"),
            ("u2", "a"),
            ("u3", "z"),
        ]
        .iter()
        .map(|(u, i)| (u.to_string(), i.to_string()))
        .collect();
        assert_eq!(seen, want);
    });
}

#[test]
fn an_invalid_batch_stores_nothing() {
    each_database(|db| {
        let store = EventStore::open(db).unwrap();
        let mut bad = vec![event("u1", "a", 1, None), event("u1", "", 2, None)];
        match store.insert(&bad, 0) {
            Err(StoreError::Invalid {
                index: 1,
                field: "item",
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        bad[1].item = "b".into();
        bad[1].value = Some(f64::NAN);
        assert!(store.insert(&bad, 0).is_err());
        bad[1].value = Some(1e39);
        assert!(store.insert(&bad, 0).is_err());
        bad[1].value = None;
        bad[1].user = "x".repeat(300);
        assert!(store.insert(&bad, 0).is_err());
        assert!(store.insert(&[], 0).is_err());
        assert_eq!(store.count().unwrap(), 0);
    });
}

#[test]
fn events_survive_reopening_and_migrating_twice() {
    each_database(|db| {
        {
            let store = EventStore::open(db).unwrap();
            store
                .insert(&[event("u1", "a", 1, Some("once"))], 0)
                .unwrap();
        }
        let store = EventStore::open(db).unwrap();
        let again = EventStore::open(db).unwrap();
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(
            again
                .insert(&[event("u1", "a", 1, Some("once"))], 0)
                .unwrap()
                .stored,
            0
        );
    });
}

#[test]
fn concurrent_writers_lose_nothing_and_duplicate_nothing() {
    each_database(|db| {
        let store = Arc::new(EventStore::open(db).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut stored = 0;
                    for b in 0..10 {
                        // Every thread sends the same keys: each is stored once.
                        let batch: Vec<Event> = (0..50)
                            .map(|i| {
                                let key = format!("{b}-{i}");
                                event(&format!("u{t}"), "a", i64::from(b), Some(&key))
                            })
                            .collect();
                        stored += store.insert(&batch, 0).unwrap().stored;
                    }
                    stored
                })
            })
            .collect();
        let stored: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(stored, 500);
        assert_eq!(store.count().unwrap(), 500);
    });
}

#[test]
fn a_database_that_cannot_open_says_which() {
    let e = match EventStore::open(&Database::parse("postgres://nobody@127.0.0.1:1/none").unwrap())
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened a database on port 1"),
    };
    assert!(e.contains("postgres"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = match EventStore::open(&Database::Sqlite(dir.path().join("no/such/dir/x.sqlite"))) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened a file in a missing folder"),
    };
    assert!(e.contains("sqlite"), "{e}");
}

#[test]
fn events_are_counted_per_minute_of_receipt() {
    each_database(|db| {
        let store = EventStore::open(db).unwrap();
        let minute = 60_000i64;
        let now = 1_000 * minute + 30_000;
        // Two batches received two minutes ago, one this minute, one long ago.
        store
            .insert(
                &[event("u", "a", 1, None), event("u", "b", 2, None)],
                now - 2 * minute,
            )
            .unwrap();
        store.insert(&[event("u", "c", 3, None)], now).unwrap();
        store
            .insert(&[event("u", "d", 4, None)], now - 60 * minute)
            .unwrap();
        let counts = store.received_per_minute(now, 5).unwrap();
        let starts: Vec<i64> = counts.iter().map(|c| c.0).collect();
        assert_eq!(starts, (996..=1000).map(|m| m * minute).collect::<Vec<_>>());
        let n: Vec<u64> = counts.iter().map(|c| c.1).collect();
        assert_eq!(n, vec![0, 0, 2, 0, 1]);
    });
}

#[test]
fn two_stores_on_one_database_see_each_others_events_at_once() {
    // Replicas: each server opens its own store on the same database (a
    // SQLite file on one host, or one PostgreSQL).
    each_database(|db| {
        let (a, b) = (EventStore::open(db).unwrap(), EventStore::open(db).unwrap());
        b.ping().unwrap();
        assert!(b.history("shared", 10).unwrap().is_empty());
        a.insert(&[event("shared", "x", 1, Some("k1"))], 0).unwrap();
        let seen = b.history("shared", 10).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].item, "x");
        // The key is shared too: a retry through the other replica is a duplicate.
        let again = b.insert(&[event("shared", "x", 1, Some("k1"))], 0).unwrap();
        assert_eq!(
            again,
            Stored {
                stored: 0,
                duplicates: 1
            }
        );
        // Reads while the other store writes: nothing torn, nothing lost.
        let writer = std::thread::spawn({
            let db = db.clone();
            move || {
                let w = EventStore::open(&db).unwrap();
                for n in 0..50 {
                    let batch: Vec<Event> = (0..20)
                        .map(|i| event("busy", &format!("{n}-{i}"), n, None))
                        .collect();
                    w.insert(&batch, 0).unwrap();
                }
            }
        });
        let mut last = 0;
        while !writer.is_finished() {
            let n = a.history("busy", 10_000).unwrap().len();
            assert_eq!(n % 20, 0, "a batch was read half-written");
            assert!(n >= last);
            last = n;
        }
        writer.join().unwrap();
        assert_eq!(a.history("busy", 10_000).unwrap().len(), 1000);
    });
}

#[test]
fn a_postgres_outage_is_unavailable_at_once_and_recovers_by_itself() {
    let Some(db) = testing::fresh_postgres() else {
        return;
    };
    let (db, proxy) = testing::Proxy::before(&db).unwrap();
    let store = EventStore::open(&db).unwrap();
    let mut acked = 0;
    for n in 0..5 {
        acked += store.insert(&[event("u", "a", n, None)], 0).unwrap().stored;
    }
    proxy.cut();
    let start = std::time::Instant::now();
    for n in 0..20 {
        let e = store.insert(&[event("u", "b", n, None)], 0).unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains("postgres"), "{e}");
        assert!(store.history("u", 10).unwrap_err().is_unavailable());
        assert!(store.ping().unwrap_err().is_unavailable());
    }
    // Refused connections fail at once, not after a timeout.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    proxy.restore();
    let back = std::time::Instant::now();
    loop {
        match store.insert(&[event("u", "c", 0, None)], 0) {
            Ok(s) => {
                acked += s.stored;
                break;
            }
            Err(e) => assert!(e.is_unavailable(), "{e}"),
        }
        assert!(
            back.elapsed() < std::time::Duration::from_secs(2),
            "no recovery within 2 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    store.ping().unwrap();
    assert_eq!(store.count().unwrap(), acked as u64);
    assert_eq!(store.history("u", 100).unwrap().len(), acked);
}

#[test]
fn a_sqlite_file_locked_past_the_timeout_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let store = EventStore::open(&Database::Sqlite(path.clone())).unwrap();
    store.insert(&[event("u", "a", 0, None)], 0).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = store.insert(&[event("u", "b", 1, None)], 0).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    // Readers are not blocked by the writer's lock (WAL).
    assert_eq!(store.history("u", 10).unwrap().len(), 1);
    other.execute_batch("ROLLBACK").unwrap();
    store.insert(&[event("u", "b", 1, None)], 0).unwrap();
    assert_eq!(store.count().unwrap(), 2);
}
