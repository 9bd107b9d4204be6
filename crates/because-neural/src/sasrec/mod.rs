//! SASRec (Kang and McAuley, "Self-Attentive Sequential Recommendation",
//! ICDM 2018): causal self-attention over each user's last `max_len` items.
//!
//! Our own encoder block (pre-norm: `h += Attn(LN(h))`, `h += FFN(LN(h))`,
//! a final layer norm), item embeddings scaled by `√dim` plus learned
//! positions, and the output tied to the item embeddings. Training uses
//! every position of every user's sequence (each sequence is cut into
//! windows of `max_len` inputs, so each interaction is a target once per
//! epoch), with cross-entropy over all items by default, the loss of the
//! strongest published variants (Klenitskiy and Vasilev, "Turning Dross Into
//! Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023), or
//! gBCE over sampled negatives (Petrov and Macdonald, "gSASRec", RecSys 2023)
//! or a sampled softmax with the log-Q correction (`crate::sampled`) for
//! large catalogues. Padding sits on the left and is masked as a key,
//! so a short sequence gives the same output as the same sequence alone.
//!
//! Training runs on burn's autodiff; the trained weights are then plain
//! arrays, and scoring, attention weights and occlusion run on them in plain
//! Rust (`Send + Sync`, no framework on the serving path). A test checks
//! that both forward passes agree.

use crate::seq::{self, affine, dot, layer_norm, Sequences};
mod net;

use because_core::rng::Rng;
use because_core::{
    Capabilities, Epoch, EpochObserver, Error, Interactions, Query, Recommender, Result,
};
use because_models::persist::{PersistError, TensorsIn, TensorsOut};
use because_models::{ModelKind, Train, Validate};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeqLoss {
    /// The full softmax up to [`crate::SAMPLED_ABOVE`] items, the sampled
    /// softmax above (the model's parameters then say which was used).
    Auto,
    /// Cross-entropy over every item (full softmax).
    Softmax,
    /// Generalized binary cross-entropy over `negatives` sampled items,
    /// calibrated by `gbce_t` (gSASRec).
    Gbce,
    /// Softmax over the target and `negatives` items shared by the batch,
    /// drawn by popularity, with the log-Q correction: for catalogues too
    /// large to score every item at every step.
    Sampled,
}

/// SASRec parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SasRecParams {
    /// Width of embeddings and hidden states.
    pub dim: usize,
    /// Self-attention blocks.
    pub layers: usize,
    /// Attention heads per block (must divide `dim`).
    pub heads: usize,
    /// Width of the feed-forward layer.
    pub ffn: usize,
    /// How many of the latest items the model reads.
    pub max_len: usize,
    /// Dropout rate in training.
    pub dropout: f32,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Windows per mini-batch.
    pub batch_size: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// The loss.
    pub loss: SeqLoss,
    /// Sampled negatives per target (gBCE only).
    pub negatives: usize,
    /// gBCE calibration `t` in [0, 1] (0 is plain BCE).
    pub gbce_t: f32,
    /// Threads training runs on, each on its share of every mini-batch
    /// (0: every core; the fitted model records how many ran). Training is
    /// reproducible for a seed and a thread count.
    pub threads: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for SasRecParams {
    fn default() -> Self {
        SasRecParams {
            dim: 64,
            layers: 2,
            heads: 2,
            ffn: 256,
            max_len: 50,
            dropout: 0.2,
            learning_rate: 1e-3,
            batch_size: 128,
            epochs: 100,
            loss: SeqLoss::Auto,
            negatives: 256,
            gbce_t: 0.75,
            threads: 0,
            seed: 42,
        }
    }
}

impl Validate for SasRecParams {
    fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(Error::param(name, format!("{v} must be in 1..={max}")))
            } else {
                Ok(())
            }
        };
        positive("dim", self.dim, 1024)?;
        positive("layers", self.layers, 8)?;
        positive("heads", self.heads, 16)?;
        positive("ffn", self.ffn, 4096)?;
        positive("max_len", self.max_len, 512)?;
        positive("batch_size", self.batch_size, 4096)?;
        positive("epochs", self.epochs, 10_000)?;
        positive("negatives", self.negatives, 100_000)?;
        if !self.dim.is_multiple_of(self.heads) {
            return Err(Error::param(
                "heads",
                format!("{} heads do not divide dim={}", self.heads, self.dim),
            ));
        }
        if !(self.dropout >= 0.0 && self.dropout < 1.0) {
            return Err(Error::param("dropout", "must be in [0, 1)"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(Error::param("learning_rate", "must be in (0, 1]"));
        }
        if !(self.gbce_t >= 0.0 && self.gbce_t <= 1.0) {
            return Err(Error::param("gbce_t", "must be in [0, 1]"));
        }
        if self.threads > 256 {
            return Err(Error::param("threads", "must be at most 256"));
        }
        Ok(())
    }
}

