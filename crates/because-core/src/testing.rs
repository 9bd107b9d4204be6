//! The conformance suite every model passes, and small test data.

use crate::rng::Rng;
use crate::{Dataset, Error, Interactions, Query, Recommender, Request, Vocab};

/// [`block_data`] as a dataset whose user and item IDs are their indices.
pub fn block_dataset(n_users: usize, n_items: usize, per_user: usize, seed: u64) -> Dataset {
    let x = block_data(n_users, n_items, per_user, seed);
    Dataset {
        users: Vocab::from_ids((0..x.n_users()).map(|u| u.to_string())),
        items: Vocab::from_ids((0..x.n_items()).map(|i| i.to_string())),
        interactions: x,
        ..Default::default()
    }
}

/// A small log with structure: users in two taste groups, each preferring
/// half of the items, with a popularity skew. Deterministic for `seed`.
pub fn block_data(n_users: usize, n_items: usize, per_user: usize, seed: u64) -> Interactions {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    let half = (n_items / 2).max(1);
    for u in 0..n_users {
        let group = u % 2;
        let mut seen = std::collections::HashSet::new();
        let mut t = 0i64;
        while seen.len() < per_user.min(n_items) {
            let in_group = rng.chance(0.85);
            // Skewed towards low indices within the half.
            let r = rng.next_f64();
            let k = ((r * r) * half as f64) as usize;
            let item = if in_group {
                group * half + k
            } else {
                (1 - group) * half + k
            };
            let item = item.min(n_items - 1) as u32;
            if seen.insert(item) {
                rows.push((u as u32, item, 1.0, t));
                t += 1;
            }
        }
    }
    Interactions::from_tuples(n_users, n_items, rows).unwrap_or_default()
}

/// Two rankings of the same user agree up to floating-point noise: the
/// same scores within 1e-4 relative, and the same items except where
/// neighbouring scores are that close (near ties may swap).
fn assert_same_ranking(kind: &str, u: u32, a: &[crate::Scored], b: &[crate::Scored]) {
    assert_eq!(
        a.len(),
        b.len(),
        "{kind}: batch and single lengths differ for user {u}"
    );
    let close = |x: f32, y: f32| (x - y).abs() <= 1e-4 * (1.0 + x.abs().max(y.abs()));
    for (p, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            close(x.score, y.score),
            "{kind}: user {u} rank {p}: score {} vs {}",
            x.score,
            y.score
        );
        if x.item != y.item {
            let tied = (p > 0 && close(a[p - 1].score, x.score))
                || a.get(p + 1).is_some_and(|n| close(n.score, x.score))
                || p + 1 == a.len();
            assert!(
                tied,
                "{kind}: user {u} rank {p}: item {} vs {} without a near tie",
                x.item, y.item
            );
        }
    }
}

