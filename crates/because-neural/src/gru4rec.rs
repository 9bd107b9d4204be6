//! GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent
//! Neural Networks", ICLR 2016; Hidasi and Karatzoglou, "Recurrent Neural
//! Networks with Top-k Gains", CIKM 2018): a GRU reads a sequence one item
//! at a time and scores the next item from its hidden state.
//!
//! Training uses session-parallel mini-batches, as the authors'
//! implementation does: `batch_size` lanes each walk through one user's
//! sequence (or one session of it, with `session_gap_minutes`); at every step
//! each lane predicts its next item, with cross-entropy over all items; a lane
//! that reaches the end of its sequence takes the next one with its hidden
//! state reset, and the hidden state is carried (without gradient) from step
//! to step. The cell is our own (`r`, `z` and candidate gates, as PyTorch's
//! GRU), so the trained weights score in plain Rust; a test checks that both
//! forward passes agree.

use crate::optim::{Adam, Grad, Rows};
use crate::seq::{affine, dot, Sequences};
use crate::train::{device, grad_of, param1, param2, to_vec};
use because_core::rng::Rng;
use because_core::{
    Capabilities, Epoch, EpochObserver, Error, Interactions, Query, Recommender, Result,
};
use because_models::persist::{PersistError, TensorsIn, TensorsOut};
use because_models::{ModelKind, Train, Validate};
use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, sigmoid, softmax, tanh};
use burn::tensor::{Gradients, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// GRU4Rec's training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GruLoss {
    /// The full softmax up to [`crate::SAMPLED_ABOVE`] items, the sampled
    /// softmax above (the model's parameters then say which was used).
    Auto,
    /// Cross-entropy over every item.
    Softmax,
    /// BPR-max (Hidasi and Karatzoglou, 2018) over the other lanes' targets
    /// and `negatives` sampled items, with score regularization `bpreg`.
    Bprmax,
    /// Softmax over the target and `negatives` items shared by the step,
    /// drawn by popularity, with the log-Q correction (`crate::sampled`):
    /// for catalogues too large to score every item at every step.
    Sampled,
}

/// GRU4Rec parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gru4RecParams {
    /// Width of the item embedding and the hidden state.
    pub dim: usize,
    /// Parallel lanes per mini-batch.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Dropout on the input embedding and on the hidden state before scoring.
    pub dropout: f32,
    /// Passes over the data.
    pub epochs: usize,
    /// Train on sessions: a gap longer than this many minutes starts a new
    /// one (0: each user's whole sequence is one).
    pub session_gap_minutes: u64,
    /// How many of the latest items are read when scoring (0: all).
    pub max_len: usize,
    /// The loss.
    pub loss: GruLoss,
    /// Sampled negatives per step, beside the other lanes' targets (BPR-max).
    pub negatives: usize,
    /// BPR-max's regularization of the negatives' scores.
    pub bpreg: f32,
    /// Threads training runs on, each on its share of every mini-batch
    /// (0: every core; the fitted model records how many ran). Training is
    /// reproducible for a seed and a thread count.
    pub threads: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for Gru4RecParams {
    fn default() -> Self {
        Gru4RecParams {
            dim: 64,
            batch_size: 64,
            learning_rate: 2e-3,
            dropout: 0.3,
            epochs: 10,
            session_gap_minutes: 0,
            max_len: 0,
            loss: GruLoss::Auto,
            negatives: 256,
            bpreg: 1.0,
            threads: 0,
            seed: 42,
        }
    }
}