/// One encoder block's weights, row-major (`[in, out]` for matrices).
#[derive(Clone, Debug, Default)]
pub(crate) struct Block {
    pub ln1_g: Vec<f32>,
    pub ln1_b: Vec<f32>,
    pub wq: Vec<f32>,
    pub bq: Vec<f32>,
    pub wk: Vec<f32>,
    pub bk: Vec<f32>,
    pub wv: Vec<f32>,
    pub bv: Vec<f32>,
    pub wo: Vec<f32>,
    pub bo: Vec<f32>,
    pub ln2_g: Vec<f32>,
    pub ln2_b: Vec<f32>,
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
}

impl Block {
    /// (name, value, shape) of every tensor, in a fixed order.
    fn tensors(&mut self, d: usize, f: usize) -> Vec<(&'static str, &mut Vec<f32>, Vec<usize>)> {
        vec![
            ("ln1_g", &mut self.ln1_g, vec![d]),
            ("ln1_b", &mut self.ln1_b, vec![d]),
            ("wq", &mut self.wq, vec![d, d]),
            ("bq", &mut self.bq, vec![d]),
            ("wk", &mut self.wk, vec![d, d]),
            ("bk", &mut self.bk, vec![d]),
            ("wv", &mut self.wv, vec![d, d]),
            ("bv", &mut self.bv, vec![d]),
            ("wo", &mut self.wo, vec![d, d]),
            ("bo", &mut self.bo, vec![d]),
            ("ln2_g", &mut self.ln2_g, vec![d]),
            ("ln2_b", &mut self.ln2_b, vec![d]),
            ("w1", &mut self.w1, vec![d, f]),
            ("b1", &mut self.b1, vec![f]),
            ("w2", &mut self.w2, vec![f, d]),
            ("b2", &mut self.b2, vec![d]),
        ]
    }
}

/// All weights of a trained SASRec, as plain arrays.
#[derive(Clone, Debug, Default)]
pub(crate) struct Weights {
    /// `(n_items + 1) × dim`; row 0 is padding.
    pub item: Vec<f32>,
    /// `max_len × dim`.
    pub pos: Vec<f32>,
    pub blocks: Vec<Block>,
    pub lnf_g: Vec<f32>,
    pub lnf_b: Vec<f32>,
}

/// Layer-norm epsilon of both forward passes.
pub(crate) const EPS: f32 = 1e-6;

impl Weights {
    /// Random initial weights: embeddings N(0, 1/√dim)·… as in the
    /// reference implementation, matrices uniform in ±1/√fan_in, norms 1 and 0.
    fn init(p: &SasRecParams, n_items: usize) -> Weights {
        let (d, f) = (p.dim, p.ffn);
        let mut rng = Rng::stream(p.seed, 0x5a5);
        let mut normal =
            |n: usize, sd: f32| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32 * sd).collect() };
        let sd = 1.0 / (d as f32).sqrt();
        let mut item = normal((n_items + 1) * d, sd);
        item[..d].fill(0.0);
        let pos = normal(p.max_len * d, sd);
        let mut rng = Rng::stream(p.seed, 0x5a6);
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
            let a = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * a).collect()
        };
        let blocks = (0..p.layers)
            .map(|_| Block {
                ln1_g: vec![1.0; d],
                ln1_b: vec![0.0; d],
                wq: uniform(d * d, d),
                bq: vec![0.0; d],
                wk: uniform(d * d, d),
                bk: vec![0.0; d],
                wv: uniform(d * d, d),
                bv: vec![0.0; d],
                wo: uniform(d * d, d),
                bo: vec![0.0; d],
                ln2_g: vec![1.0; d],
                ln2_b: vec![0.0; d],
                w1: uniform(d * f, d),
                b1: vec![0.0; f],
                w2: uniform(f * d, f),
                b2: vec![0.0; d],
            })
            .collect();
        Weights {
            item,
            pos,
            blocks,
            lnf_g: vec![1.0; d],
            lnf_b: vec![0.0; d],
        }
    }

    /// Every tensor with its name and shape, in a fixed order.
    pub(crate) fn named(
        &mut self,
        d: usize,
        f: usize,
        n_items: usize,
        max_len: usize,
    ) -> Vec<(String, &mut Vec<f32>, Vec<usize>)> {
        let mut out: Vec<(String, &mut Vec<f32>, Vec<usize>)> = vec![
            (
                "item_embedding".into(),
                &mut self.item,
                vec![n_items + 1, d],
            ),
            ("position_embedding".into(), &mut self.pos, vec![max_len, d]),
            ("final_norm.g".into(), &mut self.lnf_g, vec![d]),
            ("final_norm.b".into(), &mut self.lnf_b, vec![d]),
        ];
        for (l, b) in self.blocks.iter_mut().enumerate() {
            for (name, v, shape) in b.tensors(d, f) {
                out.push((format!("block{l}.{name}"), v, shape));
            }
        }
        out
    }
}

