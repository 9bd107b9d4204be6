//! The experiment method end to end on generated data: given parts against
//! an internal split, the model to deploy, grids checked before fitting,
//! and one record for every command.

use because_core::testing::block_data;
use because_core::{Dataset, Part, Split, SplitMethod, Vocab};
use because_eval::experiment::{
    compare, fit_production, hold_out_latest, train, tune, EarlyStopping, Error, EvaluationFile,
    Final, Grid, Parts, Search, Setup, Source, TuneOptions, Values, FORMAT_VERSION,
};
use because_models::ModelSpec;
use std::collections::HashSet;

fn dataset() -> Dataset {
    let x = block_data(60, 30, 8, 11);
    Dataset {
        users: Vocab::from_ids((0..x.n_users()).map(|u| format!("u{u}"))),
        items: Vocab::from_ids((0..x.n_items()).map(|i| format!("i{i}"))),
        interactions: x,
        has_time: true,
        ..Default::default()
    }
}

fn specs(s: &[&str]) -> Vec<ModelSpec> {
    s.iter().map(|s| s.parse().unwrap()).collect()
}

const METHOD: SplitMethod = SplitMethod::UserTemporal {
    validation: 0.15,
    test: 0.15,
};

#[test]
fn given_parts_evaluate_as_the_same_split_made_internally() {
    let d = dataset();
    let internal = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    // The same split as three logs, each with its own vocabulary, as
    // `because split` writes them.
    let split = Split::new(&d.interactions, METHOD, 5, true).unwrap();
    let part = |p: Part| {
        let keep: Vec<bool> = split.assignment().iter().map(|&a| a == p).collect();
        d.retain(&keep)
    };
    let (t, v, s) = (part(Part::Train), part(Part::Validation), part(Part::Test));
    assert!(v.users.len() < d.users.len() || v.items.len() < d.items.len());
    let given = Parts::given(
        ("train", &t),
        ("validation", &v),
        ("test", &s),
        Values::Auto,
    )
    .unwrap();
    assert_eq!(given.report, internal.report);
    assert_eq!(given.users.len(), internal.users.len());
    assert_eq!(given.items.len(), internal.items.len());
    let setup = Setup::new(vec![5, 10]);
    let models = specs(&["pop", "itemknn", "ease:lambda=5"]);
    let a = compare(&internal, &models, &setup, None, &mut |_, _| {}).unwrap();
    let b = compare(&given, &models, &setup, None, &mut |_, _| {}).unwrap();
    for (x, y) in a.comparison.trials.iter().zip(&b.comparison.trials) {
        assert_eq!(x.validation.table(), y.validation.table(), "{}", x.spec);
        assert_eq!(x.test.table(), y.test.table(), "{}", x.spec);
    }
    assert_eq!(a.comparison.best, b.comparison.best);
    assert_eq!(a.comparison.significance, b.comparison.significance);
    assert!(matches!(given.source, Source::Given { .. }));
}

#[test]
fn the_model_to_deploy_has_every_interaction() {
    let d = dataset();
    let parts = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    let spec: ModelSpec = "ease:lambda=5".parse().unwrap();
    let model = fit_production(&spec, &parts).unwrap();
    let pairs: HashSet<(u32, u32)> = d.interactions.iter().map(|r| (r.user, r.item)).collect();
    assert_eq!(model.train().ui.nnz(), pairs.len());
    let evaluated = parts.training().train_and_validation().unwrap();
    assert!(model.train().ui.nnz() > evaluated.len());
}

