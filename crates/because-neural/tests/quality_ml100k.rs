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
    let method = SplitMethod::UserTemporal {
        validation: 0.1,
        test: 0.1,
    };
    let s = Split::new(&x, method, 42, true).unwrap();
    Some(Parts {
        train: s.part(&x, Part::Train),
        val: s.part(&x, Part::Validation),
        test: s.part(&x, Part::Test),
    })
}

fn ndcg(m: &dyn because_core::Recommender, test: &Interactions, extra: Option<&Interactions>) -> f64 {
    let protocol = Protocol {
        ks: vec![10],
        extra_history: extra,
        fold_in: extra.is_some(),
        ..Protocol::new(Vec::new())
    };
    evaluate(m, test, &protocol).unwrap().mean("ndcg@10").unwrap()
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
    eprintln!("  best validation ndcg@10 {:.4} at epoch {}", best.0, best.1);
    let model = chosen.fit(&p.train).unwrap();
    let t = ndcg(&model, &p.test, Some(&p.val));
    (model, t)
}

#[test]
fn sasrec_protocol_a() {
    because_neural::register().unwrap();
    let Some(p) = parts() else { return };
    let spec = std::env::var("BECAUSE_SASREC_SPEC").unwrap_or_else(|_| "sasrec:epochs=200".into());
    let (_, test) = fit_early_stopped(&spec, &p, 5, 4);
    eprintln!("sasrec test ndcg@10 {test:.4}");
    assert!(test >= 0.130, "SASRec test NDCG@10 {test:.4} < 0.130");
}
