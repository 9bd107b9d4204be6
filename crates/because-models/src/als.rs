//! Implicit-feedback alternating least squares (Hu, Koren and Volinsky,
//! "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008),
//! with the conjugate-gradient solver of Takács, Pilászy and Tikk
//! ("Applications of the conjugate gradient method for implicit feedback
//! collaborative filtering", RecSys 2011), as in implicit, or exact
//! Cholesky solves.
//!
//! Confidence is `1 + alpha · value`; every observed interaction has
//! preference 1. Each half-step solves all users (or items) independently and
//! in parallel, so results do not depend on the number of threads.

use crate::common::{check_finite, dot, Train};
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::rng::Rng;
use because_core::{
    Capabilities, Decompose, Decomposition, Epoch, EpochObserver, Error, Interactions,
    ItemEmbeddings, Query, Recommender, Result, Sequence,
};
use serde::{Deserialize, Serialize};

use rayon::prelude::*;

/// How each least-squares problem is solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Solver {
    /// A few conjugate-gradient steps warm-started from the previous factors.
    #[serde(rename = "cg")]
    ConjugateGradient,
    /// Exact solve by Cholesky factorization.
    #[serde(rename = "cholesky")]
    Cholesky,
}

/// How the L2 penalty of each least-squares problem scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// `regularization` for every user and item, as implicit does.
    Constant,
    /// `regularization` times the row's number of interactions, as Spark
    /// MLlib's ALS does (models imported from Spark use it, so that their
    /// scores decompose exactly).
    Count,
}

/// ALS parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlsParams {
    /// Latent dimensions.
    pub factors: usize,
    /// L2 regularization.
    pub regularization: f32,
    /// Confidence scale: confidence = 1 + alpha · value.
    pub alpha: f32,
    /// Alternating iterations.
    pub iterations: usize,
    /// Conjugate-gradient steps per solve.
    pub cg_steps: usize,
    /// The solver.
    pub solver: Solver,
    /// Seed of the initial factors.
    pub seed: u64,
    /// How the penalty scales with a user's (or item's) interactions.
    pub regularization_scaling: Scaling,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            regularization: 0.01,
            alpha: 1.0,
            iterations: 15,
            cg_steps: 3,
            solver: Solver::ConjugateGradient,
            seed: 42,
            regularization_scaling: Scaling::Constant,
        }
    }
}

/// A fitted ALS model.
#[derive(Clone, Debug)]
pub struct Als {
    pub(crate) params: AlsParams,
    pub(crate) train: Train,
    pub(crate) user_factors: crate::Floats,
    pub(crate) item_factors: crate::Floats,
    /// `YᵀY + reg·I`, computed on first use by fold-ins and explanations.
    pub(crate) yty: std::sync::OnceLock<Vec<f32>>,
}

/// `YᵀY + reg·I` (f × f, row-major), by faer's gemm.
fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    let n = y.len() / f.max(1);
    let ym = faer::MatRef::from_row_major_slice(y, n, f);
    let g = ym.transpose() * ym;
    let mut out = vec![0.0f32; f * f];
    for a in 0..f {
        for b in 0..f {
            out[a * f + b] = g[(a, b)];
        }
        out[a * f + a] += reg;
    }
    out
}

#[inline(always)]
fn matvec(m: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    for a in 0..f {
        out[a] = dot(&m[a * f..(a + 1) * f], x);
    }
}