/// What one plain forward pass returns.
pub(crate) struct Pass {
    /// The final hidden state of the last position: the query vector.
    pub z: Vec<f32>,
    /// Per layer, per head, the attention of every position over the
    /// positions at or before it (`n × n`, row-major; zero above the
    /// diagonal), if asked for.
    pub attention: Vec<Vec<Vec<f32>>>,
}

/// The shape of a SASRec network.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub d: usize,
    pub heads: usize,
    pub ffn: usize,
    pub max_len: usize,
}

/// The plain forward pass over `items` (at most `max_len`, oldest first;
/// item indices, not shifted), right-aligned to the last position.
pub(crate) fn forward(w: &Weights, s: Shape, items: &[u32], attention: bool) -> Pass {
    let (d, h, f, big_l) = (s.d, s.heads, s.ffn, s.max_len);
    let n = items.len();
    debug_assert!(n >= 1 && n <= big_l);
    let dh = d / h;
    let scale = (d as f32).sqrt();
    let mut x = vec![0.0f32; n * d];
    for (t, &i) in items.iter().enumerate() {
        let e = &w.item[(i as usize + 1) * d..(i as usize + 2) * d];
        let p = &w.pos[(big_l - n + t) * d..(big_l - n + t + 1) * d];
        for c in 0..d {
            x[t * d + c] = e[c] * scale + p[c];
        }
    }
    let mut maps = Vec::new();
    let (mut a, mut q, mut k, mut v) = (
        vec![0.0f32; n * d],
        vec![0.0f32; n * d],
        vec![0.0f32; n * d],
        vec![0.0f32; n * d],
    );
    let mut ctx = vec![0.0f32; n * d];
    let mut tmp = vec![0.0f32; d];
    let mut hid = vec![0.0f32; f];
    let inv = 1.0 / (dh as f32).sqrt();
    for b in &w.blocks {
        for t in 0..n {
            layer_norm(
                &x[t * d..(t + 1) * d],
                &b.ln1_g,
                &b.ln1_b,
                EPS,
                &mut a[t * d..(t + 1) * d],
            );
            affine(
                &a[t * d..(t + 1) * d],
                &b.wq,
                &b.bq,
                &mut q[t * d..(t + 1) * d],
            );
            affine(
                &a[t * d..(t + 1) * d],
                &b.wk,
                &b.bk,
                &mut k[t * d..(t + 1) * d],
            );
            affine(
                &a[t * d..(t + 1) * d],
                &b.wv,
                &b.bv,
                &mut v[t * d..(t + 1) * d],
            );
        }
        let mut layer_maps = Vec::new();
        ctx.fill(0.0);
        for head in 0..h {
            let mut map = if attention {
                vec![0.0f32; n * n]
            } else {
                Vec::new()
            };
            let mut row = vec![0.0f32; n];
            for i in 0..n {
                let qi = &q[i * d + head * dh..i * d + (head + 1) * dh];
                let mut m = f32::NEG_INFINITY;
                for j in 0..=i {
                    row[j] = dot(qi, &k[j * d + head * dh..j * d + (head + 1) * dh]) * inv;
                    m = m.max(row[j]);
                }
                let mut sum = 0.0;
                for r in row.iter_mut().take(i + 1) {
                    *r = (*r - m).exp();
                    sum += *r;
                }
                for j in 0..=i {
                    let p = row[j] / sum;
                    if attention {
                        map[i * n + j] = p;
                    }
                    let vj = &v[j * d + head * dh..j * d + (head + 1) * dh];
                    let out = &mut ctx[i * d + head * dh..i * d + (head + 1) * dh];
                    for c in 0..dh {
                        out[c] += p * vj[c];
                    }
                }
            }
            if attention {
                layer_maps.push(map);
            }
        }
        for t in 0..n {
            affine(&ctx[t * d..(t + 1) * d], &b.wo, &b.bo, &mut tmp);
            for c in 0..d {
                x[t * d + c] += tmp[c];
            }
            layer_norm(&x[t * d..(t + 1) * d], &b.ln2_g, &b.ln2_b, EPS, &mut tmp);
            affine(&tmp, &b.w1, &b.b1, &mut hid);
            for z in hid.iter_mut() {
                *z = z.max(0.0);
            }
            affine(&hid, &b.w2, &b.b2, &mut tmp);
            for c in 0..d {
                x[t * d + c] += tmp[c];
            }
        }
        if attention {
            maps.push(layer_maps);
        }
    }
    let mut z = vec![0.0f32; d];
    layer_norm(&x[(n - 1) * d..n * d], &w.lnf_g, &w.lnf_b, EPS, &mut z);
    Pass { z, attention: maps }
}

