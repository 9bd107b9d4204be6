//! A two-tower model with user and item features (Yi et al.,
//! "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
//! Recommendations", RecSys 2019; Covington et al., "Deep Neural Networks
//! for YouTube Recommendations", RecSys 2016).
//!
//! Each tower sums the embeddings of its inputs and passes the sum through
//! a residual layer, `x + relu(x·W1 + b1)·W2 + b2`:
//!
//! * the user tower reads the user's feature tokens (categorical,
//!   multi-valued and numeric columns, see [`because_core::features`]), the
//!   mean embedding of the user's history and, with `user_ids=true` (the
//!   default), an ID embedding;
//! * the item tower reads the item's ID embedding and feature tokens.
//!
//! The score is the dot product of the two outputs. Training is in-batch
//! sampled softmax with the log-Q correction (each in-batch negative's logit
//! minus the log of its share of the training interactions; `loss=softmax`
//! scores every item instead), with ID dropout: each ID input is left out
//! with probability `id_dropout`, so the towers learn to score from
//! features alone, and an L2 penalty on each tower's summed input. An item
//! with no training interactions has no ID input at all: it is scored from
//! its features; a user with none (a new user) from their features and
//! however short a history.
//!
//! A share of the training examples (`new_users`) is read as a new user's:
//! features only, no ID, no history (the input dropout of DropoutNet,
//! Volkovs et al., NeurIPS 2017), so that a user known only by their
//! features is ranked from what those features predict.
//!
//! The defaults come from ablations on MovieLens-100k (per-user temporal
//! split, three seeds; `tests/quality_ml100k.rs` holds the bars): the user
//! ID is what lifts warm users to BPR's level and above (test NDCG@10 about
//! 0.110 without it, 0.122 with it and `regularization=0.01`); feature
//! levels shared by fewer than 100 users or items (`min_support`) overfit
//! for users known by features alone, and `new_users=0.15` puts those
//! users above popularity at no cost to warm users (0.5 does cost them);
//! the full softmax and longer histories in training change nothing
//! beyond the seeds' spread.
//!
//! Explanations: the score splits over every input by integrated gradients
//! from the empty input ([`Featured::attribute_inputs`]), computed exactly:
//! along the straight path the network is piecewise affine, so the path
//! integral is a midpoint sum over the segments between the activations'
//! switching points, and the shares add up to the score minus the baseline
//! to rounding. Over an ad-hoc history the same shares per history item are
//! the `integrated_gradients` attribution; `similarity` gives the cosine of
//! each history item's tower output with the recommended item's (seed 000's
//! explanation).

use crate::optim::{Adam, Grad, Rows};
use crate::seq::dot;
use crate::train::{device, grad_of, param1, param2, to_vec};
use because_core::capability::{Described, FeatureAttribution, Featured, InputShare};
use because_core::rng::Rng;
use because_core::{
    Attribute, Attribution, Capabilities, Epoch, EpochObserver, Error, FeatureTable, Interactions,
    Query, Recommender, Result, Sequence, SideInfo,
};
use because_models::persist::{PersistError, TensorsIn, TensorsOut};
use because_models::{ModelKind, Train, Validate};
use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The two-tower model's training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TowerLoss {
    /// Cross-entropy over the batch's own items (in-batch negatives), with
    /// the log-Q correction when `log_q` is on. Its cost per step does not
    /// grow with the catalogue.
    Sampled,
    /// Cross-entropy over every item: each step runs the item tower over
    /// the whole catalogue. On MovieLens-100k it ranks no better than
    /// `sampled` and takes twice as long.
    Softmax,
}

/// Two-tower parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoTowerParams {
    /// Width of the embeddings and tower outputs.
    pub dim: usize,
    /// Width of each tower's hidden layer.
    pub hidden: usize,
    /// Passes over the training interactions.
    pub epochs: usize,
    /// Interactions per batch (each one's item is a negative for the others).
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f32,
    /// Most history items read per training example (each reads a random
    /// sample of between none and this many of the user's other items).
    pub max_history: usize,
    /// Probability of leaving out an ID input during training.
    pub id_dropout: f32,
    /// Share of training examples read as a new user's: the user's
    /// features alone, no ID and no history (DropoutNet's input dropout),
    /// so that features learn to rank for users known by nothing else.
    pub new_users: f32,
    /// Whether the user tower has an ID embedding (used for users with
    /// training interactions; new users are scored without one).
    pub user_ids: bool,
    /// The loss: `sampled` (in-batch negatives) or `softmax` (every item).
    pub loss: TowerLoss,
    /// With the sampled loss, subtract the log of each in-batch item's
    /// frequency from its logit.
    pub log_q: bool,
    /// L2 penalty on the summed inputs of each tower.
    pub regularization: f32,
    /// Feature levels shared by fewer users or items than this are not
    /// read: a level that rare (a zip code) identifies its few entities
    /// and acts as an ID that ID dropout does not cover. The default
    /// suits a few thousand users or items; lower it for fewer.
    pub min_support: usize,
    /// Threads training runs on, each on its share of every mini-batch's
    /// users against all of the batch's items (0: every core; the fitted
    /// model records how many ran). The full softmax runs on one graph.
    /// Training is reproducible for a seed and a thread count.
    pub threads: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for TwoTowerParams {
    fn default() -> Self {
        TwoTowerParams {
            dim: 64,
            hidden: 128,
            epochs: 6,
            batch_size: 512,
            learning_rate: 0.003,
            max_history: 50,
            id_dropout: 0.2,
            new_users: 0.15,
            user_ids: true,
            loss: TowerLoss::Sampled,
            log_q: true,
            regularization: 0.01,
            min_support: 100,
            threads: 0,
            seed: 42,
        }
    }
}