impl Validate for Gru4RecParams {
    fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 1024 {
            return Err(Error::param("dim", "must be in 1..=1024"));
        }
        if self.batch_size == 0 || self.batch_size > 4096 {
            return Err(Error::param("batch_size", "must be in 1..=4096"));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err(Error::param("epochs", "must be in 1..=10000"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(Error::param("learning_rate", "must be in (0, 1]"));
        }
        if !(self.dropout >= 0.0 && self.dropout < 1.0) {
            return Err(Error::param("dropout", "must be in [0, 1)"));
        }
        if self.negatives > 100_000 {
            return Err(Error::param("negatives", "must be at most 100000"));
        }
        if !(self.bpreg >= 0.0 && self.bpreg <= 100.0) {
            return Err(Error::param("bpreg", "must be in [0, 100]"));
        }
        if self.threads > 256 {
            return Err(Error::param("threads", "must be at most 256"));
        }
        Ok(())
    }
}

/// Plain weights: input embedding `n × d`, gates `[d, 3d]` for the input
/// and the hidden state with bias `3d` (order r, z, candidate), output
/// embedding `n × d` and output bias `n`.
#[derive(Clone, Debug, Default)]
pub(crate) struct GruWeights {
    pub emb: Vec<f32>,
    pub wx: Vec<f32>,
    pub wh: Vec<f32>,
    pub bx: Vec<f32>,
    pub bh: Vec<f32>,
    pub out: Vec<f32>,
    pub out_b: Vec<f32>,
}

impl GruWeights {
    fn init(p: &Gru4RecParams, n: usize) -> GruWeights {
        let d = p.dim;
        let mut rng = Rng::stream(p.seed, 0x6e0);
        let a = 1.0 / (d as f32).sqrt();
        let mut uniform = |len: usize| -> Vec<f32> {
            (0..len).map(|_| (rng.next_f32() * 2.0 - 1.0) * a).collect()
        };
        GruWeights {
            emb: uniform(n * d),
            wx: uniform(d * 3 * d),
            wh: uniform(d * 3 * d),
            bx: vec![0.0; 3 * d],
            bh: vec![0.0; 3 * d],
            out: uniform(n * d),
            out_b: vec![0.0; n],
        }
    }
    fn named(&mut self, n: usize, d: usize) -> Vec<(&'static str, &mut Vec<f32>, Vec<usize>)> {
        vec![
            ("embedding", &mut self.emb, vec![n, d]),
            ("gates.input", &mut self.wx, vec![d, 3 * d]),
            ("gates.hidden", &mut self.wh, vec![d, 3 * d]),
            ("gates.input_bias", &mut self.bx, vec![3 * d]),
            ("gates.hidden_bias", &mut self.bh, vec![3 * d]),
            ("output", &mut self.out, vec![n, d]),
            ("output_bias", &mut self.out_b, vec![n]),
        ]
    }
    /// One GRU step in place: `h ← cell(x, h)`.
    fn step(&self, x: &[f32], h: &mut [f32], gx: &mut [f32], gh: &mut [f32]) {
        let d = h.len();
        affine(x, &self.wx, &self.bx, gx);
        affine(h, &self.wh, &self.bh, gh);
        for c in 0..d {
            let r = sig(gx[c] + gh[c]);
            let z = sig(gx[d + c] + gh[d + c]);
            let cand = (gx[2 * d + c] + r * gh[2 * d + c]).tanh();
            h[c] = (1.0 - z) * cand + z * h[c];
        }
    }
    /// The hidden state after reading `items`, oldest first.
    fn run(&self, items: &[u32], d: usize) -> Vec<f32> {
        let mut h = vec![0.0f32; d];
        let (mut gx, mut gh) = (vec![0.0f32; 3 * d], vec![0.0f32; 3 * d]);
        for &i in items {
            let x = &self.emb[i as usize * d..(i as usize + 1) * d];
            self.step(x, &mut h, &mut gx, &mut gh);
        }
        h
    }
}

fn sig(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The network as burn parameters.
#[derive(Module, Debug)]
struct GruNet {
    emb: Param<Tensor<2>>,
    wx: Param<Tensor<2>>,
    wh: Param<Tensor<2>>,
    bx: Param<Tensor<1>>,
    bh: Param<Tensor<1>>,
    out: Param<Tensor<2>>,
    out_b: Param<Tensor<1>>,
}

impl GruNet {
    fn new(w: &GruWeights, n: usize, d: usize) -> GruNet {
        let dev = device();
        GruNet {
            emb: param2(&w.emb, n, d, &dev),
            wx: param2(&w.wx, d, 3 * d, &dev),
            wh: param2(&w.wh, d, 3 * d, &dev),
            bx: param1(&w.bx, &dev),
            bh: param1(&w.bh, &dev),
            out: param2(&w.out, n, d, &dev),
            out_b: param1(&w.out_b, &dev),
        }
    }
    /// The network over the rows `input` of the input embedding and the
    /// rows `output` of the output layer (a training step's leaves).
    fn gathered(w: &GruWeights, d: usize, input: &Rows, output: &Rows) -> GruNet {
        let dev = device();
        GruNet {
            emb: param2(&input.gather(&w.emb, d), input.len(), d, &dev),
            wx: param2(&w.wx, d, 3 * d, &dev),
            wh: param2(&w.wh, d, 3 * d, &dev),
            bx: param1(&w.bx, &dev),
            bh: param1(&w.bh, &dev),
            out: param2(&output.gather(&w.out, d), output.len(), d, &dev),
            out_b: param1(&output.gather(&w.out_b, 1), &dev),
        }
    }
    /// Every parameter's gradient, in [`GruWeights::named`]'s order (zeros
    /// where a parameter took no part).
    fn grads(&self, g: &Gradients) -> Result<Vec<Vec<f32>>> {
        Ok(vec![
            grad_of(&self.emb, g)?,
            grad_of(&self.wx, g)?,
            grad_of(&self.wh, g)?,
            grad_of(&self.bx, g)?,
            grad_of(&self.bh, g)?,
            grad_of(&self.out, g)?,
            grad_of(&self.out_b, g)?,
        ])
    }
    /// Gradient × input of `target`'s score over the input embeddings of
    /// `items` (oldest first): one weight per item.
    fn gradient_input(
        &self,
        w: &GruWeights,
        items: &[u32],
        target: u32,
        d: usize,
    ) -> Result<Vec<f32>> {
        let dev = self.emb.val().device();
        let n = items.len();
        let rows: Vec<f32> = items
            .iter()
            .flat_map(|&i| w.emb[i as usize * d..(i as usize + 1) * d].iter().copied())
            .collect();
        let input = Tensor::<2>::from_data(TensorData::new(rows, [n, d]), &dev).require_grad();
        let mut h = Tensor::<2>::zeros([1, d], &dev);
        for t in 0..n {
            h = self.cell(input.clone().slice([t..t + 1]), h, d);
        }
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![target as i64], [1]), &dev);
        let score = (h * self.out.val().select(0, t)).sum();
        let grads = score.backward();
        let g = input
            .grad(&grads)
            .ok_or_else(|| Error::Shape("no gradient for the input embeddings".into()))?;
        to_vec((g * input.detach()).sum_dim(1).reshape([n]))
    }

