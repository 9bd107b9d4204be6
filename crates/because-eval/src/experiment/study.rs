//! A study: several models, each tuned on its own grid, compared on test
//! with the configurations validation chose. What an experiment file
//! (`because run`) describes; the best is deployed with
//! [`deploy`](super::deploy).

use super::{
    candidates, compare, tune, Choice, Compared, Grid, Metric, Parts, Result, Search, Setup,
    TuneOptions, Tuned,
};
use because_models::ModelSpec;

/// One model of a study: a specification, and optionally a grid around it.
#[derive(Clone, Debug)]
pub struct StudyModel {
    /// The model with its fixed parameters.
    pub spec: ModelSpec,
    /// The parameters to tune, if any.
    pub grid: Option<Grid>,
    /// Random search: this many configurations of the grid.
    pub random: Option<usize>,
    /// Early stopping for iterative models: checks without a gain.
    pub early_stopping: Option<usize>,
    /// Epochs between early-stopping checks.
    pub check_every: usize,
}

/// What a study found.
#[derive(Debug)]
pub struct StudyOutcome {
    /// Each tuned model's search, in the order of the study's models.
    pub tunings: Vec<Tuned>,
    /// The chosen configuration of every model, compared on test.
    pub compared: Compared,
    /// The best on validation, to deploy.
    pub choice: Choice,
}

/// Runs a study on `parts`: each model's grid is searched on validation by
/// `metric`, the chosen configurations are compared on test with `setup`
/// (the best chosen on validation). Every grid value is checked before the
/// first fit.
/// `on_step` hears of each configuration tried (`true` when it is one of
/// the final comparison's fits).
pub fn run(
    parts: &Parts,
    models: &[StudyModel],
    metric: &Metric,
    setup: &Setup<'_>,
    seed: u64,
    on_step: &mut dyn FnMut(&str, bool),
) -> Result<StudyOutcome> {
    if models.is_empty() {
        return Err(
            because_core::Error::param("models", "a study needs at least one model").into(),
        );
    }
    let search_of = |m: &StudyModel| match m.random {
        Some(n) => Search::Random { n, seed },
        None => Search::Grid,
    };
    for m in models {
        match &m.grid {
            Some(g) => {
                candidates(&m.spec, g, search_of(m))?;
            }
            None => {
                m.spec.resolve()?;
            }
        }
    }
    let mut tunings = Vec::new();
    let mut chosen = Vec::with_capacity(models.len());
    for m in models {
        match &m.grid {
            Some(grid) => {
                let options = TuneOptions {
                    metric: metric.clone(),
                    search: search_of(m),
                    early_stopping: m.early_stopping,
                    check_every: m.check_every,
                    final_mode: setup.final_mode,
                };
                let tuned = tune(parts, &m.spec, grid, &options, &mut |t| {
                    on_step(&t.spec.to_string(), false)
                })?;
                chosen.push(tuned.chosen_spec().clone());
                tunings.push(tuned);
            }
            None => chosen.push(m.spec.clone()),
        }
    }
    let compared = compare(parts, &chosen, setup, None, &mut |t, _| {
        on_step(&t.spec.to_string(), true)
    })?;
    let choice = Choice::best_of(&compared.comparison, setup.final_mode);
    Ok(StudyOutcome {
        tunings,
        compared,
        choice,
    })
}