impl Validate for TwoTowerParams {
    fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 1024 {
            return Err(Error::param("dim", "must be in 1..=1024"));
        }
        if self.hidden == 0 || self.hidden > 4096 {
            return Err(Error::param("hidden", "must be in 1..=4096"));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err(Error::param("epochs", "must be in 1..=10000"));
        }
        if self.batch_size < 2 || self.batch_size > 65_536 {
            return Err(Error::param("batch_size", "must be in 2..=65536"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(Error::param("learning_rate", "must be in (0, 1]"));
        }
        if self.max_history == 0 || self.max_history > 10_000 {
            return Err(Error::param("max_history", "must be in 1..=10000"));
        }
        if !(0.0..1.0).contains(&self.id_dropout) {
            return Err(Error::param("id_dropout", "must be in [0, 1)"));
        }
        if !(0.0..1.0).contains(&self.new_users) {
            return Err(Error::param("new_users", "must be in [0, 1)"));
        }
        if !(self.regularization >= 0.0 && self.regularization <= 100.0) {
            return Err(Error::param("regularization", "must be in [0, 100]"));
        }
        if self.threads > 256 {
            return Err(Error::param("threads", "must be at most 256"));
        }
        Ok(())
    }
}

/// One tower's residual layer, plain arrays (row-major).
#[derive(Clone, Debug, PartialEq)]
struct Tower {
    /// `dim × hidden`.
    w1: Vec<f32>,
    b1: Vec<f32>,
    /// `hidden × dim`.
    w2: Vec<f32>,
    b2: Vec<f32>,
}

impl Tower {
    fn init(d: usize, h: usize, rng: &mut Rng) -> Tower {
        let mut uniform = |n: usize, bound: f32| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.next_f32() * 2.0 - 1.0) * bound)
                .collect()
        };
        Tower {
            w1: uniform(d * h, 1.0 / (d as f32).sqrt()),
            b1: uniform(h, 1.0 / (d as f32).sqrt()),
            // Small, so that training starts near the identity (a plain
            // embedding model).
            w2: uniform(h * d, 0.1 / (h as f32).sqrt()),
            b2: vec![0.0; d],
        }
    }
    fn h(&self) -> usize {
        self.b1.len()
    }
    fn d(&self) -> usize {
        self.b2.len()
    }
    /// `x·W1` (without the bias).
    fn pre(&self, x: &[f32]) -> Vec<f32> {
        let h = self.h();
        let mut p = vec![0.0f32; h];
        for (xi, row) in x.iter().zip(self.w1.chunks_exact(h)) {
            if *xi != 0.0 {
                p.iter_mut().zip(row).for_each(|(a, w)| *a += xi * w);
            }
        }
        p
    }
    /// The output at `x`, with which hidden units are active.
    fn forward(&self, x: &[f32]) -> (Vec<f32>, Vec<bool>) {
        let pre = self.pre(x);
        let mut out = x.to_vec();
        out.iter_mut().zip(&self.b2).for_each(|(o, b)| *o += b);
        let mut active = vec![false; self.h()];
        for (k, ((p, b), row)) in pre
            .iter()
            .zip(&self.b1)
            .zip(self.w2.chunks_exact(self.d()))
            .enumerate()
        {
            let a = p + b;
            if a > 0.0 {
                active[k] = true;
                out.iter_mut().zip(row).for_each(|(o, w)| *o += a * w);
            }
        }
        (out, active)
    }
    /// `Jᵀ v`, the gradient of `v · tower(x)` with respect to `x`, where
    /// `active` are the active hidden units at `x`.
    fn vjp(&self, active: &[bool], v: &[f32]) -> Vec<f32> {
        let (d, h) = (self.d(), self.h());
        let mut y = vec![0.0f32; h];
        for (k, row) in self.w2.chunks_exact(d).enumerate() {
            if active[k] {
                y[k] = dot(row, v);
            }
        }
        let mut g = v.to_vec();
        for (gi, row) in g.iter_mut().zip(self.w1.chunks_exact(h)) {
            *gi += dot(row, &y);
        }
        g
    }
    /// Where along `α·x`, `α` in (0, 1), a hidden unit switches on or off.
    fn switches(&self, x: &[f32], out: &mut Vec<f64>) {
        for (p, b) in self.pre(x).iter().zip(&self.b1) {
            if *p != 0.0 {
                let a = -f64::from(*b) / f64::from(*p);
                if a > 0.0 && a < 1.0 {
                    out.push(a);
                }
            }
        }
    }
}

/// What one input of a tower is, for naming its share.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Input {
    Id,
    Token(u32),
    History(usize),
}

/// A fitted two-tower model.
#[derive(Clone, Debug)]
pub struct TwoTower {
    params: TwoTowerParams,
    train: Train,
    users: Option<Arc<FeatureTable>>,
    items: Option<Arc<FeatureTable>>,
    /// Which user and item feature tokens are read (`min_support`).
    user_read: Vec<bool>,
    item_read: Vec<bool>,
    /// User-side embeddings: user IDs (with `user_ids`), user feature
    /// tokens, then history items; `dim` wide.
    user_emb: Vec<f32>,
    /// Item-side embeddings: item IDs, then item feature tokens.
    item_emb: Vec<f32>,
    user_tower: Tower,
    item_tower: Tower,
    /// Each item's tower output, `n_items × dim`.
    item_out: Vec<f32>,
    losses: Vec<f32>,
}

impl TwoTower {
    fn d(&self) -> usize {
        self.params.dim
    }
    fn n_items_(&self) -> usize {
        self.train.ui.n_cols()
    }
    fn n_uid(&self) -> usize {
        if self.params.user_ids {
            self.train.ui.n_rows()
        } else {
            0
        }
    }
    fn n_user_tokens(&self) -> usize {
        self.users.as_ref().map_or(0, |t| t.n_tokens())
    }
    /// The user-side inputs: embedding row, weight, and what it is.
    fn user_inputs(&self, u: &Described<'_>) -> Result<Vec<(usize, f32, Input)>> {
        let mut out = Vec::new();
        if let Some(user) = u.user {
            if user as usize >= self.train.ui.n_rows() {
                return Err(Error::UnknownUser {
                    user,
                    n_users: self.train.ui.n_rows(),
                });
            }
            // A user with no training interactions has an untrained ID:
            // they are scored from their features and history alone.
            if self.params.user_ids && !self.train.items(user).is_empty() {
                out.push((user as usize, 1.0, Input::Id));
            }
        }
        let own: Vec<(u32, f32)>;
        let tokens: &[(u32, f32)] = match (u.features, u.user, &self.users) {
            (Some(f), _, _) => f,
            (None, Some(user), Some(t)) => {
                let (tok, w) = t.row(user);
                own = tok.iter().copied().zip(w.iter().copied()).collect();
                &own
            }
            _ => &[],
        };
        let base = self.n_uid();
        for &(t, w) in tokens {
            if t as usize >= self.n_user_tokens() {
                return Err(Error::param(
                    "features",
                    format!("token {t} is beyond the model's {}", self.n_user_tokens()),
                ));
            }
            if self.user_read[t as usize] {
                out.push((base + t as usize, w, Input::Token(t)));
            }
        }
        let items: &[u32] = match (u.items, u.user) {
            (Some(items), _) => items,
            (None, Some(user)) => self.train.items(user),
            (None, None) => &[],
        };
        let n = self.n_items_();
        if let Some(&i) = items.iter().find(|&&i| i as usize >= n) {
            return Err(Error::UnknownItem {
                item: i,
                n_items: n,
            });
        }
        let base = base + self.n_user_tokens();
        let w = 1.0 / items.len().max(1) as f32;
        for (pos, &i) in items.iter().enumerate() {
            out.push((base + i as usize, w, Input::History(pos)));
        }
        Ok(out)
    }
    /// The item-side inputs of item `i`.
    fn item_inputs(&self, i: u32) -> Vec<(usize, f32, Input)> {
        item_inputs(&self.train, self.items.as_deref(), &self.item_read, i, true)
    }
    fn sum(emb: &[f32], d: usize, inputs: &[(usize, f32, Input)], scale: f32) -> Vec<f32> {
        let mut x = vec![0.0f32; d];
        for &(r, w, _) in inputs {
            let row = &emb[r * d..(r + 1) * d];
            x.iter_mut().zip(row).for_each(|(a, e)| *a += scale * w * e);
        }
        x
    }
    fn user_vector(&self, u: &Described<'_>) -> Result<Vec<f32>> {
        let inputs = self.user_inputs(u)?;
        let x = Self::sum(&self.user_emb, self.d(), &inputs, 1.0);
        Ok(self.user_tower.forward(&x).0)
    }
    /// The trained arrays: the user and item tables, then each tower's
    /// `w1`, `b1`, `w2`, `b2` (user, item).
    fn trained(&mut self) -> Vec<&mut Vec<f32>> {
        let (u, i) = (&mut self.user_tower, &mut self.item_tower);
        vec![
            &mut self.user_emb,
            &mut self.item_emb,
            &mut u.w1,
            &mut u.b1,
            &mut u.w2,
            &mut u.b2,
            &mut i.w1,
            &mut i.b1,
            &mut i.w2,
            &mut i.b2,
        ]
    }