/// One pass over a row's gathered factors `yu` (`n × f`): for every item
/// `k`, `s = y_k · v`, then `out += (a_k + b_k·s) · y_k`, with
/// `(a_k, b_k) = coef(k)`. Four items at a time, so that `v` stays in
/// registers, the four dot products run side by side, and `out` is loaded
/// and stored once per four items. Falls back to one item at a time when
/// `f` is not a multiple of the SIMD width.
#[inline(always)]
fn rank_pass<S: pulp::Simd>(
    simd: S,
    yu: &[f32],
    v: &[f32],
    out: &mut [f32],
    coef: impl Fn(usize) -> (f32, f32),
) {
    let f = v.len();
    let (vs, tail) = S::as_simd_f32s(v);
    if !tail.is_empty() || f == 0 {
        for (k, yk) in yu.chunks_exact(f.max(1)).enumerate() {
            let (a, b) = coef(k);
            let w = a + b * dot(yk, v);
            out.iter_mut().zip(yk).for_each(|(o, &y)| *o += w * y);
        }
        return;
    }
    let (outs, _) = S::as_mut_simd_f32s(out);
    let zero = simd.splat_f32s(0.0);
    let mut quads = yu.chunks_exact(4 * f);
    let mut k = 0;
    for quad in &mut quads {
        let (y0, _) = S::as_simd_f32s(&quad[..f]);
        let (y1, _) = S::as_simd_f32s(&quad[f..2 * f]);
        let (y2, _) = S::as_simd_f32s(&quad[2 * f..3 * f]);
        let (y3, _) = S::as_simd_f32s(&quad[3 * f..]);
        let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
        for j in 0..vs.len() {
            a0 = simd.mul_add_f32s(y0[j], vs[j], a0);
            a1 = simd.mul_add_f32s(y1[j], vs[j], a1);
            a2 = simd.mul_add_f32s(y2[j], vs[j], a2);
            a3 = simd.mul_add_f32s(y3[j], vs[j], a3);
        }
        let w = |i: usize, acc| {
            let (a, b) = coef(k + i);
            simd.splat_f32s(a + b * simd.reduce_sum_f32s(acc))
        };
        let (w0, w1, w2, w3) = (w(0, a0), w(1, a1), w(2, a2), w(3, a3));
        for j in 0..outs.len() {
            let mut o = outs[j];
            o = simd.mul_add_f32s(w0, y0[j], o);
            o = simd.mul_add_f32s(w1, y1[j], o);
            o = simd.mul_add_f32s(w2, y2[j], o);
            o = simd.mul_add_f32s(w3, y3[j], o);
            outs[j] = o;
        }
        k += 4;
    }
    for y in quads.remainder().chunks_exact(f) {
        let (ys, _) = S::as_simd_f32s(y);
        let mut acc = zero;
        for j in 0..vs.len() {
            acc = simd.mul_add_f32s(ys[j], vs[j], acc);
        }
        let (a, b) = coef(k);
        let w = simd.splat_f32s(a + b * simd.reduce_sum_f32s(acc));
        for j in 0..outs.len() {
            outs[j] = simd.mul_add_f32s(w, ys[j], outs[j]);
        }
        k += 1;
    }
}

#[inline(always)]
/// Conjugate-gradient refinement of `x` for
/// `(YtY + extra·I + Σ (c-1) y yᵀ) x = Σ c y`,
/// where the rows `y` of this user's items are gathered contiguously in `yu`.
#[allow(clippy::too_many_arguments)]
fn cg_solve<S: pulp::Simd>(
    simd: S,
    x: &mut [f32],
    yty: &[f32],
    yu: &[f32],
    conf: &[f32],
    steps: usize,
    extra: f32,
    buf: &mut [Vec<f32>; 3],
) {
    let [r, p, ap] = buf;
    matvec(yty, x, r);
    r.iter_mut()
        .zip(x.iter())
        .for_each(|(v, &xv)| *v = -(*v + extra * xv));
    // r += Σ (c − (c − 1)·(y·x)) y
    rank_pass(simd, yu, x, r, |k| (conf[k], 1.0 - conf[k]));
    p.copy_from_slice(r);
    let mut rsold = dot(r, r);
    if rsold < 1e-20 {
        return;
    }
    for _ in 0..steps {
        matvec(yty, p, ap);
        ap.iter_mut()
            .zip(p.iter())
            .for_each(|(a, &pv)| *a += extra * pv);
        // ap += Σ (c − 1)·(y·p) y
        rank_pass(simd, yu, p, ap, |k| (0.0, conf[k] - 1.0));
        let pap = dot(p, ap);
        if pap <= 0.0 {
            break;
        }
        let alpha = rsold / pap;
        x.iter_mut()
            .zip(p.iter())
            .for_each(|(xv, &pv)| *xv += alpha * pv);
        r.iter_mut()
            .zip(ap.iter())
            .for_each(|(rv, &av)| *rv -= alpha * av);
        let rsnew = dot(r, r);
        if rsnew < 1e-20 {
            break;
        }
        let beta = rsnew / rsold;
        p.iter_mut()
            .zip(r.iter())
            .for_each(|(pv, &rv)| *pv = rv + beta * *pv);
        rsold = rsnew;
    }
}

