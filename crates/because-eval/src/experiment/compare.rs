//! Fitting and evaluating specifications, and comparing them.

use super::{Error, Parts, Result};
use crate::{by_activity, by_group, evaluate, paired_test, Evaluation, Protocol, Slice};
use because_core::stats::bootstrap_ci;
use because_models::{Model, ModelSpec};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How the test numbers use the validation interactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Final {
    /// Keep the model trained on train; fold validation interactions into
    /// each test user's history.
    #[default]
    FoldIn,
    /// Refit the specification on train + validation.
    Refit,
}

impl Final {
    /// One line saying what the test numbers are.
    pub fn note(self) -> &'static str {
        match self {
            Final::FoldIn => "test: models trained on train; validation interactions folded into each test user's profile",
            Final::Refit => "test: models refitted on train + validation",
        }
    }
}

/// How specifications are evaluated.
#[derive(Clone, Debug)]
pub struct Setup<'a> {
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// How the test numbers use validation.
    pub final_mode: Final,
    /// Categories of each item, for intra-list diversity.
    pub item_categories: Option<&'a [Vec<u32>]>,
    /// Sampled evaluation (see [`Protocol::sampled_negatives`]).
    pub sampled_negatives: Option<usize>,
    /// Seed of sampled negatives.
    pub seed: u64,
    /// Test what approximate retrieval serves: models whose scores are
    /// inner products get an index (as a saved model would), and their test
    /// lists come from it.
    pub approximate: bool,
}

impl Setup<'_> {
    /// Cut-offs `ks`, validation folded in for the test, full ranking.
    pub fn new(ks: Vec<usize>) -> Setup<'static> {
        Setup {
            ks,
            final_mode: Final::FoldIn,
            item_categories: None,
            sampled_negatives: None,
            seed: 42,
            approximate: false,
        }
    }

    /// The cut-off of headline numbers: 10 if evaluated, else the first.
    pub fn headline_k(&self) -> usize {
        if self.ks.contains(&10) {
            10
        } else {
            self.ks.first().copied().unwrap_or(10)
        }
    }

    /// The metric that chooses the best and that significance and slices
    /// are about: `ndcg@` the headline cut-off.
    pub fn key(&self) -> String {
        format!("ndcg@{}", self.headline_k())
    }

    fn protocol(&self) -> Protocol<'_> {
        Protocol {
            item_categories: self.item_categories,
            sampled_negatives: self.sampled_negatives,
            seed: self.seed,
            ..Protocol::new(self.ks.clone())
        }
    }
}

/// Test RMSE and MAE of a rating predictor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatingErrors {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
}

/// One specification fitted and evaluated.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The specification.
    pub spec: ModelSpec,
    /// Seconds to fit on train.
    pub fit_seconds: f64,
    /// Scores on validation of the model fitted on train.
    pub validation: Evaluation,
    /// Scores on test (see [`Final`]).
    pub test: Evaluation,
    /// Test RMSE and MAE, for rating predictors.
    pub rating_errors: Option<RatingErrors>,
    /// With [`Setup::approximate`], how the index's lists compared with
    /// exact scoring on the test users.
    pub retrieval: Option<RetrievalCheck>,
}

/// An approximate-retrieval index tested against exact scoring.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievalCheck {
    /// Mean share of each test user's exact top `k` that the index's list holds.
    pub recall: f64,
    /// The cut-off.
    pub k: usize,
    /// The index's lists, and how many a request scans.
    pub lists: usize,
    /// Lists scanned per request.
    pub probe: usize,
}

/// Fits `spec` on train, evaluates it on validation and test, and returns
/// the trial with the model the test numbers come from.
pub fn fit_and_evaluate(
    spec: &ModelSpec,
    parts: &Parts,
    setup: &Setup<'_>,
) -> Result<(Trial, Model)> {
    let set = parts.for_spec(spec)?;
    let start = Instant::now();
    let model = fit(spec, &set.train, &parts.side)?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let base = setup.protocol();
    let validation = evaluate(&model, &set.validation, &base)?;
    // The test's protocol: validation folded in, or the model refitted.
    let (model, protocol) = match setup.final_mode {
        Final::FoldIn => (
            model,
            Protocol {
                extra_history: Some(&set.validation),
                fold_in: true,
                ..base.clone()
            },
        ),
        Final::Refit => (
            fit(spec, &set.train_and_validation()?, &parts.side)?,
            base.clone(),
        ),
    };
    let (test, retrieval) = match setup.approximate {
        true => match approximate_test(&model, &set.test, &protocol, setup.headline_k())? {
            Some((test, check)) => (test, Some(check)),
            None => (evaluate(&model, &set.test, &protocol)?, None),
        },
        false => (evaluate(&model, &set.test, &protocol)?, None),
    };
    let rating_errors = spec.needs_ratings().then(|| {
        let (rmse, mae) = crate::rating_accuracy(&parts.ratings().test, |u, i| {
            model.predict_rating(u, i).unwrap_or(f32::NAN)
        });
        RatingErrors { rmse, mae }
    });
    Ok((
        Trial {
            spec: spec.clone(),
            fit_seconds,
            validation,
            test,
            rating_errors,
            retrieval,
        },
        model,
    ))
}

