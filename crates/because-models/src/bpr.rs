//! Bayesian personalized ranking (Rendle et al., "BPR: Bayesian Personalized
//! Ranking from Implicit Feedback", UAI 2009), trained by stochastic gradient
//! descent on sampled (user, positive, negative) triples, with an item bias.
//!
//! Training is parallel and deterministic, in the manner of stratified SGD
//! (Gemulla et al., "Large-scale matrix factorization with distributed
//! stochastic gradient descent", KDD 2011): users and items are dealt into
//! `S` strata at random; an epoch has `S` rounds, and in round `r` the blocks
//! (user stratum `b`, item stratum `(b + r) mod S`) are trained at once, since
//! no two of them share a user or an item. Each block visits each of its
//! positive interactions once per epoch, grouped by user (users in a random
//! order, starting at a random point each epoch), and draws each negative
//! from the same item stratum, rejecting items the user has. Every block has
//! its own random stream, so results do not depend on the number of threads.

use crate::common::{check_finite, dot, Train};
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::rng::Rng;
use because_core::{
    Capabilities, Epoch, EpochObserver, Error, Interactions, Query, Recommender, Result, Sequence,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The ranking loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Bayesian personalized ranking: `-ln σ(s_ui - s_uj)` for a random negative.
    Bpr,
    /// WARP (Weston, Bengio and Usunier, "WSABIE", IJCAI 2011): sample
    /// negatives until one violates the margin, then weight the hinge loss by
    /// the log of the rank this implies; it optimizes the top of the list.
    Warp,
}

/// BPR parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BprParams {
    /// Latent dimensions.
    pub factors: usize,
    /// SGD learning rate.
    pub learning_rate: f32,
    /// L2 regularization.
    pub regularization: f32,
    /// Passes over the data.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// The loss.
    pub loss: Loss,
    /// WARP: negatives tried per positive before giving up.
    pub max_sampled: usize,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 64,
            learning_rate: 0.05,
            regularization: 0.01,
            epochs: 100,
            seed: 42,
            loss: Loss::Bpr,
            max_sampled: 100,
        }
    }
}

/// A fitted BPR model. Item vectors have one more entry than user vectors:
/// the item bias (users see it through a constant 1).
#[derive(Clone, Debug)]
pub struct Bpr {
    pub(crate) params: BprParams,
    pub(crate) train: Train,
    pub(crate) user_factors: Vec<f32>,
    pub(crate) item_factors: Vec<f32>,
}

impl Validate for BprParams {
    fn validate(&self) -> Result<()> {
        crate::common::validate_sgd(
            self.factors,
            self.learning_rate,
            self.regularization,
            self.epochs,
        )?;
        if self.max_sampled == 0 {
            return Err(Error::param("max_sampled", "must be at least 1"));
        }
        Ok(())
    }
}