/// A fitted SASRec model.
#[derive(Clone, Debug)]
pub struct SasRec {
    params: SasRecParams,
    train: Train,
    seqs: Sequences,
    weights: Arc<Weights>,
    /// Mean training loss of each epoch run.
    losses: Vec<f32>,
}

impl SasRec {
    fn shape(&self) -> Shape {
        shape_of(&self.params)
    }
    fn n_items_(&self) -> usize {
        self.train.ui.n_cols()
    }
    /// The last `max_len` items of a query, oldest first.
    fn tail<'a>(&'a self, query: &Query<'a>) -> &'a [u32] {
        let items = seq::query_items(&self.seqs, query);
        &items[items.len().saturating_sub(self.params.max_len)..]
    }
    /// The query vector for `items` (already the tail); zero if empty.
    fn query_vector(&self, items: &[u32]) -> Vec<f32> {
        if items.is_empty() {
            return vec![0.0; self.params.dim];
        }
        forward(&self.weights, self.shape(), items, false).z
    }
    /// The score of `target` for a sequence of items (any length; the last
    /// `max_len` are read).
    pub fn score_of(&self, items: &[u32], target: u32) -> f32 {
        let tail = &items[items.len().saturating_sub(self.params.max_len)..];
        let z = self.query_vector(tail);
        let d = self.params.dim;
        let t = target as usize + 1;
        dot(&z, &self.weights.item[t * d..(t + 1) * d])
    }
    /// Attention weights for the last `max_len` items of `items`: per layer,
    /// per head, an `n × n` lower-triangular matrix (row = query position).
    pub fn attention(&self, items: &[u32]) -> (Vec<u32>, Vec<Vec<Vec<f32>>>) {
        let tail = items[items.len().saturating_sub(self.params.max_len)..].to_vec();
        if tail.is_empty() {
            return (tail, Vec::new());
        }
        let pass = forward(&self.weights, self.shape(), &tail, true);
        (tail, pass.attention)
    }
    /// Mean training loss of each epoch.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }
}

/// The row of the last position in each layer's head-averaged attention,
/// or its rollout across layers (`n` weights, oldest first).
fn attention_of_last(maps: &[Vec<Vec<f32>>], n: usize, rollout: bool) -> Vec<f32> {
    let avg = |layer: &Vec<Vec<f32>>| -> Vec<f32> {
        let mut m = vec![0.0f32; n * n];
        for head in layer {
            for (a, h) in m.iter_mut().zip(head) {
                *a += h / layer.len() as f32;
            }
        }
        m
    };
    let Some(last) = maps.last() else {
        return vec![0.0; n];
    };
    if !rollout {
        return avg(last)[(n - 1) * n..].to_vec();
    }
    // R = Â_L · … · Â_1 with Â = (A + I) / 2 (rows still sum to 1).
    let mut r: Vec<f32> = (0..n * n)
        .map(|k| f32::from(u8::from(k / n == k % n)))
        .collect();
    for layer in maps {
        let mut a = avg(layer);
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = 0.5 * a[i * n + j] + if i == j { 0.5 } else { 0.0 };
            }
        }
        let mut next = vec![0.0f32; n * n];
        for i in 0..n {
            for k in 0..n {
                let aik = a[i * n + k];
                if aik != 0.0 {
                    for j in 0..n {
                        next[i * n + j] += aik * r[k * n + j];
                    }
                }
            }
        }
        r = next;
    }
    r[(n - 1) * n..].to_vec()
}