/// For a model whose scores are inner products: builds its index and
/// evaluates what the index serves under `protocol`, with how its top `k`
/// lists recall the exact ones for the same queries (each test user's, as
/// the protocol asks: as trained, or with the extra history folded in);
/// `None` for other models.
fn approximate_test(
    model: &Model,
    test_part: &because_core::Interactions,
    protocol: &Protocol<'_>,
    k: usize,
) -> Result<Option<(Evaluation, RetrievalCheck)>> {
    use because_core::{Query, Recommender, Request};
    use because_models::index::{recall_against_exact, Approximate, Index, IvfParams};
    let Some(index) = Index::build(model, &IvfParams::default())? else {
        return Ok(None);
    };
    let test = evaluate(&Approximate::new(model, &index), test_part, protocol)?;
    let users: Vec<u32> = (0..test_part.n_users().min(model.n_users()) as u32)
        .filter(|&u| !test_part.range(u).is_empty())
        .collect();
    let histories: Vec<Option<(Vec<u32>, Vec<f32>)>> = users
        .iter()
        .map(|&u| {
            let extra = protocol
                .extra_history
                .filter(|e| (u as usize) < e.n_users() && !e.range(u).is_empty())?;
            let (items, values) = model.history(u);
            Some((
                [items, extra.user_items(u)].concat(),
                [values, extra.user_values(u)].concat(),
            ))
        })
        .collect();
    let requests: Vec<Request<'_>> = users
        .iter()
        .zip(&histories)
        .map(|(&u, h)| match (h, protocol.fold_in) {
            (Some((items, values)), true) => Request::new(Query::History { items, values }, k),
            (Some((items, _)), false) => Request {
                deny: &items[model.history(u).0.len()..],
                ..Request::new(Query::User(u), k)
            },
            (None, _) => Request::new(Query::User(u), k),
        })
        .collect();
    let info = index.info();
    let check = RetrievalCheck {
        recall: recall_against_exact(model, &index, &requests)?,
        k,
        lists: info.lists,
        probe: info.probe,
    };
    Ok(Some((test, check)))
}

pub(super) fn fit(
    spec: &ModelSpec,
    x: &because_core::Interactions,
    side: &because_core::SideInfo,
) -> Result<Model> {
    spec.fit_with(x, side, 0, &mut because_core::no_observer())
        .map_err(|source| Error::Fit {
            spec: spec.to_string(),
            source,
        })
}

/// The index of the trial with the best validation `key`; ties (and
/// missing values) go to the earlier trial.
pub fn choose_best(trials: &[Trial], key: &str) -> usize {
    let score = |t: &Trial| {
        t.validation
            .mean(key)
            .filter(|v| !v.is_nan())
            .unwrap_or(f64::NEG_INFINITY)
    };
    let mut best = 0;
    for (i, t) in trials.iter().enumerate().skip(1) {
        if score(t) > score(&trials[best]) {
            best = i;
        }
    }
    best
}

/// A model's test mean with its 95% bootstrap interval, and the p-value of
/// the paired test against the best.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Significance {
    /// The specification.
    pub model: String,
    /// Mean of the metric.
    pub mean: f64,
    /// 95% bootstrap interval of the mean.
    pub ci95: [f64; 2],
    /// Two-sided paired randomization test against the best (1 for the best).
    pub p_vs_best: f64,
}

/// A model's test metric by a slice of users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slices {
    /// The specification.
    pub model: String,
    /// What the users are sliced by: `history length` or a user-feature column.
    pub by: String,
    /// The slices.
    pub slices: Vec<Slice>,
}

/// A group for each user (by index), to slice results by.
#[derive(Clone, Copy, Debug)]
pub struct Groups<'a> {
    /// What the groups are (a user-feature column).
    pub name: &'a str,
    /// Each user's group (`None`: unknown).
    pub of_user: &'a [Option<String>],
}

/// Several specifications compared.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Each specification's trial, in the order given.
    pub trials: Vec<Trial>,
    /// The best trial.
    pub best: usize,
    /// How the best was chosen, such as `validation ndcg@10`.
    pub selected_by: String,
    /// The test metric of `significance` and `slices`.
    pub key: String,
    /// Test means with intervals, and paired tests against the best.
    pub significance: Vec<Significance>,
    /// Test metric by user activity, and by group if given.
    pub slices: Vec<Slices>,
}

