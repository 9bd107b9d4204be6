//! What a model can do beyond scoring, as traits a model opts into.
//!
//! Explanations, figures and services ask a [`Recommender`](crate::Recommender)
//! for a capability (`model.decomposer()`, `model.embeddings()`, ...) and
//! get `None` when the model lacks it, so they never name a concrete model.
//! [`Capabilities`] is the same list as plain data, declared by each model
//! kind in the registry and checked against these accessors by the
//! conformance suite.

use serde::Serialize;

/// An exact additive decomposition of a score over the history items.
#[derive(Clone, Debug, PartialEq)]
pub struct Decomposition {
    /// The score of the target item for the history.
    pub score: f32,
    /// One contribution per history item, in history order.
    pub weights: Vec<f32>,
}

/// Models whose score for an item splits exactly into one contribution per
/// history item: `score = Σ weights` (EASE, item-kNN, PureSVD, ALS).
pub trait Decompose {
    /// The decomposition of `target`'s score for the history (`items`,
    /// `values`), which the caller has checked.
    fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Decomposition;

    /// Several targets for one history, sharing work where the model can
    /// (one factorization of the user's system for ALS).
    fn decompose_many(&self, items: &[u32], values: &[f32], targets: &[u32]) -> Vec<Decomposition> {
        targets
            .iter()
            .map(|&t| self.decompose(items, values, t))
            .collect()
    }
}

/// Models with one dense vector per item.
pub trait ItemEmbeddings {
    /// Row-major item vectors and their width.
    fn item_embeddings(&self) -> (&[f32], usize);
}

/// Models that predict explicit ratings.
pub trait RatingPredictor {
    /// The predicted rating of `item` by `user` (both in range).
    fn predict_rating(&self, user: u32, item: u32) -> f32;
}

/// Models whose score is how often an item was chosen.
pub trait PopularityPrior {
    /// Interactions per item (within the window, if any).
    fn item_counts(&self) -> &[f32];
    /// The counting window in days, if the counts are recent ones.
    fn window_days(&self) -> Option<f64>;
}

/// What a model kind can do, as declared in the registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Capabilities {
    /// `similar_items` works.
    pub similar_items: bool,
    /// Scores decompose exactly over history items ([`Decompose`]).
    pub exact_decomposition: bool,
    /// One vector per item ([`ItemEmbeddings`]).
    pub item_embeddings: bool,
    /// The model reads each user's interactions in time order.
    pub ordered_sequences: bool,
    /// The model reads user or item features.
    pub features: bool,
    /// The model predicts ratings ([`RatingPredictor`]).
    pub rating_prediction: bool,
    /// Ad-hoc histories are scored without retraining.
    pub fold_in: bool,
}

impl Capabilities {
    /// Nothing beyond scoring.
    pub const NONE: Capabilities = Capabilities {
        similar_items: false,
        exact_decomposition: false,
        item_embeddings: false,
        ordered_sequences: false,
        features: false,
        rating_prediction: false,
        fold_in: false,
    };

    /// The names of the capabilities present, for help texts.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.similar_items, "similar items"),
            (self.exact_decomposition, "exact decomposition"),
            (self.item_embeddings, "item embeddings"),
            (self.ordered_sequences, "ordered sequences"),
            (self.features, "features"),
            (self.rating_prediction, "rating prediction"),
            (self.fold_in, "fold-in"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect()
    }
}
