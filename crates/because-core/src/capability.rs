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

/// Item vectors as a model stores them: row `i` is
/// `data[i * stride .. i * stride + dim]`, and `bias[i]`, when there is
/// one, is added to row `i`'s inner products.
#[derive(Clone, Copy, Debug)]
pub struct ItemVectors<'a> {
    /// The rows, `stride` floats apart.
    pub data: &'a [f32],
    /// The width of a row.
    pub dim: usize,
    /// Floats from one row's start to the next's (at least `dim`).
    pub stride: usize,
    /// An item term added to every inner product, if the model has one.
    pub bias: Option<&'a [f32]>,
}

impl<'a> ItemVectors<'a> {
    /// Dense rows without a bias.
    pub fn dense(data: &'a [f32], dim: usize) -> ItemVectors<'a> {
        ItemVectors {
            data,
            dim,
            stride: dim,
            bias: None,
        }
    }
    /// How many rows.
    pub fn len(&self) -> usize {
        if self.dim == 0 || self.data.len() < self.dim {
            0
        } else {
            (self.data.len() - self.dim) / self.stride + 1
        }
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i`.
    pub fn row(&self, i: u32) -> &'a [f32] {
        let s = i as usize * self.stride;
        &self.data[s..s + self.dim]
    }
    /// `i`'s score for `q`: the inner product, the item's bias and the
    /// query's offset, summed in f64 (the reference the model's own
    /// scoring agrees with to float rounding).
    pub fn score(&self, q: &QueryVector, i: u32) -> f32 {
        let dot: f64 = q
            .vector
            .iter()
            .zip(self.row(i))
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        let bias = self.bias.map_or(0.0, |b| b[i as usize] as f64);
        (dot + bias + q.offset as f64) as f32
    }
}

/// A query as an inner-product model sees it: `score(i) = vector · row(i)
/// + bias(i) + offset` (see [`InnerProduct`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryVector {
    /// One value per item-vector dimension.
    pub vector: Vec<f32>,
    /// Added to every item's score (a user's bias, a global mean).
    pub offset: f32,
}

/// Models whose score of every item is an inner product with one vector
/// per item (matrix factorization, two towers, the output layer of a
/// sequence model), so that an approximate nearest-neighbour index can
/// find the best items without scoring the whole catalogue, and the
/// candidates it returns can be scored exactly from the same vectors.
pub trait InnerProduct {
    /// The item side: `score_into` writes `query_vector(q) · row(i) +
    /// bias(i) + offset` for every item `i`.
    fn item_vectors(&self) -> ItemVectors<'_>;
    /// The query side, for a query the caller has checked.
    fn query_vector(&self, query: &crate::query::Query<'_>) -> crate::Result<QueryVector>;
    /// The rows whose cosine similarity `similar_into` writes, when it
    /// does (their biases are ignored).
    fn similarity_vectors(&self) -> Option<ItemVectors<'_>>;
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

/// An approximate attribution method a model offers over an ordered
/// history (see [`Attribute`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// Each history item left out in turn and the target re-scored: the
    /// measured effect of each item (score units).
    Occlusion,
    /// The attention of the last position over the history's positions in
    /// the last layer, averaged over heads (weights sum to 1).
    Attention,
    /// Attention rollout across layers (Abnar and Zuidema, "Quantifying
    /// Attention Flow in Transformers", ACL 2020): each layer's head-averaged
    /// attention mixed half and half with the identity, multiplied through
    /// the layers (weights sum to 1).
    AttentionRollout,
    /// The gradient of the score with respect to each history item's input
    /// embedding, dotted with that embedding (in score units; a first-order
    /// estimate of each item's effect).
    GradientInput,
    /// Integrated gradients (Sundararajan et al., "Axiomatic Attribution
    /// for Deep Networks", ICML 2017) from the empty input: each history
    /// item's share of the score minus the score of nothing (score units;
    /// the shares add up to that difference).
    IntegratedGradients,
    /// The cosine similarity of each history item's vector to the
    /// recommended item's (in [-1, 1]; not score units).
    Similarity,
}

impl std::str::FromStr for Attribution {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Attribution> {
        let all = [
            Attribution::Occlusion,
            Attribution::Attention,
            Attribution::AttentionRollout,
            Attribution::GradientInput,
            Attribution::IntegratedGradients,
            Attribution::Similarity,
        ];
        all.into_iter()
            .find(|a| a.name() == s.trim().replace('-', "_"))
            .ok_or_else(|| {
                crate::Error::param(
                    "method",
                    format!(
                        "unknown attribution method {s:?} (one of {})",
                        all.map(Attribution::name).join(", ")
                    ),
                )
            })
    }
}

impl Attribution {
    /// The name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Occlusion => "occlusion",
            Attribution::Attention => "attention",
            Attribution::AttentionRollout => "attention_rollout",
            Attribution::GradientInput => "gradient_input",
            Attribution::IntegratedGradients => "integrated_gradients",
            Attribution::Similarity => "similarity",
        }
    }
}

/// Models with their own attribution methods over an ordered history
/// (attention weights, gradients). They are approximate: the explanation
/// layer measures each one's fidelity with the deletion test, beside
/// occlusion (leaving each item out and re-scoring), which any model that
/// folds in histories allows.
pub trait Attribute {
    /// The methods the model offers.
    fn attributions(&self) -> &'static [Attribution];
    /// One weight per history item, in history order, for `target`'s score
    /// given the ordered history `items` (checked by the caller). Items the
    /// model does not read (beyond its window) weigh 0.
    fn attribute(&self, method: Attribution, items: &[u32], target: u32)
        -> crate::Result<Vec<f32>>;
    /// For attention models: the attention of the last position over the
    /// history's positions in every layer and head (`layers × heads` rows
    /// of `items.len()` weights, layer by layer; items beyond the model's
    /// window weigh 0), for heat maps.
    fn attention_maps(&self, items: &[u32]) -> Option<AttentionMaps> {
        let _ = items;
        None
    }
}

/// A user described to a model that reads features: a known user (their
/// ID, features and training history unless overridden), or a new one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Described<'a> {
    /// A user known at training time, if any.
    pub user: Option<u32>,
    /// The user's feature tokens and weights (from the model's user table,
    /// [`crate::FeatureTable::encode_one`]); `None` takes a known user's own.
    pub features: Option<&'a [(u32, f32)]>,
    /// The history; `None` takes a known user's training history.
    pub items: Option<&'a [u32]>,
}

