//! item2vec (Barkan and Koenigstein, "Item2Vec: Neural Item Embedding for
//! Collaborative Filtering", 2016): skip-gram with negative sampling
//! (Mikolov et al., 2013) over each user's sequence, items as words.
//!
//! Similar items are the cosine of the learned (input) vectors. A history
//! is scored by its mean vector, weighted by the interactions' values, in
//! one of two ways: `context` (the default) takes the dot product with each
//! item's context (output) vector, the skip-gram model's own estimate of how
//! likely the item is to appear beside the history, which carries the
//! item's popularity; `cosine` takes the mean of unit vectors against each
//! unit vector (pure similarity). Either way the score is a weighted sum over
//! history items, so the explanation (each history item's affinity to the
//! recommended one) adds up to the score exactly.
//!
//! Training runs on one thread, in a fixed order drawn from the seed, so a
//! seed gives the same vectors on every machine.

use crate::seq::{dot, Sequences};
use because_core::rng::Rng;
use because_core::{
    Capabilities, Decompose, Decomposition, Epoch, EpochObserver, Error, Interactions, Query,
    Recommender, Result, Sequence,
};
use because_models::persist::{PersistError, TensorsIn, TensorsOut};
use because_models::{ModelKind, Train, Validate};
use serde::{Deserialize, Serialize};

/// How a history is scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scoring {
    /// Mean input vector · each item's context vector.
    Context,
    /// Mean unit vector · each item's unit vector (mean cosine).
    Cosine,
}

/// item2vec parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Item2VecParams {
    /// Width of the item vectors.
    pub dim: usize,
    /// Context items on each side of a position (each draw shrinks it at
    /// random, as word2vec does); 0 pairs every item with every other item
    /// of the user's sequence, as the item2vec paper does.
    pub window: usize,
    /// Negative samples per pair, drawn in proportion to count^`ns_exponent`.
    pub negatives: usize,
    /// The exponent of negative sampling (0.75 in word2vec; -0.5 here, which
    /// took MovieLens-100k test NDCG@10 from 0.012 to 0.100); lower (even
    /// negative) values draw rarer items and leave popular items higher
    /// scores, which often helps recommendation (Caselles-Dupré et al.,
    /// "Word2vec applied to recommendation: hyperparameters matter", RecSys 2018).
    pub ns_exponent: f32,
    /// Passes over the data.
    pub epochs: usize,
    /// Starting learning rate, decayed linearly to 1/10 000 of it.
    pub learning_rate: f32,
    /// Frequent-item subsampling threshold (0 keeps everything).
    pub subsample: f32,
    /// How a history is scored.
    pub scoring: Scoring,
    /// Seed.
    pub seed: u64,
}

impl Default for Item2VecParams {
    fn default() -> Self {
        Item2VecParams {
            dim: 64,
            window: 5,
            negatives: 5,
            ns_exponent: -0.5,
            epochs: 20,
            learning_rate: 0.025,
            subsample: 1e-3,
            scoring: Scoring::Context,
            seed: 42,
        }
    }
}

impl Validate for Item2VecParams {
    fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 1024 {
            return Err(Error::param("dim", "must be in 1..=1024"));
        }
        if self.negatives == 0 || self.negatives > 100 {
            return Err(Error::param("negatives", "must be in 1..=100"));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err(Error::param("epochs", "must be in 1..=10000"));
        }
        if !(self.ns_exponent >= -2.0 && self.ns_exponent <= 2.0) {
            return Err(Error::param("ns_exponent", "must be in [-2, 2]"));
        }
        if self.window > 1000 {
            return Err(Error::param("window", "must be at most 1000"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(Error::param("learning_rate", "must be in (0, 1]"));
        }
        if !(self.subsample >= 0.0 && self.subsample <= 1.0) {
            return Err(Error::param("subsample", "must be in [0, 1]"));
        }
        Ok(())
    }
}

/// A fitted item2vec model.
#[derive(Clone, Debug)]
pub struct Item2Vec {
    params: Item2VecParams,
    train: Train,
    /// Unit-length item vectors, `n_items × dim` (zero for unseen items).
    unit: Vec<f32>,
    /// For `context` scoring, what a history's mean is taken of: the input
    /// vectors (`n_items × dim`); empty for `cosine`, which uses `unit`.
    left: Vec<f32>,
    /// For `context` scoring, what that mean is dotted with: the context
    /// vectors; empty for `cosine`.
    right: Vec<f32>,
    losses: Vec<f32>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-30.0, 30.0)).exp())
}

