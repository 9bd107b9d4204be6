//! SASRec's training graph on burn: mini-batches of sequence windows, the
//! network as burn parameters, its losses, and one Adam step.
//!
//! Parameters start from the plain [`Weights`] (initialized by our own
//! seeded generator) and return to them after training, so the serving path
//! never touches burn.

use super::{SasRecParams, SeqLoss, Weights, EPS};
use crate::optim::{Adam, Grad, Rows};
use crate::sampled::Sampler;
use crate::seq::{Sequences, Window};
use crate::train::{device, grad_of, param1, param2, to_vec, Dropout};
use because_core::rng::Rng;
use because_core::{Error, Result};
use burn::module::{Module, Param};
use burn::tensor::activation::{log_sigmoid, log_softmax, relu, softmax};
use burn::tensor::{Bool, Gradients, Int, Tensor, TensorData};

/// One encoder block as burn parameters.
#[derive(Module, Debug)]
pub(crate) struct NetBlock {
    ln1_g: Param<Tensor<1>>,
    ln1_b: Param<Tensor<1>>,
    wq: Param<Tensor<2>>,
    bq: Param<Tensor<1>>,
    wk: Param<Tensor<2>>,
    bk: Param<Tensor<1>>,
    wv: Param<Tensor<2>>,
    bv: Param<Tensor<1>>,
    wo: Param<Tensor<2>>,
    bo: Param<Tensor<1>>,
    ln2_g: Param<Tensor<1>>,
    ln2_b: Param<Tensor<1>>,
    w1: Param<Tensor<2>>,
    b1: Param<Tensor<1>>,
    w2: Param<Tensor<2>>,
    b2: Param<Tensor<1>>,
}

/// SASRec as burn parameters.
#[derive(Module, Debug)]
pub(crate) struct SasNet {
    item: Param<Tensor<2>>,
    pos: Param<Tensor<2>>,
    blocks: Vec<NetBlock>,
    lnf_g: Param<Tensor<1>>,
    lnf_b: Param<Tensor<1>>,
}

/// `x · w + b` over the last dimension of a `[rows, in]` tensor.
fn linear(x: Tensor<2>, w: &Param<Tensor<2>>, b: &Param<Tensor<1>>) -> Tensor<2> {
    x.matmul(w.val()) + b.val().unsqueeze_dim::<2>(0)
}

/// Layer norm over the last dimension, as [`crate::seq::layer_norm`] computes it.
fn norm(x: Tensor<2>, g: &Param<Tensor<1>>, b: &Param<Tensor<1>>) -> Tensor<2> {
    let mean = x.clone().mean_dim(1);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(1);
    centred / (var + EPS as f64).sqrt() * g.val().unsqueeze_dim::<2>(0)
        + b.val().unsqueeze_dim::<2>(0)
}

impl SasNet {
    /// The network holding `w`'s values, on the training device.
    pub(crate) fn new(w: &Weights, p: &SasRecParams, n_items: usize) -> SasNet {
        SasNet::gathered(w, p, &Rows::All(n_items + 1))
    }

    /// The network over the rows `rows` of the item table (padding and
    /// items + 1), the rest as in `w`: a training step's leaves.
    pub(crate) fn gathered(w: &Weights, p: &SasRecParams, rows: &Rows) -> SasNet {
        let dev = device();
        let (d, f) = (p.dim, p.ffn);
        SasNet {
            item: param2(&rows.gather(&w.item, d), rows.len(), d, &dev),
            pos: param2(&w.pos, p.max_len, d, &dev),
            blocks: w
                .blocks
                .iter()
                .map(|b| NetBlock {
                    ln1_g: param1(&b.ln1_g, &dev),
                    ln1_b: param1(&b.ln1_b, &dev),
                    wq: param2(&b.wq, d, d, &dev),
                    bq: param1(&b.bq, &dev),
                    wk: param2(&b.wk, d, d, &dev),
                    bk: param1(&b.bk, &dev),
                    wv: param2(&b.wv, d, d, &dev),
                    bv: param1(&b.bv, &dev),
                    wo: param2(&b.wo, d, d, &dev),
                    bo: param1(&b.bo, &dev),
                    ln2_g: param1(&b.ln2_g, &dev),
                    ln2_b: param1(&b.ln2_b, &dev),
                    w1: param2(&b.w1, d, f, &dev),
                    b1: param1(&b.b1, &dev),
                    w2: param2(&b.w2, f, d, &dev),
                    b2: param1(&b.b2, &dev),
                })
                .collect(),
            lnf_g: param1(&w.lnf_g, &dev),
            lnf_b: param1(&w.lnf_b, &dev),
        }
    }

