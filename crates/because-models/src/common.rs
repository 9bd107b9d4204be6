//! Pieces shared by the models: the training matrix and item-item products.

use because_core::{CsrMatrix, Interactions};
use rayon::prelude::*;

/// The training user-item matrix with its transpose.
#[derive(Clone, Debug)]
pub struct Train {
    /// Users × items.
    pub ui: CsrMatrix,
    /// Items × users.
    pub iu: CsrMatrix,
}

impl Train {
    /// From an interaction log (duplicates summed).
    pub fn new(x: &Interactions) -> Train {
        Train::from_matrix(CsrMatrix::from_interactions(x))
    }
    /// From a user-item matrix.
    pub fn from_matrix(ui: CsrMatrix) -> Train {
        let iu = ui.transpose();
        Train { ui, iu }
    }
    /// Items of user `u`.
    pub fn items(&self, u: u32) -> &[u32] {
        self.ui.row_indices(u as usize)
    }
    /// Values of user `u`.
    pub fn values(&self, u: u32) -> &[f32] {
        self.ui.row_data(u as usize)
    }
}

/// Row `i` of `Xᵀ W X` where `W` reweights `X` column-free: for every item
/// `j`, the sum over users of `x[u,i] · x[u,j]`, written into `acc`
/// (`n_items` long, zeroed by the caller). Returns the touched columns.
pub fn gram_row(t: &Train, i: usize, acc: &mut [f64], touched: &mut Vec<u32>) {
    touched.clear();
    let users = t.iu.row_indices(i);
    let vals = t.iu.row_data(i);
    for (&u, &a) in users.iter().zip(vals) {
        let items = t.ui.row_indices(u as usize);
        let bvals = t.ui.row_data(u as usize);
        for (&j, &b) in items.iter().zip(bvals) {
            if acc[j as usize] == 0.0 {
                touched.push(j);
            }
            acc[j as usize] += a as f64 * b as f64;
        }
    }
}

/// The dense Gram matrix `XᵀX` (items × items, row-major), in parallel.
pub fn dense_gram(t: &Train) -> Vec<f64> {
    let n = t.ui.n_cols();
    let mut g = vec![0.0f64; n * n];
    g.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each_init(Vec::new, |touched, (i, row)| gram_row(t, i, row, touched));
    g
}

/// `a · b` for equal-length slices (eight independent accumulators, so the
/// compiler vectorizes it without bounds checks).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut total = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in ra.iter().zip(rb) {
        total += x * y;
    }
    total
}

/// Checks that every value is finite.
pub fn check_finite(model: &'static str, what: &str, xs: &[f32]) -> because_core::Result<()> {
    match xs.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(k) => Err(because_core::Error::NonFinite {
            model,
            detail: format!("{what}[{k}] = {}", xs[k]),
        }),
    }
}

/// `out = left · rightᵀ` for row-major `left` (`b × f`), `right` (`n × f`)
/// and `out` (`b × n`), by faer's gemm on this thread (callers parallelize
/// over batches).
pub fn gemm_nt(left: &[f32], right: &[f32], f: usize, out: &mut [f32]) {
    let b = left.len() / f.max(1);
    let n = right.len() / f.max(1);
    let lhs = faer::MatRef::from_row_major_slice(left, b, f);
    let rhs = faer::MatRef::from_row_major_slice(right, n, f);
    let dst = faer::MatMut::from_row_major_slice_mut(out, b, n);
    faer::linalg::matmul::matmul(
        dst,
        faer::Accum::Replace,
        lhs,
        rhs.transpose(),
        1.0f32,
        faer::Par::Seq,
    );
}

/// Rows `rows` of a row-major matrix with `f` columns, gathered.
pub fn gather_rows(m: &[f32], f: usize, rows: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * f);
    for &r in rows {
        out.extend_from_slice(&m[r as usize * f..(r as usize + 1) * f]);
    }
    out
}

/// The Cholesky factor of a symmetric positive definite `A` (`f × f`,
/// row-major), in place: `U` with `A = UᵀU`, upper triangular and
/// row-major (that is, the lower factor `L = Uᵀ` column-major); only `A`'s
/// upper triangle is read, and `U`'s lower triangle is zero.
///
/// Right-looking in panels of four rows: the panel is factored, then every
/// later row takes the panel's rank-4 update in one contiguous pass, so
/// the work is long vectorized row updates rather than many short ones. A
/// pivot that rounding or a degenerate history makes non-positive is
/// clamped to a tiny positive value instead of failing.
pub fn cholesky(a: Vec<f64>, f: usize) -> Vec<f64> {
    struct Run(Vec<f64>, usize);
    impl pulp::WithSimd for Run {
        type Output = Vec<f64>;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f64> {
            cholesky_in(self.0, self.1)
        }
    }
    // Compiled for the widest SIMD the processor has, chosen at run time.
    pulp::Arch::new().dispatch(Run(a, f))
}

