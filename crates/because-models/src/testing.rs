//! Checks that a registered kind does what it declares, for the
//! conformance suite of this crate and of crates that register their own.

use crate::Model;
use because_core::{Interactions, Query, Recommender, Sequence};

/// Asserts that `model`'s declared capabilities are true on `x`, its
/// training data: similar items, exact decompositions that add up to the
/// scores, embeddings, rating predictions and fold-in work exactly when
/// declared, an ordered model's scores depend on the order of a sequence,
/// and a model that ignores order scores a sequence as the history of its
/// items.
///
/// # Panics
/// When a claim is false.
pub fn check_capabilities(model: &Model, x: &Interactions) {
    let c = model.entry().capabilities;
    let kind = model.kind();
    assert_eq!(
        model.similar_items(0, 3).is_ok(),
        c.similar_items,
        "{kind}: similar items"
    );
    assert_eq!(
        model.decomposer().is_some(),
        c.exact_decomposition,
        "{kind}: decomposition"
    );
    assert_eq!(
        model.embeddings().is_some(),
        c.item_embeddings,
        "{kind}: embeddings"
    );
    assert_eq!(
        model.rating_predictor().is_some(),
        c.rating_prediction,
        "{kind}: ratings"
    );
    assert_eq!(
        model.inner_product().is_some(),
        c.inner_product,
        "{kind}: inner product"
    );
    assert_eq!(
        model.attributor().is_some(),
        c.attributions,
        "{kind}: attributions"
    );
    let u = (0..x.n_users() as u32)
        .find(|&u| {
            let items = x.user_items(u);
            items.len() >= 3 && items.first() != items.last()
        })
        .expect("a user with at least three interactions");
    let (items, values) = (x.user_items(u), x.user_values(u));
    let bag = Query::History { items, values };
    assert_eq!(model.scores(&bag).is_ok(), c.fold_in, "{kind}: fold-in");
    if let Some(d) = model.decomposer() {
        let scores = model.scores(&bag).unwrap();
        for target in (0..x.n_items() as u32).step_by((x.n_items() / 3).max(1)) {
            let dec = d.decompose(items, values, target);
            let sum: f32 = dec.weights.iter().sum();
            let s = scores[target as usize];
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * (1.0 + b.abs());
            assert!(
                close(sum, dec.score),
                "{kind}: contributions {sum} vs {}",
                dec.score
            );
            assert!(
                close(dec.score, s),
                "{kind}: decomposed {} vs scored {s}",
                dec.score
            );
        }
    }
    if let Some(ip) = model.inner_product() {
        check_inner_product(model, ip, x, &[Query::User(u), bag]);
    }
    if let Some(a) = model.attributor() {
        for &m in a.attributions() {
            let w = a.attribute(m, items, 0).unwrap();
            assert_eq!(w.len(), items.len(), "{kind}: {m:?} weights per item");
            assert!(w.iter().all(|v| v.is_finite()), "{kind}: {m:?} finite");
        }
    }
    if !c.fold_in {
        return;
    }
    let seq = x.user_sequence(u);
    let reversed_items: Vec<u32> = seq.items.iter().rev().copied().collect();
    let reversed_values: Vec<f32> = seq.values.iter().rev().copied().collect();
    let reversed = Sequence {
        items: &reversed_items,
        values: &reversed_values,
        times: None,
        events: None,
    };
    let forward = model.scores(&Query::Sequence(seq)).unwrap();
    let backward = model.scores(&Query::Sequence(reversed)).unwrap();
    if c.ordered_sequences {
        assert_ne!(forward, backward, "{kind}: declares order but ignores it");
    } else {
        assert_eq!(
            forward,
            model.scores(&bag).unwrap(),
            "{kind}: sequence as a history"
        );
    }
    let bad = Sequence {
        times: Some(&[1]),
        ..seq
    };
    assert!(
        model.scores(&Query::Sequence(bad)).is_err(),
        "{kind}: mismatched times"
    );
}