    /// One cell step over `[b, d]` inputs and hidden states.
    fn cell(&self, x: Tensor<2>, h: Tensor<2>, d: usize) -> Tensor<2> {
        let gx = x.matmul(self.wx.val()) + self.bx.val().unsqueeze_dim::<2>(0);
        let gh = h.clone().matmul(self.wh.val()) + self.bh.val().unsqueeze_dim::<2>(0);
        let b = h.dims()[0];
        let r = sigmoid(gx.clone().slice([0..b, 0..d]) + gh.clone().slice([0..b, 0..d]));
        let z = sigmoid(gx.clone().slice([0..b, d..2 * d]) + gh.clone().slice([0..b, d..2 * d]));
        let cand = tanh(gx.slice([0..b, 2 * d..3 * d]) + r * gh.slice([0..b, 2 * d..3 * d]));
        z.clone().neg().add_scalar(1.0) * cand + z * h
    }
}

/// A fitted GRU4Rec model.
#[derive(Clone, Debug)]
pub struct Gru4Rec {
    params: Gru4RecParams,
    train: Train,
    seqs: Sequences,
    weights: Arc<GruWeights>,
    losses: Vec<f32>,
}

impl Gru4Rec {
    fn tail<'a>(&self, items: &'a [u32]) -> &'a [u32] {
        match self.params.max_len {
            0 => items,
            l => &items[items.len().saturating_sub(l)..],
        }
    }
    /// The score of `target` after reading `items`.
    pub fn score_of(&self, items: &[u32], target: u32) -> f32 {
        let d = self.params.dim;
        let h = self.weights.run(self.tail(items), d);
        let t = target as usize;
        dot(&h, &self.weights.out[t * d..(t + 1) * d]) + self.weights.out_b[t]
    }
    /// Mean training loss of each epoch.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }
}