#[inline(always)]
fn cholesky_in(mut a: Vec<f64>, f: usize) -> Vec<f64> {
    const P: usize = 4;
    let mut k = 0;
    while k < f {
        let kb = (f - k).min(P);
        let (top, below) = a.split_at_mut((k + kb) * f);
        let panel = &mut top[k * f..];
        // Factor the panel's rows, each taking the updates of the panel's
        // earlier pivots first.
        for t in 0..kb {
            let r = k + t;
            let (done, rest) = panel.split_at_mut(t * f);
            let row_r = &mut rest[..f];
            for p in 0..t {
                let row_p = &done[p * f..(p + 1) * f];
                let w = row_p[r];
                row_r[r..]
                    .iter_mut()
                    .zip(&row_p[r..])
                    .for_each(|(v, &u)| *v -= w * u);
            }
            let d = row_r[r].max(1e-12).sqrt();
            row_r[r] = d;
            row_r[..r].iter_mut().for_each(|v| *v = 0.0);
            let inv = 1.0 / d;
            row_r[r + 1..].iter_mut().for_each(|v| *v *= inv);
        }
        // A[i, i..] −= Σ_t U[k+t, i] · U[k+t, i..] for every later row i.
        let panel = &top[k * f..];
        for (q, row_i) in below.chunks_exact_mut(f).enumerate() {
            let i = k + kb + q;
            if kb == P {
                let row = &mut row_i[i..];
                let n = row.len();
                // Slices of the row's length, so the loop has no bounds checks.
                let (u0, u1, u2, u3) = (
                    &panel[i..i + n],
                    &panel[f + i..f + i + n],
                    &panel[2 * f + i..2 * f + i + n],
                    &panel[3 * f + i..3 * f + i + n],
                );
                let (w0, w1, w2, w3) = (u0[0], u1[0], u2[0], u3[0]);
                for j in 0..n {
                    row[j] -= (w0 * u0[j] + w1 * u1[j]) + (w2 * u2[j] + w3 * u3[j]);
                }
            } else {
                for t in 0..kb {
                    let u = &panel[t * f + i..(t + 1) * f];
                    let w = u[0];
                    row_i[i..]
                        .iter_mut()
                        .zip(u)
                        .for_each(|(v, &ukj)| *v -= w * ukj);
                }
            }
        }
        k += kb;
    }
    a
}

/// `a · b` in f64 with four independent accumulators, so that it
/// vectorizes (a single running sum cannot be reordered).
#[inline(always)]
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut total = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        total += x * y;
    }
    total
}

/// Solves `UᵀU x = b` given the factor `U` of [`cholesky`], reading `U`
/// by rows in both substitutions.
pub fn cholesky_solve_with(u: &[f64], b: Vec<f64>, f: usize) -> Vec<f64> {
    struct Run<'a>(&'a [f64], Vec<f64>, usize);
    impl pulp::WithSimd for Run<'_> {
        type Output = Vec<f64>;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f64> {
            substitute(self.0, self.1, self.2)
        }
    }
    pulp::Arch::new().dispatch(Run(u, b, f))
}

#[inline(always)]
fn substitute(u: &[f64], mut b: Vec<f64>, f: usize) -> Vec<f64> {
    // Uᵀ z = b, forward: once z_i is known, take its share U[i, >i] · z_i
    // out of every later right-hand side.
    for i in 0..f {
        let row = &u[i * f + i..(i + 1) * f];
        let z = b[i] / row[0];
        b[i] = z;
        b[i + 1..]
            .iter_mut()
            .zip(&row[1..])
            .for_each(|(bk, &uik)| *bk -= uik * z);
    }
    // U x = z, backward: x_i = (z_i − U[i, >i] · x_>i) / U_ii.
    for i in (0..f).rev() {
        let row = &u[i * f + i..(i + 1) * f];
        b[i] = (b[i] - dot64(&row[1..], &b[i + 1..])) / row[0];
    }
    b
}