    fn set_item_out(&mut self) {
        let d = self.d();
        let n = self.n_items_();
        let mut out = vec![0.0f32; n * d];
        for i in 0..n as u32 {
            let x = Self::sum(&self.item_emb, d, &self.item_inputs(i), 1.0);
            out[i as usize * d..(i as usize + 1) * d]
                .copy_from_slice(&self.item_tower.forward(&x).0);
        }
        self.item_out = out;
    }
    fn item_row(&self, i: u32) -> &[f32] {
        let d = self.d();
        &self.item_out[i as usize * d..(i as usize + 1) * d]
    }
    /// Mean training loss of each epoch.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }

    /// Integrated gradients from zero inputs to `user`'s and `target`'s,
    /// exactly: the network is affine between switching points.
    fn integrated(&self, user: &Described<'_>, target: u32) -> Result<FeatureAttribution> {
        let n = self.n_items_();
        if target as usize >= n {
            return Err(Error::UnknownItem {
                item: target,
                n_items: n,
            });
        }
        let d = self.d();
        let ui = self.user_inputs(user)?;
        let ii = self.item_inputs(target);
        let xu = Self::sum(&self.user_emb, d, &ui, 1.0);
        let xi = Self::sum(&self.item_emb, d, &ii, 1.0);
        let mut cuts = vec![0.0f64, 1.0];
        self.user_tower.switches(&xu, &mut cuts);
        self.item_tower.switches(&xi, &mut cuts);
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let (mut gu, mut gi) = (vec![0.0f64; d], vec![0.0f64; d]);
        for w in cuts.windows(2) {
            let (a, len) = (0.5 * (w[0] + w[1]), w[1] - w[0]);
            if len <= 0.0 {
                continue;
            }
            let scaled = |x: &[f32]| {
                x.iter()
                    .map(|v| (f64::from(*v) * a) as f32)
                    .collect::<Vec<_>>()
            };
            let (zu, au) = self.user_tower.forward(&scaled(&xu));
            let (zi, ai) = self.item_tower.forward(&scaled(&xi));
            let du = self.user_tower.vjp(&au, &zi);
            let di = self.item_tower.vjp(&ai, &zu);
            gu.iter_mut()
                .zip(&du)
                .for_each(|(g, v)| *g += len * f64::from(*v));
            gi.iter_mut()
                .zip(&di)
                .for_each(|(g, v)| *g += len * f64::from(*v));
        }
        let share = |emb: &[f32], r: usize, w: f32, g: &[f64]| -> f32 {
            emb[r * d..(r + 1) * d]
                .iter()
                .zip(g)
                .map(|(e, g)| f64::from(w * e) * g)
                .sum::<f64>() as f32
        };
        let n_hist = user.items.map_or_else(
            || user.user.map_or(0, |u| self.train.items(u).len()),
            <[u32]>::len,
        );
        let mut history = vec![0.0f32; n_hist];
        let mut user_side: Vec<InputShare> = Vec::new();
        let mut history_total = 0.0f32;
        for &(r, w, what) in &ui {
            let s = share(&self.user_emb, r, w, &gu);
            match what {
                Input::Id => user_side.push(InputShare {
                    input: "id".into(),
                    share: s,
                }),
                Input::Token(t) => user_side.push(InputShare {
                    input: self
                        .users
                        .as_ref()
                        .map_or_else(|| format!("token {t}"), |tb| tb.token_name(t)),
                    share: s,
                }),
                Input::History(p) => {
                    history[p] += s;
                    history_total += s;
                }
            }
        }
        if n_hist > 0 {
            user_side.push(InputShare {
                input: "history".into(),
                share: history_total,
            });
        }
        let mut item_side: Vec<InputShare> = ii
            .iter()
            .map(|&(r, w, what)| InputShare {
                input: match what {
                    Input::Token(t) => self
                        .items
                        .as_ref()
                        .map_or_else(|| format!("token {t}"), |tb| tb.token_name(t)),
                    _ => "id".into(),
                },
                share: share(&self.item_emb, r, w, &gi),
            })
            .collect();
        let by_share = |a: &InputShare, b: &InputShare| b.share.total_cmp(&a.share);
        user_side.sort_by(by_share);
        item_side.sort_by(by_share);
        let zero = vec![0.0f32; d];
        let baseline = dot(
            &self.user_tower.forward(&zero).0,
            &self.item_tower.forward(&zero).0,
        );
        let score = dot(
            &self.user_tower.forward(&xu).0,
            &self.item_tower.forward(&xi).0,
        );
        Ok(FeatureAttribution {
            score,
            baseline,
            user_inputs: user_side,
            item_inputs: item_side,
            history,
        })
    }
}

/// The sampled loss's logit offsets for a batch of (user, item) pairs:
/// another row's copy of a row's own item is no negative (-1e9), and with
/// `correct` each item's logit loses the log of its share of the training
/// interactions (the log-Q correction).
fn batch_offsets(chunk: &[(u32, u32)], log_q: &[f32], correct: bool) -> Vec<f32> {
    let n = chunk.len();
    let mut offsets = vec![0.0f32; n * n];
    for (r, &(_, ir)) in chunk.iter().enumerate() {
        for (c, &(_, ic)) in chunk.iter().enumerate() {
            offsets[r * n + c] = if c != r && ic == ir {
                -1e9
            } else if correct {
                -log_q[ic as usize]
            } else {
                0.0
            };
        }
    }
    offsets
}

/// Which tokens of `t` at least `min` entities have.
fn supported(t: Option<&FeatureTable>, min: usize) -> Vec<bool> {
    let Some(t) = t else { return Vec::new() };
    let mut count = vec![0usize; t.n_tokens()];
    for &k in t.rows.indices() {
        count[k as usize] += 1;
    }
    count.into_iter().map(|c| c >= min).collect()
}