/// A row's item factors gathered (`n × f`), and each scaled by `c − 1`.
#[inline(always)]
fn gather(y: &[f32], items: &[u32], conf: &[f32], f: usize) -> (Vec<f32>, Vec<f32>) {
    let n = items.len();
    let (mut rows, mut weighted) = (vec![0.0f32; n * f], vec![0.0f32; n * f]);
    for (((r, w), &i), &c) in rows
        .chunks_mut(f)
        .zip(weighted.chunks_mut(f))
        .zip(items)
        .zip(conf)
    {
        let c1 = c - 1.0;
        for ((rp, wp), &v) in r
            .iter_mut()
            .zip(w.iter_mut())
            .zip(&y[i as usize * f..][..f])
        {
            *rp = v;
            *wp = c1 * v;
        }
    }
    (rows, weighted)
}

/// The system matrix `YᵀY + reg·I + extra·I + Σ (c_i − 1) y_i y_iᵀ` of one
/// row (`reg·I` is in `yty`; `extra` is a per-row penalty) from
/// its [`gather`]ed factors, in f64 for the factorization: one f32 gemm
/// (`(W·Y_u)ᵀ · Y_u`, the factors' own precision) on this thread.
/// Training's final solve and every fold-in build it here, so the factors
/// served and the decompositions explained come from the same numbers.
#[inline(always)]
fn system_from(yty: &[f32], rows: &[f32], weighted: &[f32], f: usize, extra: f32) -> Vec<f64> {
    let n = rows.len() / f.max(1);
    let mut out: Vec<f64> = yty.iter().map(|&v| v as f64).collect();
    for d in 0..f {
        out[d * f + d] += extra as f64;
    }
    if n == 0 {
        return out;
    }
    let mut outer = vec![0.0f32; f * f];
    let ym = faer::MatRef::from_row_major_slice(rows, n, f);
    let wm = faer::MatRef::from_row_major_slice(weighted, n, f);
    let em = faer::MatMut::from_row_major_slice_mut(&mut outer, f, f);
    faer::linalg::matmul::matmul(
        em,
        faer::Accum::Replace,
        wm.transpose(),
        ym,
        1.0f32,
        faer::Par::Seq,
    );
    out.iter_mut()
        .zip(&outer)
        .for_each(|(a, &b)| *a += b as f64);
    out
}

/// The system matrix of one row (see [`system_from`]).
fn system_matrix(
    yty: &[f32],
    y: &[f32],
    items: &[u32],
    conf: &[f32],
    f: usize,
    extra: f32,
) -> Vec<f64> {
    let (rows, weighted) = gather(y, items, conf, f);
    system_from(yty, &rows, &weighted, f, extra)
}

/// Exact solve of the same system by Cholesky (in f64), the factor rows
/// gathered once for the matrix and the right-hand side `Σ c_i y_i`.
#[inline(always)]
pub(crate) fn cholesky_solve(
    yty: &[f32],
    y: &[f32],
    items: &[u32],
    conf: &[f32],
    f: usize,
    extra: f32,
) -> Vec<f32> {
    let (rows, weighted) = gather(y, items, conf, f);
    let mut b = vec![0.0f64; f];
    for (r, &c) in rows.chunks_exact(f.max(1)).zip(conf) {
        for (bp, &yp) in b.iter_mut().zip(r) {
            *bp += c as f64 * yp as f64;
        }
    }
    crate::common::solve_spd(system_from(yty, &rows, &weighted, f, extra), b, f)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// Rows solved per task.
const BLOCK: usize = 64;

/// Solves a block of rows; a [`pulp::WithSimd`] so that everything it
/// inlines is compiled for the processor's SIMD width.
struct SolveBlock<'a> {
    params: &'a AlsParams,
    m: &'a because_core::CsrMatrix,
    y: &'a [f32],
    yty: &'a [f32],
    xs: &'a mut [f32],
    first: usize,
    buf: &'a mut [Vec<f32>; 3],
    conf: &'a mut Vec<f32>,
    gathered: &'a mut Vec<f32>,
}

