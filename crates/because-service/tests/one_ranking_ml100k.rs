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
        for (user, batch) in &all.users {
            let single = h.recommend(&RecommendRequest::user(user, 10)).unwrap();
            let ids = |r: &[because_service::Recommended]| {
                r.iter().map(|r| r.item.clone()).collect::<Vec<_>>()
            };
            assert_eq!(
                ids(batch),
                ids(&single.items),
                "{spec}: user {user}'s top 10"
            );
            for (b, s) in batch.iter().zip(&single.items) {
                assert!(close(b.score, s.score), "{spec}: user {user}, {}", b.item);
            }
            let top = &single.items[0];
            let why = h
                .explain(&ExplainRequest {
                    subject: Subject::User { user: user.clone() },
                    item: top.item.clone(),
                    n: 10,
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
            "{spec}: {} users agree; largest relative gap between the explained and the served score {worst:.2e}",
            all.users.len()
        );
    }
}