/// The item-side inputs of item `i`: its ID (when it has training
/// interactions and `with_id`), then its feature tokens.
fn item_inputs(
    train: &Train,
    items: Option<&FeatureTable>,
    read: &[bool],
    i: u32,
    with_id: bool,
) -> Vec<(usize, f32, Input)> {
    let n = train.ui.n_cols();
    let mut out = Vec::new();
    if with_id && !train.iu.row_indices(i as usize).is_empty() {
        out.push((i as usize, 1.0, Input::Id));
    }
    if let Some(t) = items {
        let (tok, w) = t.row(i);
        for (&k, &w) in tok.iter().zip(w) {
            if read[k as usize] {
                out.push((n + k as usize, w, Input::Token(k)));
            }
        }
    }
    out
}

/// The training network: both embedding tables and towers as burn parameters.
#[derive(Module, Debug)]
struct TowerNet {
    user: Param<Tensor<2>>,
    item: Param<Tensor<2>>,
    uw1: Param<Tensor<2>>,
    ub1: Param<Tensor<1>>,
    uw2: Param<Tensor<2>>,
    ub2: Param<Tensor<1>>,
    iw1: Param<Tensor<2>>,
    ib1: Param<Tensor<1>>,
    iw2: Param<Tensor<2>>,
    ib2: Param<Tensor<1>>,
}

/// One side of a batch: `rows × width` embedding rows and weights (0 pads).
struct Side {
    rows: usize,
    width: usize,
    ids: Vec<i64>,
    weights: Vec<f32>,
}

impl Side {
    fn new(inputs: &[Vec<(usize, f32)>]) -> Side {
        let width = inputs.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = vec![0i64; inputs.len() * width];
        let mut weights = vec![0.0f32; inputs.len() * width];
        for (r, inp) in inputs.iter().enumerate() {
            for (k, &(row, w)) in inp.iter().enumerate() {
                ids[r * width + k] = row as i64;
                weights[r * width + k] = w;
            }
        }
        Side {
            rows: inputs.len(),
            width,
            ids,
            weights,
        }
    }
}

impl Side {
    /// The rows this side reads (padding's row 0 among them).
    fn rows(&self) -> Rows {
        Rows::of(self.ids.iter().map(|&r| r as u32).chain([0]))
    }
    /// This side with its rows as local rows of `rows`.
    fn localized(mut self, rows: &Rows) -> Side {
        for id in &mut self.ids {
            *id = rows.local(*id as u32);
        }
        self
    }
    /// The examples `r` of this side.
    fn part(&self, r: std::ops::Range<usize>) -> Side {
        let w = self.width;
        Side {
            rows: r.len(),
            width: w,
            ids: self.ids[r.start * w..r.end * w].to_vec(),
            weights: self.weights[r.start * w..r.end * w].to_vec(),
        }
    }
}

/// One training step's inputs.
struct Batch<'a> {
    users: &'a Side,
    items: &'a Side,
    /// The batch's items, for the full softmax's targets.
    targets: &'a [u32],
    /// The sampled loss's offsets, `users.rows × users.rows` (`None`: the
    /// full softmax).
    offsets: Option<&'a [f32]>,
}

/// A shard's part of a step: the examples `rows` of the batch against all
/// of its items, on the shard's own graph.
struct Part {
    rows: std::ops::Range<usize>,
    /// Whether the shard adds the item side's penalty (one shard does).
    item_penalty: bool,
}

impl TowerNet {
    /// The network over the rows `users` of the user table and `items`
    /// of the item table (a training step's leaves), the towers as in `m`.
    fn gathered(m: &TwoTower, users: &Rows, items: &Rows) -> TowerNet {
        let dev = device();
        let (d, h) = (m.params.dim, m.params.hidden);
        TowerNet {
            user: param2(&users.gather(&m.user_emb, d), users.len(), d, &dev),
            item: param2(&items.gather(&m.item_emb, d), items.len(), d, &dev),
            uw1: param2(&m.user_tower.w1, d, h, &dev),
            ub1: param1(&m.user_tower.b1, &dev),
            uw2: param2(&m.user_tower.w2, h, d, &dev),
            ub2: param1(&m.user_tower.b2, &dev),
            iw1: param2(&m.item_tower.w1, d, h, &dev),
            ib1: param1(&m.item_tower.b1, &dev),
            iw2: param2(&m.item_tower.w2, h, d, &dev),
            ib2: param1(&m.item_tower.b2, &dev),
        }
    }
    fn pooled(&self, table: &Param<Tensor<2>>, s: &Side) -> Tensor<2> {
        let dev = table.val().device();
        let d = table.val().dims()[1];
        let ids =
            Tensor::<2, Int>::from_data(TensorData::new(s.ids.clone(), [s.rows, s.width]), &dev);
        let w = Tensor::<3>::from_data(
            TensorData::new(s.weights.clone(), [s.rows, s.width, 1]),
            &dev,
        );
        let e = burn::tensor::module::embedding(table.val(), ids) * w;
        e.sum_dim(1).reshape([s.rows, d])
    }
    fn tower(
        x: Tensor<2>,
        w1: &Param<Tensor<2>>,
        b1: &Param<Tensor<1>>,
        w2: &Param<Tensor<2>>,
        b2: &Param<Tensor<1>>,
    ) -> Tensor<2> {
        let hid = relu(x.clone().matmul(w1.val()) + b1.val().unsqueeze_dim::<2>(0));
        x + hid.matmul(w2.val()) + b2.val().unsqueeze_dim::<2>(0)
    }
    /// The batch's loss over the examples of `part`: the cross-entropy of
    /// each example's item, among the batch's own items (`items` holds one
    /// row per example, `offsets` the log-Q and collision offsets) or among
    /// every item (`items` holds every item in item order, `offsets` is
    /// `None`), summed and divided by the batch's size, plus the penalty on
    /// those examples' user inputs (and, with `item_penalty`, the items'),
    /// so that the parts of a batch add up to its mean loss.
    fn loss(&self, batch: &Batch<'_>, reg: f32, part: &Part) -> Tensor<1> {
        let dev = self.user.val().device();
        let b = batch.users.rows;
        let r = part.rows.clone();
        let n = r.len();
        let xu = self.pooled(&self.user, &batch.users.part(r.clone()));
        let xi = self.pooled(&self.item, batch.items);
        let mut penalty = xu.clone().powi_scalar(2).sum() * (1.0 / b as f64);
        if part.item_penalty {
            penalty = penalty + xi.clone().powi_scalar(2).sum() * (1.0 / batch.items.rows as f64);
        }
        let penalty = penalty * f64::from(reg);
        let zi = Self::tower(xi, &self.iw1, &self.ib1, &self.iw2, &self.ib2).transpose();
        let targets: Vec<i64> = match batch.offsets {
            Some(_) => r.clone().map(|k| k as i64).collect(),
            None => batch.targets[r.clone()]
                .iter()
                .map(|&i| i64::from(i))
                .collect(),
        };
        let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [n, 1]), &dev);
        let zu = Self::tower(xu, &self.uw1, &self.ub1, &self.uw2, &self.ub2);
        let mut logits = zu.matmul(zi);
        if let Some(o) = batch.offsets {
            let o = o[r.start * b..r.end * b].to_vec();
            logits = logits + Tensor::<2>::from_data(TensorData::new(o, [n, b]), &dev);
        }
        log_softmax(logits, 1).gather(1, targets).sum() * (-1.0 / b as f64) + penalty
    }
    /// Every parameter's gradient, in [`TwoTower::trained`]'s order.
    fn grads(&self, g: &burn::tensor::Gradients) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![grad_of(&self.user, g)?, grad_of(&self.item, g)?];
        for (w1, b1, w2, b2) in [
            (&self.uw1, &self.ub1, &self.uw2, &self.ub2),
            (&self.iw1, &self.ib1, &self.iw2, &self.ib2),
        ] {
            out.push(grad_of(w1, g)?);
            out.push(grad_of(b1, g)?);
            out.push(grad_of(w2, g)?);
            out.push(grad_of(b2, g)?);
        }
        Ok(out)
    }
}