/// One input's share of a score.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct InputShare {
    /// The input: `id`, a feature token (`genres=Horror`, `age`), or
    /// `history` (the history items together; see
    /// [`FeatureAttribution::history`] for each).
    pub input: String,
    /// Its share of the score, in score units.
    pub share: f32,
}

/// A score split over a model's inputs by integrated gradients: user-side
/// and item-side shares plus one per history item add up to `score -
/// baseline`.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FeatureAttribution {
    /// The score.
    pub score: f32,
    /// The score with every input removed (the integration's start).
    pub baseline: f32,
    /// User-side inputs (`id`, feature tokens, `history`), largest first.
    pub user_inputs: Vec<InputShare>,
    /// Item-side inputs (`id`, feature tokens), largest first.
    pub item_inputs: Vec<InputShare>,
    /// One share per history item, in history order.
    pub history: Vec<f32>,
}

impl FeatureAttribution {
    /// The sum of every user-side and item-side share: with the baseline,
    /// the score.
    pub fn inputs_total(&self) -> f32 {
        self.user_inputs
            .iter()
            .chain(&self.item_inputs)
            .map(|s| s.share)
            .sum()
    }
}

/// Models that read user and item features: scoring a described user and
/// splitting a score over every input.
pub trait Featured {
    /// The user features the model was trained with (rows are known users).
    fn user_features(&self) -> Option<&crate::FeatureTable>;
    /// The item features the model was trained with (rows are items).
    fn item_features(&self) -> Option<&crate::FeatureTable>;
    /// Scores every item for `user` into `out`.
    fn score_described(&self, user: &Described<'_>, out: &mut [f32]) -> crate::Result<()>;
    /// Splits `target`'s score for `user` over the inputs.
    fn attribute_inputs(
        &self,
        user: &Described<'_>,
        target: u32,
    ) -> crate::Result<FeatureAttribution>;
}

/// Attention of the last position, per layer and head.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMaps {
    /// Layers.
    pub layers: usize,
    /// Heads per layer.
    pub heads: usize,
    /// `layers × heads` rows, each one weight per history item.
    pub rows: Vec<Vec<f32>>,
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
    /// Every score is an inner product with one vector per item
    /// ([`InnerProduct`]): approximate retrieval can serve the model.
    pub inner_product: bool,
    /// The model reads each user's interactions in time order.
    pub ordered_sequences: bool,
    /// The model reads user or item features.
    pub features: bool,
    /// The model predicts ratings ([`RatingPredictor`]).
    pub rating_prediction: bool,
    /// Ad-hoc histories are scored without retraining.
    pub fold_in: bool,
    /// The model offers its own attribution methods ([`Attribute`]).
    pub attributions: bool,
}

impl Capabilities {
    /// Nothing beyond scoring.
    pub const NONE: Capabilities = Capabilities {
        similar_items: false,
        exact_decomposition: false,
        item_embeddings: false,
        inner_product: false,
        ordered_sequences: false,
        features: false,
        rating_prediction: false,
        fold_in: false,
        attributions: false,
    };

    /// The names of the capabilities present, for help texts.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.similar_items, "similar items"),
            (self.exact_decomposition, "exact decomposition"),
            (self.item_embeddings, "item embeddings"),
            (self.inner_product, "inner-product scores"),
            (self.ordered_sequences, "ordered sequences"),
            (self.features, "features"),
            (self.rating_prediction, "rating prediction"),
            (self.fold_in, "fold-in"),
            (self.attributions, "attributions"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect()
    }
}
