//! The two-tower model's explanations on the demo data (item genres and
//! years, user age groups and countries): what is explained is what was
//! served, the shares add up, and the feature reason names features that
//! raise the score.

use because_core::{Query, Recommender, Request, SideInfo};
use because_data::features::read_features;
use because_data::synth::{write_files, Size, SynthConfig};
use because_data::{read_interactions, ReadOptions};
use because_explain::reasons::{Evidence, ItemRef};
use because_explain::{Explainer, Method, Subject};
use because_models::ModelSpec;
use std::sync::Arc;

#[test]
fn twotower_explanations_split_the_served_score_over_history_and_features() {
    because_neural::register().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let files = write_files(&SynthConfig::sized(Size::Tiny), tmp.path()).unwrap();
    let data = read_interactions(&files.interactions, &ReadOptions::default())
        .unwrap()
        .dataset;
    let items = read_features(&files.items, &data.items, None).unwrap();
    let users = read_features(&files.users, &data.users, None).unwrap();
    let side = SideInfo {
        users: Some(Arc::new(users.table().unwrap())),
        items: Some(Arc::new(items.table().unwrap())),
    };
    let m = "twotower:dim=16,hidden=16,epochs=3,min_support=2"
        .parse::<ModelSpec>()
        .unwrap()
        .fit_with(
            &data.interactions,
            &side,
            0,
            &mut because_core::no_observer(),
        )
        .unwrap();
    assert_eq!(
        because_explain::methods(&m),
        vec![
            Method::IntegratedGradients,
            Method::Occlusion,
            Method::Similarity
        ]
    );
    let name = |i: u32| ItemRef {
        index: i,
        id: data.items.id(i).to_string(),
        title: items.title(i).unwrap_or("").to_string(),
    };
    let mut x = Explainer::new(&m, &name);
    x.n = 3;
    let (mut feature_reasons, mut counterfactuals) = (0, 0);
    for u in (0..m.n_users() as u32).step_by(7) {
        let recs = m.recommend(&Request::new(Query::User(u), 3)).unwrap();
        let (hi, hv) = m.history(u);
        let subject = Subject {
            items: hi,
            values: hv,
            user: Some(u),
            latest_session: None,
            activity: None,
            features: None,
        };
        let targets: Vec<u32> = recs.iter().map(|s| s.item).collect();
        for (rank, (e, s)) in x
            .explain_many(&subject, &targets)
            .unwrap()
            .iter()
            .zip(&recs)
            .enumerate()
        {
            // What is explained is what was served.
            assert!(
                (e.score - s.score).abs() <= 1e-4 * (1.0 + s.score.abs()),
                "user {u}: explained {} vs served {}",
                e.score,
                s.score
            );
            assert_eq!(e.method, Method::IntegratedGradients);
            let inputs = e.inputs.as_ref().expect("feature shares");
            // History shares plus bias are the score; the bias is the
            // baseline plus the features' and IDs' shares.
            let shown: f32 = e.contributions.iter().map(|c| c.weight).sum();
            let total = shown + e.other_contributions + e.bias;
            assert!((total - e.score).abs() <= 1e-4 * (1.0 + e.score.abs()));
            let features: f32 = inputs
                .user_inputs
                .iter()
                .chain(&inputs.item_inputs)
                .filter(|s| s.input != "history")
                .map(|s| s.share)
                .sum();
            assert!(
                (inputs.baseline + features - e.bias).abs() <= 1e-3 * (1.0 + e.bias.abs()),
                "bias {} vs baseline {} + features {features}",
                e.bias,
                inputs.baseline
            );
            for r in &e.reasons {
                // Counterfactuals re-rank this user as they were served:
                // they start from the item's place in the list.
                if let Evidence::Counterfactual {
                    verified: true,
                    rank_before,
                    ..
                } = &r.evidence
                {
                    counterfactuals += 1;
                    assert_eq!(*rank_before, rank + 1, "user {u}");
                }
                if let Evidence::Features {
                    user_features,
                    item_features,
                } = &r.evidence
                {
                    feature_reasons += 1;
                    for s in user_features.iter().chain(item_features) {
                        assert!(s.share > 0.0, "{s:?}");
                        assert!(r.sentence.contains(&s.input), "{}", r.sentence);
                    }
                    // Only the user's own features are named.
                    let table = side.users.as_ref().unwrap();
                    let (own, _) = table.row(u);
                    for s in user_features {
                        assert!(
                            own.iter().any(|&t| table.token_name(t) == s.input),
                            "{} is not user {u}'s",
                            s.input
                        );
                    }
                }
            }
        }
    }
    assert!(feature_reasons > 0, "no feature reason at all");
    assert!(counterfactuals > 0, "no verified counterfactual at all");
}

/// The hybrid's explanation splits the served score exactly into the
/// session part and the history part, and explains each part by its own
/// model: EASE's part exactly, SASRec's by occlusion.
#[test]
fn hybrid_explanations_split_the_score_into_session_and_history() {
    because_neural::register().unwrap();
    let x = because_core::testing::block_data(40, 30, 8, 7);
    let m = "hybrid:session=sasrec:dim=8;heads=1;layers=1;epochs=2;max_len=8,history=ease:lambda=20,weight=0.4,session_items=5"
        .parse::<ModelSpec>()
        .unwrap()
        .fit(&x)
        .unwrap();
    assert_eq!(because_explain::methods(&m), vec![Method::Fused]);
    for u in (0..m.n_users() as u32).step_by(5) {
        let recs = m.recommend(&Request::new(Query::User(u), 3)).unwrap();
        let (items, values) = m.history(u);
        for s in &recs {
            let e = because_explain::explain(&m, items, values, s.item).unwrap();
            assert!((e.score - s.score).abs() <= 1e-4 * (1.0 + s.score.abs()));
            assert_eq!(e.parts.len(), 2);
            let shares: f32 = e.parts.iter().map(|p| p.share).sum();
            assert!((shares - e.score).abs() <= 1e-4 * (1.0 + e.score.abs()));
            let (session, history) = (&e.parts[0], &e.parts[1]);
            assert_eq!((session.name, history.name), ("session", "history"));
            assert_eq!(session.method, Method::Occlusion);
            assert_eq!(history.method, Method::Exact);
            // The session part reads only the latest five items.
            let latest = &items[items.len().saturating_sub(5)..];
            assert!(session
                .contributions
                .iter()
                .all(|c| latest.contains(&c.item)));
            // EASE's part is exact: its scaled contributions plus the
            // offset make its share.
            let f = because_models::Fused::parts(m.fused().unwrap(), items, values).unwrap();
            let sum: f32 = history.contributions.iter().map(|c| c.weight).sum();
            assert!(
                (sum + f[1].offset - history.share).abs() <= 1e-4 * (1.0 + history.share.abs()),
                "{sum} + {} vs {}",
                f[1].offset,
                history.share
            );
            // The contributions over the history are the two parts' together.
            let total: f32 = e.contributions.iter().map(|c| c.weight).sum();
            let both: f32 = e
                .parts
                .iter()
                .flat_map(|p| &p.contributions)
                .map(|c| c.weight)
                .sum();
            assert!((total - both).abs() <= 1e-4 * (1.0 + both.abs()));
        }
    }
}