    /// Hidden states `[batch · len, dim]` after the final norm.
    pub(crate) fn hidden(
        &self,
        batch: &SeqBatch,
        p: &SasRecParams,
        drop: &mut Dropout,
    ) -> Tensor<2> {
        let dev = self.item.val().device();
        let (b, l, d) = (batch.rows, batch.len, p.dim);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(batch.ids.clone(), [b, l]), &dev);
        let emb = burn::tensor::module::embedding(self.item.val(), ids) * (d as f64).sqrt();
        self.encode(emb, batch, p, drop)
    }

    /// The encoder over scaled item embeddings `[rows, len, dim]`: adds the
    /// positions of the last `len` slots, then the blocks and the final norm.
    fn encode(
        &self,
        emb: Tensor<3>,
        batch: &SeqBatch,
        p: &SasRecParams,
        drop: &mut Dropout,
    ) -> Tensor<2> {
        let dev = emb.device();
        let (b, l, d, h) = (batch.rows, batch.len, p.dim, p.heads);
        let dh = d / h;
        // Each token's position counts back from the end of its own
        // sequence (the latest item takes the last position).
        let pos_ids: Vec<i64> = batch
            .back
            .iter()
            .map(|&k| (p.max_len - 1).saturating_sub(k as usize) as i64)
            .collect();
        let pos_ids = Tensor::<2, Int>::from_data(TensorData::new(pos_ids, [b, l]), &dev);
        let x = emb + burn::tensor::module::embedding(self.pos.val(), pos_ids);
        let mut x = drop.apply(x).reshape([b * l, d]);
        let mask =
            Tensor::<4, Bool>::from_data(TensorData::new(batch.mask.clone(), [b, 1, l, l]), &dev)
                .expand([b, h, l, l]);
        for blk in &self.blocks {
            let a = norm(x.clone(), &blk.ln1_g, &blk.ln1_b);
            let split = |t: Tensor<2>| t.reshape([b, l, h, dh]).swap_dims(1, 2);
            let q = split(linear(a.clone(), &blk.wq, &blk.bq));
            let k = split(linear(a.clone(), &blk.wk, &blk.bk));
            let v = split(linear(a, &blk.wv, &blk.bv));
            let scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt();
            let att = softmax(scores.mask_fill(mask.clone(), -1e9), 3);
            let att = drop.apply(att);
            let ctx = att.matmul(v).swap_dims(1, 2).reshape([b * l, d]);
            x = x + drop.apply(linear(ctx, &blk.wo, &blk.bo));
            let c = norm(x.clone(), &blk.ln2_g, &blk.ln2_b);
            let ff = linear(relu(linear(c, &blk.w1, &blk.b1)), &blk.w2, &blk.b2);
            x = x + drop.apply(ff);
        }
        norm(x, &self.lnf_g, &self.lnf_b)
    }

    /// Gradient × input of `target`'s score over the input embeddings of
    /// `items` (at most `max_len`, oldest first): one weight per item.
    pub(crate) fn gradient_input(
        &self,
        items: &[u32],
        target: u32,
        p: &SasRecParams,
    ) -> Result<Vec<f32>> {
        let dev = self.item.val().device();
        let (n, d) = (items.len(), p.dim);
        let ids: Vec<i64> = items.iter().map(|&i| i as i64 + 1).collect();
        let rows = self.item.val().detach().select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &dev),
        );
        let input = (rows * (d as f64).sqrt())
            .reshape([1, n, d])
            .detach()
            .require_grad();
        let batch = SeqBatch::single(n);
        let z = self
            .encode(input.clone(), &batch, p, &mut Dropout::off())
            .slice([n - 1..n]);
        let t = Tensor::<1, Int>::from_data(TensorData::new(vec![target as i64 + 1], [1]), &dev);
        let score = (z * self.item.val().select(0, t)).sum();
        let grads = score.backward();
        let g = input
            .grad(&grads)
            .ok_or_else(|| Error::Shape("no gradient for the input embeddings".into()))?;
        let product = to_vec((g * input.detach()).sum_dim(2).reshape([n]))?;
        Ok(product)
    }

    /// The mean training loss of a batch.
    fn loss(
        &self,
        batch: &SeqBatch,
        p: &SasRecParams,
        negatives: Option<(&[u32], &Sampler)>,
        rows: &Rows,
        n_items: usize,
        drop: &mut Dropout,
    ) -> Tensor<1> {
        let dev = self.item.val().device();
        let pcount = batch.positions.len();
        let z = self.hidden(batch, p, drop).select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(batch.positions.clone(), [pcount]), &dev),
        );
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(batch.targets.clone(), [pcount]), &dev);
        match (p.loss, negatives) {
            (SeqLoss::Sampled, Some((neg, sampler))) => {
                let local = |i: i64| rows.local(i as u32 + 1);
                let targets: Vec<i64> = batch.targets.iter().map(|&t| local(t)).collect();
                let neg: Vec<i64> = neg.iter().map(|&i| local(i as i64)).collect();
                sampler.loss(z, self.item.val(), None, &targets, &neg, |r| {
                    rows.global(r as usize) as usize - 1
                })
            }
            (SeqLoss::Gbce, Some((neg, _))) => {
                let emb = self.item.val();
                let local: Vec<i64> = batch
                    .targets
                    .iter()
                    .map(|&t| rows.local(t as u32 + 1))
                    .collect();
                let local = Tensor::<1, Int>::from_data(TensorData::new(local, [pcount]), &dev);
                let pos = emb.clone().select(0, local);
                let pos_logit = (z.clone() * pos).sum_dim(1);
                let neg_ids: Vec<i64> = neg.iter().map(|&i| rows.local(i + 1)).collect();
                let neg_emb = emb.select(
                    0,
                    Tensor::<1, Int>::from_data(TensorData::new(neg_ids, [neg.len()]), &dev),
                );
                let neg_logit = z.matmul(neg_emb.transpose());
                // gSASRec's β from the sampling rate α = k / (n - 1).
                let alpha = neg.len() as f64 / (n_items.saturating_sub(1)).max(1) as f64;
                let t = p.gbce_t as f64;
                let beta = alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha);
                let pos_term = log_sigmoid(pos_logit) * beta;
                let neg_term = log_sigmoid(neg_logit.neg()).sum_dim(1);
                (pos_term + neg_term).mean().neg()
            }
            _ => {
                // The full softmax reads every row (`Rows::All`).
                let items = self.item.val().slice([1..n_items + 1]);
                let logp = log_softmax(z.matmul(items.transpose()), 1);
                logp.gather(1, targets.reshape([pcount, 1])).mean().neg()
            }
        }
    }
}

