//! Typed reasons on the demo data (events, item genres, user features):
//! every reason is checked against the model or recounted from the data,
//! and one explanation is compared with a committed snapshot.
//!
//! `BECAUSE_BLESS=1 cargo test -p because-explain --test reasons` rewrites
//! the snapshot after a deliberate change.

use because_core::{Dataset, DuplicatePolicy, Query, Recommender, Request};
use because_data::features::{read_features, FeatureKind, Features};
use because_data::synth::{write_files, Size, SynthConfig};
use because_data::{read_interactions, ReadOptions};
use because_explain::reasons::{Activity, Basis, Evidence, Funnel, ItemRef, Trend, UserColumn};
use because_explain::{Explainer, Subject};
use because_models::{Model, ModelSpec};
use std::path::Path;

struct Demo {
    data: Dataset,
    raw: Dataset,
    items: Features,
    users: Vec<UserColumn>,
    funnel: Funnel,
}

fn demo(dir: &Path) -> Demo {
    let cfg = SynthConfig {
        noise: 0.0,
        ..SynthConfig::sized(Size::Tiny)
    };
    let files = write_files(&cfg, dir).unwrap();
    let opts = ReadOptions::default();
    let data = read_interactions(&files.interactions, &opts)
        .unwrap()
        .dataset;
    let raw = read_interactions(
        &files.interactions,
        &ReadOptions {
            duplicates: Some(DuplicatePolicy::Keep),
            ..ReadOptions::default()
        },
    )
    .unwrap()
    .dataset;
    let items = read_features(&files.items, &data.items, None).unwrap();
    let user_features = read_features(&files.users, &data.users, None).unwrap();
    let users = user_features
        .columns
        .iter()
        .map(|c| match c.kind {
            FeatureKind::Numeric => UserColumn::numeric(&c.name, &c.numeric, 4),
            _ => UserColumn::categorical(
                &c.name,
                c.levels.clone(),
                c.codes.iter().map(|v| v.first().copied()).collect(),
            ),
        })
        .collect();
    let funnel = Funnel {
        strength: data
            .event_names
            .iter()
            .map(|n| opts.event_weights.weight(n))
            .collect(),
        names: data.event_names.clone(),
    };
    Demo {
        data,
        raw,
        items,
        users,
        funnel,
    }
}

fn namer<'a>(d: &'a Demo) -> impl Fn(u32) -> ItemRef + 'a {
    move |i| ItemRef {
        index: i,
        id: d.data.items.id(i).to_string(),
        title: d.items.title(i).unwrap_or(d.data.items.id(i)).to_string(),
    }
}

/// User `u`'s raw events and the items of their latest session in them.
fn activity(d: &Demo, u: u32) -> (Activity, Vec<u32>) {
    let a = Activity::of_user(&d.raw, d.data.users.id(u), &d.data.items).unwrap();
    let session = a.latest_session(because_core::DEFAULT_SESSION_TIMEOUT_MS);
    (a, session)
}

/// What is known of user `u` for an explanation.
fn subject<'a>(m: &'a Model, u: u32, a: &'a Activity, session: &'a [u32]) -> Subject<'a> {
    let (items, values) = m.history(u);
    Subject {
        items,
        values,
        user: Some(u),
        latest_session: Some(session),
        activity: Some(a),
        features: None,
    }
}

fn fit(d: &Demo, spec: &str) -> Model {
    spec.parse::<ModelSpec>()
        .unwrap()
        .fit(&d.data.interactions)
        .unwrap()
}