impl because_core::Attribute for SasRec {
    fn attributions(&self) -> &'static [because_core::Attribution] {
        use because_core::Attribution::*;
        &[Occlusion, Attention, AttentionRollout, GradientInput]
    }
    fn attribute(
        &self,
        method: because_core::Attribution,
        items: &[u32],
        target: u32,
    ) -> Result<Vec<f32>> {
        use because_core::Attribution::*;
        let skip = items.len().saturating_sub(self.params.max_len);
        let tail = &items[skip..];
        let mut out = vec![0.0f32; items.len()];
        if tail.is_empty() {
            return Ok(out);
        }
        let weights = match method {
            Occlusion => {
                // Leaving out an item of a history longer than the window
                // brings the next older item in: re-score the whole history.
                // Leaving out an item older than the window changes nothing:
                // those weigh exactly 0.
                return Ok(seq::occlusion(items, skip, |h| self.score_of(h, target)));
            }
            Attention | AttentionRollout => {
                let pass = forward(&self.weights, self.shape(), tail, true);
                attention_of_last(&pass.attention, tail.len(), method == AttentionRollout)
            }
            GradientInput => {
                let net = net::SasNet::new(&self.weights, &self.params, self.n_items_());
                net.gradient_input(tail, target, &self.params)?
            }
            IntegratedGradients | Similarity => {
                return Err(Error::Unsupported {
                    op: method.name(),
                    model: <SasRec as ModelKind>::NAME,
                })
            }
        };
        out[skip..].copy_from_slice(&weights);
        Ok(out)
    }
    fn attention_maps(&self, items: &[u32]) -> Option<because_core::AttentionMaps> {
        let skip = items.len().saturating_sub(self.params.max_len);
        let tail = &items[skip..];
        if tail.is_empty() {
            return None;
        }
        let n = tail.len();
        let pass = forward(&self.weights, self.shape(), tail, true);
        let rows = pass
            .attention
            .iter()
            .flat_map(|layer| layer.iter())
            .map(|head| {
                let mut row = vec![0.0f32; items.len()];
                row[skip..].copy_from_slice(&head[(n - 1) * n..]);
                row
            })
            .collect();
        Some(because_core::AttentionMaps {
            layers: self.params.layers,
            heads: self.params.heads,
            rows,
        })
    }
}

pub(crate) fn shape_of(p: &SasRecParams) -> Shape {
    Shape {
        d: p.dim,
        heads: p.heads,
        ffn: p.ffn,
        max_len: p.max_len,
    }
}

impl SasRecParams {
    /// Fits on `x` (each user's interactions in time order).
    pub fn fit(&self, x: &Interactions) -> Result<SasRec> {
        self.fit_observed(x, 0, &mut because_core::no_observer())
    }

