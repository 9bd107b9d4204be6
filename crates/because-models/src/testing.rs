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
