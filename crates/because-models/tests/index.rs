//! The approximate-retrieval index of a model folder: what it retrieves is
//! what exact scoring ranks first (recall measured), its scores are the
//! model's, and a stale or corrupt index is never used.

use because_core::testing::block_data;
use because_core::{Query, Recommender, Request};
use because_models::index::{build_for, Index, IndexPolicy, Opened};
use because_models::persist::{self, Meta};
use because_models::{Model, ModelSpec};
use std::path::Path;

fn meta(m: &Model) -> Meta {
    Meta {
        user_ids: (0..m.n_users()).map(|u| format!("u{u}")).collect(),
        item_ids: (0..m.n_items()).map(|i| format!("i{i}")).collect(),
        ..Meta::default()
    }
}

fn fit(spec: &str, seed: u64) -> Model {
    let x = block_data(800, 3000, 30, seed);
    spec.parse::<ModelSpec>().unwrap().fit(&x).unwrap()
}

fn save(m: &Model, dir: &Path, policy: IndexPolicy) {
    persist::save(m, &meta(m), dir).unwrap();
    build_for(m, dir, policy).unwrap();
}

fn ready(dir: &Path, m: &Model) -> Index {
    match Index::open(dir, m) {
        Opened::Ready(i) => *i,
        other => panic!("{other:?}"),
    }
}

#[test]
fn served_lists_recall_the_exact_ones_with_the_models_own_scores() {
    for spec in ["als:factors=16,iterations=4", "bpr:factors=16,epochs=5"] {
        let m = fit(spec, 1);
        let dir = tempfile::tempdir().unwrap();
        save(&m, dir.path(), IndexPolicy::Always);
        let loaded = persist::load(dir.path()).unwrap().model;
        let index = ready(dir.path(), &loaded);
        let info = index.info();
        assert!(info.recall_at_10 >= 0.99, "{spec}: {info:?}");
        assert!(info.probe < info.lists, "{spec}: {info:?}");
        let (mut hit, mut all) = (0, 0);
        for u in (0..loaded.n_users() as u32).step_by(7) {
            let req = Request::new(Query::User(u), 10);
            let exact = loaded.recommend(&req).unwrap();
            let approx = index.recommend(&loaded, &req).unwrap();
            assert_eq!(approx.len(), 10);
            let scores = loaded.scores(&Query::User(u)).unwrap();
            let seen = loaded.history(u).0;
            for s in &approx {
                assert!(!seen.contains(&s.item), "{spec}: a seen item served");
                let want = scores[s.item as usize];
                assert!(
                    (s.score - want).abs() <= 1e-5 * want.abs().max(1e-3),
                    "{spec}: {} vs {want}",
                    s.score
                );
            }
            hit += exact
                .iter()
                .filter(|e| approx.iter().any(|a| a.item == e.item))
                .count();
            all += exact.len();
        }
        let recall = hit as f64 / all as f64;
        assert!(recall >= 0.97, "{spec}: recall@10 {recall}");
        // Similar items come from the same lists, scored by the model's cosine.
        let exact = loaded.similar_items(5, 10).unwrap();
        let approx = index.similar(&loaded, 5, 10).unwrap();
        let common = exact
            .iter()
            .filter(|e| approx.iter().any(|a| a.item == e.item))
            .count();
        assert!(common >= 8, "{spec}: similar {common} of 10");
        // Ad-hoc histories (fold-in) and deny-lists go through it too.
        let h = [1u32, 2, 3];
        let bag = Query::History {
            items: &h,
            values: &[1.0; 3],
        };
        let req = Request {
            deny: &[4, 5],
            ..Request::new(bag, 10)
        };
        let approx = index.recommend(&loaded, &req).unwrap();
        assert!(approx
            .iter()
            .all(|s| !h.contains(&s.item) && s.item != 4 && s.item != 5));
    }
}

#[test]
fn a_stale_or_corrupt_index_is_refused_and_saving_a_model_removes_its_old_index() {
    let (a, b) = (
        fit("als:factors=8,iterations=2", 1),
        fit("als:factors=8,iterations=2", 2),
    );
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    save(&a, da.path(), IndexPolicy::Always);
    save(&b, db.path(), IndexPolicy::Never);
    assert!(matches!(Index::open(db.path(), &b), Opened::Missing));
    for f in ["index.json", "index.safetensors"] {
        std::fs::copy(da.path().join(f), db.path().join(f)).unwrap();
    }
    match Index::open(db.path(), &b) {
        Opened::Unusable(why) => assert!(why.contains("stale"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Saving a model into a folder drops the index of the one before.
    persist::save(&b, &meta(&b), da.path()).unwrap();
    assert!(matches!(Index::open(da.path(), &b), Opened::Missing));
    // One flipped byte in the index's tensors.
    save(&a, da.path(), IndexPolicy::Always);
    let path = da.path().join("index.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    match Index::open(da.path(), &a) {
        Opened::Unusable(why) => assert!(why.contains("checksum"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn auto_indexes_large_catalogues_of_inner_product_models_only() {
    let small = fit("als:factors=4,iterations=1", 1);
    assert!(!IndexPolicy::Auto.wants(&small));
    assert!(IndexPolicy::Always.wants(&small));
    assert!(!IndexPolicy::Always.wants(&fit("itemknn", 1)));
    assert!("sometimes"
        .parse::<IndexPolicy>()
        .unwrap_err()
        .to_string()
        .contains("index"));
}