    /// Fits, calling `observer` after each epoch with the mean loss and,
    /// every `every` epochs, a snapshot of the model.
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<SasRec> {
        self.validate()?;
        if self.loss == SeqLoss::Auto {
            let loss = if x.n_items() > crate::SAMPLED_ABOVE {
                SeqLoss::Sampled
            } else {
                SeqLoss::Softmax
            };
            return SasRecParams {
                loss,
                ..self.clone()
            }
            .fit_observed(x, every, observer);
        }
        if x.is_empty() {
            return Err(Error::Empty("sasrec: no interactions to train on".into()));
        }
        let n_items = x.n_items();
        let seqs = Sequences::new(x);
        let start = std::time::Instant::now();
        let shards = crate::optim::shard_count(self.threads);
        let mut model = SasRec {
            params: SasRecParams {
                threads: shards,
                ..self.clone()
            },
            train: Train::new(x),
            seqs,
            weights: Arc::new(Weights::init(self, n_items)),
            losses: Vec::new(),
        };
        let mut w = (*model.weights).clone();
        let windows = seq::windows(&model.seqs, self.max_len);
        let mut trainer = net::Trainer::new(&mut w, self, n_items, shards);
        let sampler = crate::sampled::Sampler::new(&model.seqs.counts(n_items));
        for epoch in 1..=self.epochs {
            let order = seq::shuffled(&windows, self.seed, epoch);
            let mut total = 0.0f64;
            let mut count = 0usize;
            for (b, batch) in order.chunks(self.batch_size).enumerate() {
                let mut rng = Rng::stream(self.seed, ((epoch as u64) << 32) | b as u64);
                let negatives = match self.loss {
                    SeqLoss::Softmax | SeqLoss::Auto => None,
                    SeqLoss::Gbce => Some(
                        (0..self.negatives)
                            .map(|_| rng.below(n_items as u64) as u32)
                            .collect::<Vec<u32>>(),
                    ),
                    SeqLoss::Sampled => Some(sampler.draw(self.negatives, &mut rng)),
                };
                let (loss, targets) = trainer.step(
                    &mut w,
                    &model.seqs,
                    net::Batch {
                        windows: batch,
                        negatives: negatives.as_deref(),
                        stream: ((epoch as u64) << 32) | b as u64,
                    },
                    self,
                    &sampler,
                )?;
                total += loss;
                count += targets;
            }
            let loss = total / count.max(1) as f64;
            model.losses.push(loss as f32);
            if !loss.is_finite() {
                return Err(Error::NonFinite {
                    model: <SasRec as ModelKind>::NAME,
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
                model.weights = Arc::new(w);
                model.params.epochs = epoch;
                return Ok(model);
            }
        }
        model.weights = Arc::new(w);
        model.params.epochs = self.epochs;
        Ok(model)
    }
}

impl ModelKind for SasRec {
    const NAME: &'static str = "sasrec";
    const ABOUT: &'static str =
        "self-attentive sequential model (causal transformer over the latest items, burn)";
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
    const EXAMPLE: &'static str = "dim=16,layers=1,heads=2,ffn=16,max_len=8,epochs=3,batch_size=32";
    const DEMO: Option<&'static str> = Some(
        "dim=32,layers=1,heads=2,ffn=32,max_len=20,epochs=5,learning_rate=0.005,batch_size=256",
    );
    type Params = SasRecParams;

    fn fit(
        params: &SasRecParams,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        params.fit_observed(x, every, observer)
    }
    fn params(&self) -> SasRecParams {
        self.params.clone()
    }
    fn train(&self) -> &Train {
        &self.train
    }
    fn save(&self, out: &mut TensorsOut) {
        let p = &self.params;
        let mut w = (*self.weights).clone();
        for (name, v, shape) in w.named(p.dim, p.ffn, self.n_items_(), p.max_len) {
            out.f32(&name, v, &shape);
        }
        out.f32("losses", &self.losses, &[self.losses.len()]);
        self.seqs.save(out);
    }
    fn load(params: SasRecParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (nu, ni) = (train.ui.n_rows(), train.ui.n_cols());
        let mut w = Weights {
            blocks: vec![Block::default(); params.layers],
            ..Weights::default()
        };
        for (name, v, shape) in w.named(params.dim, params.ffn, ni, params.max_len) {
            *v = t.f32(&name, &shape)?;
        }
        let losses = t.f32("losses", &[params.epochs])?;
        let seqs = Sequences::load(t, nu, ni)?;
        Ok(SasRec {
            params,
            train,
            seqs,
            weights: Arc::new(w),
            losses,
        })
    }
}

impl Recommender for SasRec {
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
        (self.seqs.items(user), self.seqs.values(user))
    }
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let z = self.query_vector(self.tail(query));
        seq::score_all(&z, &self.weights.item, self.params.dim, 1, out);
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        seq::cosine_all(&self.weights.item, self.params.dim, 1, item as usize, out);
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

impl because_core::InnerProduct for SasRec {
    /// The (shared) item embeddings, against the last position's output.
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors::dense(&self.weights.item[self.params.dim..], self.params.dim)
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        Ok(because_core::QueryVector {
            vector: self.query_vector(self.tail(query)),
            offset: 0.0,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(self.item_vectors())
    }
}

impl because_core::ItemEmbeddings for SasRec {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.weights.item[self.params.dim..], self.params.dim)
    }
}

#[cfg(test)]
mod tests {
    use super::net::{SasNet, SeqBatch};
    use super::*;