impl pulp::WithSimd for SolveBlock<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let f = self.params.factors;
        for (k, xr) in self.xs.chunks_mut(f).enumerate() {
            let r = self.first + k;
            let items = self.m.row_indices(r);
            let extra = self.params.row_penalty(items.len());
            self.conf.clear();
            self.conf.extend(
                self.m
                    .row_data(r)
                    .iter()
                    .map(|&v| 1.0 + self.params.alpha * v),
            );
            match self.params.solver {
                Solver::ConjugateGradient => {
                    // One pass of scattered reads; the CG steps then stay in cache.
                    self.gathered.clear();
                    for &i in items {
                        self.gathered
                            .extend_from_slice(&self.y[i as usize * f..(i as usize + 1) * f]);
                    }
                    cg_solve(
                        simd,
                        xr,
                        self.yty,
                        self.gathered,
                        self.conf,
                        self.params.cg_steps,
                        extra,
                        self.buf,
                    )
                }
                Solver::Cholesky => xr.copy_from_slice(&cholesky_solve(
                    self.yty, self.y, items, self.conf, f, extra,
                )),
            }
        }
    }
}

impl Validate for AlsParams {
    fn validate(&self) -> Result<()> {
        if self.factors == 0 {
            return Err(Error::param("factors", "must be at least 1"));
        }
        if !(self.regularization >= 0.0) {
            return Err(Error::param("regularization", "must be non-negative"));
        }
        if !(self.alpha >= 0.0) {
            return Err(Error::param("alpha", "must be non-negative"));
        }
        if self.iterations == 0 {
            return Err(Error::param("iterations", "must be at least 1"));
        }
        Ok(())
    }
}

impl AlsParams {
    /// The penalty in `YᵀY + reg·I` shared by every row.
    fn shared_penalty(&self) -> f32 {
        match self.regularization_scaling {
            Scaling::Constant => self.regularization,
            Scaling::Count => 0.0,
        }
    }

    /// The penalty added for a row of `n` interactions.
    fn row_penalty(&self, n: usize) -> f32 {
        match self.regularization_scaling {
            Scaling::Constant => 0.0,
            Scaling::Count => self.regularization * n as f32,
        }
    }

    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Als> {
        self.fit_observed(x, &mut because_core::no_observer())
    }

    /// Fits on `x`, calling `observer` after every iteration.
    pub fn fit_observed(
        &self,
        x: &Interactions,
        observer: &mut because_core::EpochObserver<'_>,
    ) -> Result<Als> {
        self.validate()?;
        let start = std::time::Instant::now();
        let train = Train::new(x);
        let f = self.factors;
        // Rows in fixed chunks, each drawn from a stream of its own: in
        // parallel, and the same whatever the number of threads.
        let init = |n: usize, stream: u64| -> Vec<f32> {
            const ROWS: usize = 4096;
            let mut v = vec![0.0f32; n * f];
            v.par_chunks_mut(ROWS * f.max(1))
                .enumerate()
                .for_each(|(c, chunk)| {
                    let mut rng = Rng::stream(self.seed, (stream << 40) | c as u64);
                    chunk
                        .iter_mut()
                        .for_each(|x| *x = (rng.normal() * 0.01) as f32);
                });
            v
        };
        let users = init(train.ui.n_rows(), 0);
        let items = init(train.ui.n_cols(), 1);
        let mut m = Als {
            params: self.clone(),
            train,
            user_factors: users.into(),
            item_factors: items.into(),
            yty: Default::default(),
        };
        // Serve what is explained: every user's factors solved exactly
        // against the final item factors, as a history is folded in and
        // decomposed. (Conjugate-gradient steps leave them close but not
        // equal.) So each iteration solves the items first, then the users,
        // and the last iteration's user step is that exact solve.
        let exact = AlsParams {
            solver: Solver::Cholesky,
            ..self.clone()
        };
        for it in 0..self.iterations {
            let last = it + 1 == self.iterations;
            self.half_step(&m.train.iu, &m.user_factors, m.item_factors.to_mut());
            let users_by = if last { &exact } else { self };
            users_by.half_step(&m.train.ui, &m.item_factors, m.user_factors.to_mut());
            // The factors changed: drop any cached YᵀY an observer filled.
            m.yty = Default::default();
            let what = format!("factors after iteration {}", it + 1);
            check_finite(<Als as ModelKind>::NAME, &what, &m.user_factors)?;
            check_finite(<Als as ModelKind>::NAME, &what, &m.item_factors)?;
            let epoch = Epoch {
                epoch: it + 1,
                of: self.iterations,
                loss: None,
                elapsed: start.elapsed(),
                model: Some(&m),
            };
            if observer(&epoch).is_break() {
                m.params.iterations = it + 1;
                if !last {
                    exact.half_step(&m.train.ui, &m.item_factors, m.user_factors.to_mut());
                    m.yty = Default::default();
                    check_finite(
                        <Als as ModelKind>::NAME,
                        "user factors solved exactly",
                        &m.user_factors,
                    )?;
                }
                break;
            }
        }
        Ok(Als {
            params: m.params,
            train: m.train,
            user_factors: m.user_factors,
            item_factors: m.item_factors,
            yty: Default::default(),
        })
    }

