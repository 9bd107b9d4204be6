//! The model to deploy: the configuration an experiment chose, refitted on
//! every interaction given and saved with a typed record of how it was
//! chosen and how it scored. `tune`, `run` and the demo all save through
//! [`deploy`], so their model folders and `evaluation.json` records agree.

use super::{fit_production, Comparison, Final, Parts, Production, Result, Tuned};
use because_models::index::{IndexInfo, IndexPolicy};
use because_models::persist::{self, Meta, Metrics};
use because_models::{Model, ModelSpec};
use std::path::Path;
use std::time::Instant;

/// What the deployed model was trained on, in words.
pub const TRAINED_ON_ALL: &str = "train + validation + test (every interaction given)";

/// The seed of the bootstrap intervals saved with a deployed model.
const INTERVAL_SEED: u64 = 42;

/// How an experiment chose the configuration it deploys.
#[derive(Clone, Debug)]
pub struct Choice {
    /// The configuration.
    pub spec: ModelSpec,
    /// The metrics saved with it: how it was chosen and tested.
    pub metrics: Metrics,
}

impl Choice {
    /// The best trial of `comparison` (chosen on validation), with its test
    /// metrics measured as `final_mode` says.
    pub fn best_of(comparison: &Comparison, final_mode: Final) -> Choice {
        let best = comparison.best_trial();
        let metric = comparison
            .selected_by
            .strip_prefix("validation ")
            .unwrap_or(&comparison.key);
        Choice {
            spec: best.spec.clone(),
            metrics: Metrics {
                selected_by: Some(comparison.selected_by.clone()),
                validation: best.validation.mean(metric).filter(|v| v.is_finite()),
                test: Some(best.test.summary(INTERVAL_SEED)),
                test_protocol: Some(final_mode.note().to_string()),
                ..Metrics::default()
            },
        }
    }
}

impl Choice {
    /// The configuration a tuning run chose (with the epochs early
    /// stopping kept), its validation score on the tuning metric, and its
    /// test metrics.
    pub fn tuned(tuned: &Tuned) -> Choice {
        let mut choice = Choice::best_of(&tuned.comparison, tuned.options.final_mode);
        choice.spec = tuned.chosen_spec().clone();
        choice.metrics.validation = Some(tuned.trials[tuned.chosen].validation);
        choice
    }
}

/// A deployed model and its record.
#[derive(Debug)]
pub struct Deployed {
    /// The model, trained on every interaction given.
    pub model: Model,
    /// What its folder records.
    pub meta: Meta,
    /// The record of it for `evaluation.json`.
    pub production: Production,
    /// Its approximate-retrieval index, when it got one.
    pub index: Option<IndexInfo>,
}

/// Refits `choice` on every interaction of `parts` (train, validation and
/// test) and saves it into `dir`, with item `titles` (in item order, or
/// none) and the event types of the parts weighted by `weight`. `folder`
/// is how `evaluation.json` names `dir` (relative to itself). The model
/// gets the approximate-retrieval index that `index` asks for.
pub fn deploy(
    parts: &Parts,
    choice: &Choice,
    titles: Vec<String>,
    weight: &dyn Fn(&str) -> f32,
    dir: &Path,
    folder: &str,
    index: IndexPolicy,
) -> Result<Deployed> {
    let start = Instant::now();
    let model = fit_production(&choice.spec, parts)?;
    let seconds = start.elapsed().as_secs_f64();
    let all = &parts.for_spec(&choice.spec)?.all;
    let metrics = Metrics {
        fit_seconds: Some(seconds),
        values: Some(parts.values.to_string()),
        trained_on: Some(TRAINED_ON_ALL.to_string()),
        explanation_fidelity: super::explanation_fidelity(&model),
        ..choice.metrics.clone()
    };
    let meta = super::meta_for(
        &parts.users,
        &parts.items,
        all,
        metrics,
        titles,
        super::event_types(&parts.event_names, weight),
    );
    persist::save(&model, &meta, dir)?;
    let index = because_models::index::build_for(&model, dir, index)?;
    Ok(Deployed {
        model,
        meta,
        index,
        production: Production {
            model: choice.spec.to_string(),
            trained_on: TRAINED_ON_ALL.to_string(),
            interactions: all.len(),
            folder: Some(folder.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{compare, Setup, Values};
    use because_core::testing::block_dataset;
    use because_core::SplitMethod;

    #[test]
    fn the_deployed_model_learns_from_everything_and_records_the_choice() {
        let dataset = block_dataset(40, 20, 6, 1);
        let method = SplitMethod::Random {
            validation: 0.2,
            test: 0.2,
            per_user: true,
        };
        let parts = Parts::split(&dataset, method, 7, Values::Auto).unwrap();
        let specs: Vec<ModelSpec> = ["pop", "ease:lambda=5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let setup = Setup::new(vec![10]);
        let compared = compare(&parts, &specs, &setup, None, &mut |_, _| {}).unwrap();
        let choice = Choice::best_of(&compared.comparison, setup.final_mode);
        let dir = tempfile::tempdir().unwrap();
        let d = deploy(
            &parts,
            &choice,
            Vec::new(),
            &|_| 1.0,
            dir.path(),
            "model",
            IndexPolicy::Auto,
        )
        .unwrap();
        let all = &parts.training().all;
        assert_eq!(d.production.interactions, all.len());
        assert!(parts.training().train.len() < all.len());
        let back = persist::load(dir.path()).unwrap();
        let m = &back.meta.metrics;
        assert_eq!(m.selected_by.as_deref(), Some("validation ndcg@10"));
        assert_eq!(
            m.validation,
            compared.comparison.best_trial().validation.mean("ndcg@10")
        );
        assert!(m.test.as_ref().unwrap().metrics.contains_key("ndcg@10"));
        assert_eq!(m.trained_on.as_deref(), Some(TRAINED_ON_ALL));
        // JSON keeps every metric (to the last bit or two of a double).
        let (saved, read) = (d.meta.metrics.test.unwrap(), m.test.clone().unwrap());
        assert_eq!(saved.metrics.len(), read.metrics.len());
        for (k, v) in &saved.metrics {
            assert!((v.mean - read.metrics[k].mean).abs() < 1e-12, "{k}");
        }
        assert_eq!(back.meta.data_fingerprint, persist::fingerprint(all));

        // A tuning run deploys the configuration it chose, with the
        // validation score it chose it by.
        let grid = crate::experiment::Grid::parse(&["lambda=1,50"]).unwrap();
        let options = crate::experiment::TuneOptions {
            metric: "ndcg@10".parse().unwrap(),
            search: crate::experiment::Search::Grid,
            early_stopping: None,
            check_every: 1,
            final_mode: Final::Refit,
        };
        let base: ModelSpec = "ease".parse().unwrap();
        let tuned = crate::experiment::tune(&parts, &base, &grid, &options, &mut |_| {}).unwrap();
        let choice = Choice::tuned(&tuned);
        assert_eq!(&choice.spec, tuned.chosen_spec());
        assert_eq!(
            choice.metrics.validation,
            Some(tuned.trials[tuned.chosen].validation)
        );
        assert_eq!(
            choice.metrics.test_protocol.as_deref(),
            Some(Final::Refit.note())
        );
    }
}
