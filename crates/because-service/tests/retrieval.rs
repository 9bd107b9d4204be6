//! A model served from its folder's approximate-retrieval index: the
//! served lists recall the exact ones, every served score is the model's
//! and the explanation adds up to it, and a folder whose index went stale
//! is served exactly and says why.

use because_core::testing::block_data;
use because_core::Recommender;
use because_models::index::{build_for, IndexPolicy};
use because_models::persist::{self, Meta};
use because_models::{Model, ModelSpec};
use because_service::{ModelHandle, RecommendRequest, SimilarRequest, Subject};
use std::path::Path;

fn save(model: &Model, dir: &Path, policy: IndexPolicy) {
    let meta = Meta {
        user_ids: (0..model.n_users()).map(|u| format!("u{u}")).collect(),
        item_ids: (0..model.n_items()).map(|i| format!("i{i}")).collect(),
        ..Meta::default()
    };
    persist::save(model, &meta, dir).unwrap();
    build_for(model, dir, policy).unwrap();
}

fn als(seed: u64) -> Model {
    let x = block_data(600, 3000, 25, seed);
    "als:factors=16,iterations=4"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap()
}

#[test]
fn served_from_the_index_scores_and_explanations_are_the_models() {
    let dir = tempfile::tempdir().unwrap();
    save(&als(1), dir.path(), IndexPolicy::Always);
    let exact = ModelHandle::open(dir.path()).unwrap();
    assert!(!exact.retrieval().approximate);
    let served = exact.approximate(true);
    let r = served.retrieval();
    assert!(
        r.approximate && r.index.is_some() && r.index_problem.is_none(),
        "{r:?}"
    );
    assert!(served.info().retrieval.index.unwrap().recall_at_10 >= 0.99);
    let (mut hit, mut all) = (0, 0);
    for u in (0..600).step_by(11) {
        let user = format!("u{u}");
        let req = RecommendRequest {
            explain: true,
            ..RecommendRequest::user(&user, 10)
        };
        let a = served.recommend(&req).unwrap();
        let e = exact.recommend(&RecommendRequest::user(&user, 10)).unwrap();
        assert_eq!(a.items.len(), 10);
        for it in &a.items {
            let x = it.explanation.as_ref().unwrap();
            // The same score, to float rounding (the paths' documented 1e-5).
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-6;
            assert!(
                close(x.score, it.score),
                "served {} vs explained {}",
                it.score,
                x.score
            );
            let sum: f32 = x.contributions.iter().map(|c| c.weight).sum::<f32>()
                + x.other_contributions
                + x.bias;
            assert!(
                x.exact && (sum - it.score).abs() <= 1e-3 * (1.0 + it.score.abs()),
                "{sum} vs {}",
                it.score
            );
            if let Some(same) = e.items.iter().find(|y| y.item == it.item) {
                assert!((same.score - it.score).abs() <= 1e-5 * it.score.abs().max(1e-3));
            }
        }
        hit += e
            .items
            .iter()
            .filter(|y| a.items.iter().any(|x| x.item == y.item))
            .count();
        all += e.items.len();
    }
    assert!(hit as f64 / all as f64 >= 0.97, "recall {hit}/{all}");
    // A history (a new user's, folded in) and similar items too.
    let h = RecommendRequest::new(
        Subject::History {
            history: vec!["i1".into(), "i2".into(), "i3".into()],
        },
        5,
    );
    let a = served.recommend(&h).unwrap();
    assert_eq!(a.items.len(), 5);
    assert!(a
        .items
        .iter()
        .all(|it| !["i1", "i2", "i3"].contains(&it.item.as_str())));
    let s = served
        .similar(&SimilarRequest {
            item: "i7".into(),
            k: 10,
        })
        .unwrap();
    let t = exact
        .similar(&SimilarRequest {
            item: "i7".into(),
            k: 10,
        })
        .unwrap();
    assert!(
        s.items
            .iter()
            .filter(|x| t.items.iter().any(|y| y.item == x.item))
            .count()
            >= 8
    );
}

#[test]
fn a_stale_index_is_not_served_and_the_model_says_why() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    save(&als(1), a.path(), IndexPolicy::Always);
    save(&als(2), b.path(), IndexPolicy::Never);
    for f in ["index.json", "index.safetensors"] {
        std::fs::copy(a.path().join(f), b.path().join(f)).unwrap();
    }
    let h = ModelHandle::open(b.path()).unwrap().approximate(true);
    let r = h.retrieval();
    assert!(!r.approximate && r.index.is_none(), "{r:?}");
    assert!(r.index_problem.unwrap().contains("stale"));
    assert_eq!(
        h.recommend(&RecommendRequest::user("u3", 10))
            .unwrap()
            .items
            .len(),
        10
    );
}