impl SasNet {
    /// Every parameter's gradient, in [`Weights::named`]'s order.
    fn grads(&self, g: &Gradients) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![
            grad_of(&self.item, g)?,
            grad_of(&self.pos, g)?,
            grad_of(&self.lnf_g, g)?,
            grad_of(&self.lnf_b, g)?,
        ];
        for b in &self.blocks {
            for p in [&b.ln1_g, &b.ln1_b] {
                out.push(grad_of(p, g)?);
            }
            for (w, bias) in [
                (&b.wq, &b.bq),
                (&b.wk, &b.bk),
                (&b.wv, &b.bv),
                (&b.wo, &b.bo),
            ] {
                out.push(grad_of(w, g)?);
                out.push(grad_of(bias, g)?);
            }
            for p in [&b.ln2_g, &b.ln2_b] {
                out.push(grad_of(p, g)?);
            }
            out.push(grad_of(&b.w1, g)?);
            out.push(grad_of(&b.b1, g)?);
            out.push(grad_of(&b.w2, g)?);
            out.push(grad_of(&b.b2, g)?);
        }
        Ok(out)
    }
}

/// A mini-batch of windows, left-padded to `len`.
pub(crate) struct SeqBatch {
    rows: usize,
    len: usize,
    /// Item index + 1 at each position, 0 for padding.
    ids: Vec<i64>,
    /// How many items follow each token in its own sequence (0 for the
    /// latest; padding 0): its position counts back from the end.
    back: Vec<u32>,
    /// `[rows, 1, len, len]`: whether query `i` may not attend to key `j`
    /// (a later position, or padding other than itself).
    mask: Vec<bool>,
    /// Flat positions (`row · len + i`) that have a target.
    positions: Vec<i64>,
    /// The item that follows each of `positions`.
    targets: Vec<i64>,
}