/// The sequences training walks through: whole user sequences, or sessions.
fn training_runs(x: &Interactions, gap_minutes: u64) -> Vec<Vec<u32>> {
    let mut runs = Vec::new();
    for u in 0..x.n_users() as u32 {
        let (items, times) = (x.user_items(u), x.user_times(u));
        let mut start = 0;
        for k in 1..=items.len() {
            let cut = k == items.len()
                || (gap_minutes > 0 && times[k] - times[k - 1] > gap_minutes as i64 * 60_000);
            if cut {
                if k - start >= 2 {
                    runs.push(items[start..k].to_vec());
                }
                start = k;
            }
        }
    }
    runs
}

/// One training step's inputs: the lanes' current items, their targets and
/// hidden states, the rows of the tables the step reads, and the shared
/// negatives.
struct Step<'a> {
    p: &'a Gru4RecParams,
    w: &'a GruWeights,
    d: usize,
    inputs: &'a [u32],
    targets: &'a [u32],
    negatives: &'a [u32],
    hidden: &'a [f32],
    rows_in: Rows,
    rows_out: Rows,
    sampler: &'a crate::sampled::Sampler,
    shards: usize,
    steps: u64,
}

/// What one shard of a step returns: its share of the batch's loss (already
/// divided by the batch's lanes), its lanes' next hidden states, and the
/// gradients of that share.
type ShardOut = (f64, Vec<f32>, Vec<Vec<f32>>);

