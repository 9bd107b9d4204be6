//! Sampled softmax with the log-Q correction, for catalogues too large to
//! score every item at every training step.
//!
//! Each batch shares `k` negatives drawn from a proposal `Q` that mixes the
//! items' training frequency (raised to 0.75, as word2vec draws) with a
//! uniform share, so that every item can be drawn. The softmax then runs
//! over the target and the negatives, each logit lowered by `log(k·Q(i))`
//! (Bengio and Senécal 2008; Yi et al., "Sampling-bias-corrected neural
//! modeling", RecSys 2019): without it, popular items, drawn often, would be
//! pushed down too hard. A negative that is the position's own target is
//! masked out. The cost per step is `k + 1` items instead of the catalogue.

use because_core::rng::Rng;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};

/// The share of the proposal spread uniformly over the catalogue.
const UNIFORM: f64 = 0.1;

/// Draws negatives from `Q` and knows `log Q` of every item.
pub(crate) struct Sampler {
    /// Cumulative proposal weights, by item.
    cum: Vec<f64>,
    /// `log Q(i)` by item.
    log_q: Vec<f32>,
}

impl Sampler {
    /// The proposal for items seen `counts[i]` times in training.
    pub(crate) fn new(counts: &[u32]) -> Sampler {
        let n = counts.len().max(1) as f64;
        let w: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let total: f64 = w.iter().sum();
        let q: Vec<f64> = w
            .iter()
            .map(|&x| {
                let pop = if total > 0.0 { x / total } else { 1.0 / n };
                (1.0 - UNIFORM) * pop + UNIFORM / n
            })
            .collect();
        let cum = q
            .iter()
            .scan(0.0, |s, &x| {
                *s += x;
                Some(*s)
            })
            .collect();
        Sampler {
            cum,
            log_q: q.iter().map(|&x| x.ln() as f32).collect(),
        }
    }

    /// `k` items drawn from `Q` (with replacement).
    pub(crate) fn draw(&self, k: usize, rng: &mut Rng) -> Vec<u32> {
        let total = self.cum.last().copied().unwrap_or(0.0);
        (0..k)
            .map(|_| {
                let x = rng.next_f64() * total;
                self.cum
                    .partition_point(|&c| c <= x)
                    .min(self.cum.len() - 1) as u32
            })
            .collect()
    }

    /// The mean loss of scoring states `z` (`[p, d]`) against the rows of
    /// `table` (`[rows, d]`, plus `bias` by row when the output has one):
    /// each state's target row `targets[j]` against the shared negative
    /// rows. `item` maps a row to its item (for `log Q`).
    pub(crate) fn loss(
        &self,
        z: Tensor<2>,
        table: Tensor<2>,
        bias: Option<Tensor<1>>,
        targets: &[i64],
        negatives: &[i64],
        item: impl Fn(i64) -> usize,
    ) -> Tensor<1> {
        let dev = z.device();
        let (p, k) = (targets.len(), negatives.len());
        let kf = (k.max(1) as f32).ln();
        let rows = |ids: &[i64]| {
            Tensor::<1, Int>::from_data(TensorData::new(ids.to_vec(), [ids.len()]), &dev)
        };
        let pos = table.clone().select(0, rows(targets));
        let mut pos_logit = (z.clone() * pos).sum_dim(1);
        let neg = table.select(0, rows(negatives));
        let mut neg_logit = z.matmul(neg.transpose());
        if let Some(b) = bias {
            pos_logit = pos_logit + b.clone().select(0, rows(targets)).reshape([p, 1]);
            neg_logit = neg_logit + b.select(0, rows(negatives)).reshape([1, k]);
        }
        // log(k·Q(i)) for each target and negative; accidental hits masked.
        let pos_q: Vec<f32> = targets.iter().map(|&t| self.log_q[item(t)] + kf).collect();
        let neg_q: Vec<f32> = negatives
            .iter()
            .map(|&r| self.log_q[item(r)] + kf)
            .collect();
        let mut mask = vec![0f32; p * k];
        for (j, &t) in targets.iter().enumerate() {
            for (c, &r) in negatives.iter().enumerate() {
                if r == t {
                    mask[j * k + c] = -1e9;
                }
            }
        }
        let pos_logit = pos_logit - Tensor::<2>::from_data(TensorData::new(pos_q, [p, 1]), &dev);
        let neg_logit = neg_logit - Tensor::<2>::from_data(TensorData::new(neg_q, [1, k]), &dev)
            + Tensor::<2>::from_data(TensorData::new(mask, [p, k]), &dev);
        let logits = Tensor::cat(vec![pos_logit, neg_logit], 1);
        log_softmax(logits, 1).slice([0..p, 0..1]).mean().neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proposal_follows_popularity_and_reaches_every_item() {
        let s = Sampler::new(&[100, 10, 1, 0]);
        let mut rng = Rng::new(7);
        let draws = s.draw(20_000, &mut rng);
        let mut seen = [0usize; 4];
        for d in draws {
            seen[d as usize] += 1;
        }
        assert!(
            seen[0] > seen[1] && seen[1] > seen[2] && seen[3] > 0,
            "{seen:?}"
        );
        // The draws match Q.
        for (i, &n) in seen.iter().enumerate() {
            let q = (s.log_q[i] as f64).exp();
            assert!((n as f64 / 20_000.0 - q).abs() < 0.01, "{i}: {n} vs {q}");
        }
        let total: f64 = s.log_q.iter().map(|&l| (l as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