impl BprParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Bpr> {
        self.fit_observed(x, 0, &mut because_core::no_observer())
    }

    /// Fits on `x`, calling `observer` after every epoch, with a snapshot
    /// of the model every `every` epochs (never if 0).
    pub fn fit_observed(
        &self,
        x: &Interactions,
        every: usize,
        observer: &mut because_core::EpochObserver<'_>,
    ) -> Result<Bpr> {
        self.validate()?;
        let start = std::time::Instant::now();
        let train = Train::new(x);
        let (nu, ni) = (train.ui.n_rows(), train.ui.n_cols());
        if train.ui.nnz() == 0 || ni < 2 {
            return Err(Error::Empty(
                "BPR needs interactions and at least two items".into(),
            ));
        }
        let d = self.factors + 1;
        let f = self.factors;
        // Random strata: position of each user and item in stratum-major storage.
        let s = STRATA.min(nu).min(ni).max(1);
        let mut rng = Rng::new(self.seed);
        let (user_pos, user_bounds) = strata(nu, s, &mut rng);
        let (item_pos, item_bounds) = strata(ni, s, &mut rng);
        let mut item_at = vec![0u32; ni];
        for (i, &p) in item_pos.iter().enumerate() {
            item_at[p as usize] = i as u32;
        }
        // User vectors end with a constant 1 that multiplies the item bias.
        let init = |n: usize, stream: u64, bias: f32| -> Vec<f32> {
            let mut rng = Rng::stream(self.seed, stream);
            (0..n * d)
                .map(|k| {
                    if k % d == f {
                        bias
                    } else {
                        ((rng.next_f64() - 0.5) / f as f64) as f32
                    }
                })
                .collect()
        };
        let mut users = init(nu, 1, 1.0);
        let mut items = init(ni, 2, 0.0);
        // Positives of each block, as (user position, item position).
        let stratum_of =
            |pos: u32, bounds: &[usize]| bounds.partition_point(|&b| b <= pos as usize) - 1;
        let mut blocks: Vec<Vec<(u32, u32)>> = vec![Vec::new(); s * s];
        for u in 0..nu {
            let up = user_pos[u];
            let bu = stratum_of(up, &user_bounds);
            for &i in train.ui.row_indices(u) {
                let ip = item_pos[i as usize];
                blocks[bu * s + stratum_of(ip, &item_bounds)].push((up, ip));
            }
        }
        let liked_of: Vec<u32> = {
            let mut at = vec![0u32; nu];
            for (u, &p) in user_pos.iter().enumerate() {
                at[p as usize] = u as u32;
            }
            at
        };
        let arch = pulp::Arch::new();
        for epoch in 0..self.epochs {
            for round in 0..s {
                let user_chunks = split_by(&mut users, &user_bounds, d);
                let mut item_chunks = split_by(&mut items, &item_bounds, d);
                item_chunks.rotate_left(round);
                user_chunks
                    .into_par_iter()
                    .zip(item_chunks)
                    .enumerate()
                    .for_each(|(b, (uc, ic))| {
                        let c = (b + round) % s;
                        let task = Block {
                            params: self,
                            users: uc,
                            items: ic,
                            user_base: user_bounds[b],
                            item_base: item_bounds[c],
                            positives: &blocks[b * s + c],
                            liked: &train,
                            liked_of: &liked_of,
                            item_at: &item_at,
                            n_catalogue: ni,
                            rng: Rng::stream(self.seed, ((epoch * s + round) * s + b) as u64 + 3),
                        };
                        arch.dispatch(task);
                    });
            }
            check_finite(
                <Bpr as ModelKind>::NAME,
                &format!("factors after epoch {}", epoch + 1),
                &items,
            )?;
            let report = Epoch {
                epoch: epoch + 1,
                of: self.epochs,
                loss: None,
                elapsed: start.elapsed(),
                model: None,
            };
            if every > 0 && (epoch + 1) % every == 0 {
                let snapshot = Bpr {
                    params: BprParams {
                        epochs: epoch + 1,
                        ..self.clone()
                    },
                    train: train.clone(),
                    user_factors: unshuffle(&users, &user_pos, d),
                    item_factors: unshuffle(&items, &item_pos, d),
                };
                if observer(&Epoch {
                    model: Some(&snapshot),
                    ..report
                })
                .is_break()
                {
                    return Ok(snapshot);
                }
            } else if observer(&report).is_break() {
                return Ok(Bpr {
                    params: BprParams {
                        epochs: epoch + 1,
                        ..self.clone()
                    },
                    user_factors: unshuffle(&users, &user_pos, d),
                    item_factors: unshuffle(&items, &item_pos, d),
                    train,
                });
            }
        }
        check_finite(<Bpr as ModelKind>::NAME, "user factors", &users)?;
        let user_factors = unshuffle(&users, &user_pos, d);
        let item_factors = unshuffle(&items, &item_pos, d);
        Ok(Bpr {
            params: self.clone(),
            train,
            user_factors,
            item_factors,
        })
    }
}

/// Stratum-major storage back to index order.
fn unshuffle(v: &[f32], pos: &[u32], d: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; v.len()];
    for (k, &p) in pos.iter().enumerate() {
        out[k * d..(k + 1) * d].copy_from_slice(&v[p as usize * d..(p as usize + 1) * d]);
    }
    out
}

/// Strata (fixed, so results do not depend on the thread count).
const STRATA: usize = 8;

/// A random position for each of `n` entities, and the start of each of `s`
/// equal strata (plus the end).
fn strata(n: usize, s: usize, rng: &mut Rng) -> (Vec<u32>, Vec<usize>) {
    let mut order: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut order);
    let mut pos = vec![0u32; n];
    for (p, &e) in order.iter().enumerate() {
        pos[e as usize] = p as u32;
    }
    let bounds = (0..=s).map(|k| k * n / s).collect();
    (pos, bounds)
}