impl Step<'_> {
    /// Forward and backward over shard `s` of the lanes, on its own graph.
    fn shard(&self, s: usize) -> Result<ShardOut> {
        let (p, d) = (self.p, self.d);
        let all = self.inputs.len();
        let lanes = crate::optim::shard(all, s, self.shards);
        let b = lanes.len();
        if b == 0 {
            return Ok((0.0, Vec::new(), Vec::new()));
        }
        let net = GruNet::gathered(self.w, d, &self.rows_in, &self.rows_out);
        let dev = net.emb.val().device();
        let local_in: Vec<i64> = self.inputs[lanes.clone()]
            .iter()
            .map(|&i| self.rows_in.local(i))
            .collect();
        let targets: Vec<i64> = self.targets[lanes.clone()]
            .iter()
            .map(|&i| self.rows_out.local(i))
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(local_in, [b]), &dev);
        let mut drop = crate::train::Dropout::new(
            p.dropout,
            Rng::stream(p.seed ^ 0x6d40 ^ ((s as u64) << 48), self.steps),
        );
        let x_t = drop.apply(net.emb.val().select(0, ids));
        let h0 = self.hidden[lanes.start * d..lanes.end * d].to_vec();
        let h = Tensor::<2>::from_data(TensorData::new(h0, [b, d]), &dev);
        let h_next = net.cell(x_t, h, d);
        let z = drop.apply(h_next.clone());
        let loss = match p.loss {
            GruLoss::Softmax | GruLoss::Auto => {
                let logits =
                    z.matmul(net.out.val().transpose()) + net.out_b.val().unsqueeze_dim::<2>(0);
                let t = Tensor::<1, Int>::from_data(TensorData::new(targets, [b]), &dev);
                log_softmax(logits, 1)
                    .gather(1, t.reshape([b, 1]))
                    .mean()
                    .neg()
            }
            GruLoss::Sampled => {
                let neg: Vec<i64> = self
                    .negatives
                    .iter()
                    .map(|&i| self.rows_out.local(i))
                    .collect();
                self.sampler.loss(
                    z,
                    net.out.val(),
                    Some(net.out_b.val()),
                    &targets,
                    &neg,
                    |r| self.rows_out.global(r as usize) as usize,
                )
            }
            GruLoss::Bprmax => {
                // Candidates: every lane's target (of the whole batch) and
                // the sampled items.
                let cands: Vec<i64> = self
                    .targets
                    .iter()
                    .chain(self.negatives)
                    .map(|&i| self.rows_out.local(i))
                    .collect();
                let c = cands.len();
                // A candidate equal to the lane's own target is not a negative.
                let mask: Vec<bool> = targets
                    .iter()
                    .flat_map(|&t| cands.iter().map(move |&j| j == t))
                    .collect();
                let ids = Tensor::<1, Int>::from_data(TensorData::new(cands, [c]), &dev);
                let scores = z.matmul(net.out.val().select(0, ids.clone()).transpose())
                    + net.out_b.val().select(0, ids).unsqueeze_dim::<2>(0);
                let diag: Vec<i64> = lanes.clone().map(|k| k as i64).collect();
                let pos = scores.clone().gather(
                    1,
                    Tensor::<2, Int>::from_data(TensorData::new(diag, [b, 1]), &dev),
                );
                let mask =
                    Tensor::<2, burn::tensor::Bool>::from_data(TensorData::new(mask, [b, c]), &dev);
                let w = softmax(scores.clone().mask_fill(mask, -1e9), 1);
                let ranked = (w.clone() * sigmoid(pos - scores.clone())).sum_dim(1);
                let reg = (w * scores.powi_scalar(2)).sum_dim(1) * p.bpreg as f64;
                ((ranked + 1e-24).log().neg() + reg).mean()
            }
        };
        // This shard's share of the batch's mean.
        let loss = loss * (b as f64 / all as f64);
        let value = to_vec(loss.clone())?.first().copied().unwrap_or(f32::NAN);
        let hidden = to_vec(h_next.detach())?;
        let grads = net.grads(&loss.backward())?;
        Ok((value as f64 * all as f64, hidden, grads))
    }

    /// The batch's summed loss, its lanes' next hidden states and the
    /// gradients of its mean loss, from its shards in order.
    fn combine(&self, parts: Vec<ShardOut>) -> Result<ShardOut> {
        let mut total = 0.0;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        let mut grads: Vec<Vec<f32>> = Vec::new();
        for (value, h, g) in parts {
            total += value;
            hidden.extend(h);
            crate::optim::accumulate(&mut grads, g)?;
        }
        Ok((total, hidden, grads))
    }
}