    fn half_step(&self, m: &because_core::CsrMatrix, y: &[f32], x: &mut [f32]) {
        let f = self.factors;
        let yty = gram(y, f, self.shared_penalty());
        // Compiled for the widest SIMD the processor has, chosen at run time.
        let arch = pulp::Arch::new();
        x.par_chunks_mut(f * BLOCK).enumerate().for_each_init(
            || {
                (
                    [vec![0.0f32; f], vec![0.0f32; f], vec![0.0f32; f]],
                    Vec::new(),
                    Vec::new(),
                )
            },
            |(buf, conf, gathered), (block, xs)| {
                arch.dispatch(SolveBlock {
                    params: self,
                    m,
                    y,
                    yty: &yty,
                    xs,
                    first: block * BLOCK,
                    buf,
                    conf,
                    gathered,
                });
            },
        );
    }
}

impl Als {
    /// A model from factors trained elsewhere (such as Spark MLlib's ALS),
    /// with the parameters they were trained with: `x` is the training
    /// data, whose rows are the users' histories (for exclusion, fold-in
    /// and explanations); the factors are row-major, users (items) ×
    /// `params.factors`.
    pub fn from_factors(
        params: AlsParams,
        x: &Interactions,
        user_factors: Vec<f32>,
        item_factors: Vec<f32>,
    ) -> Result<Als> {
        params.validate()?;
        let train = Train::new(x);
        let f = params.factors;
        for (what, v, n) in [
            ("user factors", &user_factors, train.ui.n_rows()),
            ("item factors", &item_factors, train.ui.n_cols()),
        ] {
            if v.len() != n * f {
                return Err(Error::Shape(format!(
                    "{} {what} for {n} rows of {f} factors",
                    v.len()
                )));
            }
            check_finite(<Als as ModelKind>::NAME, what, v)?;
        }
        Ok(Als {
            params,
            train,
            user_factors: user_factors.into(),
            item_factors: item_factors.into(),
            yty: Default::default(),
        })
    }

    /// Latent factors of `user`.
    pub fn user_factors(&self, user: u32) -> &[f32] {
        let f = self.params.factors;
        &self.user_factors[user as usize * f..(user as usize + 1) * f]
    }
    /// Latent factors of `item`.
    pub fn item_factors(&self, item: u32) -> &[f32] {
        let f = self.params.factors;
        &self.item_factors[item as usize * f..(item as usize + 1) * f]
    }
    /// The parameters.
    pub fn params(&self) -> &AlsParams {
        &self.params
    }

    /// Exact decomposition of the score of `target` for a history, as in
    /// implicit's `explain`: with `A = YᵀY + reg·I + Σ (c_i − 1) y_i y_iᵀ`
    /// the user's factors are `x = A⁻¹ Σ c_i y_i`, so the score
    /// `y_target · x = Σ c_i (A⁻¹ y_target) · y_i` splits into one term per
    /// history item. Returns the score (of the exactly solved factors) and
    /// the terms, in history order.
    pub fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> (f32, Vec<f32>) {
        self.decompose_many(items, values, &[target])
            .pop()
            .unwrap_or_default()
    }

