//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).
//!
//! A closed-form item-item model: `B = I - P · diag(1 / diag(P))` with
//! `P = (XᵀX + λI)⁻¹`, and a zero diagonal. A user's score for item `j` is
//! `Σ_i value(i) · B[i, j]` over their history, so each history item's
//! contribution is exact. Memory is `n_items²` floats.

use crate::common::{dense_gram, Train};
use crate::persist::{PersistError, TensorsIn, TensorsOut};
use crate::registry::{ModelKind, Validate};
use because_core::{
    Capabilities, Decompose, Decomposition, EpochObserver, Error, Interactions, Query, Recommender,
    Result, Sequence,
};
use faer::linalg::solvers::DenseSolveCore;
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
    pub(crate) b: Vec<f32>,
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
        let mut g = dense_gram(&train);
        for i in 0..n {
            g[i * n + i] += self.lambda as f64;
        }
        let gm = faer::Mat::<f64>::from_fn(n, n, |i, j| g[i * n + j]);
        drop(g);
        let llt = gm.llt(faer::Side::Lower).map_err(|e| Error::NonFinite {
            model: "ease",
            detail: format!("XᵀX + λI is not positive definite: {e:?}"),
        })?;
        let p = llt.inverse();
        let mut b = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    b[i * n + j] = (-p[(i, j)] / p[(j, j)]) as f32;
                }
            }
        }
        crate::common::check_finite("ease", "B", &b)?;
        Ok(Ease {
            params: self.clone(),
            train,
            b,
        })
    }
}

/// Bytes an EASE fit on `n_items` items and `nnz` interactions holds at its
/// peak: the f64 Gram matrix, its Cholesky factor and inverse (8 bytes each
/// per cell), the f32 result (4), and the training data both ways. (On
/// MovieLens-20M shape, 26,744 items and 20M interactions, this predicts
/// 20.3 GB; 20.7 GB was
/// measured.)
pub fn memory_needed(n_items: usize, nnz: usize) -> u64 {
    let cells = (n_items as u64) * (n_items as u64);
    28 * cells + 2 * 8 * nnz as u64
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
        let b = t.f32("b", &[n, n])?;
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
        let need = memory_needed(26_744, 20_000_000);
        assert!((20.0e9..21.0e9).contains(&(need as f64)), "{need}");
        let e = check_memory("EASE on 26744 items", need, Some(8_000_000_000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "EASE on 26744 items needs about 20.3 GB of memory; 8.0 GB is available"
        );
        assert!(check_memory("x", need, Some(need)).is_ok());
        assert!(check_memory("x", need, None).is_ok());
    }
}