#[test]
fn every_reason_is_true_to_the_model_or_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let genre = d.items.genre_like().unwrap();
    for spec in ["ease:lambda=50", "itemknn", "als:factors=16,iterations=6"] {
        let m = fit(&d, spec);
        let name = namer(&d);
        let mut x = Explainer::new(&m, &name);
        x.item_features = Some((&genre.codes, &genre.levels));
        x.user_features = &d.users;
        x.funnel = Some(&d.funnel);
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for u in (0..m.n_users() as u32).step_by(7) {
            let (items, values) = m.history(u);
            let (activity, session) = activity(&d, u);
            let s = subject(&m, u, &activity, &session);
            let full = m.scores(&Query::History { items, values }).unwrap();
            for r in m.recommend(&Request::new(Query::User(u), 3)).unwrap() {
                let e = x.explain(&s, r.item).unwrap();
                let total: f32 = e.contributions.iter().map(|c| c.weight).sum::<f32>()
                    + e.other_contributions
                    + e.bias;
                let score = full[r.item as usize];
                assert!(e.exact, "{spec}");
                assert!(
                    (total - score).abs() <= 1e-4 * score.abs().max(1e-3),
                    "{spec}: {total} vs {score}"
                );
                let contribution = |i: u32| {
                    e.contributions
                        .iter()
                        .find(|c| c.item.index == i)
                        .map(|c| c.weight)
                };
                for reason in &e.reasons {
                    assert!(!reason.sentence.is_empty(), "{spec}: {reason:?}");
                    assert!(!reason.sentence.contains('{'), "{}", reason.sentence);
                    match &reason.evidence {
                        Evidence::History { items } => {
                            kinds.entry("history").or_default();
                            *kinds.get_mut("history").unwrap() += 1;
                            let sum: f32 = items.iter().map(|w| w.weight).sum();
                            assert!((sum - reason.weight).abs() <= 1e-5 * (1.0 + sum.abs()));
                            assert!(items.iter().all(|w| w.weight > 0.0));
                            assert!(e.narrative.starts_with(&reason.sentence));
                        }
                        Evidence::Session { items } => {
                            *kinds.entry("session").or_default() += 1;
                            assert!(items.iter().all(|i| session.contains(&i.index)));
                            assert!(items.iter().all(|i| contribution(i.index).unwrap() > 0.0));
                        }
                        Evidence::Intent {
                            event,
                            items: engaged,
                        } => {
                            *kinds.entry("intent").or_default() += 1;
                            let code = d.funnel.names.iter().position(|n| n == event).unwrap();
                            let now = *activity.times.iter().max().unwrap();
                            let mut weight = 0.0;
                            for g in engaged {
                                // Recount from the raw log: the deepest stage reached, and how often.
                                let mine: Vec<usize> = (0..activity.items.len())
                                    .filter(|&k| activity.items[k] == g.item.index)
                                    .collect();
                                let strength =
                                    |k: usize| d.funnel.strength[activity.events[k] as usize];
                                let deepest =
                                    mine.iter().map(|&k| strength(k)).fold(f32::MIN, f32::max);
                                assert_eq!(d.funnel.strength[code], deepest, "{event}");
                                let at: Vec<usize> = mine
                                    .iter()
                                    .copied()
                                    .filter(|&k| activity.events[k] as usize == code)
                                    .collect();
                                assert_eq!(at.len(), g.count);
                                let week = at
                                    .iter()
                                    .filter(|&&k| activity.times[k] > now - 7 * 86_400_000)
                                    .count();
                                assert_eq!(week, g.this_week);
                                assert!(contribution(g.item.index).unwrap() > 0.0);
                                weight += contribution(g.item.index).unwrap();
                            }
                            assert!((reason.weight - weight).abs() <= 1e-5 * (1.0 + weight));
                        }
                        Evidence::ItemFeature { level, items } => {
                            *kinds.entry("item_feature").or_default() += 1;
                            let l = genre.levels.iter().position(|x| x == level).unwrap() as u32;
                            assert!(genre.codes[r.item as usize].contains(&l));
                            for i in items {
                                assert!(genre.codes[i.index as usize].contains(&l));
                            }
                        }
                        Evidence::Exemplar { items, people, of } => {
                            *kinds.entry("exemplar").or_default() += 1;
                            assert!(*people >= because_explain::MIN_GROUP && people <= of);
                            // Recount over the other users' training rows.
                            let (mut p, mut o) = (0, 0);
                            for v in (0..m.n_users() as u32).filter(|&v| v != u) {
                                let h = m.history(v).0;
                                if items.iter().all(|i| h.contains(&i.index)) {
                                    o += 1;
                                    p += usize::from(h.contains(&r.item));
                                }
                            }
                            assert_eq!((p, o), (*people, *of));
                        }
                        Evidence::UserFeature {
                            feature,
                            level,
                            people,
                            of,
                            lift,
                        } => {
                            *kinds.entry("user_feature").or_default() += 1;
                            let col = d.users.iter().find(|c| &c.name == feature).unwrap();
                            let code = col.codes[u as usize].unwrap();
                            assert_eq!(&col.levels[code as usize], level);
                            let (mut p, mut o, mut all) = (0, 0, 0);
                            for v in (0..m.n_users() as u32).filter(|&v| v != u) {
                                let chose = m.history(v).0.contains(&r.item);
                                all += usize::from(chose);
                                if col.codes[v as usize] == Some(code) {
                                    o += 1;
                                    p += usize::from(chose);
                                }
                            }
                            assert_eq!((p, o), (*people, *of));
                            let brute =
                                (p as f64 / o as f64) / (all as f64 / (m.n_users() - 1) as f64);
                            assert!((brute - *lift as f64).abs() < 1e-4 * brute);
                            assert!(*lift >= 1.5 && *people >= because_explain::MIN_GROUP);
                            assert_eq!(reason.basis, Basis::Data);
                        }
                        Evidence::Counterfactual {
                            removed,
                            verified,
                            n,
                            rank_after,
                            ..
                        } => {
                            *kinds.entry("counterfactual").or_default() += 1;
                            if *verified {
                                let (ki, kv): (Vec<u32>, Vec<f32>) = items
                                    .iter()
                                    .zip(values)
                                    .filter(|(i, _)| !removed.iter().any(|x| x.index == **i))
                                    .map(|(&i, &v)| (i, v))
                                    .unzip();
                                let rank =
                                    because_explain::rank_of(&m, &ki, &kv, items, r.item).unwrap();
                                assert_eq!(rank, *rank_after);
                                assert!(rank > *n);
                            }
                        }
                        Evidence::Features { .. } => {
                            panic!("{spec}: a feature reason from a model without features")
                        }
                        Evidence::Popularity { .. } | Evidence::Trend { .. } => {
                            panic!("{spec}: a popularity reason without popularity data")
                        }
                    }
                }
                // Plain data: no user appears anywhere in the JSON.
                let json = serde_json::to_string(&e).unwrap();
                assert!(!json.contains("\"user\""), "{json}");
                assert!(!json.contains("\"index\""), "{json}");
            }
        }
        eprintln!("{spec}: reasons by kind {kinds:?}");
        for kind in [
            "history",
            "session",
            "intent",
            "item_feature",
            "exemplar",
            "user_feature",
            "counterfactual",
        ] {
            assert!(
                kinds.get(kind).copied().unwrap_or(0) > 0,
                "{spec}: no {kind} reason at all: {kinds:?}"
            );
        }
    }
}

