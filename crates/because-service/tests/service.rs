//! The service on the demo data: typed responses snapshot-tested, the
//! fallback, sequences, request bounds and sharing between threads.
//!
//! `BECAUSE_BLESS=1 cargo test -p because-service` rewrites the snapshots
//! after a deliberate change.

use because_core::{Query, Recommender, Request};
use because_data::synth::{write_files, Size, SynthConfig};
use because_data::testing::assert_snapshot;
use because_data::{read_interactions, ReadOptions};
use because_models::persist::{self, Meta};
use because_models::ModelSpec;
use because_service::{
    ContextOptions, ExplainRequest, ModelHandle, RecommendRequest, SequenceEvent, ServiceError,
    SimilarRequest, Subject,
};
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    model: PathBuf,
    events: PathBuf,
    items: PathBuf,
    users: PathBuf,
}

fn fixture(spec: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        noise: 0.0,
        ..SynthConfig::sized(Size::Tiny)
    };
    let files = write_files(&cfg, dir.path()).unwrap();
    let loaded = read_interactions(&files.interactions, &ReadOptions::default()).unwrap();
    let d = &loaded.dataset;
    let x = d.interactions.clone().with_constant_values(1.0);
    let model = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
    let meta = Meta {
        user_ids: d.users.ids().map(str::to_string).collect(),
        item_ids: d.items.ids().map(str::to_string).collect(),
        data_fingerprint: persist::fingerprint(&x),
        ..Meta::default()
    };
    let folder = dir.path().join("model");
    persist::save(&model, &meta, &folder).unwrap();
    Fixture {
        model: folder,
        events: files.interactions.clone(),
        items: dir.path().join("items.csv"),
        users: dir.path().join("users.csv"),
        _dir: dir,
    }
}