impl SeqBatch {
    /// The batch of `windows` of `seqs`, one per row.
    #[cfg(test)]
    pub(crate) fn new(seqs: &Sequences, windows: &[Window], len: usize) -> SeqBatch {
        let rows = windows.len();
        let mut ids = vec![0i64; rows * len];
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        let mut mask = vec![false; rows * len * len];
        let mut back = vec![0u32; rows * len];
        for (r, w) in windows.iter().enumerate() {
            let s = seqs.items(w.user);
            let pad = len - w.len;
            for t in 0..w.len {
                ids[r * len + pad + t] = s[w.start + t] as i64 + 1;
                back[r * len + pad + t] = (w.len - 1 - t) as u32;
                positions.push((r * len + pad + t) as i64);
                targets.push(s[w.start + t + 1] as i64);
            }
            for i in 0..len {
                for j in 0..len {
                    mask[(r * len + i) * len + j] = j > i || (j < pad && j != i);
                }
            }
        }
        SeqBatch {
            rows,
            len,
            ids,
            back,
            mask,
            positions,
            targets,
        }
    }

    /// The batch of `windows` packed into as few rows as first-fit
    /// decreasing finds, each row as long as the longest window: a row
    /// holds several windows one after another, each attending only to its
    /// own earlier items, and each token's position counts back from the
    /// end of its own window, so that every target's loss is what it is
    /// with one window per row (a test checks), at a fraction of the work
    /// when most windows are short.
    pub(crate) fn packed(seqs: &Sequences, windows: &[Window]) -> SeqBatch {
        let len = windows.iter().map(|w| w.len).max().unwrap_or(1).max(1);
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(windows[k].len));
        // Each row: its windows and the space they fill.
        let mut rows: Vec<(Vec<usize>, usize)> = Vec::new();
        for k in order {
            let need = windows[k].len;
            match rows.iter_mut().find(|(_, used)| used + need <= len) {
                Some((ws, used)) => {
                    ws.push(k);
                    *used += need;
                }
                None => rows.push((vec![k], need)),
            }
        }
        let n = rows.len();
        let mut ids = vec![0i64; n * len];
        let mut back = vec![0u32; n * len];
        // Padding (on the left) attends only to itself; a token attends to
        // its own window's tokens up to itself.
        let mut mask = vec![true; n * len * len];
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (r, (ws, used)) in rows.iter().enumerate() {
            let pad = len - used;
            for i in 0..pad {
                mask[(r * len + i) * len + i] = false;
            }
            let mut at = pad;
            for &k in ws {
                let w = &windows[k];
                let s = seqs.items(w.user);
                for t in 0..w.len {
                    let q = r * len + at + t;
                    ids[q] = s[w.start + t] as i64 + 1;
                    back[q] = (w.len - 1 - t) as u32;
                    positions.push(q as i64);
                    targets.push(s[w.start + t + 1] as i64);
                    for j in at..=at + t {
                        mask[q * len + j] = false;
                    }
                }
                at += w.len;
            }
        }
        SeqBatch {
            rows: n,
            len,
            ids,
            back,
            mask,
            positions,
            targets,
        }
    }

    /// The batch with its inputs as local rows of `rows`.
    fn localized(mut self, rows: &Rows) -> SeqBatch {
        if let Rows::Some(_) = rows {
            for id in &mut self.ids {
                *id = rows.local(*id as u32);
            }
        }
        self
    }
    /// One unpadded sequence of `n` items (its inputs are given as embeddings).
    pub(crate) fn single(n: usize) -> SeqBatch {
        let mut mask = vec![false; n * n];
        for i in 0..n {
            for j in i + 1..n {
                mask[i * n + j] = true;
            }
        }
        SeqBatch {
            rows: 1,
            len: n,
            ids: Vec::new(),
            back: (0..n as u32).rev().collect(),
            mask,
            positions: Vec::new(),
            targets: Vec::new(),
        }
    }
    /// A batch of single sequences (for checks), each right-aligned.
    #[cfg(test)]
    pub(crate) fn of(seqs: &[Vec<u32>], len: usize) -> SeqBatch {
        let mut all = Vec::new();
        let mut indptr = vec![0u32];
        for s in seqs {
            all.extend_from_slice(s);
            all.push(0);
            indptr.push(all.len() as u32);
        }
        let x = because_core::Interactions::from_tuples(
            seqs.len(),
            all.iter().copied().max().unwrap_or(0) as usize + 1,
            seqs.iter().enumerate().flat_map(|(u, s)| {
                s.iter()
                    .chain(std::iter::once(&0))
                    .enumerate()
                    .map(move |(t, &i)| (u as u32, i, 1.0, t as i64))
            }),
        )
        .unwrap_or_default();
        let sq = Sequences::new(&x);
        let windows: Vec<Window> = seqs
            .iter()
            .enumerate()
            .map(|(u, s)| Window {
                user: u as u32,
                start: 0,
                len: s.len(),
            })
            .collect();
        SeqBatch::new(&sq, &windows, len)
    }
    /// How many targets the batch has.
    pub(crate) fn targets(&self) -> usize {
        self.targets.len()
    }
}