/// Checks the behaviour every [`Recommender`] must have; panics with a
/// message naming the broken rule. `model` was trained on `train`.
pub fn check_recommender(model: &dyn Recommender, train: &Interactions) {
    let kind = model.kind();
    assert_eq!(model.n_users(), train.n_users(), "{kind}: n_users");
    assert_eq!(model.n_items(), train.n_items(), "{kind}: n_items");
    let k = 10;
    let users: Vec<u32> = (0..train.n_users() as u32).collect();
    let batch = model
        .recommend_users(&users, k)
        .unwrap_or_else(|e| panic!("{kind}: batch failed: {e}"));
    for &u in &users {
        let single = model.recommend(&Request::new(Query::User(u), k)).unwrap();
        assert_same_ranking(kind, u, &single, &batch[u as usize]);
        let seen = train.user_items(u);
        assert!(
            single.iter().all(|s| !seen.contains(&s.item)),
            "{kind}: user {u} was recommended a seen item"
        );
        assert!(
            single.windows(2).all(|w| w[0].score >= w[1].score),
            "{kind}: top-k not sorted for user {u}"
        );
        assert!(
            single.iter().all(|s| s.score.is_finite()),
            "{kind}: non-finite score for user {u}"
        );
        let available = train.n_items() - {
            let mut s = seen.to_vec();
            s.sort_unstable();
            s.dedup();
            s.len()
        };
        assert_eq!(
            single.len(),
            k.min(available),
            "{kind}: wrong number of recommendations for user {u}"
        );
        assert_eq!(
            model.history(u).0.len(),
            {
                let mut s = seen.to_vec();
                s.sort_unstable();
                s.dedup();
                s.len()
            },
            "{kind}: history of user {u}"
        );
    }
    let deny: Vec<Vec<u32>> = users
        .iter()
        .map(|&u| vec![u % train.n_items() as u32])
        .collect();
    let deny_refs: Vec<&[u32]> = deny.iter().map(|d| &d[..]).collect();
    let denied = model
        .recommend_users_denying(&users, k, &deny_refs)
        .unwrap();
    for (&u, list) in users.iter().zip(&denied) {
        assert!(
            list.iter().all(|s| s.item != u % train.n_items() as u32),
            "{kind}: batch deny ignored for user {u}"
        );
    }
    // Allow- and deny-lists.
    let allow: Vec<u32> = (0..train.n_items() as u32).step_by(3).collect();
    let deny: Vec<u32> = (0..train.n_items() as u32).step_by(2).collect();
    let req = Request {
        query: Query::User(0),
        k,
        exclude_seen: true,
        allow: Some(&allow),
        deny: &deny,
    };
    let got = model.recommend(&req).unwrap();
    assert!(
        got.iter()
            .all(|s| allow.contains(&s.item) && !deny.contains(&s.item)),
        "{kind}: allow/deny ignored"
    );
    let all = model
        .recommend(&Request {
            exclude_seen: false,
            ..Request::new(Query::User(0), train.n_items())
        })
        .unwrap();
    assert_eq!(
        all.len(),
        train.n_items(),
        "{kind}: exclude_seen=false must rank every item"
    );
    // Ad-hoc histories, including an empty one, and bad input.
    let (items, values) = (train.user_items(1).to_vec(), train.user_values(1).to_vec());
    let adhoc = model
        .recommend(&Request::new(
            Query::History {
                items: &items,
                values: &values,
            },
            k,
        ))
        .unwrap();
    assert!(
        adhoc
            .iter()
            .all(|s| !items.contains(&s.item) && s.score.is_finite()),
        "{kind}: ad-hoc history"
    );
    let empty = model.recommend(&Request::new(
        Query::History {
            items: &[],
            values: &[],
        },
        k,
    ));
    assert!(
        empty.is_ok(),
        "{kind}: an empty history must not fail: {empty:?}"
    );
    assert!(
        matches!(
            model.recommend(&Request::new(Query::User(train.n_users() as u32), k)),
            Err(Error::UnknownUser { .. })
        ),
        "{kind}: unknown user"
    );
    let bad = [train.n_items() as u32];
    assert!(
        matches!(
            model.recommend(&Request::new(
                Query::History {
                    items: &bad,
                    values: &[1.0]
                },
                k
            )),
            Err(Error::UnknownItem { .. })
        ),
        "{kind}: unknown item in a history"
    );
    assert!(
        model
            .recommend(&Request::new(
                Query::History {
                    items: &[0, 1],
                    values: &[1.0]
                },
                k
            ))
            .is_err(),
        "{kind}: length mismatch"
    );
    // Similar items: supported and sane, or a clear error.
    match model.similar_items(0, 5) {
        Ok(sim) => {
            assert!(
                sim.iter().all(|s| s.item != 0),
                "{kind}: an item is not its own neighbour"
            );
            assert!(
                sim.windows(2).all(|w| w[0].score >= w[1].score),
                "{kind}: similar items not sorted"
            );
        }
        Err(Error::Unsupported { .. }) => {}
        Err(e) => panic!("{kind}: similar items failed: {e}"),
    }
    assert!(
        model.similar_items(train.n_items() as u32, 5).is_err(),
        "{kind}: similar to an unknown item"
    );
}
