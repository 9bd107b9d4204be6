//! Fidelity of the explainers on MovieLens-100k (fixed seeds).
//!
//! * Exact decompositions add up to the score (1e-4 relative) for EASE,
//!   item-kNN, ALS and PureSVD.
//! * Removing the 3 items an explanation names lowers the item's rank at
//!   least 3× as much, on average, as removing 3 random history items.
//! * Verified counterfactuals of at most 5 items exist for at least 80% of
//!   users' top-1 recommendations from ALS and EASE.

use because_core::{Part, Query, Recommender, Request, Split, SplitMethod};
use because_data::testing::ml100k_dir;
use because_data::{read_interactions, ReadOptions};
use because_explain::{counterfactual, deletion_test, explain};
use because_models::{Model, ModelSpec};

fn train() -> Option<because_core::Interactions> {
    let dir = ml100k_dir()?;
    let l = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    let x = l.dataset.interactions.with_constant_values(1.0);
    let s = Split::new(
        &x,
        SplitMethod::UserTemporal {
            validation: 0.1,
            test: 0.1,
        },
        42,
        true,
    )
    .unwrap();
    Some(s.part(&x, Part::Train))
}

/// Every 10th user's top-1 recommendation for their training history.
fn cases(m: &Model) -> Vec<(u32, u32)> {
    (0..m.n_users() as u32)
        .step_by(10)
        .map(|u| {
            let (items, values) = m.history(u);
            let top = m
                .recommend(&Request::new(Query::History { items, values }, 1))
                .unwrap();
            (u, top[0].item)
        })
        .collect()
}

const SPECS: [&str; 4] = [
    "ease:lambda=100",
    "itemknn",
    "als:regularization=5",
    "svd:factors=32",
];

#[test]
fn decompositions_add_up_and_name_what_matters() {
    let Some(x) = train() else { return };
    for spec in SPECS {
        let m = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        let (mut explained, mut random) = (0.0, 0.0);
        let cs = cases(&m);
        for &(u, item) in &cs {
            let (items, values) = m.history(u);
            let e = explain(&m, items, values, item).unwrap();
            let score = m.scores(&Query::History { items, values }).unwrap()[item as usize];
            let total: f32 = e.contributions.iter().map(|c| c.weight).sum::<f32>() + e.bias;
            assert!(e.exact, "{spec}");
            assert!(
                (total - score).abs() <= 1e-4 * score.abs().max(1e-3),
                "{spec} user {u}: contributions {total} vs score {score}"
            );
            assert!(
                (e.score - score).abs() <= 1e-4 * score.abs().max(1e-3),
                "{spec} user {u}: {} vs {score}",
                e.score
            );
            let d = deletion_test(&m, items, values, &e, 3, 5, u as u64).unwrap();
            explained += d.explained_drop;
            random += d.random_drop;
        }
        let (explained, random) = (explained / cs.len() as f64, random / cs.len() as f64);
        eprintln!("{spec}: removing the 3 named items drops the rank by {explained:.1} on average, 3 random ones by {random:.1}");
        assert!(
            explained >= 3.0 * random,
            "{spec}: deletion fidelity {explained:.2} < 3 × {random:.2}"
        );
    }
}

/// Share of top-1 recommendations with a verified counterfactual of at most
/// 5 items that pushes the item out of the top `n`, and their mean size.
fn counterfactual_rate(m: &Model, n: usize) -> (f64, f64) {
    let cs = cases(m);
    let (mut ok, mut sizes) = (0usize, 0usize);
    for &(u, item) in &cs {
        let (items, values) = m.history(u);
        let e = explain(m, items, values, item).unwrap();
        let c = counterfactual(m, items, values, &e, n, 5).unwrap();
        assert_eq!(c.rank_before, 1, "the explained item is the top-1");
        if c.verified {
            // Verified means re-scoring without the removed items really pushes it out.
            let (ki, kv): (Vec<u32>, Vec<f32>) = items
                .iter()
                .zip(values)
                .filter(|(i, _)| !c.removed.contains(i))
                .map(|(&i, &v)| (i, v))
                .unzip();
            assert!(because_explain::rank_of(m, &ki, &kv, items, item).unwrap() > n);
            ok += 1;
            sizes += c.removed.len();
        }
    }
    (ok as f64 / cs.len() as f64, sizes as f64 / ok.max(1) as f64)
}

#[test]
fn counterfactuals_are_small_and_verified() {
    let Some(x) = train() else { return };
    for spec in ["als:regularization=5", "ease:lambda=100"] {
        let m = spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        let (top1, size1) = counterfactual_rate(&m, 1);
        let (top10, size10) = counterfactual_rate(&m, 10);
        eprintln!(
            "{spec}: verified counterfactuals (at most 5 items) out of the top 1 for {:.0}% (mean size {size1:.2}), out of the top 10 for {:.0}% (mean size {size10:.2})",
            100.0 * top1,
            100.0 * top10
        );
        // The bar: out of the top spot for at least 80%. Out of the whole
        // top 10 the rate is far lower (EASE 75%, ALS 38% when measured):
        // a beam search over sets of up to 5 of the 60 strongest supporters
        // (width 64, exact margins for EASE) found the same 75% for EASE,
        // and 41% for ALS (width 16), so for most of the rest no
        // counterfactual that small exists. The top-10 floors below guard
        // the search against regressions.
        assert!(top1 >= 0.8, "{spec}: {top1:.2} < 0.8");
        let floor = if spec.starts_with("ease") { 0.7 } else { 0.33 };
        assert!(
            top10 >= floor,
            "{spec}: out of the top 10 {top10:.2} < {floor}"
        );
    }
}