/// Asserts that the inner-product form of `model`'s scores is its scores:
/// for each query, every item's `query · row + bias + offset` equals
/// `score_into` (1e-4 relative), and the cosine of the similarity vectors
/// is `similar_into`, so what an index retrieves from these vectors is
/// scored as the model scores it.
fn check_inner_product(
    model: &Model,
    ip: &dyn because_core::InnerProduct,
    x: &Interactions,
    queries: &[Query<'_>],
) {
    let kind = model.kind();
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()));
    let items = ip.item_vectors();
    assert_eq!(items.len(), model.n_items(), "{kind}: one vector per item");
    for q in queries {
        let scores = model.scores(q).unwrap();
        let qv = ip.query_vector(q).unwrap();
        assert_eq!(qv.vector.len(), items.dim, "{kind}: query width");
        for i in 0..x.n_items() as u32 {
            let (a, b) = (items.score(&qv, i), scores[i as usize]);
            assert!(
                close(a, b),
                "{kind}: {q:?} item {i}: inner product {a} vs score {b}"
            );
        }
    }
    if let Some(sim) = ip.similarity_vectors() {
        let mut out = vec![0.0; model.n_items()];
        model.similar_into(0, &mut out).unwrap();
        let norm = |r: &[f32]| r.iter().map(|v| v * v).sum::<f32>().sqrt();
        let a = sim.row(0);
        for i in 0..x.n_items() as u32 {
            let b = sim.row(i);
            let n = norm(a) * norm(b);
            let cos = if n > 0.0 {
                a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / n
            } else {
                0.0
            };
            assert!(
                close(cos, out[i as usize]),
                "{kind}: item {i}: cosine {cos} vs similar {}",
                out[i as usize]
            );
        }
    }
}

/// Asserts that one model gives one ranking: for known users of `x` (its
/// training data), the single-user path, the batched path (which
/// evaluation and `recommendations.json` use) and, for models with an exact
/// decomposition, the score that the explanation decomposes (the user's
/// training history, folded in) give every item the same score (1e-5
/// relative) and the same top 10; the contributions add up to that score;
/// and for an ad-hoc history the served score is the decomposed one.
///
/// # Panics
/// When two paths disagree.
pub fn check_one_ranking(model: &Model, x: &Interactions) {
    let kind = model.kind();
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-6;
    let n = model.n_items();
    for u in (0..x.n_users() as u32).step_by(3) {
        let single = model.scores(&Query::User(u)).unwrap();
        let mut batch = vec![0.0; n];
        model.score_users_into(&[u], &mut batch).unwrap();
        for i in 0..n {
            assert!(
                close(single[i], batch[i]),
                "{kind}: user {u} item {i}: single {} vs batched {}",
                single[i],
                batch[i]
            );
        }
        let one = model
            .recommend(&because_core::Request::new(Query::User(u), 10))
            .unwrap();
        let many = model.recommend_users(&[u], 10).unwrap();
        let ids = |s: &[because_core::Scored]| s.iter().map(|s| s.item).collect::<Vec<_>>();
        assert_eq!(ids(&one), ids(&many[0]), "{kind}: user {u}'s top 10");
        let Some(d) = model.decomposer() else {
            continue;
        };
        let (items, values) = (x.user_items(u), x.user_values(u));
        if items.is_empty() {
            continue;
        }
        for s in &one {
            let dec = d.decompose(items, values, s.item);
            assert!(
                close(dec.score, s.score),
                "{kind}: user {u} item {}: explained {} vs served {}",
                s.item,
                dec.score,
                s.score
            );
            let sum: f32 = dec.weights.iter().sum();
            assert!(
                (sum - dec.score).abs() <= 1e-4 * (1.0 + dec.score.abs()),
                "{kind}: contributions {sum} vs score {}",
                dec.score
            );
        }
        // An ad-hoc history: served as a history, explained the same way.
        let (h_items, h_values) = (&items[..items.len() - 1], &values[..values.len() - 1]);
        if h_items.is_empty() {
            continue;
        }
        let served = model
            .scores(&Query::History {
                items: h_items,
                values: h_values,
            })
            .unwrap();
        for t in (0..n as u32).step_by((n / 5).max(1)) {
            let dec = d.decompose(h_items, h_values, t);
            assert!(
                close(dec.score, served[t as usize]),
                "{kind}: history of user {u}, item {t}: explained {} vs served {}",
                dec.score,
                served[t as usize]
            );
        }
    }
}