impl Gru4RecParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Gru4Rec> {
        self.fit_observed(x, 0, &mut because_core::no_observer())
    }

    /// Fits with session-parallel mini-batches, calling `observer` after
    /// each epoch (with a snapshot every `every` epochs).
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Gru4Rec> {
        self.validate()?;
        if self.loss == GruLoss::Auto {
            let loss = if x.n_items() > crate::SAMPLED_ABOVE {
                GruLoss::Sampled
            } else {
                GruLoss::Softmax
            };
            return Gru4RecParams {
                loss,
                ..self.clone()
            }
            .fit_observed(x, every, observer);
        }
        if x.is_empty() {
            return Err(Error::Empty("gru4rec: no interactions to train on".into()));
        }
        let (n, d) = (x.n_items(), self.dim);
        let start = std::time::Instant::now();
        let runs = training_runs(x, self.session_gap_minutes);
        let shards = crate::optim::shard_count(self.threads);
        let mut model = Gru4Rec {
            params: Gru4RecParams {
                threads: shards,
                ..self.clone()
            },
            train: Train::new(x),
            seqs: Sequences::new(x),
            weights: Arc::new(GruWeights::init(self, n)),
            losses: Vec::new(),
        };
        // The sampled softmax's proposal: how often each item occurs.
        let sampler = crate::sampled::Sampler::new(&model.seqs.counts(n));
        let mut w = (*model.weights).clone();
        let sizes: Vec<usize> = w.named(n, d).iter().map(|(_, v, _)| v.len()).collect();
        let mut adam = Adam::new(self.learning_rate, &sizes);
        let mut steps = 0u64;
        for epoch in 1..=self.epochs {
            let mut order: Vec<usize> = (0..runs.len()).collect();
            Rng::stream(self.seed, epoch as u64).shuffle(&mut order);
            // Each lane: (run, position of its current input).
            let mut next = 0usize;
            let mut lanes: Vec<(usize, usize)> = Vec::new();
            let mut hidden: Vec<f32> = Vec::new();
            while lanes.len() < self.batch_size && next < order.len() {
                lanes.push((order[next], 0));
                hidden.extend(std::iter::repeat_n(0.0, d));
                next += 1;
            }
            let (mut total, mut count) = (0.0f64, 0usize);
            while !lanes.is_empty() {
                steps += 1;
                let inputs: Vec<u32> = lanes.iter().map(|&(r, t)| runs[r][t]).collect();
                let targets: Vec<u32> = lanes.iter().map(|&(r, t)| runs[r][t + 1]).collect();
                let mut rng = Rng::stream(self.seed ^ 0xb9a, steps);
                let negatives: Vec<u32> = match self.loss {
                    GruLoss::Sampled => sampler.draw(self.negatives, &mut rng),
                    GruLoss::Bprmax => (0..self.negatives)
                        .map(|_| rng.below(n as u64) as u32)
                        .collect(),
                    GruLoss::Softmax | GruLoss::Auto => Vec::new(),
                };
                let step = Step {
                    p: self,
                    w: &w,
                    d,
                    inputs: &inputs,
                    targets: &targets,
                    negatives: &negatives,
                    hidden: &hidden,
                    rows_in: match self.loss {
                        GruLoss::Softmax | GruLoss::Auto => Rows::All(n),
                        _ => Rows::of(inputs.iter().copied()),
                    },
                    rows_out: match self.loss {
                        GruLoss::Softmax | GruLoss::Auto => Rows::All(n),
                        _ => Rows::of(targets.iter().chain(&negatives).copied()),
                    },
                    sampler: &sampler,
                    shards,
                    steps,
                };
                let parts = crate::optim::each_shard(shards, |s| step.shard(s))?;
                let (value, next_hidden, grads) = step.combine(parts)?;
                let (rows_in, rows_out) = (step.rows_in, step.rows_out);
                total += value;
                count += lanes.len();
                hidden = next_hidden;
                adam.tick();
                for (k, ((_, v, _), g)) in w.named(n, d).into_iter().zip(&grads).enumerate() {
                    match k {
                        0 => rows_in.update(&mut adam, k, v, d, g),
                        5 => rows_out.update(&mut adam, k, v, d, g),
                        6 => rows_out.update(&mut adam, k, v, 1, g),
                        _ => adam.update(k, v, Grad::Dense(g)),
                    }
                }
                // Advance every lane; finished lanes take the next run with a
                // fresh state, or leave the batch.
                let b = lanes.len();
                let mut kept_lanes = Vec::with_capacity(b);
                let mut kept_hidden = Vec::with_capacity(b * d);
                for (k, &(r, t)) in lanes.iter().enumerate() {
                    if t + 2 < runs[r].len() {
                        kept_lanes.push((r, t + 1));
                        kept_hidden.extend_from_slice(&hidden[k * d..(k + 1) * d]);
                    } else if next < order.len() {
                        kept_lanes.push((order[next], 0));
                        kept_hidden.extend(std::iter::repeat_n(0.0, d));
                        next += 1;
                    }
                }
                lanes = kept_lanes;
                hidden = kept_hidden;
            }
            let loss = total / count.max(1) as f64;
            model.losses.push(loss as f32);
            if !loss.is_finite() {
                return Err(Error::NonFinite {
                    model: <Gru4Rec as ModelKind>::NAME,
                    detail: format!("the training loss at epoch {epoch}"),
                });
            }
            let snapshot = every > 0 && (epoch % every == 0 || epoch == self.epochs);
            if snapshot {
                model.weights = Arc::new(w.clone());
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
        model.weights = Arc::new(w);
        model.params.epochs = model.losses.len();
        Ok(model)
    }
}

impl ModelKind for Gru4Rec {
    const NAME: &'static str = "gru4rec";
    const ABOUT: &'static str =
        "recurrent sequential model (GRU, session-parallel mini-batches, burn)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        item_embeddings: true,
        inner_product: true,
        ordered_sequences: true,
        fold_in: true,
        attributions: true,
        ..Capabilities::NONE
    };
    const EPOCHS: Option<&'static str> = Some("epochs");
    const EXAMPLE: &'static str = "dim=8,epochs=2,batch_size=8";
    type Params = Gru4RecParams;

    fn fit(
        params: &Gru4RecParams,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_observed(x, every, observer)
    }
    fn params(&self) -> Gru4RecParams {
        self.params.clone()
    }
    fn train(&self) -> &Train {
        &self.train
    }
    fn save(&self, out: &mut TensorsOut) {
        let mut w = (*self.weights).clone();
        for (name, v, shape) in w.named(self.train.ui.n_cols(), self.params.dim) {
            out.f32(name, v, &shape);
        }
        out.f32("losses", &self.losses, &[self.losses.len()]);
        self.seqs.save(out);
    }
    fn load(params: Gru4RecParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (nu, ni) = (train.ui.n_rows(), train.ui.n_cols());
        let mut w = GruWeights::default();
        for (name, v, shape) in w.named(ni, params.dim) {
            *v = t.f32(name, &shape)?;
        }
        Ok(Gru4Rec {
            losses: t.f32("losses", &[params.epochs])?,
            seqs: Sequences::load(t, nu, ni)?,
            weights: Arc::new(w),
            params,
            train,
        })
    }
}