/// Adam over SASRec's plain weights, one mini-batch at a time: the item
/// table row by row (only the rows a batch reads, unless the loss reads
/// them all), the rest dense; each batch cut into `shards` shards.
pub(crate) struct Trainer {
    adam: Adam,
    shards: usize,
    n_items: usize,
}

/// One mini-batch.
pub(crate) struct Batch<'a> {
    /// Its windows.
    pub windows: &'a [Window],
    /// Shared negatives (sampled softmax and gBCE).
    pub negatives: Option<&'a [u32]>,
    /// The stream dropout masks are drawn from.
    pub stream: u64,
}

impl Trainer {
    /// Adam with learning rate `lr` over `w`, on `shards` shards.
    pub(crate) fn new(w: &mut Weights, p: &SasRecParams, n_items: usize, shards: usize) -> Trainer {
        let sizes: Vec<usize> = w
            .named(p.dim, p.ffn, n_items, p.max_len)
            .iter()
            .map(|(_, v, _)| v.len())
            .collect();
        Trainer {
            adam: Adam::new(p.learning_rate, &sizes),
            shards: shards.max(1),
            n_items,
        }
    }

    /// One step on a batch: updates `w` and returns the batch's summed loss
    /// and how many targets it had.
    pub(crate) fn step(
        &mut self,
        w: &mut Weights,
        seqs: &Sequences,
        batch: Batch<'_>,
        p: &SasRecParams,
        sampler: &Sampler,
    ) -> Result<(f64, usize)> {
        let n_items = self.n_items;
        let rows = match (p.loss, batch.negatives) {
            (SeqLoss::Sampled | SeqLoss::Gbce, Some(neg)) => {
                let mut ids: Vec<u32> = vec![0];
                for win in batch.windows {
                    let s = seqs.items(win.user);
                    ids.extend(s[win.start..win.start + win.len + 1].iter().map(|&i| i + 1));
                }
                ids.extend(neg.iter().map(|&i| i + 1));
                Rows::of(ids)
            }
            _ => Rows::All(n_items + 1),
        };
        let all: usize = batch.windows.iter().map(|w| w.len).sum();
        if all == 0 {
            return Ok((0.0, 0));
        }
        let shards = self.shards;
        let weights = &*w;
        let parts = crate::optim::each_shard(shards, |s| {
            let part = &batch.windows[crate::optim::shard(batch.windows.len(), s, shards)];
            let data = SeqBatch::packed(seqs, part).localized(&rows);
            if data.targets() == 0 {
                return Ok((0.0, Vec::new()));
            }
            let net = SasNet::gathered(weights, p, &rows);
            let mut drop = Dropout::new(
                p.dropout,
                Rng::stream(p.seed ^ 0xd40f ^ ((s as u64) << 48), batch.stream),
            );
            let loss = net.loss(
                &data,
                p,
                batch.negatives.map(|n| (n, sampler)),
                &rows,
                n_items,
                &mut drop,
            ) * (data.targets() as f64 / all as f64);
            let value = to_vec(loss.clone())?.first().copied().unwrap_or(f32::NAN);
            Ok((value as f64 * all as f64, net.grads(&loss.backward())?))
        })?;
        let mut total = 0.0;
        let mut grads: Vec<Vec<f32>> = Vec::new();
        for (value, g) in parts {
            total += value;
            crate::optim::accumulate(&mut grads, g)?;
        }
        self.adam.tick();
        let d = p.dim;
        for (k, ((_, v, _), g)) in w
            .named(d, p.ffn, n_items, p.max_len)
            .into_iter()
            .zip(&grads)
            .enumerate()
        {
            match k {
                0 => rows.update(&mut self.adam, k, v, d, g),
                _ => self.adam.update(k, v, Grad::Dense(g)),
            }
        }
        Ok((total, all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::Interactions;

    /// Packing several windows into a row changes the work, not the loss:
    /// every target scores as it does with one window per row.
    #[test]
    fn packed_batches_give_the_loss_of_one_window_per_row() {
        let p = SasRecParams {
            dim: 8,
            heads: 2,
            ffn: 12,
            max_len: 6,
            layers: 2,
            loss: SeqLoss::Softmax,
            ..SasRecParams::default()
        };
        let n_items = 11;
        let mut rng = Rng::new(9);
        let lens = [2usize, 3, 9, 4, 2, 7, 5, 2, 3];
        let x = Interactions::from_tuples(
            lens.len(),
            n_items,
            lens.iter().enumerate().flat_map(|(u, &n)| {
                let items: Vec<u32> = (0..n).map(|_| rng.below(n_items as u64) as u32).collect();
                items
                    .into_iter()
                    .enumerate()
                    .map(move |(t, i)| (u as u32, i, 1.0, t as i64))
            }),
        )
        .unwrap();
        let seqs = Sequences::new(&x);
        let windows = crate::seq::windows(&seqs, p.max_len);
        let w = super::super::Weights::init(&p, n_items);
        let net = SasNet::new(&w, &p, n_items);
        let rows = Rows::All(n_items + 1);
        let loss = |b: &SeqBatch| {
            let l = net.loss(b, &p, None, &rows, n_items, &mut Dropout::off());
            to_vec(l).unwrap()[0]
        };
        let one_per_row = SeqBatch::new(&seqs, &windows, p.max_len);
        let packed = SeqBatch::packed(&seqs, &windows);
        assert!(packed.rows < one_per_row.rows, "{} rows", packed.rows);
        assert_eq!(packed.targets(), one_per_row.targets());
        let (a, b) = (loss(&one_per_row), loss(&packed));
        assert!((a - b).abs() < 1e-5, "one per row {a}, packed {b}");
    }
}