impl TwoTowerParams {
    /// Fits on `x` without features.
    pub fn fit(&self, x: &Interactions) -> Result<TwoTower> {
        self.fit_side(x, &SideInfo::none(), 0, &mut because_core::no_observer())
    }

    /// Fits on `x` with the features in `side`, reporting each epoch to
    /// `observer` (with a snapshot every `every` epochs).
    pub fn fit_side(
        &self,
        x: &Interactions,
        side: &SideInfo,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<TwoTower> {
        self.validate()?;
        let start = Instant::now();
        let train = Train::new(x);
        let (nu, ni, d, h) = (x.n_users(), x.n_items(), self.dim, self.hidden);
        let mut rng = Rng::new(self.seed);
        let n_uid = if self.user_ids { nu } else { 0 };
        let n_ut = side.users.as_ref().map_or(0, |t| t.n_tokens());
        let n_it = side.items.as_ref().map_or(0, |t| t.n_tokens());
        let mut normal =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32 * 0.1).collect() };
        let user_emb = normal((n_uid + n_ut + ni) * d);
        let item_emb = normal((ni + n_it) * d);
        let mut rng = Rng::stream(self.seed, 1);
        let user_tower = Tower::init(d, h, &mut rng);
        let item_tower = Tower::init(d, h, &mut rng);
        let shards = crate::optim::shard_count(self.threads);
        let mut model = TwoTower {
            params: TwoTowerParams {
                threads: shards,
                ..self.clone()
            },
            train,
            users: side.users.clone(),
            items: side.items.clone(),
            user_read: supported(side.users.as_deref(), self.min_support),
            item_read: supported(side.items.as_deref(), self.min_support),
            user_emb,
            item_emb,
            user_tower,
            item_tower,
            item_out: Vec::new(),
            losses: Vec::new(),
        };
        model.set_item_out();
        // Every training interaction once per epoch, in a seeded order.
        let mut pairs: Vec<(u32, u32)> = (0..nu as u32)
            .flat_map(|u| model.train.items(u).iter().map(move |&i| (u, i)))
            .collect();
        if pairs.is_empty() {
            return Err(Error::param("data", "no training interactions"));
        }
        let total = pairs.len() as f64;
        let log_q: Vec<f32> = (0..ni)
            .map(|i| {
                let c = model.train.iu.row_indices(i).len() as f64;
                (c.max(1.0) / total).ln() as f32
            })
            .collect();
        let sizes: Vec<usize> = model.trained().iter().map(|v| v.len()).collect();
        let mut adam = Adam::new(self.learning_rate, &sizes);
        let mut rng = Rng::stream(self.seed, 2);
        let b = self.batch_size.min(pairs.len()).max(2);
        let mut hist: Vec<u32> = Vec::new();
        let full = self.loss == TowerLoss::Softmax;
        // The full softmax's item side: every item's inputs (an item with
        // no training interactions has no ID, as when it is served), its
        // ID's weight redrawn for ID dropout at each batch.
        let mut all = Side::new(
            &(0..if full { ni as u32 } else { 0 })
                .map(|i| {
                    let inputs = item_inputs(
                        &model.train,
                        side.items.as_deref(),
                        &model.item_read,
                        i,
                        true,
                    );
                    inputs
                        .into_iter()
                        .map(|(r, w, _)| (r, w))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
        );
        // Where each item's ID sits in `all` (an ID row is below `ni`).
        let id_slots: Vec<usize> = if full {
            (0..ni)
                .filter(|&i| {
                    (all.ids[i * all.width] as usize) < ni && all.weights[i * all.width] > 0.0
                })
                .map(|i| i * all.width)
                .collect()
        } else {
            Vec::new()
        };
        for epoch in 1..=self.epochs {
            rng.shuffle(&mut pairs);
            let (mut sum, mut batches) = (0.0f64, 0usize);
            for chunk in pairs.chunks(b) {
                if chunk.len() < 2 {
                    continue;
                }
                let mut us = Vec::with_capacity(chunk.len());
                let mut is = Vec::with_capacity(chunk.len());
                for &(u, i) in chunk {
                    let mut inp: Vec<(usize, f32)> = Vec::new();
                    // Read as a new user's (DropoutNet): features only.
                    let as_new = self.new_users > 0.0 && rng.chance(f64::from(self.new_users));
                    if !as_new && self.user_ids && !rng.chance(f64::from(self.id_dropout)) {
                        inp.push((u as usize, 1.0));
                    }
                    if let Some(t) = &side.users {
                        let (tok, w) = t.row(u);
                        inp.extend(
                            tok.iter()
                                .zip(w)
                                .filter(|(&k, _)| model.user_read[k as usize])
                                .map(|(&k, &w)| (n_uid + k as usize, w)),
                        );
                    }
                    hist.clear();
                    if !as_new {
                        hist.extend(model.train.items(u).iter().copied().filter(|&j| j != i));
                    }
                    // A random number of the other items, from none to
                    // `max_history`, drawn log-uniformly (short histories
                    // are common: a fifth read none), so that the user
                    // tower learns to score new users from their features
                    // and short histories as well as long ones.
                    let cap = hist.len().min(self.max_history);
                    if cap > 0 {
                        let take = (((cap + 1) as f64).powf(rng.next_f64()).floor() as usize)
                            .saturating_sub(1)
                            .min(cap);
                        // A partial shuffle: the first `take` are a uniform sample.
                        for k in 0..take {
                            let r = k + rng.below((hist.len() - k) as u64) as usize;
                            hist.swap(k, r);
                        }
                        hist.truncate(take);
                    }
                    let w = 1.0 / hist.len().max(1) as f32;
                    inp.extend(hist.iter().map(|&j| (n_uid + n_ut + j as usize, w)));
                    us.push(inp);
                    if full {
                        continue;
                    }
                    let mut it: Vec<(usize, f32)> = item_inputs(
                        &model.train,
                        side.items.as_deref(),
                        &model.item_read,
                        i,
                        false,
                    )
                    .into_iter()
                    .map(|(r, w, _)| (r, w))
                    .collect();
                    if !rng.chance(f64::from(self.id_dropout)) {
                        it.push((i as usize, 1.0));
                    }
                    is.push(it);
                }
                if full {
                    for &slot in &id_slots {
                        all.weights[slot] = if rng.chance(f64::from(self.id_dropout)) {
                            0.0
                        } else {
                            1.0
                        };
                    }
                }
                let targets: Vec<u32> = chunk.iter().map(|&(_, i)| i).collect();
                // Only the table rows the batch reads take part, and only
                // they move (the full softmax reads every item row).
                let users = Side::new(&us);
                let user_rows = users.rows();
                let users = users.localized(&user_rows);
                let (items, offsets, item_rows) = if full {
                    (None, None, Rows::All(model.item_emb.len() / d))
                } else {
                    let items = Side::new(&is);
                    let rows = items.rows();
                    (
                        Some(items.localized(&rows)),
                        Some(batch_offsets(chunk, &log_q, self.log_q)),
                        rows,
                    )
                };
                let batch = Batch {
                    users: &users,
                    items: items.as_ref().unwrap_or(&all),
                    targets: &targets,
                    offsets: offsets.as_deref(),
                };
                // Each shard: its examples against all of the batch's
                // items, on its own graph; the parts add up to the batch's
                // loss and gradients (the full softmax, whose cost is the
                // catalogue's item tower, runs as one part).
                let parts = if full { 1 } else { shards.min(chunk.len()) };
                let outs = crate::optim::each_shard(parts, |s| {
                    let part = Part {
                        rows: crate::optim::shard(chunk.len(), s, parts),
                        item_penalty: s == 0,
                    };
                    let net = TowerNet::gathered(&model, &user_rows, &item_rows);
                    let loss = net.loss(&batch, self.regularization, &part);
                    let value = to_vec(loss.clone())?.first().copied().unwrap_or(f32::NAN);
                    Ok((value, net.grads(&loss.backward())?))
                })?;
                let (mut value, mut grads) = (0.0f32, Vec::new());
                for (v, g) in outs {
                    value += v;
                    crate::optim::accumulate(&mut grads, g)?;
                }
                if !value.is_finite() {
                    return Err(Error::NonFinite {
                        model: <TwoTower as ModelKind>::NAME,
                        detail: format!("loss in epoch {epoch}"),
                    });
                }
                adam.tick();
                for (k, (v, g)) in model.trained().into_iter().zip(&grads).enumerate() {
                    match k {
                        0 => user_rows.update(&mut adam, k, v, d, g),
                        1 => item_rows.update(&mut adam, k, v, d, g),
                        _ => adam.update(k, v, Grad::Dense(g)),
                    }
                }
                sum += f64::from(value);
                batches += 1;
            }
            let loss = sum / batches.max(1) as f64;
            model.losses.push(loss as f32);
            let snapshot = every > 0 && (epoch % every == 0 || epoch == self.epochs);
            if snapshot {
                model.set_item_out();
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
        model.set_item_out();
        model.params.epochs = model.losses.len();
        if model.item_out.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                model: <TwoTower as ModelKind>::NAME,
                detail: "item vectors".into(),
            });
        }
        Ok(model)
    }
}