impl Recommender for Gru4Rec {
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
        (self.seqs.items(user), self.seqs.values(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let d = self.params.dim;
        let items = crate::seq::query_items(&self.seqs, query);
        let h = self.weights.run(self.tail(items), d);
        crate::seq::score_all(&h, &self.weights.out, d, 0, out);
        for (o, b) in out.iter_mut().zip(&self.weights.out_b) {
            *o += b;
        }
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        crate::seq::cosine_all(&self.weights.out, self.params.dim, 0, item as usize, out);
        Ok(())
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        Some(self)
    }
    fn embeddings(&self) -> Option<&dyn because_core::ItemEmbeddings> {
        Some(self)
    }
    fn attributor(&self) -> Option<&dyn because_core::Attribute> {
        Some(self)
    }
}

impl because_core::InnerProduct for Gru4Rec {
    /// The output layer's rows and biases, against the last hidden state.
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors {
            data: &self.weights.out,
            dim: self.params.dim,
            stride: self.params.dim,
            bias: Some(&self.weights.out_b),
        }
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        let items = crate::seq::query_items(&self.seqs, query);
        Ok(because_core::QueryVector {
            vector: self.weights.run(self.tail(items), self.params.dim),
            offset: 0.0,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(because_core::ItemVectors::dense(
            &self.weights.out,
            self.params.dim,
        ))
    }
}

impl because_core::ItemEmbeddings for Gru4Rec {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.weights.out, self.params.dim)
    }
}