impl Item2VecParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Item2Vec> {
        self.fit_observed(x, 0, &mut because_core::no_observer())
    }

    /// Fits, calling `observer` after each epoch (with a snapshot every
    /// `every` epochs).
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Item2Vec> {
        self.validate()?;
        if x.is_empty() {
            return Err(Error::Empty("item2vec: no interactions to train on".into()));
        }
        let (n, d) = (x.n_items(), self.dim);
        let seqs = Sequences::new(x);
        let start = std::time::Instant::now();
        let mut rng = Rng::new(self.seed);
        let mut w_in: Vec<f32> = (0..n * d)
            .map(|_| (rng.next_f32() - 0.5) / d as f32)
            .collect();
        let mut w_out = vec![0.0f32; n * d];
        // Unigram counts, the negative-sampling table and subsampling.
        let mut counts = vec![0f64; n];
        for &i in x.items() {
            counts[i as usize] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let mut cumulative = Vec::with_capacity(n);
        let mut acc = 0.0f64;
        for &c in &counts {
            acc += if c > 0.0 {
                c.powf(self.ns_exponent as f64)
            } else {
                0.0
            };
            cumulative.push(acc);
        }
        let keep: Vec<f64> = counts
            .iter()
            .map(|&c| {
                if self.subsample <= 0.0 || c == 0.0 {
                    1.0
                } else {
                    let f = c / total;
                    let t = self.subsample as f64;
                    ((t / f).sqrt() + t / f).min(1.0)
                }
            })
            .collect();
        let users: Vec<u32> = (0..seqs.n_users() as u32)
            .filter(|&u| seqs.items(u).len() >= 2)
            .collect();
        let steps = (self.epochs * x.len()).max(1) as f64;
        let mut done = 0usize;
        let mut model = Item2Vec {
            params: self.clone(),
            train: Train::new(x),
            unit: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            losses: Vec::new(),
        };
        let mut grad = vec![0.0f32; d];
        let mut kept: Vec<u32> = Vec::new();
        for epoch in 1..=self.epochs {
            let mut order = users.clone();
            let mut rng = Rng::stream(self.seed, epoch as u64);
            rng.shuffle(&mut order);
            let (mut loss, mut pairs) = (0.0f64, 0usize);
            for &u in &order {
                let items = seqs.items(u);
                done += items.len();
                let lr = self.learning_rate * (1.0 - done as f64 / steps).max(1e-4) as f32;
                kept.clear();
                kept.extend(
                    items
                        .iter()
                        .copied()
                        .filter(|&i| rng.next_f64() < keep[i as usize]),
                );
                for t in 0..kept.len() {
                    let (lo, hi) = if self.window == 0 {
                        (0, kept.len())
                    } else {
                        let w = 1 + rng.below(self.window as u64) as usize;
                        (t.saturating_sub(w), (t + w + 1).min(kept.len()))
                    };
                    for c in lo..hi {
                        if c == t || kept[c] == kept[t] {
                            continue;
                        }
                        let centre = kept[t] as usize;
                        grad.fill(0.0);
                        for k in 0..=self.negatives {
                            let (target, label) = if k == 0 {
                                (kept[c] as usize, 1.0f32)
                            } else {
                                let r = rng.next_f64() * acc;
                                let j = cumulative.partition_point(|&v| v <= r).min(n - 1);
                                if j == kept[c] as usize {
                                    continue;
                                }
                                (j, 0.0)
                            };
                            let (wi, wo) = (
                                &w_in[centre * d..(centre + 1) * d],
                                &mut w_out[target * d..(target + 1) * d],
                            );
                            let s = sigmoid(dot(wi, wo));
                            loss -= if label > 0.5 {
                                s.max(1e-7).ln()
                            } else {
                                (1.0 - s).max(1e-7).ln()
                            } as f64;
                            let g = (label - s) * lr;
                            for q in 0..d {
                                grad[q] += g * wo[q];
                                wo[q] += g * wi[q];
                            }
                        }
                        for (a, b) in w_in[centre * d..(centre + 1) * d].iter_mut().zip(&grad) {
                            *a += b;
                        }
                        pairs += 1;
                    }
                }
            }
            let loss = loss / pairs.max(1) as f64;
            model.losses.push(loss as f32);
            let snapshot = every > 0 && (epoch % every == 0 || epoch == self.epochs);
            if snapshot {
                model.set_vectors(&w_in, &w_out, &counts);
                model.params.epochs = epoch;
            }
            let flow = observer(&Epoch {
                epoch,
                of: self.epochs,
                loss: Some(loss),
                elapsed: start.elapsed(),
                model: snapshot.then_some(&model as &dyn Recommender),
            });
            if flow.is_break() {
                break;
            }
        }
        model.set_vectors(&w_in, &w_out, &counts);
        model.params.epochs = model.losses.len();
        if model
            .left
            .iter()
            .chain(&model.right)
            .any(|v| !v.is_finite())
        {
            return Err(Error::NonFinite {
                model: <Item2Vec as ModelKind>::NAME,
                detail: "item vectors".into(),
            });
        }
        Ok(model)
    }
}

