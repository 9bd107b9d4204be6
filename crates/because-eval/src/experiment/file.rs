//! `evaluation.json`: what an evaluation, a tuning run or the demo found,
//! in one versioned shape.

use super::{Comparison, Final, Parts, PartsReport, Setup, Significance, Slices, Source, Tuned};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of [`EvaluationFile`]'s shape; it changes whenever a field
/// is renamed, removed or changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// The content of `evaluation.json`, written by `because evaluate`,
/// `because tune` and the demo alike. Fields that do not apply are `null`,
/// never absent, so every file has the same shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationFile {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// What wrote it: `evaluate`, `tune` or `demo`.
    pub command: String,
    /// The data: where the parts came from, and what they hold.
    pub data: DataRecord,
    /// How models were evaluated.
    pub protocol: ProtocolRecord,
    /// How the best model was chosen, such as `validation ndcg@10`: always
    /// on validation, never on test.
    pub selected_by: String,
    /// The best model's specification.
    pub best: String,
    /// One entry per model evaluated on test, in the order given.
    pub results: Vec<ModelRecord>,
    /// Test means with 95% bootstrap intervals, and paired randomization
    /// tests against the best, of the metric named in `selected_by`.
    pub significance: Vec<Significance>,
    /// That test metric by user history length (and by a user group).
    pub slices: Vec<Slices>,
    /// Each search: one for `tune`, one per tuned model for `run`, none otherwise.
    pub tuning: Vec<TuningRecord>,
    /// The model to deploy, for `tune` and `run`.
    pub production: Option<Production>,
}

/// The data an experiment ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Split internally (method and seed) or given as files.
    pub source: Source,
    /// How training values were made (binary, as-is).
    pub values: String,
    /// Users in the vocabulary of every part.
    pub users: usize,
    /// Items in the vocabulary of every part.
    pub items: usize,
    /// Interactions per part, and what was dropped from evaluation and why.
    pub parts: PartsReport,
}

/// How models were evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProtocolRecord {
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// How the test numbers use validation.
    pub final_mode: Final,
    /// The same in words.
    pub note: String,
    /// Whether every item was ranked (false for sampled evaluation).
    pub full_ranking: bool,
    /// Negatives sampled per user, for a sampled evaluation (not
    /// comparable with full ranking).
    pub sampled_negatives: Option<usize>,
    /// Items already in a user's history are never recommended.
    pub seen_excluded: bool,
    /// Whether the test lists of models with inner-product scores came
    /// from an approximate-retrieval index (`--approximate`).
    #[serde(default)]
    pub approximate: bool,
}

/// One model's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The specification.
    pub model: String,
    /// Seconds to fit on train.
    pub fit_seconds: f64,
    /// Test users evaluated.
    pub users: usize,
    /// Every metric on validation (model fitted on train), such as `ndcg@10`.
    pub validation: BTreeMap<String, f64>,
    /// Every metric on test.
    pub test: BTreeMap<String, f64>,
    /// Test RMSE, for rating predictors.
    pub rmse: Option<f64>,
    /// Test MAE, for rating predictors.
    pub mae: Option<f64>,
    /// With `--approximate`: the test numbers are what the model's
    /// approximate-retrieval index serves, and this is how its lists
    /// recalled the exact ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<super::RetrievalCheck>,
}

/// A hyperparameter search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuningRecord {
    /// The metric chosen on, on validation.
    pub metric: String,
    /// The parameters searched.
    pub parameters: Vec<String>,
    /// Early-stopping patience, if used.
    pub early_stopping: Option<usize>,
    /// The configuration chosen.
    pub chosen: String,
    /// Every configuration tried, in order.
    pub trials: Vec<TuneTrialRecord>,
}

/// One configuration tried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneTrialRecord {
    /// The configuration.
    pub config: String,
    /// Its validation score (`null` if it could not be computed).
    pub validation: Option<f64>,
    /// Seconds spent fitting it.
    pub fit_seconds: f64,
    /// The epoch kept by early stopping.
    pub best_epoch: Option<usize>,
    /// With early stopping: the validation score at each check, as
    /// `[epoch, score]` (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_curve: Vec<(usize, f64)>,
}

