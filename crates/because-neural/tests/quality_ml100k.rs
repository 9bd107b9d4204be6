//! Quality bars on MovieLens-100k with fixed seeds (the neural-models issue).
//!
//! Protocol A: per-user temporal 80/10/10, every rating an interaction, full
//! ranking; for test, each user's input sequence is train + validation, in
//! time order; items already seen are excluded.

use because_core::{Interactions, Part, Split, SplitMethod};
use because_data::testing::ml100k_dir;
use because_data::{read_interactions, ReadOptions};
use because_eval::{evaluate, Protocol};
use because_models::{Model, ModelSpec};
use std::ops::ControlFlow;

struct Parts {
    train: Interactions,
    val: Interactions,
    test: Interactions,
}

fn parts() -> Option<Parts> {
    let dir = ml100k_dir()?;
    let l = read_interactions(&dir.join("ratings.csv"), &ReadOptions::default()).unwrap();
    let x = l.dataset.interactions.with_constant_values(1.0);
    // `BECAUSE_SPLIT=leave-last-out` measures the same models under
    // leave-last-out instead (figures only: the bars are for protocol A).
    let method = if leave_last_out() {
        SplitMethod::LeaveLastOut
    } else {
        SplitMethod::UserTemporal {
            validation: 0.1,
            test: 0.1,
        }
    };
    let s = Split::new(&x, method, 42, true).unwrap();
    Some(Parts {
        train: s.part(&x, Part::Train),
        val: s.part(&x, Part::Validation),
        test: s.part(&x, Part::Test),
    })
}

fn leave_last_out() -> bool {
    std::env::var("BECAUSE_SPLIT").is_ok_and(|s| s == "leave-last-out")
}

/// Asserts a bar under protocol A; under leave-last-out only reports.
fn bar(name: &str, value: f64, min: f64) {
    if leave_last_out() {
        eprintln!("{name} (leave-last-out) test ndcg@10 {value:.4}");
    } else {
        assert!(value >= min, "{name} test NDCG@10 {value:.4} < {min}");
    }
}

fn ndcg(
    m: &dyn because_core::Recommender,
    test: &Interactions,
    extra: Option<&Interactions>,
) -> f64 {
    let protocol = Protocol {
        ks: vec![10],
        extra_history: extra,
        fold_in: extra.is_some(),
        ..Protocol::new(Vec::new())
    };
    evaluate(m, test, &protocol)
        .unwrap()
        .mean("ndcg@10")
        .unwrap()
}

/// Fits `spec`, watching validation NDCG@10 every `every` epochs and keeping
/// the epoch count where it peaked (early stopping with `patience` checks);
/// returns the model refitted for that many epochs and its test NDCG@10.
fn fit_early_stopped(spec: &str, p: &Parts, every: usize, patience: usize) -> (Model, f64) {
    let spec: ModelSpec = spec.parse().unwrap();
    let mut best = (0.0f64, 0usize);
    let mut since = 0;
    let mut observer = |e: &because_core::Epoch<'_>| {
        let Some(m) = e.model else {
            return ControlFlow::Continue(());
        };
        let v = ndcg(m, &p.val, None);
        eprintln!(
            "  epoch {:>3}: loss {:.4}, validation ndcg@10 {v:.4} ({:.1} s)",
            e.epoch,
            e.loss.unwrap_or(f64::NAN),
            e.elapsed.as_secs_f64()
        );
        if v > best.0 {
            best = (v, e.epoch);
            since = 0;
        } else {
            since += 1;
        }
        if since >= patience {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    spec.fit_observed(&p.train, every, &mut observer).unwrap();
    let epochs = spec.epoch_key().unwrap();
    let chosen = spec.clone().with(epochs, best.1);
    eprintln!(
        "  best validation ndcg@10 {:.4} at epoch {}",
        best.0, best.1
    );
    let model = chosen.fit(&p.train).unwrap();
    let t = ndcg(&model, &p.test, Some(&p.val));
    (model, t)
}

/// Fits `spec` for its configured epochs, printing validation NDCG@10
/// every `every` epochs; returns the model and its test NDCG@10.
fn fit_watched(spec: &str, p: &Parts, every: usize) -> (Model, f64) {
    let spec: ModelSpec = spec.parse().unwrap();
    let mut observer = |e: &because_core::Epoch<'_>| {
        if let Some(m) = e.model {
            eprintln!(
                "  epoch {:>3}: loss {:.4}, validation ndcg@10 {:.4} ({:.1} s)",
                e.epoch,
                e.loss.unwrap_or(f64::NAN),
                ndcg(m, &p.val, None),
                e.elapsed.as_secs_f64()
            );
        }
        ControlFlow::Continue(())
    };
    let model = spec.fit_observed(&p.train, every, &mut observer).unwrap();
    let t = ndcg(&model, &p.test, Some(&p.val));
    (model, t)
}