/// Splits stratum-major storage into one mutable slice per stratum.
fn split_by<'a>(mut v: &'a mut [f32], bounds: &[usize], d: usize) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(bounds.len() - 1);
    for w in bounds.windows(2) {
        let (head, tail) = v.split_at_mut((w[1] - w[0]) * d);
        out.push(head);
        v = tail;
    }
    out
}

/// One block of one round: SGD over its positives.
struct Block<'a> {
    params: &'a BprParams,
    users: &'a mut [f32],
    items: &'a mut [f32],
    user_base: usize,
    item_base: usize,
    positives: &'a [(u32, u32)],
    liked: &'a Train,
    liked_of: &'a [u32],
    item_at: &'a [u32],
    n_catalogue: usize,
    rng: Rng,
}

impl pulp::WithSimd for Block<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(mut self, _simd: S) {
        let d = self.params.factors + 1;
        let f = self.params.factors;
        let (lr, reg) = (self.params.learning_rate, self.params.regularization);
        let n_items = self.items.len() / d;
        let n = self.positives.len();
        if n == 0 || n_items < 2 {
            return;
        }
        // Each positive once, in this block's user-grouped order from a random
        // starting point: the user's vector stays in cache across their items.
        let start = self.rng.below(n as u64) as usize;
        for k in 0..n {
            let (up, ip) = self.positives[(start + k) % n];
            let liked = self.liked.items(self.liked_of[up as usize]);
            let ul = up as usize - self.user_base;
            let il = ip as usize - self.item_base;
            // A negative from the same item stratum that the user does not have
            // (for WARP: the first one that violates the margin).
            let warp = self.params.loss == Loss::Warp;
            let tries = if warp { self.params.max_sampled } else { 32 };
            let s_i = if warp {
                dot(
                    &self.users[ul * d..(ul + 1) * d],
                    &self.items[il * d..(il + 1) * d],
                )
            } else {
                0.0
            };
            let mut jl = usize::MAX;
            let mut trials = 0usize;
            for _ in 0..tries {
                let cand = self.rng.below(n_items as u64) as usize;
                if cand == il
                    || liked
                        .binary_search(&self.item_at[self.item_base + cand])
                        .is_ok()
                {
                    continue;
                }
                trials += 1;
                if !warp
                    || dot(
                        &self.users[ul * d..(ul + 1) * d],
                        &self.items[cand * d..(cand + 1) * d],
                    ) > s_i - 1.0
                {
                    jl = cand;
                    break;
                }
            }
            if jl == usize::MAX {
                continue;
            }
            let u = &mut self.users[ul * d..(ul + 1) * d];
            let (yi, yj) = if il < jl {
                let (a, b) = self.items.split_at_mut(jl * d);
                (&mut a[il * d..(il + 1) * d], &mut b[..d])
            } else {
                let (a, b) = self.items.split_at_mut(il * d);
                (&mut b[..d], &mut a[jl * d..(jl + 1) * d])
            };
            let mut x = 0.0f32;
            for ((&a, &b), &c) in u.iter().zip(yi.iter()).zip(yj.iter()) {
                x += a * (b - c);
            }
            let z = if warp {
                // Rank estimate from the number of trials to find a violator,
                // as a weight in (0, 1]: ln(rank) / ln(catalogue size).
                let rank = ((self.n_catalogue - 1) / trials.max(1)).max(1) as f32;
                (1.0 + rank.ln()) / (1.0 + (self.n_catalogue as f32).ln())
            } else {
                1.0 / (1.0 + x.exp())
            };
            let (uf, ub) = u.split_at_mut(f);
            let (af, ab) = yi.split_at_mut(f);
            let (bf, bb) = yj.split_at_mut(f);
            for ((uu, a), b) in uf.iter_mut().zip(af.iter_mut()).zip(bf.iter_mut()) {
                let (u0, a0, b0) = (*uu, *a, *b);
                *uu += lr * (z * (a0 - b0) - reg * u0);
                *a += lr * (z * u0 - reg * a0);
                *b += lr * (-z * u0 - reg * b0);
            }
            // The bias entries: the user's side is the constant 1.
            let one = ub[0];
            ab[0] += lr * (z * one - reg * ab[0]);
            bb[0] += lr * (-z * one - reg * bb[0]);
        }
    }
}

