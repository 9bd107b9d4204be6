//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).
//!
//! A closed-form item-item model: `B = I - P · diag(1 / diag(P))` with
//! `P = (XᵀX + λI)⁻¹`, and a zero diagonal. A user's score for item `j` is
//! `Σ_i value(i) · B[i, j]` over their history, so each history item's
//! contribution is exact. Memory is `n_items²` floats.

use crate::common::{dense_gram, Train};
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::{
    Capabilities, Decompose, Decomposition, EpochObserver, Error, Interactions, Query, Recommender,
    Result, Sequence,
};
use serde::{Deserialize, Serialize};

/// EASE parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EaseParams {
    /// L2 regularization λ.
    pub lambda: f32,
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams { lambda: 500.0 }
    }
}

/// A fitted EASE model.
#[derive(Clone, Debug)]
pub struct Ease {
    pub(crate) params: EaseParams,
    pub(crate) train: Train,
    /// Item-item weights, row-major `n_items × n_items`.
    pub(crate) b: crate::Floats,
}

/// Items beyond which the dense `n_items²` matrix is refused.
pub const MAX_ITEMS: usize = 40_000;

impl Validate for EaseParams {
    fn validate(&self) -> Result<()> {
        if !(self.lambda > 0.0 && self.lambda.is_finite()) {
            return Err(Error::param("lambda", "must be positive"));
        }
        Ok(())
    }
}

impl EaseParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Ease> {
        self.validate()?;
        let n = x.n_items();
        if n > MAX_ITEMS {
            return Err(Error::param(
                "lambda",
                format!("EASE needs n_items² memory; {n} items is more than {MAX_ITEMS}"),
            ));
        }
        check_memory(
            &format!("EASE on {n} items"),
            memory_needed(n, x.len()),
            available_memory(),
        )?;
        let train = Train::new(x);
        let b = solve_in_place(dense_gram(&train), n, self.lambda as f64)?;
        crate::common::check_finite(<Ease as ModelKind>::NAME, "B", &b)?;
        Ok(Ease {
            params: self.clone(),
            train,
            b: b.into(),
        })
    }
}

/// Columns of `P = (XᵀX + λI)⁻¹` solved for at a time.
const BLOCK: usize = 256;

/// `B` of EASE from the Gram matrix `g` (`n × n`, symmetric, consumed), in
/// one f64 buffer plus the f32 result: `g + λI` is factored in place
/// (`L Lᵀ`), then `P`'s columns are solved for in blocks. For the block of
/// columns starting at `j0`, only rows `j0..` are needed (the rows above are
/// the transpose of blocks already done), and those need only the trailing
/// factor `L[j0.., j0..]`: a forward and a backward triangular solve on it.
/// So the work is that of an explicit inverse (about `n³` flops in all) and
/// the memory 12 bytes per cell instead of 28. `P`'s entries go into the
/// result as they come, and are divided by `P`'s diagonal at the end:
/// `B[i][j] = -P[i][j] / P[j][j]`, `B[j][j] = 0`.
fn solve_in_place(mut g: Vec<f64>, n: usize, lambda: f64) -> Result<Vec<f32>> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor;
    use faer::linalg::triangular_solve;
    use faer::prelude::{Reborrow, ReborrowMut};
    for i in 0..n {
        g[i * n + i] += lambda;
    }
    let par = faer::Par::rayon(0);
    let mut a = faer::MatMut::from_column_major_slice_mut(&mut g, n, n);
    let params = Default::default();
    let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<f64>(n, par, params));
    factor::cholesky_in_place(
        a.rb_mut(),
        Default::default(),
        par,
        MemStack::new(&mut mem),
        params,
    )
    .map_err(|e| Error::NonFinite {
        model: <Ease as ModelKind>::NAME,
        detail: format!("XᵀX + λI is not positive definite: {e:?}"),
    })?;
    let l = a.rb();
    let mut b = vec![0.0f32; n * n];
    let mut diag = vec![0.0f64; n];
    let mut j0 = 0;
    while j0 < n {
        let w = BLOCK.min(n - j0);
        let m = n - j0;
        let sub = l.submatrix(j0, j0, m, m);
        // The identity's columns j0..j0+w, rows j0..: P[j0.., J] = (L Lᵀ)⁻¹ there.
        let mut xb = faer::Mat::<f64>::zeros(m, w);
        for k in 0..w {
            xb[(k, k)] = 1.0;
        }
        triangular_solve::solve_lower_triangular_in_place(sub, xb.as_mut(), par);
        triangular_solve::solve_upper_triangular_in_place(sub.transpose(), xb.as_mut(), par);
        for k in 0..w {
            let j = j0 + k;
            let col = xb.col(k);
            diag[j] = col[k];
            for r in k..m {
                let i = j0 + r;
                let v = col[r] as f32;
                b[i * n + j] = v;
                b[j * n + i] = v;
            }
        }
        j0 += w;
    }
    drop(g);
    if let Some(j) = diag.iter().position(|d| !(d.is_finite() && *d > 0.0)) {
        return Err(Error::NonFinite {
            model: <Ease as ModelKind>::NAME,
            detail: format!("the inverse has a non-positive diagonal at item {j}"),
        });
    }
    use rayon::prelude::*;
    b.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if i == j {
                0.0
            } else {
                (-f64::from(*v) / diag[j]) as f32
            };
        }
    });
    Ok(b)
}