impl ModelKind for TwoTower {
    const NAME: &'static str = "twotower";
    const ABOUT: &'static str =
        "two towers over IDs, user and item features and the history (in-batch softmax with log-Q, or full softmax)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        item_embeddings: true,
        inner_product: true,
        features: true,
        fold_in: true,
        attributions: true,
        ..Capabilities::NONE
    };
    const EPOCHS: Option<&'static str> = Some("epochs");
    const EXAMPLE: &'static str = "dim=8,hidden=8,epochs=3,batch_size=32";
    const DEMO: Option<&'static str> =
        Some("dim=32,hidden=32,epochs=5,batch_size=256,learning_rate=0.01,min_support=2");
    type Params = TwoTowerParams;

    fn fit(
        params: &TwoTowerParams,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_side(x, &SideInfo::none(), every, observer)
    }
    fn fit_side(
        params: &TwoTowerParams,
        x: &Interactions,
        side: &SideInfo,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_side(x, side, every, observer)
    }
    fn params(&self) -> TwoTowerParams {
        self.params.clone()
    }
    fn train(&self) -> &Train {
        &self.train
    }
    fn save(&self, out: &mut TensorsOut) {
        let d = self.d();
        let h = self.params.hidden;
        out.f32(
            "user_embeddings",
            &self.user_emb,
            &[self.user_emb.len() / d, d],
        );
        out.f32(
            "item_embeddings",
            &self.item_emb,
            &[self.item_emb.len() / d, d],
        );
        for (name, t) in [
            ("user_tower", &self.user_tower),
            ("item_tower", &self.item_tower),
        ] {
            out.f32(&format!("{name}.w1"), &t.w1, &[d, h]);
            out.f32(&format!("{name}.b1"), &t.b1, &[h]);
            out.f32(&format!("{name}.w2"), &t.w2, &[h, d]);
            out.f32(&format!("{name}.b2"), &t.b2, &[d]);
        }
        let presence: Vec<u32> = vec![
            u32::from(self.users.is_some()),
            u32::from(self.items.is_some()),
        ];
        out.u32("features_given", &presence, &[2]);
        if let Some(t) = &self.users {
            out.features("user_features", t);
        }
        if let Some(t) = &self.items {
            out.features("item_features", t);
        }
        out.f32("losses", &self.losses, &[self.losses.len()]);
    }
    fn load(params: TwoTowerParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (nu, ni) = (train.ui.n_rows(), train.ui.n_cols());
        let (d, h) = (params.dim, params.hidden);
        let given = t.u32("features_given", &[2])?;
        let users = if given[0] == 1 {
            Some(Arc::new(t.features("user_features", nu)?))
        } else {
            None
        };
        let items = if given[1] == 1 {
            Some(Arc::new(t.features("item_features", ni)?))
        } else {
            None
        };
        let n_uid = if params.user_ids { nu } else { 0 };
        let n_ut = users.as_ref().map_or(0, |t| t.n_tokens());
        let n_it = items.as_ref().map_or(0, |t| t.n_tokens());
        let tower = |name: &str| -> Result<Tower, PersistError> {
            Ok(Tower {
                w1: t.f32(&format!("{name}.w1"), &[d, h])?,
                b1: t.f32(&format!("{name}.b1"), &[h])?,
                w2: t.f32(&format!("{name}.w2"), &[h, d])?,
                b2: t.f32(&format!("{name}.b2"), &[d])?,
            })
        };
        let mut m = TwoTower {
            user_emb: t.f32("user_embeddings", &[n_uid + n_ut + ni, d])?,
            item_emb: t.f32("item_embeddings", &[ni + n_it, d])?,
            user_tower: tower("user_tower")?,
            item_tower: tower("item_tower")?,
            losses: t.f32("losses", &[params.epochs])?,
            item_out: Vec::new(),
            user_read: supported(users.as_deref(), params.min_support),
            item_read: supported(items.as_deref(), params.min_support),
            users,
            items,
            params,
            train,
        };
        m.set_item_out();
        Ok(m)
    }
}