/// The model to deploy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Production {
    /// Its specification.
    pub model: String,
    /// What it was trained on (every interaction given).
    pub trained_on: String,
    /// How many interactions that is.
    pub interactions: usize,
    /// Where it was saved, if it was.
    pub folder: Option<String>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl EvaluationFile {
    /// The record of `comparison`, made by `command` on `parts` with `setup`.
    pub fn new(
        command: &str,
        parts: &Parts,
        setup: &Setup<'_>,
        comparison: &Comparison,
    ) -> EvaluationFile {
        let table = |e: &crate::Evaluation| -> BTreeMap<String, f64> {
            e.table()
                .into_iter()
                .filter(|(_, v)| v.is_finite())
                .collect()
        };
        EvaluationFile {
            format_version: FORMAT_VERSION,
            command: command.to_string(),
            data: DataRecord {
                source: parts.source.clone(),
                values: parts.values.to_string(),
                users: parts.users.len(),
                items: parts.items.len(),
                parts: parts.report.clone(),
            },
            protocol: ProtocolRecord {
                ks: setup.ks.clone(),
                final_mode: setup.final_mode,
                note: setup.final_mode.note().to_string(),
                full_ranking: setup.sampled_negatives.is_none(),
                approximate: setup.approximate,
                sampled_negatives: setup.sampled_negatives,
                seen_excluded: true,
            },
            selected_by: comparison.selected_by.clone(),
            best: comparison.best_trial().spec.to_string(),
            results: comparison
                .trials
                .iter()
                .map(|t| ModelRecord {
                    model: t.spec.to_string(),
                    fit_seconds: t.fit_seconds,
                    users: t.test.users,
                    validation: table(&t.validation),
                    test: table(&t.test),
                    rmse: t.rating_errors.and_then(|r| finite(r.rmse)),
                    mae: t.rating_errors.and_then(|r| finite(r.mae)),
                    retrieval: t.retrieval,
                })
                .collect(),
            significance: comparison.significance.clone(),
            slices: comparison.slices.clone(),
            tuning: Vec::new(),
            production: None,
        }
    }

    /// The record of a tuning run: the chosen configuration's numbers and
    /// every configuration tried.
    pub fn tuned(parts: &Parts, tuned: &Tuned) -> EvaluationFile {
        let setup = Setup {
            ks: vec![tuned.options.metric.k],
            final_mode: tuned.options.final_mode,
            ..Setup::new(Vec::new())
        };
        let mut file = EvaluationFile::new("tune", parts, &setup, &tuned.comparison);
        file.tuning = vec![TuningRecord::of(tuned)];
        file
    }

    /// A study's file (`because run`): the chosen configurations compared,
    /// each model's search, and (set by the caller) the model to deploy.
    pub fn study(
        parts: &Parts,
        setup: &Setup<'_>,
        outcome: &super::study::StudyOutcome,
    ) -> EvaluationFile {
        let mut file = EvaluationFile::new("run", parts, setup, &outcome.compared.comparison);
        file.tuning = outcome.tunings.iter().map(TuningRecord::of).collect();
        file
    }
}

impl TuningRecord {
    /// The record of one search.
    pub fn of(tuned: &Tuned) -> TuningRecord {
        TuningRecord {
            metric: tuned.options.metric.to_string(),
            parameters: tuned.parameters.clone(),
            early_stopping: tuned.options.early_stopping,
            chosen: tuned.chosen_spec().to_string(),
            trials: tuned
                .trials
                .iter()
                .map(|t| TuneTrialRecord {
                    config: t.spec.to_string(),
                    validation: finite(t.validation),
                    fit_seconds: t.fit_seconds,
                    best_epoch: t.best_epoch,
                    validation_curve: t
                        .checks
                        .iter()
                        .filter(|c| c.1.is_finite())
                        .copied()
                        .collect(),
                })
                .collect(),
        }
    }
}