/// Bytes an EASE fit on `n_items` items and `nnz` interactions holds at its
/// peak: the f64 Gram matrix factored in place (8 bytes per cell), the f32
/// result (4), a block of columns, and the training data both ways.
pub fn memory_needed(n_items: usize, nnz: usize) -> u64 {
    let cells = (n_items as u64) * (n_items as u64);
    12 * cells + 8 * (n_items * BLOCK) as u64 + 2 * 8 * nnz as u64
}

/// Memory available now (`MemAvailable` of `/proc/meminfo`), where known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuses work that needs more than is available (unknown: allowed).
pub fn check_memory(what: &str, need: u64, available: Option<u64>) -> Result<()> {
    match available {
        Some(avail) if need > avail => Err(Error::OutOfMemory {
            what: what.to_string(),
            need_gb: need as f64 / 1e9,
            available_gb: avail as f64 / 1e9,
        }),
        _ => Ok(()),
    }
}

impl Ease {
    /// Row `i` of `B`: how much having item `i` adds to each item's score.
    pub fn weights(&self, i: u32) -> &[f32] {
        let n = self.train.ui.n_cols();
        &self.b[i as usize * n..(i as usize + 1) * n]
    }
    /// The whole `n_items × n_items` matrix `B`, row-major: a view of the
    /// model file when the model was loaded from one.
    pub fn matrix(&self) -> &crate::Floats {
        &self.b
    }
}

impl Ease {
    /// Exact decomposition of the score of `target`: history item `i`
    /// contributes `value(i) · B[i, target]`.
    pub fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Vec<f32> {
        items
            .iter()
            .zip(values)
            .map(|(&i, &v)| v * self.weights(i)[target as usize])
            .collect()
    }
}

impl Decompose for Ease {
    fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Decomposition {
        let weights = Ease::decompose(self, items, values, target);
        Decomposition {
            score: weights.iter().sum(),
            weights,
        }
    }
}

impl ModelKind for Ease {
    const NAME: &'static str = "ease";
    const ABOUT: &'static str = "closed-form item-item autoencoder (Steck 2019)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        exact_decomposition: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str = "lambda=10";
    const DEMO: Option<&'static str> = Some("lambda=200");
    crate::common::kind_accessors!(EaseParams);
    fn fit(p: &EaseParams, x: &Interactions, _: usize, _: &mut EpochObserver<'_>) -> Result<Self> {
        p.fit(x)
    }
    fn save(&self, out: &mut TensorsOut) {
        let n = self.train.ui.n_cols();
        out.f32("b", &self.b, &[n, n]);
    }
    fn load(params: EaseParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let n = train.ui.n_cols();
        let b = t.f32_shared("b", &[n, n])?;
        Ok(Ease { params, train, b })
    }
}

impl Recommender for Ease {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|s| *s = 0.0);
        let (items, values) = match *query {
            Query::User(u) => self.history(u),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                (items, values)
            }
        };
        for (&i, &v) in items.iter().zip(values) {
            for (o, &w) in out.iter_mut().zip(self.weights(i)) {
                *o += v * w;
            }
        }
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(self.weights(item));
        Ok(())
    }
    fn decomposer(&self) -> Option<&dyn Decompose> {
        Some(self)
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn a_fit_too_large_for_the_machine_is_refused_with_its_estimate() {
        // MovieLens-20M's shape: 12 bytes per cell of 26,744², where the
        // fit used to hold 28 (20.7 GB measured then).
        let need = memory_needed(26_744, 20_000_000);
        assert!((8.9e9..9.1e9).contains(&(need as f64)), "{need}");
        let e = check_memory("EASE on 26744 items", need, Some(8_000_000_000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "EASE on 26744 items needs about 9.0 GB of memory; 8.0 GB is available"
        );
        assert!(check_memory("x", need, Some(need)).is_ok());
        assert!(check_memory("x", need, None).is_ok());
    }
}