impl Recommender for TwoTower {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    fn n_users(&self) -> usize {
        self.train.ui.n_rows()
    }
    fn n_items(&self) -> usize {
        self.n_items_()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        (self.train.items(user), self.train.values(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        self.score_described(&described(query), out)
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        let t = self.item_row(item);
        let tn = dot(t, t).sqrt();
        for (o, row) in out.iter_mut().zip(self.item_out.chunks_exact(self.d())) {
            let n = dot(row, row).sqrt() * tn;
            *o = if n > 0.0 { dot(row, t) / n } else { 0.0 };
        }
        Ok(())
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        Some(self)
    }
    fn embeddings(&self) -> Option<&dyn because_core::ItemEmbeddings> {
        Some(self)
    }
    fn attributor(&self) -> Option<&dyn Attribute> {
        Some(self)
    }
    fn featured(&self) -> Option<&dyn Featured> {
        Some(self)
    }
}

/// A query as the user tower reads it: a known user (ID, features,
/// history) or an ad-hoc history.
fn described<'a>(query: &Query<'a>) -> Described<'a> {
    match *query {
        Query::User(u) => Described {
            user: Some(u),
            ..Described::default()
        },
        Query::History { items, .. } | Query::Sequence(Sequence { items, .. }) => Described {
            items: Some(items),
            ..Described::default()
        },
    }
}

impl because_core::InnerProduct for TwoTower {
    /// The item tower's outputs, against the user tower's.
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors::dense(&self.item_out, self.d())
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        Ok(because_core::QueryVector {
            vector: self.user_vector(&described(query))?,
            offset: 0.0,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(self.item_vectors())
    }
}

impl because_core::ItemEmbeddings for TwoTower {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.item_out, self.d())
    }
}

impl Featured for TwoTower {
    fn user_features(&self) -> Option<&FeatureTable> {
        self.users.as_deref()
    }
    fn item_features(&self) -> Option<&FeatureTable> {
        self.items.as_deref()
    }
    fn score_described(&self, user: &Described<'_>, out: &mut [f32]) -> Result<()> {
        let z = self.user_vector(user)?;
        crate::seq::score_all(&z, &self.item_out, self.d(), 0, out);
        Ok(())
    }
    fn attribute_inputs(&self, user: &Described<'_>, target: u32) -> Result<FeatureAttribution> {
        self.integrated(user, target)
    }
}

