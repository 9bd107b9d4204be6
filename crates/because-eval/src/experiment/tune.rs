//! Hyperparameter search on validation, with early stopping, and the model
//! to deploy.

use super::compare::{fit, fit_and_evaluate, Comparison, Final, Setup};
use super::{Error, Parts, Result};
use crate::{evaluate, metrics, Protocol};
use because_core::rng::Rng;
use because_models::{Model, ModelSpec};
use std::ops::ControlFlow;
use std::time::Instant;

/// A selection metric on validation: a name and a cut-off, such as `ndcg@10`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The metric, one of [`metrics::NAMES`], `coverage` or `novelty`.
    pub name: String,
    /// The cut-off.
    pub k: usize,
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.k)
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Metric> {
        let (name, k) = s
            .split_once('@')
            .ok_or_else(|| Error::Metric(format!("{s:?} is not name@k")))?;
        let k: usize = k
            .parse()
            .ok()
            .filter(|&k| k > 0)
            .ok_or_else(|| Error::Metric(format!("{k:?} is not a cut-off")))?;
        if !metrics::NAMES.contains(&name) && !["coverage", "novelty"].contains(&name) {
            return Err(Error::Metric(format!(
                "unknown metric {name:?} (one of {}, coverage, novelty)",
                metrics::NAMES.join(", ")
            )));
        }
        Ok(Metric {
            name: name.to_string(),
            k,
        })
    }
}

/// Candidate values for parameters: every combination is a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    axes: Vec<(String, Vec<String>)>,
}