    /// The burn graph (dropout off) and the plain forward pass give the same
    /// hidden state at the last position, for a full and a padded sequence.
    #[test]
    fn the_training_graph_and_the_plain_pass_agree() {
        let p = SasRecParams {
            dim: 8,
            heads: 2,
            ffn: 12,
            max_len: 6,
            layers: 2,
            ..SasRecParams::default()
        };
        let n_items = 9;
        let mut w = Weights::init(&p, n_items);
        // Non-trivial norms and biases, so that every weight is exercised.
        let mut rng = Rng::new(3);
        for b in &mut w.blocks {
            for v in [
                &mut b.ln1_g,
                &mut b.ln1_b,
                &mut b.bq,
                &mut b.bo,
                &mut b.b1,
                &mut b.ln2_b,
            ] {
                for x in v.iter_mut() {
                    *x += rng.normal() as f32 * 0.3;
                }
            }
        }
        let seqs = vec![vec![1u32, 4, 2, 8, 0, 3], vec![5u32, 7]];
        let batch = SeqBatch::of(&seqs, p.max_len);
        let net = SasNet::new(&w, &p, n_items);
        let hidden =
            crate::train::to_vec(net.hidden(&batch, &p, &mut crate::train::Dropout::off()))
                .unwrap();
        for (r, s) in seqs.iter().enumerate() {
            let pass = forward(&w, shape_of(&p), s, true);
            let row = (r * p.max_len + p.max_len - 1) * p.dim;
            for c in 0..p.dim {
                let (a, b) = (hidden[row + c], pass.z[c]);
                assert!(
                    (a - b).abs() < 1e-4,
                    "sequence {r}, unit {c}: burn {a} vs plain {b}"
                );
            }
            // Attention rows are distributions over past positions.
            for layer in &pass.attention {
                for head in layer {
                    for i in 0..s.len() {
                        let row = &head[i * s.len()..(i + 1) * s.len()];
                        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                        assert!(row[i + 1..].iter().all(|&x| x == 0.0));
                    }
                }
            }
        }
    }

    /// Gradient × input from burn's autodiff matches the derivative of the
    /// plain forward pass along each item's embedding (central differences),
    /// and occlusion is the score lost by leaving each item out.
    #[test]
    fn gradient_input_and_occlusion_are_what_they_claim() {
        let p = SasRecParams {
            dim: 8,
            heads: 2,
            ffn: 12,
            max_len: 5,
            layers: 2,
            ..SasRecParams::default()
        };
        let n_items = 12;
        let x = Interactions::from_tuples(1, n_items, (0..7u32).map(|t| (0, t + 2, 1.0, t as i64)))
            .unwrap();
        let model = SasRec {
            params: p.clone(),
            train: Train::new(&x),
            seqs: Sequences::new(&x),
            weights: Arc::new(Weights::init(&p, n_items)),
            losses: vec![0.0; p.epochs],
        };
        use because_core::{Attribute, Attribution};
        let items = [2u32, 5, 7, 3, 8, 4, 6];
        let target = 11;
        let g = model
            .attribute(Attribution::GradientInput, &items, target)
            .unwrap();
        assert_eq!(
            &g[..2],
            &[0.0, 0.0],
            "items beyond the window weigh nothing"
        );
        let eps = 1e-2f32;
        for (k, &item) in items.iter().enumerate().skip(2) {
            let scaled = |f: f32| {
                let mut w = (*model.weights).clone();
                let d = p.dim;
                for c in 0..d {
                    w.item[(item as usize + 1) * d + c] *= f;
                }
                let m = SasRec {
                    weights: Arc::new(w),
                    ..model.clone()
                };
                m.score_of(&items, target)
            };
            let numeric = (scaled(1.0 + eps) - scaled(1.0 - eps)) / (2.0 * eps);
            assert!(
                (numeric - g[k]).abs() < 2e-2 * (1.0 + numeric.abs()),
                "item {item}: autodiff {} vs numeric {numeric}",
                g[k]
            );
        }
        let o = model
            .attribute(Attribution::Occlusion, &items, target)
            .unwrap();
        let base = model.score_of(&items, target);
        let without: Vec<u32> = items.iter().copied().filter(|&i| i != 8).collect();
        assert!((o[4] - (base - model.score_of(&without, target))).abs() < 1e-6);
        for m in [Attribution::Attention, Attribution::AttentionRollout] {
            let a = model.attribute(m, &items, target).unwrap();
            assert!(
                (a.iter().sum::<f32>() - 1.0).abs() < 1e-4,
                "{m:?} sums to 1"
            );
        }
    }
}