impl Attribute for TwoTower {
    fn attributions(&self) -> &'static [Attribution] {
        &[
            Attribution::Occlusion,
            Attribution::IntegratedGradients,
            Attribution::Similarity,
        ]
    }
    fn attribute(&self, method: Attribution, items: &[u32], target: u32) -> Result<Vec<f32>> {
        match method {
            Attribution::IntegratedGradients => {
                let user = Described {
                    items: Some(items),
                    ..Described::default()
                };
                Ok(self.integrated(&user, target)?.history)
            }
            Attribution::Similarity => {
                let mut sims = vec![0.0f32; self.n_items_()];
                self.similar_into(target, &mut sims)?;
                Ok(items.iter().map(|&i| sims[i as usize]).collect())
            }
            Attribution::Occlusion => {
                let t = self.item_row(target);
                let score = |h: &[u32]| -> f32 {
                    self.user_vector(&Described {
                        items: Some(h),
                        ..Described::default()
                    })
                    .map_or(f32::NAN, |z| dot(&z, t))
                };
                Ok(crate::seq::occlusion(items, 0, score))
            }
            other => Err(Error::Unsupported {
                op: other.name(),
                model: <TwoTower as ModelKind>::NAME,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::features::RawColumn;

    fn data() -> (Interactions, SideInfo) {
        // Two groups of users and items with a genre and a user "taste"
        // feature that line up; item 7 is never interacted with.
        let mut t = Vec::new();
        let mut rng = Rng::new(3);
        for u in 0..30u32 {
            let g = u % 2;
            for k in 0..6 {
                let i = (g + 2 * rng.below(3) as u32) % 6;
                t.push((u, i, 1.0, (u * 10 + k) as i64));
            }
        }
        let x = Interactions::from_tuples(30, 8, t).unwrap();
        let genre = |i: u32| if i.is_multiple_of(2) { "even" } else { "odd" };
        let items = FeatureTable::encode(
            8,
            &[
                (
                    "genres".into(),
                    RawColumn::MultiCategorical(
                        (0..8).map(|i| vec![genre(i).to_string()]).collect(),
                    ),
                ),
                (
                    "year".into(),
                    RawColumn::Numeric((0..8).map(|i| Some(1990.0 + i as f32)).collect()),
                ),
            ],
        )
        .unwrap();
        let users = FeatureTable::encode(
            30,
            &[(
                "taste".into(),
                RawColumn::Categorical((0..30).map(|u| Some(genre(u).to_string())).collect()),
            )],
        )
        .unwrap();
        let side = SideInfo {
            users: Some(Arc::new(users)),
            items: Some(Arc::new(items)),
        };
        (x, side)
    }

    /// A batch cut into parts, each on its own graph, has the loss and the
    /// gradients of the whole batch on one graph.
    #[test]
    fn the_parts_of_a_batch_add_up_to_the_batch() {
        let (m, _) = fitted();
        let b = 7;
        // The user table's history rows start after the IDs and tokens.
        let h = m.user_emb.len() / m.d() - 8;
        let users = Side::new(
            &(0..b)
                .map(|u| vec![(u, 1.0), (h + u % 8, 0.5), (h + (u + 1) % 8, 0.5)])
                .collect::<Vec<_>>(),
        );
        let items = Side::new(&(0..b).map(|i| vec![(i % 5, 1.0)]).collect::<Vec<_>>());
        let chunk: Vec<(u32, u32)> = (0..b as u32).map(|k| (k, k % 5)).collect();
        let log_q: Vec<f32> = (0..8).map(|i| -1.0 - i as f32 * 0.1).collect();
        let offsets = batch_offsets(&chunk, &log_q, true);
        let (user_rows, item_rows) = (users.rows(), items.rows());
        let (users, items) = (users.localized(&user_rows), items.localized(&item_rows));
        let targets: Vec<u32> = chunk.iter().map(|&(_, i)| i).collect();
        let batch = Batch {
            users: &users,
            items: &items,
            targets: &targets,
            offsets: Some(&offsets),
        };
        let run = |parts: usize| {
            let (mut value, mut grads) = (0.0f32, Vec::new());
            for s in 0..parts {
                let part = Part {
                    rows: crate::optim::shard(b, s, parts),
                    item_penalty: s == 0,
                };
                let net = TowerNet::gathered(&m, &user_rows, &item_rows);
                let loss = net.loss(&batch, 0.1, &part);
                value += to_vec(loss.clone()).unwrap()[0];
                crate::optim::accumulate(&mut grads, net.grads(&loss.backward()).unwrap()).unwrap();
            }
            (value, grads)
        };
        let (whole, g1) = run(1);
        for parts in [2, 3] {
            let (sum, g) = run(parts);
            assert!(
                (whole - sum).abs() < 1e-5,
                "{parts} parts: {whole} vs {sum}"
            );
            assert!(g1.iter().flatten().any(|v| v.abs() > 1e-4));
            for (a, b) in g1.iter().flatten().zip(g.iter().flatten()) {
                assert!((a - b).abs() < 1e-5, "{parts} parts: gradient {a} vs {b}");
            }
        }
    }

    fn fitted() -> (TwoTower, Interactions) {
        fitted_with(TowerLoss::Sampled)
    }

    fn fitted_with(loss: TowerLoss) -> (TwoTower, Interactions) {
        let (x, side) = data();
        let p = TwoTowerParams {
            loss,
            dim: 8,
            hidden: 16,
            epochs: 30,
            batch_size: 16,
            learning_rate: 0.02,
            user_ids: true,
            min_support: 1,
            ..TwoTowerParams::default()
        };
        let m = p
            .fit_side(&x, &side, 0, &mut because_core::no_observer())
            .unwrap();
        (m, x)
    }

    #[test]
    fn integrated_gradients_complete_exactly() {
        let (m, x) = fitted();
        for u in 0..x.n_users() as u32 {
            for target in [0u32, 3, 7] {
                let a = user_inputs_of(&m, u, target);
                let mut scores = vec![0.0; 8];
                m.score_into(&Query::User(u), &mut scores).unwrap();
                assert!((a.score - scores[target as usize]).abs() < 1e-5);
                // The history's total is one of the user-side shares.
                let total = a.inputs_total();
                assert!(
                    (total - (a.score - a.baseline)).abs() < 1e-3,
                    "user {u} item {target}: shares {total} vs {} - {}",
                    a.score,
                    a.baseline
                );
                let hist: f32 = a.history.iter().sum();
                let named = a
                    .user_inputs
                    .iter()
                    .find(|s| s.input == "history")
                    .unwrap()
                    .share;
                assert!((hist - named).abs() < 1e-4);
                assert!(a.user_inputs.iter().any(|s| s.input.starts_with("taste=")));
                assert!(a.item_inputs.iter().any(|s| s.input.starts_with("genres=")));
            }
        }
        // The item never interacted with has no ID input: features only.
        let a = user_inputs_of(&m, 0, 7);
        assert!(a.item_inputs.iter().all(|s| s.input != "id"));
    }

    /// The shares of known `user`'s score of `target`.
    fn user_inputs_of(m: &TwoTower, user: u32, target: u32) -> FeatureAttribution {
        m.attribute_inputs(
            &Described {
                user: Some(user),
                ..Described::default()
            },
            target,
        )
        .unwrap()
    }

    #[test]
    fn features_score_a_new_user_and_a_cold_item() {
        new_user_and_cold_item(TowerLoss::Sampled);
    }

    #[test]
    fn the_full_softmax_learns_the_same_structure() {
        let (m, _) = fitted_with(TowerLoss::Softmax);
        let l = m.losses();
        // Cross-entropy over all 8 items starts near ln 8.
        assert!(l[0] < 2.5 && l[l.len() - 1] < 0.8 * l[0], "{l:?}");
        new_user_and_cold_item(TowerLoss::Softmax);
    }

    #[test]
    fn a_user_without_training_interactions_is_scored_without_an_id() {
        let (x, side) = data();
        // User 0 loses their interactions: their untrained ID must not
        // change their scores, which are those of their features alone.
        let keep: Vec<bool> = (0..x.len()).map(|k| !x.range(0).contains(&k)).collect();
        let y = x.select(&keep);
        let p = TwoTowerParams {
            dim: 8,
            hidden: 16,
            epochs: 3,
            batch_size: 16,
            min_support: 1,
            ..TwoTowerParams::default()
        };
        let m = p
            .fit_side(&y, &side, 0, &mut because_core::no_observer())
            .unwrap();
        let mut by_id = vec![0.0; 8];
        m.score_into(&Query::User(0), &mut by_id).unwrap();
        let (tok, w) = side.users.as_ref().unwrap().row(0);
        let f: Vec<(u32, f32)> = tok.iter().copied().zip(w.iter().copied()).collect();
        let mut by_features = vec![0.0; 8];
        m.score_described(
            &Described {
                features: Some(&f),
                items: Some(&[]),
                ..Described::default()
            },
            &mut by_features,
        )
        .unwrap();
        assert_eq!(by_id, by_features);
        let a = user_inputs_of(&m, 0, 1);
        assert!(a.user_inputs.iter().all(|s| s.input != "id"));
    }

    fn new_user_and_cold_item(loss: TowerLoss) {
        let (m, _) = fitted_with(loss);
        let users = m.user_features().unwrap();
        let odd = users.encode_one(&[("taste".into(), "odd".into())]).unwrap();
        let even = users
            .encode_one(&[("taste".into(), "even".into())])
            .unwrap();
        let score = |f: &[(u32, f32)]| {
            let mut s = vec![0.0; 8];
            m.score_described(
                &Described {
                    features: Some(f),
                    items: Some(&[]),
                    ..Described::default()
                },
                &mut s,
            )
            .unwrap();
            s
        };
        let (so, se) = (score(&odd), score(&even));
        // A new user with no history, only their taste: items of their
        // genre first, the never-seen item 7 (odd) included.
        let mean = |s: &[f32], par: u32| -> f32 {
            (0..6)
                .filter(|i| i % 2 == par)
                .map(|i| s[i as usize])
                .sum::<f32>()
                / 3.0
        };
        assert!(mean(&so, 1) > mean(&so, 0), "{so:?}");
        assert!(mean(&se, 0) > mean(&se, 1), "{se:?}");
        assert!(so[7] - se[7] > 0.0, "cold odd item: {} vs {}", so[7], se[7]);
    }

    #[test]
    fn integrated_gradients_over_a_history_match_the_history_score() {
        let (m, _) = fitted();
        let items = [1u32, 3, 5];
        let ig = m
            .attribute(Attribution::IntegratedGradients, &items, 5)
            .unwrap();
        let mut s = vec![0.0; 8];
        m.score_into(
            &Query::History {
                items: &items,
                values: &[1.0; 3],
            },
            &mut s,
        )
        .unwrap();
        let a = m
            .attribute_inputs(
                &Described {
                    items: Some(&items),
                    ..Described::default()
                },
                5,
            )
            .unwrap();
        let item_side: f32 = a.item_inputs.iter().map(|s| s.share).sum();
        let total: f32 = ig.iter().sum::<f32>() + item_side;
        assert!((total - (s[5] - a.baseline)).abs() < 1e-3);
        let occ = m.attribute(Attribution::Occlusion, &items, 5).unwrap();
        assert_eq!(occ.len(), 3);
        let sim = m.attribute(Attribution::Similarity, &items, 5).unwrap();
        assert!((sim[2] - 1.0).abs() < 1e-5);
    }
}