impl Grid {
    /// A grid from `key=v1,v2,...` texts, one per parameter (a `-` in a
    /// key reads as `_`).
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Grid> {
        let mut axes: Vec<(String, Vec<String>)> = Vec::new();
        for text in texts {
            let text = text.as_ref();
            let (key, values) = text
                .split_once('=')
                .ok_or_else(|| Error::Grid(format!("{text:?} is not key=v1,v2,...")))?;
            let key = key.trim().replace('-', "_");
            let values: Vec<String> = values
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(Error::Grid(format!("{key} has no values")));
            }
            if axes.iter().any(|(k, _)| *k == key) {
                return Err(Error::Grid(format!("{key} is given twice")));
            }
            axes.push((key, values));
        }
        if axes.is_empty() {
            return Err(Error::Grid("no parameter to search".into()));
        }
        Ok(Grid { axes })
    }

    /// The parameters searched, in the order given.
    pub fn keys(&self) -> Vec<&str> {
        self.axes.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Every configuration, in order (the last parameter varies fastest;
    /// values as given, so list smaller, simpler values first).
    pub fn configurations(&self) -> Vec<Vec<(String, String)>> {
        let mut configs: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (key, values) in &self.axes {
            configs = configs
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        configs
    }
}

/// Which configurations of a grid are tried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Search {
    /// All of them.
    #[default]
    Grid,
    /// `n` chosen at random with `seed` (tried in grid order).
    Random {
        /// How many.
        n: usize,
        /// Seed of the choice.
        seed: u64,
    },
}

/// The specifications `search` tries: `base` with each configuration of
/// `grid`. Every value of the grid, and then every configuration tried,
/// is checked with [`ModelSpec::resolve`] before anything is fitted, so a
/// bad value fails at once, naming its key.
pub fn candidates(base: &ModelSpec, grid: &Grid, search: Search) -> Result<Vec<ModelSpec>> {
    base.resolve()?;
    for (key, values) in &grid.axes {
        for value in values {
            base.clone()
                .with(key, value)
                .resolve()
                .map_err(|source| Error::GridValue {
                    key: key.clone(),
                    value: value.clone(),
                    source,
                })?;
        }
    }
    let mut configs = grid.configurations();
    if let Search::Random { n, seed } = search {
        let mut order: Vec<usize> = (0..configs.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        order.truncate(n.max(1));
        order.sort_unstable();
        configs = order.into_iter().map(|i| configs[i].clone()).collect();
    }
    configs
        .into_iter()
        .map(|c| {
            let spec = c.iter().fold(base.clone(), |s, (k, v)| s.with(k, v));
            spec.resolve()?;
            Ok(spec)
        })
        .collect()
}

/// How to tune.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// The metric chosen on, on validation.
    pub metric: Metric,
    /// Which configurations are tried.
    pub search: Search,
    /// For iterative models: stop a configuration after this many checks
    /// without a better validation score, and keep the best epoch count.
    pub early_stopping: Option<usize>,
    /// Epochs between early-stopping checks.
    pub check_every: usize,
    /// How the chosen configuration's test numbers use validation.
    pub final_mode: Final,
}

/// One configuration tried.
#[derive(Clone, Debug)]
pub struct TuneTrial {
    /// The configuration (with the epochs kept, after early stopping).
    pub spec: ModelSpec,
    /// Its validation score.
    pub validation: f64,
    /// Seconds spent fitting (and checking) it.
    pub fit_seconds: f64,
    /// The epoch with the best validation score, when stopped early.
    pub best_epoch: Option<usize>,
    /// With early stopping: the training loss of each epoch (where the
    /// model reports one) and the validation score of each check, as
    /// `(epoch, value)`, for training curves.
    pub losses: Vec<(usize, f64)>,
    /// See `losses`.
    pub checks: Vec<(usize, f64)>,
}

/// What [`tune`] found.
#[derive(Clone, Debug)]
pub struct Tuned {
    /// Every configuration tried, in order.
    pub trials: Vec<TuneTrial>,
    /// The chosen one: the best on validation (ties to the earlier one).
    pub chosen: usize,
    /// The parameters searched.
    pub parameters: Vec<String>,
    /// How the search ran.
    pub options: TuneOptions,
    /// The chosen configuration evaluated on validation and test.
    pub comparison: Comparison,
}

impl Tuned {
    /// The chosen configuration.
    pub fn chosen_spec(&self) -> &ModelSpec {
        &self.trials[self.chosen].spec
    }
}

/// Tries each candidate of `grid` around `base` on validation (calling
/// `on_trial` after each), chooses the best, and evaluates it on test.
pub fn tune(
    parts: &Parts,
    base: &ModelSpec,
    grid: &Grid,
    options: &TuneOptions,
    on_trial: &mut dyn FnMut(&TuneTrial),
) -> Result<Tuned> {
    if options.early_stopping == Some(0) {
        return Err(because_core::Error::param("early_stopping", "must be at least 1").into());
    }
    if options.check_every == 0 {
        return Err(because_core::Error::param("check_every", "must be at least 1").into());
    }
    let specs = candidates(base, grid, options.search)?;
    let set = parts.for_spec(base)?;
    let key = options.metric.to_string();
    let protocol = Protocol::new(vec![options.metric.k]);
    let mut trials: Vec<TuneTrial> = Vec::with_capacity(specs.len());
    let mut chosen: Option<usize> = None;
    for spec in specs {
        let start = Instant::now();
        let mut losses: Vec<(usize, f64)> = Vec::new();
        let mut checks: Vec<(usize, f64)> = Vec::new();
        let (spec, validation, best_epoch) = match (options.early_stopping, spec.epoch_key()) {
            (Some(patience), Some(epochs)) => {
                // Validation after each check; stop after `patience` checks without a gain.
                let searched = super::train::search_epochs(
                    &spec,
                    &set.train,
                    &set.validation,
                    &parts.side,
                    (&key, options.metric.k),
                    options.check_every,
                    patience,
                    &mut |ep| {
                        if let Some(l) = ep.loss {
                            losses.push((ep.epoch, l));
                        }
                        ControlFlow::Continue(())
                    },
                )?;
                checks = searched.checks;
                if searched.best == 0 {
                    // No check came (fewer epochs than `check_every`): the fitted model counts.
                    let v = evaluate(&searched.model, &set.validation, &protocol)?
                        .mean(&key)
                        .unwrap_or(f64::NAN);
                    (spec, v, None)
                } else {
                    (
                        spec.with(epochs, searched.best),
                        searched.best_score,
                        Some(searched.best),
                    )
                }
            }
            _ => {
                let model = fit(&spec, &set.train, &parts.side)?;
                let v = evaluate(&model, &set.validation, &protocol)?
                    .mean(&key)
                    .unwrap_or(f64::NAN);
                (spec, v, None)
            }
        };
        let trial = TuneTrial {
            spec,
            validation,
            fit_seconds: start.elapsed().as_secs_f64(),
            best_epoch,
            losses,
            checks,
        };
        on_trial(&trial);
        // Strictly better only: ties keep the earlier, smaller configuration.
        if chosen.is_none_or(|c| trial.validation > trials[c].validation) {
            chosen = Some(trials.len());
        }
        trials.push(trial);
    }
    let chosen = chosen.ok_or_else(|| Error::Grid("no configuration was tried".into()))?;
    let setup = Setup {
        ks: vec![options.metric.k],
        final_mode: options.final_mode,
        ..Setup::new(Vec::new())
    };
    let (trial, _) = fit_and_evaluate(&trials[chosen].spec, parts, &setup)?;
    Ok(Tuned {
        trials,
        chosen,
        parameters: grid.keys().iter().map(|k| k.to_string()).collect(),
        options: options.clone(),
        comparison: Comparison::new(vec![trial], &key, None),
    })
}

/// Fits `spec` on every interaction given (train, validation and test,
/// with what evaluation dropped): the model to deploy.
pub fn fit_production(spec: &ModelSpec, parts: &Parts) -> Result<Model> {
    fit(spec, &parts.for_spec(spec)?.all, &parts.side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_expand_in_order() {
        let g = Grid::parse(&["lambda=1,2", "x-y=a,b"]).unwrap();
        let c = g.configurations();
        assert_eq!(c.len(), 4);
        assert_eq!(
            c[1],
            vec![
                ("lambda".to_string(), "1".to_string()),
                ("x_y".to_string(), "b".to_string())
            ]
        );
        assert_eq!(g.keys(), ["lambda", "x_y"]);
        for bad in [&["lambda"][..], &["lambda="], &["a=1", "a=2"], &[]] {
            assert!(matches!(Grid::parse(bad), Err(Error::Grid(_))), "{bad:?}");
        }
    }

    #[test]
    fn every_grid_value_is_checked_before_fitting() {
        let base: ModelSpec = "als:iterations=3".parse().unwrap();
        // The bad value is last and would only be tried after four fits.
        let grid = Grid::parse(&["factors=2,4", "regularization=0.1,-1"]).unwrap();
        let e = candidates(&base, &grid, Search::Grid).unwrap_err();
        assert!(
            matches!(&e, Error::GridValue { key, value, .. } if key == "regularization" && value == "-1"),
            "{e:?}"
        );
        assert!(e.to_string().contains("`regularization`"), "{e}");
        // A random search that would not try it still refuses it.
        let e = candidates(&base, &grid, Search::Random { n: 1, seed: 1 }).unwrap_err();
        assert!(e.to_string().contains("`regularization`"), "{e}");
        let e = candidates(&base, &Grid::parse(&["rank=1"]).unwrap(), Search::Grid).unwrap_err();
        assert!(e.to_string().contains("\"rank\""), "{e}");
        let grid = Grid::parse(&["factors=2,4", "regularization=0.1,1"]).unwrap();
        let specs = candidates(&base, &grid, Search::Random { n: 2, seed: 1 }).unwrap();
        assert_eq!(specs.len(), 2);
        assert!(specs.iter().all(|s| s.params["iterations"] == "3"));
    }

    #[test]
    fn metrics_parse_and_name_the_problem() {
        assert_eq!(
            "ndcg@10".parse::<Metric>().unwrap(),
            Metric {
                name: "ndcg".into(),
                k: 10
            }
        );
        for bad in ["ndcg", "auc@10", "ndcg@0", "ndcg@x"] {
            assert!(
                matches!(bad.parse::<Metric>(), Err(Error::Metric(_))),
                "{bad}"
            );
        }
    }
}
