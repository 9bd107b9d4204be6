//! The experiment method: parts, fitting and evaluating model
//! specifications, comparing them, tuning them, and the record of it all.
//!
//! # Brief overview
//!
//! * [`Parts`] are the train, validation and test parts in one vocabulary,
//!   made by a split method ([`Parts::split`]) or given as three logs
//!   ([`Parts::given`]). Validation and test interactions of users or items
//!   that training does not know are dropped and counted in a
//!   [`PartsReport`], never silently.
//! * [`fit_and_evaluate`] fits one [`ModelSpec`](because_models::ModelSpec)
//!   on train, scores it on validation, and on test either with validation
//!   folded into the test users' histories or after refitting on train +
//!   validation ([`Final`]); rating predictors also get RMSE and MAE.
//! * [`compare`] does that for several specs and adds bootstrap intervals,
//!   paired tests against the best and slices by activity and by a user
//!   group ([`Comparison`]).
//! * [`tune`] searches a [`Grid`] (all of it, or a random sample) on
//!   validation, stops iterative models early through the epoch observer,
//!   and evaluates the chosen configuration on test.
//! * [`deploy`] refits the chosen configuration on everything given and
//!   saves it with a typed record of the choice: the one way `tune`, `run`
//!   and the demo produce the model to deploy.
//! * The best is always chosen on **validation** ([`choose_best`]), and
//!   every record says by what (`selected_by`).
//! * [`SessionParts`] and [`compare_sessions`] evaluate on anonymous
//!   sessions: the next-item protocol of session-based recommendation.
//! * [`EvaluationFile`] is `evaluation.json`: one versioned shape for every
//!   command that evaluates.
//!
//! Nothing here prints: results are returned as data, and progress is
//! reported through callbacks.
//!
//! ```
//! use because_core::testing::block_data;
//! use because_core::{Dataset, SplitMethod, Vocab};
//! use because_eval::experiment::{compare, Parts, Setup, Values};
//! use because_models::ModelSpec;
//!
//! let x = block_data(40, 20, 6, 1);
//! let dataset = Dataset {
//!     users: Vocab::from_ids((0..x.n_users()).map(|u| u.to_string())),
//!     items: Vocab::from_ids((0..x.n_items()).map(|i| i.to_string())),
//!     interactions: x,
//!     ..Default::default()
//! };
//! let method = SplitMethod::Random { validation: 0.2, test: 0.2, per_user: true };
//! let parts = Parts::split(&dataset, method, 7, Values::Auto).unwrap();
//! let specs: Vec<ModelSpec> = ["pop", "ease:lambda=5"].iter().map(|s| s.parse().unwrap()).collect();
//! let compared = compare(&parts, &specs, &Setup::new(vec![5, 10]), None, &mut |_, _| {}).unwrap();
//! assert_eq!(compared.comparison.selected_by, "validation ndcg@10");
//! assert_eq!(compared.comparison.trials.len(), 2);
//! ```

mod compare;
pub mod demo;
mod deploy;
mod file;
mod parts;
mod sessions;
pub mod study;
mod train;
mod tune;

pub use compare::{
    choose_best, compare, fit_and_evaluate, Compared, Comparison, Final, Groups, RatingErrors,
    RetrievalCheck, Setup, Significance, Slices, Trial,
};
pub use deploy::{deploy, Choice, Deployed, TRAINED_ON_ALL};
pub use file::{
    DataRecord, EvaluationFile, ModelRecord, Production, ProtocolRecord, TuneTrialRecord,
    TuningRecord, FORMAT_VERSION,
};
pub use parts::{concat, PartCounts, PartSet, Parts, PartsReport, Source, Values};
pub use sessions::{
    compare_sessions, next_item, NextItem, SessionComparison, SessionParts, SessionReport,
    SessionTrial,
};
pub use train::{
    event_types, explanation_fidelity, hold_out_latest, meta_for, train, EarlyStopping, Trained,
    FIDELITY_BUDGET,
};
pub use tune::{
    candidates, fit_production, tune, Grid, Metric, Search, TuneOptions, TuneTrial, Tuned,
};

/// Errors of experiments.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the data, a model or the evaluation.
    #[error(transparent)]
    Core(#[from] because_core::Error),
    /// Fitting one specification failed.
    #[error("fitting {spec}: {source}")]
    Fit {
        /// The specification.
        spec: String,
        /// Why.
        source: because_core::Error,
    },
    /// A rating predictor was asked for on data without ratings.
    #[error("{spec} predicts ratings, but the data has no rating column")]
    NoRatings {
        /// The specification.
        spec: String,
    },
    /// A part was empty (after dropping what training does not know).
    #[error("the {0} part is empty; use larger shares, more data or other parts")]
    EmptyPart(&'static str),
    /// The parts are of a kind experiments do not handle.
    #[error("{0}")]
    Unsupported(String),
    /// A grid is malformed.
    #[error("{0}")]
    Grid(String),
    /// A value of a grid is invalid for the model (checked before any fit).
    #[error("{key}={value}: {source}")]
    GridValue {
        /// The parameter.
        key: String,
        /// The value.
        value: String,
        /// Why it is invalid (naming the parameter).
        source: because_core::Error,
    },
    /// A selection metric is unknown or malformed.
    #[error("{0}")]
    Metric(String),
    /// Saving a model failed.
    #[error(transparent)]
    Persist(#[from] because_models::persist::PersistError),
    /// Something that must not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the experiment [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