/// Solves `A x = b` for symmetric positive definite `A` (`f × f`, row-major).
pub fn solve_spd(a: Vec<f64>, b: Vec<f64>, f: usize) -> Vec<f64> {
    cholesky_solve_with(&cholesky(a, f), b, f)
}

/// Cosine similarity of every row of `factors` (`f` columns, row-major) to
/// row `item`, into `out` (the `similar_into` of factor models).
pub fn cosine_to_all(factors: &[f32], f: usize, item: u32, out: &mut [f32]) {
    let row = |i: usize| &factors[i * f..i * f + f];
    let q = row(item as usize);
    let qn = dot(q, q).sqrt().max(1e-12);
    for (i, o) in out.iter_mut().enumerate() {
        let y = row(i);
        *o = dot(q, y) / (qn * dot(y, y).sqrt().max(1e-12));
    }
}

/// Checks the parameters shared by the SGD-trained models.
pub fn validate_sgd(
    factors: usize,
    learning_rate: f32,
    regularization: f32,
    epochs: usize,
) -> because_core::Result<()> {
    use because_core::Error;
    if factors == 0 {
        return Err(Error::param("factors", "must be at least 1"));
    }
    if !(learning_rate > 0.0) {
        return Err(Error::param("learning_rate", "must be positive"));
    }
    if !(regularization >= 0.0) {
        return Err(Error::param("regularization", "must be non-negative"));
    }
    if epochs == 0 {
        return Err(Error::param("epochs", "must be at least 1"));
    }
    Ok(())
}

/// The [`Recommender`](because_core::Recommender) methods that read a
/// model's `train` field: `n_users`, `n_items` and `history`.
macro_rules! train_accessors {
    () => {
        fn n_users(&self) -> usize {
            self.train.ui.n_rows()
        }
        fn n_items(&self) -> usize {
            self.train.ui.n_cols()
        }
        fn history(&self, user: u32) -> (&[u32], &[f32]) {
            (self.train.items(user), self.train.values(user))
        }
    };
}
pub(crate) use train_accessors;

/// `params` and `train` of a [`crate::ModelKind`] whose fitted type keeps
/// both as fields named so.
macro_rules! kind_accessors {
    ($params:ty) => {
        type Params = $params;
        fn params(&self) -> $params {
            self.params.clone()
        }
        fn train(&self) -> &Train {
            &self.train
        }
    };
}
pub(crate) use kind_accessors;

#[cfg(test)]
mod cholesky_tests {
    use super::*;

    /// A symmetric positive definite `f × f` matrix: `BᵀB + I`.
    fn spd(f: usize, seed: u64) -> Vec<f64> {
        let mut rng = because_core::rng::Rng::new(seed);
        let b: Vec<f64> = (0..f * f).map(|_| rng.normal()).collect();
        let mut a = vec![0.0; f * f];
        for i in 0..f {
            for j in 0..f {
                a[i * f + j] = (0..f).map(|k| b[k * f + i] * b[k * f + j]).sum::<f64>();
            }
            a[i * f + i] += 1.0;
        }
        a
    }

    #[test]
    fn the_factor_rebuilds_the_matrix_and_solves_it() {
        // Sizes around the panels of four, and the ALS default.
        for f in [1, 2, 3, 4, 5, 7, 8, 9, 64] {
            let a = spd(f, f as u64);
            let u = cholesky(a.clone(), f);
            for i in 0..f {
                for j in 0..f {
                    if j < i {
                        assert_eq!(u[i * f + j], 0.0, "f {f}: U[{i},{j}]");
                    }
                    let utu: f64 = (0..f).map(|k| u[k * f + i] * u[k * f + j]).sum();
                    let tol = 1e-9 * a[i * f + i].abs().max(1.0);
                    assert!((utu - a[i * f + j]).abs() <= tol, "f {f}: A[{i},{j}]");
                }
            }
            let x_true: Vec<f64> = (0..f).map(|k| k as f64 - 1.5).collect();
            let b: Vec<f64> = (0..f)
                .map(|i| (0..f).map(|j| a[i * f + j] * x_true[j]).sum())
                .collect();
            let x = solve_spd(a, b, f);
            for k in 0..f {
                assert!((x[k] - x_true[k]).abs() < 1e-8, "f {f}: x[{k}]");
            }
        }
    }

    #[test]
    fn a_matrix_that_is_not_positive_definite_is_clamped_not_a_failure() {
        let u = cholesky(vec![1.0, 2.0, 2.0, 1.0], 2);
        assert!(u.iter().all(|v| v.is_finite()), "{u:?}");
        assert!(u[3] > 0.0);
    }
}