impl Comparison {
    /// Chooses the best trial by validation `key` and adds intervals,
    /// paired tests and slices of the test `key`.
    pub fn new(trials: Vec<Trial>, key: &str, groups: Option<Groups<'_>>) -> Comparison {
        let best = choose_best(&trials, key);
        let best_values = trials
            .get(best)
            .and_then(|t| t.test.per_user_values(key))
            .unwrap_or_default();
        let significance = trials
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let v = t.test.per_user_values(key).unwrap_or_default();
                let (lo, hi) = bootstrap_ci(&v, 1000, 0.95, 7);
                Significance {
                    model: t.spec.to_string(),
                    mean: t.test.mean(key).unwrap_or(0.0),
                    ci95: [lo, hi],
                    p_vs_best: if i == best {
                        1.0
                    } else {
                        paired_test(&best_values, &v, 2000, 7)
                    },
                }
            })
            .collect();
        let mut slices: Vec<Slices> = trials
            .iter()
            .map(|t| Slices {
                model: t.spec.to_string(),
                by: "history length".into(),
                slices: by_activity(&t.test, key),
            })
            .collect();
        if let Some(g) = groups {
            slices.extend(trials.iter().map(|t| Slices {
                model: t.spec.to_string(),
                by: g.name.to_string(),
                slices: by_group(&t.test, key, g.of_user),
            }));
        }
        Comparison {
            trials,
            best,
            selected_by: format!("validation {key}"),
            key: key.to_string(),
            significance,
            slices,
        }
    }

    /// The best trial.
    pub fn best_trial(&self) -> &Trial {
        &self.trials[self.best]
    }
}

/// What [`compare`] returns: the comparison, and the best model (the one
/// its test numbers come from).
#[derive(Clone, Debug)]
pub struct Compared {
    /// The comparison.
    pub comparison: Comparison,
    /// The best model.
    pub best_model: Model,
}

/// Fits and evaluates each of `specs` (calling `on_trial` after each with
/// the trial and its model), chooses the best on validation and compares
/// the others with it.
pub fn compare(
    parts: &Parts,
    specs: &[ModelSpec],
    setup: &Setup<'_>,
    groups: Option<Groups<'_>>,
    on_trial: &mut dyn FnMut(&Trial, &Model),
) -> Result<Compared> {
    if specs.is_empty() {
        return Err(because_core::Error::param("models", "no model to compare").into());
    }
    // Every specification is checked before the first fit.
    for spec in specs {
        spec.resolve()?;
        parts.for_spec(spec)?;
    }
    let key = setup.key();
    let mut trials: Vec<Trial> = Vec::with_capacity(specs.len());
    let mut best_model: Option<Model> = None;
    for spec in specs {
        let (trial, model) = fit_and_evaluate(spec, parts, setup)?;
        on_trial(&trial, &model);
        trials.push(trial);
        if choose_best(&trials, &key) == trials.len() - 1 {
            best_model = Some(model);
        }
    }
    let comparison = Comparison::new(trials, &key, groups);
    let best_model = best_model.ok_or_else(|| Error::Internal("no best model".into()))?;
    Ok(Compared {
        comparison,
        best_model,
    })
}

#[cfg(test)]
mod approximate_tests {
    use super::*;
    use crate::experiment::Values;
    use because_core::testing::block_dataset;
    use because_core::SplitMethod;

    #[test]
    fn approximate_tests_what_the_index_serves_and_says_how_it_recalls_the_exact_lists() {
        let dataset = block_dataset(400, 2000, 25, 3);
        let method = SplitMethod::Random {
            validation: 0.1,
            test: 0.1,
            per_user: true,
        };
        let parts = Parts::split(&dataset, method, 7, Values::Auto).unwrap();
        let setup = Setup {
            approximate: true,
            ..Setup::new(vec![10])
        };
        let exact_setup = Setup::new(vec![10]);
        let als: ModelSpec = "als:factors=16,iterations=3".parse().unwrap();
        let (trial, _) = fit_and_evaluate(&als, &parts, &setup).unwrap();
        let (exact, _) = fit_and_evaluate(&als, &parts, &exact_setup).unwrap();
        let r = trial.retrieval.expect("ALS gets an index");
        assert_eq!(r.k, 10);
        assert!(r.recall >= 0.97 && r.probe <= r.lists, "{r:?}");
        assert!(exact.retrieval.is_none());
        // What the index serves scores as well as the exact lists, give or
        // take what it misses.
        let (a, e) = (
            trial.test.mean("ndcg@10").unwrap(),
            exact.test.mean("ndcg@10").unwrap(),
        );
        assert!(
            (a - e).abs() <= 0.05 * e.max(1e-3),
            "approximate {a} vs exact {e}"
        );
        // Models whose scores are not inner products are tested exactly.
        let knn: ModelSpec = "itemknn".parse().unwrap();
        assert!(fit_and_evaluate(&knn, &parts, &setup)
            .unwrap()
            .0
            .retrieval
            .is_none());
    }
}