#[test]
fn popularity_reasons_count_and_rank() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let m = fit(&d, "pop");
    let name = namer(&d);
    let x = Explainer::new(&m, &name);
    let (items, values) = m.history(0);
    let s = Subject {
        items,
        values,
        ..Subject::default()
    };
    let counts = d.data.interactions.item_counts();
    for r in m.recommend(&Request::new(Query::User(0), 3)).unwrap() {
        for e in [x.explain(&s, r.item).unwrap(), x.explain_fallback(r.item)] {
            let Evidence::Popularity {
                interactions, rank, ..
            } = e.reasons[0].evidence
            else {
                panic!("{:?}", e.reasons)
            };
            assert_eq!(interactions, counts[r.item as usize] as f32);
            let above = counts
                .iter()
                .enumerate()
                .filter(|&(i, &c)| {
                    c > counts[r.item as usize]
                        || (c == counts[r.item as usize] && (i as u32) < r.item)
                })
                .count();
            assert_eq!(rank, above + 1);
            assert!(e.contributions.is_empty());
        }
    }
}

#[test]
fn trends_are_recounted_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let m = fit(&d, "pop");
    let window = 30 * 86_400_000;
    let trend = Trend::from_log(&d.raw, &d.data.items, window).unwrap();
    let times = d.raw.interactions.times();
    let (first, last) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    let name = namer(&d);
    let mut x = Explainer::new(&m, &name);
    x.trend = Some(&trend);
    let mut trending = 0;
    for i in 0..m.n_items() as u32 {
        let id = d.data.items.id(i);
        let (mut recent, mut total) = (0u32, 0u32);
        for (k, &j) in d.raw.interactions.items().iter().enumerate() {
            if d.raw.items.id(j) == id {
                total += 1;
                recent += u32::from(times[k] > last - window);
            }
        }
        let lift = (recent as f64 / window as f64) / (total as f64 / (last - first) as f64);
        let (r, l) = trend.of(i);
        assert_eq!(r, recent);
        assert!(
            (l as f64 - lift).abs() <= 1e-4 * lift.max(1.0),
            "{l} vs {lift}"
        );
        let e = x.explain_fallback(i);
        let said = e
            .reasons
            .iter()
            .any(|r| matches!(r.evidence, Evidence::Trend { .. }));
        assert_eq!(
            said,
            recent >= 5 && lift >= 1.5,
            "item {id}: {recent} recent, lift {lift}"
        );
        if said {
            trending += 1;
            assert!(e.narrative.contains("Trending"), "{}", e.narrative);
        }
    }
    assert!(trending > 0, "no item trends in the demo data");
    // A log that spans no more than the window has no trend.
    assert!(Trend::from_log(&d.raw, &d.data.items, last - first).is_none());
}

/// Rounds every number to 4 significant digits, so the snapshot does not
/// depend on the last bits of floating-point sums.
#[test]
fn an_explanation_matches_its_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let d = demo(tmp.path());
    let m = fit(&d, "itemknn");
    let genre = d.items.genre_like().unwrap();
    let name = namer(&d);
    let mut x = Explainer::new(&m, &name);
    x.item_features = Some((&genre.codes, &genre.levels));
    x.user_features = &d.users;
    x.funnel = Some(&d.funnel);
    x.shown = 5;
    let u = 3;
    let (activity, session) = activity(&d, u);
    let s = subject(&m, u, &activity, &session);
    let top = m.recommend(&Request::new(Query::User(u), 1)).unwrap()[0].item;
    let e = x.explain(&s, top).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/explained.json");
    because_data::testing::assert_snapshot(&path, &e);
}

#[test]
fn numeric_user_features_are_binned_by_quantiles() {
    let values: Vec<Option<f32>> = (0..100).map(|v| Some(v as f32)).chain([None]).collect();
    let c = UserColumn::numeric("age", &values, 4);
    assert_eq!(c.levels, ["0–25", "25–50", "50–75", "75–99"]);
    assert_eq!(c.codes[0], Some(0));
    assert_eq!(c.codes[24], Some(0));
    assert_eq!(c.codes[25], Some(1));
    assert_eq!(c.codes[99], Some(3));
    assert_eq!(c.codes[100], None);
}