#[test]
fn a_bad_grid_value_fails_before_any_fit() {
    let d = dataset();
    let parts = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    let base: ModelSpec = "als:iterations=2".parse().unwrap();
    // The bad value comes last: a search that fitted as it went would try
    // three configurations first.
    let grid = Grid::parse(&["factors=2,4", "regularization=0.1,-1"]).unwrap();
    let options = TuneOptions {
        metric: "ndcg@10".parse().unwrap(),
        search: Search::Grid,
        early_stopping: None,
        check_every: 1,
        final_mode: Final::Refit,
    };
    let mut fitted = 0;
    let e = tune(&parts, &base, &grid, &options, &mut |_| fitted += 1).unwrap_err();
    assert_eq!(fitted, 0);
    assert!(
        matches!(&e, Error::GridValue { key, .. } if key == "regularization"),
        "{e}"
    );
    assert!(e.to_string().contains("`regularization`"), "{e}");
}

#[test]
fn tuning_chooses_on_validation_and_stops_early() {
    let d = dataset();
    let parts = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    let base: ModelSpec = "bpr:epochs=30".parse().unwrap();
    let grid = Grid::parse(&["factors=2,8"]).unwrap();
    let options = TuneOptions {
        metric: "ndcg@10".parse().unwrap(),
        search: Search::Grid,
        early_stopping: Some(1),
        check_every: 5,
        final_mode: Final::Refit,
    };
    let mut seen = Vec::new();
    let tuned = tune(&parts, &base, &grid, &options, &mut |t| {
        seen.push(t.spec.to_string())
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    let best = tuned
        .trials
        .iter()
        .map(|t| t.validation)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(tuned.trials[tuned.chosen].validation, best);
    // Early stopping keeps the best epoch count in the configuration.
    for t in &tuned.trials {
        if let Some(e) = t.best_epoch {
            assert_eq!(t.spec.params["epochs"], e.to_string());
            assert_eq!(e % 5, 0);
        }
    }
    assert_eq!(tuned.comparison.selected_by, "validation ndcg@10");
    let file = EvaluationFile::tuned(&parts, &tuned);
    assert_eq!(file.tuning[0].trials.len(), 2);
    assert_eq!(file.best, tuned.chosen_spec().to_string());
}

/// `train` with early stopping: it holds out each sampled user's latest
/// interaction, stops after `patience` checks without a gain, records
/// every check, and refits on everything for the best check's epochs; an
/// explicit epoch count and a kind without epochs train as given.
#[test]
fn train_stops_early_and_refits_on_everything() {
    let d = dataset();
    let x = &d.interactions;
    let (rest, held) = hold_out_latest(x, 25, 3);
    assert_eq!(held.len(), 25);
    assert_eq!(rest.len() + held.len(), x.len());
    for u in 0..x.n_users() as u32 {
        if let (Some(&h), Some(&latest)) = (held.user_times(u).first(), x.user_times(u).last()) {
            assert_eq!(
                h, latest,
                "user {u}: the held-out interaction is the latest"
            );
            assert_eq!(held.user_items(u).len(), 1);
        }
    }
    let early = EarlyStopping {
        patience: 2,
        check_every: 2,
        users: 40,
    };
    let fit = |spec: &str| {
        let mut epochs = 0;
        let t = train(
            &spec.parse().unwrap(),
            &d,
            Values::Auto,
            &|_| 1.0,
            Vec::new(),
            &because_core::SideInfo::none(),
            Some(&early),
            &mut |_| {
                epochs += 1;
                std::ops::ControlFlow::Continue(())
            },
        )
        .unwrap();
        (t, epochs)
    };
    let (t, observed) = fit("bpr:factors=8");
    let s = t.stopped.as_ref().expect("bpr stops early by default");
    assert_eq!(s.validation_users, 40);
    assert!(!s.checks.is_empty() && s.checks.iter().all(|c| c.epoch % 2 == 0));
    let best = s.best_epoch.unwrap();
    // The best check is the last that gained on the one before it (beyond
    // the noise): at least the first check's score.
    let best_ndcg = s.checks.iter().find(|c| c.epoch == best).unwrap().ndcg;
    assert!(best_ndcg >= s.checks[0].ndcg, "{s:?}");
    // Stopped after `patience` checks without a gain, or at the default's end.
    let after = s.checks.iter().filter(|c| c.epoch > best).count();
    assert!(after == 2 || s.epochs_run == 100, "{s:?}");
    assert_eq!(s.epochs_run, s.checks.last().unwrap().epoch);
    // The saved model: every interaction, the best epochs.
    assert_eq!(t.interactions, x.len());
    assert_eq!(t.model.spec().params["epochs"], best.to_string());
    assert_eq!(t.meta.metrics.early_stopping.as_ref(), Some(s));
    // The losses (for kinds that report one) are the refit's.
    let losses = t.meta.metrics.losses.len();
    assert!(losses == 0 || losses == best, "{losses} losses");
    assert_eq!(
        observed,
        s.epochs_run + best,
        "the search's epochs, then the refit's"
    );
    // As given: an explicit epoch count, and a kind without epochs.
    let (t, _) = fit("bpr:factors=8,epochs=3");
    assert!(t.stopped.is_none());
    assert_eq!(t.model.spec().params["epochs"], "3");
    assert!(fit("ease").0.stopped.is_none());
}

#[test]
fn the_record_is_versioned_and_round_trips() {
    let d = dataset();
    let parts = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    let setup = Setup::new(vec![10]);
    let c = compare(
        &parts,
        &specs(&["pop", "ease:lambda=5"]),
        &setup,
        None,
        &mut |_, _| {},
    )
    .unwrap()
    .comparison;
    // The best is the best on validation, whatever test says.
    let v = |i: usize| c.trials[i].validation.mean("ndcg@10").unwrap();
    assert_eq!(c.best, usize::from(v(1) > v(0)));
    let file = EvaluationFile::new("evaluate", &parts, &setup, &c);
    assert_eq!(file.format_version, FORMAT_VERSION);
    assert_eq!(file.selected_by, "validation ndcg@10");
    let text = serde_json::to_string(&file).unwrap();
    let back: EvaluationFile = serde_json::from_str(&text).unwrap();
    // JSON numbers read back to within a unit in the last place.
    assert_eq!((&back.data, &back.protocol), (&file.data, &file.protocol));
    assert_eq!(
        (&back.best, &back.tuning, &back.production),
        (&file.best, &file.tuning, &file.production)
    );
    for (x, y) in back.results.iter().zip(&file.results) {
        assert_eq!(
            x.test.keys().collect::<Vec<_>>(),
            y.test.keys().collect::<Vec<_>>()
        );
        for (a, b) in x.test.values().zip(y.test.values()) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0));
        }
    }
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Fields that do not apply are there, as null (or no searches).
    assert!(value["tuning"].as_array().is_some_and(Vec::is_empty));
    assert!(value["production"].is_null());
    assert_eq!(
        value["results"][1]["test"]["ndcg@10"],
        c.trials[1].test.mean("ndcg@10").unwrap()
    );
}

#[test]
fn rating_predictors_need_ratings_and_get_errors() {
    let mut d = dataset();
    let spec: ModelSpec = "mf:factors=2,epochs=3".parse().unwrap();
    let parts = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    let e = compare(
        &parts,
        std::slice::from_ref(&spec),
        &Setup::new(vec![10]),
        None,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoRatings { .. }), "{e}");
    let values: Vec<f32> = (0..d.interactions.len())
        .map(|k| (k % 5 + 1) as f32)
        .collect();
    d.interactions = d.interactions.with_values(values).unwrap();
    d.has_ratings = true;
    let parts = Parts::split(&d, METHOD, 5, Values::Auto).unwrap();
    // Rankers see every rating as one interaction; the predictor sees the ratings.
    assert!(parts.training().train.values().iter().all(|&v| v == 1.0));
    assert!(parts.ratings().train.values().iter().any(|&v| v > 1.0));
    let c = compare(&parts, &[spec], &Setup::new(vec![10]), None, &mut |_, _| {})
        .unwrap()
        .comparison;
    let r = c.trials[0].rating_errors.unwrap();
    assert!(r.rmse.is_finite() && r.mae <= r.rmse);
}