fn snapshot(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

fn with_context(f: &Fixture) -> ModelHandle {
    let h = ModelHandle::open(&f.model).unwrap();
    let ctx = h
        .read_context(&ContextOptions {
            items: Some(f.items.clone()),
            users: Some(f.users.clone()),
            events: Some(f.events.clone()),
            ..ContextOptions::default()
        })
        .unwrap();
    h.with_context(ctx)
}

#[test]
fn responses_match_their_snapshots() {
    let f = fixture("ease:lambda=10");
    let h = with_context(&f);
    let user = h.users().id(7).to_string();
    let recs = h
        .recommend(&RecommendRequest {
            explain: true,
            counterfactuals: true,
            ..RecommendRequest::user(&user, 3)
        })
        .unwrap();
    assert_snapshot(&snapshot("recommend.json"), &recs);
    // Without counterfactuals (the default in lists), the same explanations
    // less the counterfactual reason.
    let cheap = h
        .recommend(&RecommendRequest {
            explain: true,
            ..RecommendRequest::user(&user, 3)
        })
        .unwrap();
    for (full, cheap) in recs.items.iter().zip(&cheap.items) {
        let (full, cheap) = (
            full.explanation.as_ref().unwrap(),
            cheap.explanation.as_ref().unwrap(),
        );
        let kept: Vec<_> = full
            .reasons
            .iter()
            .filter(|r| {
                !matches!(
                    r.evidence,
                    because_explain::reasons::Evidence::Counterfactual { .. }
                )
            })
            .collect();
        assert_eq!(cheap.reasons.iter().collect::<Vec<_>>(), kept);
        assert_eq!(cheap.contributions, full.contributions);
        assert_eq!(cheap.score, full.score);
    }
    let item = recs.items[0].item.clone();
    let why = h
        .explain(&ExplainRequest {
            subject: Subject::User { user },
            item: item.clone(),
            n: 3,
            method: None,
        })
        .unwrap();
    assert_snapshot(&snapshot("explain.json"), &why);
    // The explanation in the list is the one `explain` gives for the same
    // list length.
    assert_eq!(recs.items[0].explanation.as_ref(), Some(&why.explanation));
    let similar = h.similar(&SimilarRequest { item, k: 5 }).unwrap();
    assert_snapshot(&snapshot("similar.json"), &similar);
    assert_snapshot(&snapshot("info.json"), &h.info());
}

#[test]
fn recommendations_equal_the_model_s() {
    let f = fixture("als:factors=8,iterations=4");
    let h = ModelHandle::open(&f.model).unwrap();
    let m = h.model();
    for u in [0u32, 5, 11] {
        let id = h.users().id(u).to_string();
        let got = h.recommend(&RecommendRequest::user(&id, 10)).unwrap();
        let want = m.recommend(&Request::new(Query::User(u), 10)).unwrap();
        assert_eq!(got.items.len(), want.len());
        for (g, w) in got.items.iter().zip(&want) {
            assert_eq!(g.item, h.items().id(w.item));
            assert_eq!(g.score, w.score);
        }
        let seen = m.history(u).0;
        assert!(got
            .items
            .iter()
            .all(|r| !seen.contains(&h.item_index(&r.item).unwrap())));
    }
    let all = h.recommend_all(4).unwrap();
    assert_eq!(all.users.len(), m.n_users());
    let one = h
        .recommend(&RecommendRequest::user(h.users().id(5), 4))
        .unwrap();
    // Batched scores (a matrix product) agree with single ones up to rounding.
    for (a, b) in all.users[h.users().id(5)].iter().zip(&one.items) {
        assert_eq!((a.rank, &a.item), (b.rank, &b.item));
        assert!((a.score - b.score).abs() <= 1e-5 * (1.0 + b.score.abs()));
    }
}

#[test]
fn unknown_users_and_items_fall_back_and_are_reported() {
    let f = fixture("ease:lambda=10");
    let h = ModelHandle::open(&f.model).unwrap();
    let r = h.recommend(&RecommendRequest::user("nobody", 5)).unwrap();
    let fb = r.fallback.expect("a fallback");
    assert_eq!(fb.strategy, "popularity");
    assert!(!r.subject.known);
    // The fallback is the most chosen items, by training interactions.
    let iu = &h.model().train().iu;
    let counts: Vec<usize> = r
        .items
        .iter()
        .map(|it| {
            iu.row_indices(h.item_index(&it.item).unwrap() as usize)
                .len()
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    let max = (0..h.model().n_items())
        .map(|i| iu.row_indices(i).len())
        .max();
    assert_eq!(Some(counts[0]), max);
    let known = h.items().id(3).to_string();
    let r = h
        .recommend(&RecommendRequest::new(
            Subject::History {
                history: vec![known.clone(), "no-such-item".into()],
            },
            5,
        ))
        .unwrap();
    assert!(r.fallback.is_none());
    assert_eq!(r.ignored_items, ["no-such-item"]);
    assert_eq!(r.subject.history_items, 1);
    assert!(r.items.iter().all(|it| it.item != known));
    let r = h
        .recommend(&RecommendRequest::new(
            Subject::History {
                history: vec!["x".into()],
            },
            5,
        ))
        .unwrap();
    assert!(r.fallback.is_some() && r.items.len() == 5);
    assert_eq!(r.fallback.unwrap().reason, "no known items in the history");
    // Allow and deny lists hold with the fallback too.
    let allow: Vec<String> = (0..8).map(|i| h.items().id(i).to_string()).collect();
    let r = h
        .recommend(&RecommendRequest {
            allow: Some(allow.clone()),
            deny: vec![allow[0].clone()],
            ..RecommendRequest::user("nobody", 5)
        })
        .unwrap();
    assert_eq!(r.items.len(), 5);
    assert!(
        r.items.iter().all(|it| allow[1..].contains(&it.item)),
        "{r:?}"
    );
    // And for a known user; exclude_seen: false may return seen items.
    let user = h.users().id(0).to_string();
    let seen = h.model().history(0).0.to_vec();
    let r = h
        .recommend(&RecommendRequest {
            exclude_seen: false,
            ..RecommendRequest::user(&user, h.model().n_items())
        })
        .unwrap();
    assert!(r
        .items
        .iter()
        .any(|it| seen.contains(&h.item_index(&it.item).unwrap())));
    let e = h
        .explain(&ExplainRequest {
            subject: Subject::User {
                user: "nobody".into(),
            },
            item: known.clone(),
            n: 10,
            method: None,
        })
        .unwrap();
    assert_eq!(
        e.fallback.unwrap().reason,
        "the user is unknown to the model"
    );
    let e = h
        .explain(&ExplainRequest {
            subject: Subject::History {
                history: vec!["x".into()],
            },
            item: known.clone(),
            n: 10,
            method: None,
        })
        .unwrap();
    assert_eq!(e.fallback.unwrap().reason, "no known items in the history");
    let e = h
        .similar(&SimilarRequest {
            item: "no-such-item".into(),
            k: 3,
        })
        .unwrap_err();
    assert!(matches!(e, ServiceError::UnknownItem { .. }) && e.is_client_error());
}

#[test]
fn requests_are_bounded_and_validated() {
    let f = fixture("pop");
    let h = ModelHandle::open(&f.model).unwrap();
    for k in [0, because_service::MAX_K + 1] {
        let e = h.recommend(&RecommendRequest::user("1", k)).unwrap_err();
        assert!(e.to_string().contains("`k`") && e.is_client_error(), "{e}");
    }
    let e = h
        .similar(&SimilarRequest {
            item: h.items().id(0).to_string(),
            k: 3,
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("not supported by the pop model"),
        "{e}"
    );
    assert!(e.is_client_error());
    let e = h
        .recommend(&RecommendRequest::new(
            Subject::Sequence {
                sequence: vec![SequenceEvent {
                    item: h.items().id(0).to_string(),
                    time: None,
                    event: None,
                    value: Some(f32::NAN),
                }],
            },
            3,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("`sequence`"), "{e}");
    // Explaining many recommendations at once is bounded; a model without
    // explanations still recommends, and says why there are none.
    let e = h
        .recommend(&RecommendRequest {
            explain: true,
            ..RecommendRequest::user("1", because_service::MAX_EXPLAINED + 1)
        })
        .unwrap_err();
    assert!(e.to_string().contains("`k`"), "{e}");
    let g = fixture("bpr:factors=4,epochs=2");
    let hb = ModelHandle::open(&g.model).unwrap();
    let r = hb
        .recommend(&RecommendRequest {
            explain: true,
            ..RecommendRequest::user(hb.users().id(0), 3)
        })
        .unwrap();
    assert_eq!(r.items.len(), 3);
    assert!(r.items.iter().all(|it| it.explanation.is_none()));
    assert!(r
        .explanations_unsupported
        .unwrap()
        .contains("not supported"));
    // Requests read from JSON as a server would.
    let req: RecommendRequest =
        serde_json::from_str(r#"{"history": ["a", "b"], "k": 3, "deny": ["c"]}"#).unwrap();
    assert_eq!(
        req.subject,
        Subject::History {
            history: vec!["a".into(), "b".into()]
        }
    );
    assert!(req.exclude_seen && !req.explain);
    let req: RecommendRequest = serde_json::from_str(r#"{"user": "7"}"#).unwrap();
    assert_eq!(req.k, 10);
    let req: RecommendRequest = serde_json::from_str(r#"{"user": 7, "deny": [3]}"#).unwrap();
    assert_eq!(req.subject, Subject::User { user: "7".into() });
    assert_eq!(req.deny, ["3"]);
    for bad in [
        r#"{"user": "7", "exclude-seen": false}"#,
        r#"{"user": "7", "history": ["1"]}"#,
        r#"{"k": 3}"#,
    ] {
        let e = serde_json::from_str::<RecommendRequest>(bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field") || e.contains("one of `user`"),
            "{bad}: {e}"
        );
    }
    let req: ExplainRequest =
        serde_json::from_str(r#"{"sequence": [{"item": 5, "event": "view"}], "item": 9}"#).unwrap();
    assert_eq!(req.item, "9");
    assert_eq!(req.n, 10);
}

#[test]
fn sequences_are_ordered_by_time_and_weighted_by_event() {
    let f = fixture("itemknn:neighbours=20");
    let h = ModelHandle::open(&f.model).unwrap();
    let (a, b) = (h.items().id(1).to_string(), h.items().id(2).to_string());
    let seq = Subject::Sequence {
        sequence: vec![
            SequenceEvent {
                item: b.clone(),
                time: Some(2_000),
                event: Some("purchase".into()),
                value: None,
            },
            SequenceEvent {
                item: a.clone(),
                time: Some(1_000),
                event: Some("view".into()),
                value: None,
            },
        ],
    };
    let r = h.recommend(&RecommendRequest::new(seq, 5)).unwrap();
    assert!(r.fallback.is_none());
    assert_eq!(r.subject.history_items, 2);
    // A bag model scores a sequence as the weighted history of its items.
    let weights = because_data::EventWeights::default();
    assert_ne!(weights.weight("view"), weights.weight("purchase"));
    let (ia, ib) = (h.item_index(&a).unwrap(), h.item_index(&b).unwrap());
    let want = h
        .model()
        .recommend(&Request::new(
            Query::History {
                items: &[ia, ib],
                values: &[weights.weight("view"), weights.weight("purchase")],
            },
            5,
        ))
        .unwrap();
    let got: Vec<u32> = r
        .items
        .iter()
        .map(|it| h.item_index(&it.item).unwrap())
        .collect();
    assert_eq!(got, want.iter().map(|s| s.item).collect::<Vec<_>>());
}

#[test]
fn one_handle_serves_many_threads() {
    let f = fixture("ease:lambda=10");
    let h = ModelHandle::open(&f.model).unwrap();
    let want = h
        .recommend(&RecommendRequest::user(h.users().id(3), 5))
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let h = h.clone();
            let want = &want;
            s.spawn(move || {
                for _ in 0..20 {
                    let got = h
                        .recommend(&RecommendRequest::user(h.users().id(3), 5))
                        .unwrap();
                    assert_eq!(&got, want);
                }
            });
        }
    });
}

#[test]
fn sequence_events_take_the_model_s_weights_and_codes() {
    let x = because_core::testing::block_data(30, 20, 6, 1);
    let model = "ease:lambda=5"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    let meta = Meta {
        user_ids: (0..30).map(|u| format!("u{u}")).collect(),
        item_ids: (0..20).map(|i| format!("i{i}")).collect(),
        events: vec![
            persist::EventType {
                name: "click".into(),
                weight: 7.0,
            },
            persist::EventType {
                name: "buy".into(),
                weight: 20.0,
            },
        ],
        ..Meta::default()
    };
    let dir = tempfile::tempdir().unwrap();
    persist::save(&model, &meta, dir.path()).unwrap();
    let h = ModelHandle::open(dir.path()).unwrap();
    assert_eq!(h.meta().events, meta.events);
    let event = |item: &str, event: &str| SequenceEvent {
        item: item.into(),
        time: None,
        event: Some(event.into()),
        value: None,
    };
    let r = h
        .recommend(&RecommendRequest::new(
            Subject::Sequence {
                sequence: vec![event("i1", "click"), event("i2", "buy")],
            },
            5,
        ))
        .unwrap();
    let want = h
        .model()
        .recommend(&Request::new(
            Query::History {
                items: &[1, 2],
                values: &[7.0, 20.0],
            },
            5,
        ))
        .unwrap();
    let got: Vec<u32> = r
        .items
        .iter()
        .map(|it| h.item_index(&it.item).unwrap())
        .collect();
    assert_eq!(got, want.iter().map(|s| s.item).collect::<Vec<_>>());
    for (g, w) in r.items.iter().zip(&want) {
        assert!((g.score - w.score).abs() <= 1e-5 * (1.0 + w.score.abs()));
    }
}

#[test]
fn fidelity_is_measured_once_per_model_and_says_when_there_is_none() {
    let f = fixture("ease:lambda=10");
    let h = ModelHandle::open(&f.model).unwrap();
    let first = h.fidelity();
    let s = first.summary.as_ref().expect("EASE explains");
    assert!(s.recommendations > 0 && s.n == 10 && s.k == 3, "{s:?}");
    // The named items matter more than random ones: the explanations are
    // true to the model.
    assert!(
        s.deletion_rank_drop_named.mean > s.deletion_rank_drop_random.mean,
        "{s:?}"
    );
    assert_eq!(h.fidelity(), first, "kept, not measured again");
    let bpr = fixture("bpr:factors=8,epochs=5");
    let v = ModelHandle::open(&bpr.model).unwrap().fidelity();
    assert!(v.summary.is_none() && v.unavailable.is_some(), "{v:?}");
}
