//! One model, one ranking, on MovieLens-100k: for every user, the batch
//! (`recommendations.json`), a single user's recommendations and the
//! explanation of their top item give the same items and scores, and the
//! explanation's contributions add up to the score that was served.

use because_data::testing::ml100k_dir;
use because_data::{read_interactions, ReadOptions};
use because_models::persist::{self, Meta};
use because_models::ModelSpec;
use because_service::{ExplainRequest, ModelHandle, RecommendRequest, Subject};

#[test]
fn batch_single_and_explained_scores_agree_for_every_user() {
    let Some(dir) = ml100k_dir() else { return };
    let loaded = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    let d = &loaded.dataset;
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("model");
    // The configuration the gap was first seen with, and a tuned one.
    for spec in [
        "als:factors=32,regularization=0.01,alpha=1",
        "als:factors=32,regularization=5,iterations=11",
    ] {
        let model = spec
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&d.interactions)
            .unwrap();
        let meta = Meta {
            user_ids: d.users.ids().map(str::to_string).collect(),
            item_ids: d.items.ids().map(str::to_string).collect(),
            data_fingerprint: persist::fingerprint(&d.interactions),
            ..Meta::default()
        };
        persist::save(&model, &meta, &folder).unwrap();
        let h = ModelHandle::open(&folder).unwrap();
        let all = h.recommend_all(10).unwrap();
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-6;
        let mut worst = 0.0f32;
        let mut ties = 0;
        for (user, batch) in &all.users {
            let single = h.recommend(&RecommendRequest::user(user, 10)).unwrap();
            // The same items in the same order, but for items tied at f32
            // precision: the batch multiplies matrices and a single user
            // takes dot products, which round differently, so two items
            // whose scores agree to a few ulps may trade places.
            assert_eq!(batch.len(), single.items.len(), "{spec}: user {user}");
            for (k, (b, s)) in batch.iter().zip(&single.items).enumerate() {
                assert!(
                    close(b.score, s.score),
                    "{spec}: user {user}, rank {k}: {} {} vs {} {}",
                    b.item,
                    b.score,
                    s.item,
                    s.score
                );
                if b.item != s.item {
                    let tied = |item: &str| {
                        single
                            .items
                            .iter()
                            .chain(batch.iter())
                            .filter(|r| r.item == item)
                            .all(|r| close(r.score, s.score))
                    };
                    assert!(
                        tied(&b.item) && tied(&s.item),
                        "{spec}: user {user}'s top 10 differ at rank {k}: {} vs {}",
                        b.item,
                        s.item
                    );
                    ties += 1;
                }
            }
            let top = &single.items[0];
            let why = h
                .explain(&ExplainRequest {
                    subject: Subject::User { user: user.clone() },
                    item: top.item.clone(),
                    n: 10,
                    method: None,
                })
                .unwrap()
                .explanation;
            worst = worst.max((why.score - top.score).abs() / top.score.abs().max(1e-6));
            assert!(
                close(why.score, top.score),
                "{spec}: user {user}: explained {} vs served {}",
                why.score,
                top.score
            );
            assert!(why.exact, "{spec}: ALS decomposes exactly");
            let sum: f32 = why.contributions.iter().map(|c| c.weight).sum::<f32>()
                + why.other_contributions
                + why.bias;
            assert!(
                (sum - top.score).abs() <= 1e-4 * (1.0 + top.score.abs()),
                "{spec}: user {user}: contributions {sum} vs served {}",
                top.score
            );
        }
        eprintln!(
            "{spec}: {} users agree ({ties} places held by items tied at f32 precision); largest relative gap between the explained and the served score {worst:.2e}",
            all.users.len()
        );
        assert!(
            ties * 1000 <= all.users.len() * 10,
            "{spec}: {ties} tied places"
        );
    }
}