    /// [`Als::decompose`] for several targets, sharing one factorization
    /// of the user's system (as implicit reuses `user_weights`).
    pub fn decompose_many(
        &self,
        items: &[u32],
        values: &[f32],
        targets: &[u32],
    ) -> Vec<(f32, Vec<f32>)> {
        let f = self.params.factors;
        let conf: Vec<f32> = values
            .iter()
            .map(|&v| 1.0 + self.params.alpha * v)
            .collect();
        let l = crate::common::cholesky(self.system(items, &conf), f);
        targets
            .iter()
            .map(|&target| {
                let yt: Vec<f64> = self
                    .item_factors(target)
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let z = crate::common::cholesky_solve_with(&l, yt, f);
                let terms: Vec<f32> = items
                    .iter()
                    .zip(&conf)
                    .map(|(&i, &c)| {
                        (c as f64
                            * self
                                .item_factors(i)
                                .iter()
                                .zip(&z)
                                .map(|(&y, &w)| y as f64 * w)
                                .sum::<f64>()) as f32
                    })
                    .collect();
                (terms.iter().sum(), terms)
            })
            .collect()
    }

    /// `YᵀY + reg·I` (without `reg` when it scales per row), cached.
    fn yty(&self) -> &[f32] {
        self.yty.get_or_init(|| {
            gram(
                &self.item_factors,
                self.params.factors,
                self.params.shared_penalty(),
            )
        })
    }

    /// The user's system matrix `YᵀY + reg·I + Σ (c_i − 1) y_i y_iᵀ` in f64.
    fn system(&self, items: &[u32], conf: &[f32]) -> Vec<f64> {
        system_matrix(
            self.yty(),
            &self.item_factors,
            items,
            conf,
            self.params.factors,
            self.params.row_penalty(items.len()),
        )
    }

    /// Factors for an ad-hoc history (an exact least-squares fold-in).
    pub fn fold_in(&self, items: &[u32], values: &[f32]) -> Vec<f32> {
        let conf: Vec<f32> = values
            .iter()
            .map(|&v| 1.0 + self.params.alpha * v)
            .collect();
        cholesky_solve(
            self.yty(),
            &self.item_factors,
            items,
            &conf,
            self.params.factors,
            self.params.row_penalty(items.len()),
        )
    }
}

impl Decompose for Als {
    fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Decomposition {
        let (score, weights) = Als::decompose(self, items, values, target);
        Decomposition { score, weights }
    }
    fn decompose_many(&self, items: &[u32], values: &[f32], targets: &[u32]) -> Vec<Decomposition> {
        Als::decompose_many(self, items, values, targets)
            .into_iter()
            .map(|(score, weights)| Decomposition { score, weights })
            .collect()
    }
}

impl ItemEmbeddings for Als {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.item_factors, self.params.factors)
    }
}

impl because_core::InnerProduct for Als {
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors::dense(&self.item_factors, self.params.factors)
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        let vector = match *query {
            Query::User(u) => self.user_factors(u).to_vec(),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                self.fold_in(items, values)
            }
        };
        Ok(because_core::QueryVector {
            vector,
            offset: 0.0,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(self.item_vectors())
    }
}

impl ModelKind for Als {
    const NAME: &'static str = "als";
    const ABOUT: &'static str = "implicit alternating least squares (Hu, Koren and Volinsky 2008)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        exact_decomposition: true,
        item_embeddings: true,
        inner_product: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EPOCHS: Option<&'static str> = Some("iterations");
    const EXAMPLE: &'static str = "factors=8,iterations=5";
    const DEMO: Option<&'static str> = Some("factors=32,regularization=5");
    crate::common::kind_accessors!(AlsParams);
    fn fit(
        p: &AlsParams,
        x: &Interactions,
        _: usize,
        observer: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        p.fit_observed(x, observer)
    }
    fn save(&self, out: &mut TensorsOut) {
        let (nu, ni, k) = (
            self.train.ui.n_rows(),
            self.train.ui.n_cols(),
            self.params.factors,
        );
        out.f32("user_factors", &self.user_factors, &[nu, k]);
        out.f32("item_factors", &self.item_factors, &[ni, k]);
    }
    fn load(params: AlsParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (nu, ni, k) = (train.ui.n_rows(), train.ui.n_cols(), params.factors);
        Ok(Als {
            user_factors: t.f32_shared("user_factors", &[nu, k])?,
            item_factors: t.f32_shared("item_factors", &[ni, k])?,
            params,
            train,
            yty: Default::default(),
        })
    }
}