impl because_core::Attribute for Gru4Rec {
    fn attributions(&self) -> &'static [because_core::Attribution] {
        &[
            because_core::Attribution::Occlusion,
            because_core::Attribution::GradientInput,
        ]
    }
    fn attribute(
        &self,
        method: because_core::Attribution,
        items: &[u32],
        target: u32,
    ) -> Result<Vec<f32>> {
        let skip = items.len() - self.tail(items).len();
        match method {
            because_core::Attribution::Occlusion => {}
            because_core::Attribution::GradientInput => {
                let mut out = vec![0.0f32; items.len()];
                if skip < items.len() {
                    let net = GruNet::new(&self.weights, self.train.ui.n_cols(), self.params.dim);
                    let g =
                        net.gradient_input(&self.weights, &items[skip..], target, self.params.dim)?;
                    out[skip..].copy_from_slice(&g);
                }
                return Ok(out);
            }
            _ => {
                return Err(Error::Unsupported {
                    op: "this attribution method",
                    model: <Gru4Rec as ModelKind>::NAME,
                })
            }
        }
        Ok(crate::seq::occlusion(items, skip, |h| {
            self.score_of(h, target)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The burn cell and the plain cell agree over a few steps.
    #[test]
    fn the_training_cell_and_the_plain_cell_agree() {
        let p = Gru4RecParams {
            dim: 6,
            ..Gru4RecParams::default()
        };
        let n = 7;
        let mut w = GruWeights::init(&p, n);
        let mut rng = Rng::new(5);
        for b in w.bx.iter_mut().chain(w.bh.iter_mut()) {
            *b = rng.normal() as f32 * 0.3;
        }
        let net = GruNet::new(&w, n, p.dim);
        let items = [3u32, 1, 6, 0, 2];
        let dev = device();
        let mut h = Tensor::<2>::zeros([1, p.dim], &dev);
        for &i in &items {
            let ids = Tensor::<1, Int>::from_data(TensorData::new(vec![i as i64], [1]), &dev);
            h = net.cell(net.emb.val().select(0, ids), h, p.dim);
        }
        let burn = to_vec(h).unwrap();
        let plain = w.run(&items, p.dim);
        for (a, b) in burn.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-5, "burn {a} vs plain {b}");
        }
    }

    /// Gradient × input matches central differences of the plain model.
    #[test]
    fn gradient_input_matches_central_differences() {
        let p = Gru4RecParams {
            dim: 6,
            ..Gru4RecParams::default()
        };
        let n = 9;
        let x = Interactions::from_tuples(1, n, (0..5u32).map(|t| (0, t, 1.0, t as i64))).unwrap();
        let model = Gru4Rec {
            params: p.clone(),
            train: Train::new(&x),
            seqs: Sequences::new(&x),
            weights: Arc::new(GruWeights::init(&p, n)),
            losses: vec![0.0; p.epochs],
        };
        use because_core::{Attribute, Attribution};
        let items = [3u32, 1, 6, 2];
        let g = model
            .attribute(Attribution::GradientInput, &items, 8)
            .unwrap();
        let eps = 1e-2f32;
        for (k, &item) in items.iter().enumerate() {
            let scaled = |f: f32| {
                let mut w = (*model.weights).clone();
                for c in 0..p.dim {
                    w.emb[item as usize * p.dim + c] *= f;
                }
                Gru4Rec {
                    weights: Arc::new(w),
                    ..model.clone()
                }
                .score_of(&items, 8)
            };
            let numeric = (scaled(1.0 + eps) - scaled(1.0 - eps)) / (2.0 * eps);
            assert!(
                (numeric - g[k]).abs() < 1e-2 * (1.0 + numeric.abs()),
                "item {item}: autodiff {} vs numeric {numeric}",
                g[k]
            );
        }
    }
}