/// Rows scaled to unit length; items never seen in training stay zero.
fn unit_rows(w: &[f32], counts: &[f64], d: usize) -> Vec<f32> {
    let mut out = w.to_vec();
    for (row, &c) in out.chunks_exact_mut(d).zip(counts) {
        let norm = dot(row, row).sqrt();
        if c == 0.0 || norm == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
    out
}

impl Item2Vec {
    fn set_vectors(&mut self, w_in: &[f32], w_out: &[f32], counts: &[f64]) {
        let d = self.d();
        self.unit = unit_rows(w_in, counts, d);
        match self.params.scoring {
            Scoring::Cosine => {
                self.left = Vec::new();
                self.right = Vec::new();
            }
            Scoring::Context => {
                self.left = w_in.to_vec();
                self.right = w_out.to_vec();
                // Items never seen in training are never recommended from
                // their random start.
                for (i, &c) in counts.iter().enumerate() {
                    if c == 0.0 {
                        self.left[i * d..(i + 1) * d].fill(0.0);
                        self.right[i * d..(i + 1) * d].fill(0.0);
                    }
                }
            }
        }
    }
    fn d(&self) -> usize {
        self.params.dim
    }
    fn row(&self, i: u32) -> &[f32] {
        &self.unit[i as usize * self.d()..(i as usize + 1) * self.d()]
    }
    /// Row `i` of `m`, or of the unit vectors when `m` is empty (cosine).
    fn rows_of<'a>(&'a self, m: &'a [f32], i: u32) -> &'a [f32] {
        let m = if m.is_empty() { &self.unit[..] } else { m };
        &m[i as usize * self.d()..(i as usize + 1) * self.d()]
    }
    fn left_row(&self, i: u32) -> &[f32] {
        self.rows_of(&self.left, i)
    }
    fn right_row(&self, i: u32) -> &[f32] {
        self.rows_of(&self.right, i)
    }
    /// Mean training loss per pair of each epoch.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }
}

impl ModelKind for Item2Vec {
    const NAME: &'static str = "item2vec";
    const ABOUT: &'static str =
        "skip-gram item embeddings (item2vec); histories scored by their mean vector";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        exact_decomposition: true,
        item_embeddings: true,
        inner_product: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EPOCHS: Option<&'static str> = Some("epochs");
    const EXAMPLE: &'static str = "dim=8,epochs=3";
    type Params = Item2VecParams;

    fn fit(
        params: &Item2VecParams,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_observed(x, every, observer)
    }
    fn params(&self) -> Item2VecParams {
        self.params.clone()
    }
    fn train(&self) -> &Train {
        &self.train
    }
    fn save(&self, out: &mut TensorsOut) {
        let shape = [self.train.ui.n_cols(), self.d()];
        out.f32("item_vectors", &self.unit, &shape);
        if self.params.scoring == Scoring::Context {
            out.f32("input_vectors", &self.left, &shape);
            out.f32("context_vectors", &self.right, &shape);
        }
        out.f32("losses", &self.losses, &[self.losses.len()]);
    }
    fn load(params: Item2VecParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let ni = train.ui.n_cols();
        let unit = t.f32("item_vectors", &[ni, params.dim])?;
        let (left, right) = match params.scoring {
            Scoring::Cosine => (Vec::new(), Vec::new()),
            Scoring::Context => (
                t.f32("input_vectors", &[ni, params.dim])?,
                t.f32("context_vectors", &[ni, params.dim])?,
            ),
        };
        Ok(Item2Vec {
            unit,
            left,
            right,
            losses: t.f32("losses", &[params.epochs])?,
            params,
            train,
        })
    }
}

impl Recommender for Item2Vec {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    fn n_users(&self) -> usize {
        self.train.ui.n_rows()
    }
    fn n_items(&self) -> usize {
        self.train.ui.n_cols()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        (self.train.items(user), self.train.values(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        use because_core::InnerProduct as _;
        let q = self.query_vector(query)?;
        let items = self.item_vectors();
        crate::seq::score_all(&q.vector, items.data, items.dim, 0, out);
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        crate::seq::score_all(self.row(item), &self.unit, self.d(), 0, out);
        Ok(())
    }
    fn decomposer(&self) -> Option<&dyn Decompose> {
        Some(self)
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        Some(self)
    }
    fn embeddings(&self) -> Option<&dyn because_core::ItemEmbeddings> {
        Some(self)
    }
}

impl Decompose for Item2Vec {
    fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Decomposition {
        let total: f32 = values.iter().sum();
        let t = self.right_row(target);
        let weights: Vec<f32> = items
            .iter()
            .zip(values)
            .map(|(&i, &v)| {
                if total != 0.0 {
                    v / total * dot(self.left_row(i), t)
                } else {
                    0.0
                }
            })
            .collect();
        Decomposition {
            score: weights.iter().sum(),
            weights,
        }
    }
}

impl because_core::InnerProduct for Item2Vec {
    /// The output vectors (or the unit vectors, for a model that scores by
    /// cosine), against the value-weighted mean of the history's input
    /// vectors.
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        let rows = if self.right.is_empty() {
            &self.unit
        } else {
            &self.right
        };
        because_core::ItemVectors::dense(rows, self.d())
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        let (items, values) = match *query {
            Query::User(u) => (self.train.items(u), self.train.values(u)),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                (items, values)
            }
        };
        let d = self.d();
        let mut mean = vec![0.0f32; d];
        let total: f32 = values.iter().sum();
        if total != 0.0 {
            for (&i, &v) in items.iter().zip(values) {
                for (m, r) in mean.iter_mut().zip(self.left_row(i)) {
                    *m += v / total * r;
                }
            }
        }
        Ok(because_core::QueryVector {
            vector: mean,
            offset: 0.0,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(because_core::ItemVectors::dense(&self.unit, self.d()))
    }
}

impl because_core::ItemEmbeddings for Item2Vec {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.unit, self.d())
    }
}