impl Bpr {
    fn dim(&self) -> usize {
        self.params.factors + 1
    }
    /// User vector (factors, then the constant 1).
    pub fn user_vector(&self, user: u32) -> &[f32] {
        let d = self.dim();
        &self.user_factors[user as usize * d..(user as usize + 1) * d]
    }
    /// Item vector (factors, then the bias).
    pub fn item_vector(&self, item: u32) -> &[f32] {
        let d = self.dim();
        &self.item_factors[item as usize * d..(item as usize + 1) * d]
    }
    /// A user vector for an ad-hoc history: the mean of its items' factors
    /// weighted by value (BPR has no closed-form fold-in).
    pub fn fold_in(&self, items: &[u32], values: &[f32]) -> Vec<f32> {
        let d = self.dim();
        let mut u = vec![0.0f32; d];
        let total: f32 = values.iter().map(|v| v.abs()).sum::<f32>().max(1e-12);
        for (&i, &v) in items.iter().zip(values) {
            for (a, &b) in u.iter_mut().zip(self.item_vector(i)) {
                *a += v / total * b;
            }
        }
        u[d - 1] = 1.0;
        u
    }
}

impl because_core::InnerProduct for Bpr {
    /// The factors and the bias column together, against the user's
    /// factors and a constant 1.
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors::dense(&self.item_factors, self.dim())
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        let vector = match *query {
            Query::User(u) => self.user_vector(u).to_vec(),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                self.fold_in(items, values)
            }
        };
        Ok(because_core::QueryVector {
            vector,
            offset: 0.0,
        })
    }
    /// Similar items compare the factors without the bias column.
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(because_core::ItemVectors {
            data: &self.item_factors,
            dim: self.params.factors,
            stride: self.dim(),
            bias: None,
        })
    }
}

impl ModelKind for Bpr {
    const NAME: &'static str = "bpr";
    const ABOUT: &'static str = "matrix factorization by BPR or WARP ranking loss (SGD)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        fold_in: true,
        inner_product: true,
        ..Capabilities::NONE
    };
    const EPOCHS: Option<&'static str> = Some("epochs");
    const EXAMPLE: &'static str = "factors=8,epochs=20";
    const DEMO: Option<&'static str> = Some("factors=32,epochs=30");
    crate::common::kind_accessors!(BprParams);
    fn fit(
        p: &BprParams,
        x: &Interactions,
        every: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        p.fit_observed(x, every, observer)
    }
    fn save(&self, out: &mut TensorsOut) {
        let (nu, ni, k) = (
            self.train.ui.n_rows(),
            self.train.ui.n_cols(),
            self.params.factors,
        );
        out.f32("user_factors", &self.user_factors, &[nu, k + 1]);
        out.f32("item_factors", &self.item_factors, &[ni, k + 1]);
    }
    fn load(params: BprParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (nu, ni, k) = (train.ui.n_rows(), train.ui.n_cols(), params.factors);
        Ok(Bpr {
            user_factors: t.f32("user_factors", &[nu, k + 1])?,
            item_factors: t.f32("item_factors", &[ni, k + 1])?,
            params,
            train,
        })
    }
}

impl Recommender for Bpr {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let folded;
        let u: &[f32] = match *query {
            Query::User(u) => self.user_vector(u),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                folded = self.fold_in(items, values);
                &folded
            }
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(u, self.item_vector(i as u32));
        }
        Ok(())
    }
    fn score_users_into(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let d = self.dim();
        crate::common::gemm_nt(
            &crate::common::gather_rows(&self.user_factors, d, users),
            &self.item_factors,
            d,
            out,
        );
        Ok(())
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        Some(self)
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        // Cosine over the factors, leaving out the bias column.
        let (d, f) = (self.dim(), self.params.factors);
        let factors: Vec<f32> = self
            .item_factors
            .chunks_exact(d)
            .flat_map(|r| r[..f].iter().copied())
            .collect();
        crate::common::cosine_to_all(&factors, f, item, out);
        Ok(())
    }
}