impl Recommender for Als {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let folded;
        let u: &[f32] = match *query {
            Query::User(u) => self.user_factors(u),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                folded = self.fold_in(items, values);
                &folded
            }
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(u, self.item_factors(i as u32));
        }
        Ok(())
    }
    fn score_users_into(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let f = self.params.factors;
        crate::common::gemm_nt(
            &crate::common::gather_rows(&self.user_factors, f, users),
            &self.item_factors,
            f,
            out,
        );
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        crate::common::cosine_to_all(&self.item_factors, self.params.factors, item, out);
        Ok(())
    }
    fn decomposer(&self) -> Option<&dyn Decompose> {
        Some(self)
    }
    fn inner_product(&self) -> Option<&dyn because_core::InnerProduct> {
        Some(self)
    }
    fn embeddings(&self) -> Option<&dyn ItemEmbeddings> {
        Some(self)
    }
}

#[cfg(test)]
mod kernel_tests {
    use super::*;
    use pulp::Simd as _;

    /// `out += Σ (a_k + b_k·(y_k·v)) y_k`, one item at a time in f64.
    fn plain(yu: &[f32], v: &[f32], out: &[f32], coef: &[(f32, f32)]) -> Vec<f64> {
        let f = v.len();
        let mut o: Vec<f64> = out.iter().map(|&x| x as f64).collect();
        for (k, y) in yu.chunks_exact(f).enumerate() {
            let s: f64 = y.iter().zip(v).map(|(&a, &b)| a as f64 * b as f64).sum();
            let w = coef[k].0 as f64 + coef[k].1 as f64 * s;
            o.iter_mut().zip(y).for_each(|(o, &y)| *o += w * y as f64);
        }
        o
    }

    struct Pass<'a> {
        yu: &'a [f32],
        v: &'a [f32],
        out: &'a mut [f32],
        coef: &'a [(f32, f32)],
    }
    impl pulp::WithSimd for Pass<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, simd: S) {
            let coef = self.coef;
            rank_pass(simd, self.yu, self.v, self.out, |k| coef[k]);
        }
    }

    #[test]
    fn the_four_item_pass_computes_what_one_item_at_a_time_does() {
        let mut rng = Rng::new(7);
        // Widths that fill SIMD registers and ones that leave a tail; item
        // counts that leave 0 to 3 items after the groups of four.
        for f in [1, 6, 8, 13, 16, 64] {
            for n in [0, 1, 3, 4, 5, 7, 9] {
                let yu: Vec<f32> = (0..n * f).map(|_| rng.normal() as f32).collect();
                let v: Vec<f32> = (0..f).map(|_| rng.normal() as f32).collect();
                let start: Vec<f32> = (0..f).map(|_| rng.normal() as f32).collect();
                let coef: Vec<(f32, f32)> = (0..n)
                    .map(|_| (rng.normal() as f32, rng.normal() as f32))
                    .collect();
                let want = plain(&yu, &v, &start, &coef);
                let check = |got: &[f32], how: &str| {
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{how}, f {f}, n {n}: {g} vs {w}"
                        );
                    }
                };
                let mut out = start.clone();
                pulp::Arch::new().dispatch(Pass {
                    yu: &yu,
                    v: &v,
                    out: &mut out,
                    coef: &coef,
                });
                check(&out, "native SIMD");
                let mut out = start.clone();
                pulp::Scalar::new().vectorize(Pass {
                    yu: &yu,
                    v: &v,
                    out: &mut out,
                    coef: &coef,
                });
                check(&out, "scalar");
            }
        }
    }
}