/// The deletion test of every explanation method over sampled users:
/// (method, rank drop when the named items go, when random ones go).
fn fidelity(model: &Model, users: usize) -> Vec<(String, f64, f64)> {
    let opts = because_explain::FidelityOptions {
        users,
        n: 5,
        k: 3,
        draws: 3,
        max_size: 3,
        seed: 7,
    };
    let n = because_core::Recommender::n_users(model) as u32;
    let sample: Vec<u32> = (0..users as u32).map(|k| k * n / users as u32).collect();
    let measured = because_explain::measure(
        model,
        &sample,
        opts.n,
        opts.k,
        opts.draws,
        opts.max_size,
        opts.seed,
    )
    .unwrap();
    let summary = because_explain::FidelitySummary::new(model, &measured, None, &opts);
    summary
        .methods
        .iter()
        .map(|m| {
            (
                m.method.name().to_string(),
                m.deletion_rank_drop_named.mean,
                m.deletion_rank_drop_random.mean,
            )
        })
        .collect()
}

/// SASRec at its default size, for the number of epochs at which
/// validation NDCG@10 peaked in a run with early stopping (30 of 200,
/// patience 4 checks of 5 epochs; `BECAUSE_SASREC_SPEC` and
/// `BECAUSE_SASREC_EARLY_STOP=1` rerun that search), beats RecBole's 0.126;
/// occlusion names items whose removal costs at least 3× the rank that
/// random removals cost; every other method's figure is reported.
#[test]
fn sasrec_protocol_a() {
    because_neural::register().unwrap();
    let Some(p) = parts() else { return };
    let spec = std::env::var("BECAUSE_SASREC_SPEC").unwrap_or_else(|_| "sasrec:epochs=30".into());
    let (model, test) = if std::env::var_os("BECAUSE_SASREC_EARLY_STOP").is_some() {
        fit_early_stopped(&spec, &p, 5, 4)
    } else {
        fit_watched(&spec, &p, 10)
    };
    eprintln!("sasrec test ndcg@10 {test:.4}");
    bar("SASRec", test, 0.130);
    if leave_last_out() {
        return;
    }
    let methods = fidelity(&model, 20);
    for (m, named, random) in &methods {
        eprintln!(
            "  deletion test, {m}: named {named:.1} ranks, random {random:.1} ranks ({:.1}x)",
            named / random.max(1e-9)
        );
    }
    let (_, named, random) = &methods[0];
    assert_eq!(methods[0].0, "occlusion");
    assert!(
        *named >= 3.0 * random,
        "occlusion {named:.1} vs random {random:.1}"
    );
}

/// item2vec's mean-vector recommendations beat popularity under protocol A.
#[test]
fn item2vec_beats_popularity() {
    because_neural::register().unwrap();
    let Some(p) = parts() else { return };
    let spec = std::env::var("BECAUSE_ITEM2VEC_SPEC").unwrap_or_else(|_| "item2vec".into());
    let (_, test) = fit_watched(&spec, &p, 5);
    let pop = ndcg(
        &"pop".parse::<ModelSpec>().unwrap().fit(&p.train).unwrap(),
        &p.test,
        Some(&p.val),
    );
    eprintln!("item2vec test ndcg@10 {test:.4}, popularity {pop:.4}");
    if !leave_last_out() {
        assert!(test > pop, "item2vec {test:.4} vs popularity {pop:.4}");
    }
    let ease = ndcg(
        &"ease:lambda=500"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&p.train)
            .unwrap(),
        &p.test,
        Some(&p.val),
    );
    eprintln!("ease:lambda=500 test ndcg@10 {ease:.4}");
}

/// GRU4Rec beats RecBole's 0.120 (the bar: 0.122) under protocol A,
/// trained for the 8 epochs at which validation NDCG@10 peaked in a 10-epoch
/// run checked every 2 epochs (0.1426; 0.1352 at epoch 10, whose test
/// NDCG@10 is 0.1232).
#[test]
fn gru4rec_protocol_a() {
    because_neural::register().unwrap();
    let Some(p) = parts() else { return };
    let spec = std::env::var("BECAUSE_GRU4REC_SPEC").unwrap_or_else(|_| "gru4rec:epochs=8".into());
    let (model, test) = fit_watched(&spec, &p, 2);
    eprintln!("gru4rec test ndcg@10 {test:.4}");
    bar("GRU4Rec", test, 0.122);
    if leave_last_out() {
        return;
    }
    let methods = fidelity(&model, 8);
    for (m, named, random) in &methods {
        eprintln!(
            "  deletion test, {m}: named {named:.1} ranks, random {random:.1} ranks ({:.1}x)",
            named / random.max(1e-9)
        );
    }
    assert_eq!(methods[0].0, "occlusion");
    assert!(
        methods[0].1 > methods[0].2,
        "occlusion must beat random deletion: {methods:?}"
    );
}
