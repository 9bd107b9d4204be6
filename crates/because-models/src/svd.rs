//! PureSVD (Cremonesi, Koren and Turrin, "Performance of recommender
//! algorithms on top-N recommendation tasks", RecSys 2010): a truncated SVD
//! `X ≈ U Σ Vᵀ` of the user-item matrix, computed by randomized SVD (Halko,
//! Martinsson and Tropp, SIAM Review 2011). A history `x` is scored by its
//! projection `x V Vᵀ`, so each history item contributes `value(i) · (V Vᵀ)[i, j]`.

use crate::common::{check_finite, dot, Train};
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::rng::Rng;
use because_core::{
    Capabilities, CsrMatrix, Decompose, Decomposition, EpochObserver, Error, Interactions,
    ItemEmbeddings, Query, Recommender, Result, Sequence,
};
use serde::{Deserialize, Serialize};

use faer::Mat;

/// PureSVD parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvdParams {
    /// Latent dimensions kept.
    pub factors: usize,
    /// Extra dimensions sampled for accuracy.
    pub oversampling: usize,
    /// Power iterations (more: more accurate for slowly decaying spectra).
    pub power_iterations: usize,
    /// Seed of the random projection.
    pub seed: u64,
}

impl Default for SvdParams {
    fn default() -> Self {
        SvdParams {
            factors: 32,
            oversampling: 10,
            power_iterations: 4,
            seed: 42,
        }
    }
}

/// A fitted PureSVD model.
#[derive(Clone, Debug)]
pub struct PureSvd {
    pub(crate) params: SvdParams,
    pub(crate) train: Train,
    /// Item factors `V` (`n_items × factors`, row-major).
    pub(crate) item_factors: Vec<f32>,
    /// Singular values.
    pub(crate) singular_values: Vec<f32>,
}

/// `A · B` for sparse `A` (rows × cols) and dense `B` (cols × l).
fn sparse_times(a: &CsrMatrix, b: &Mat<f64>) -> Mat<f64> {
    let l = b.ncols();
    let mut out = Mat::<f64>::zeros(a.n_rows(), l);
    for r in 0..a.n_rows() {
        for (&c, &v) in a.row_indices(r).iter().zip(a.row_data(r)) {
            for k in 0..l {
                out[(r, k)] += v as f64 * b[(c as usize, k)];
            }
        }
    }
    out
}

fn orthonormal(y: &Mat<f64>) -> Mat<f64> {
    y.qr().compute_thin_Q()
}

impl Validate for SvdParams {
    fn validate(&self) -> Result<()> {
        if self.factors == 0 {
            return Err(Error::param("factors", "must be at least 1"));
        }
        Ok(())
    }
}

impl SvdParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<PureSvd> {
        self.validate()?;
        let train = Train::new(x);
        let (m, n) = (train.ui.n_rows(), train.ui.n_cols());
        let l = (self.factors + self.oversampling).min(m).min(n);
        let k = self.factors.min(l);
        let mut rng = Rng::new(self.seed);
        let omega = Mat::<f64>::from_fn(n, l, |_, _| rng.normal());
        let mut q = orthonormal(&sparse_times(&train.ui, &omega));
        for _ in 0..self.power_iterations {
            let z = orthonormal(&sparse_times(&train.iu, &q));
            q = orthonormal(&sparse_times(&train.ui, &z));
        }
        // Bᵀ = Xᵀ Q (n × l); its left singular vectors are B's right ones.
        let bt = sparse_times(&train.iu, &q);
        let svd = bt.thin_svd().map_err(|e| Error::NonFinite {
            model: <PureSvd as ModelKind>::NAME,
            detail: format!("SVD did not converge: {e:?}"),
        })?;
        let u = svd.U();
        let s = svd.S();
        let mut item_factors = vec![0.0f32; n * k];
        for i in 0..n {
            for c in 0..k {
                item_factors[i * k + c] = u[(i, c)] as f32;
            }
        }
        let singular_values: Vec<f32> = (0..k).map(|c| s[c] as f32).collect();
        check_finite(<PureSvd as ModelKind>::NAME, "item factors", &item_factors)?;
        Ok(PureSvd {
            params: SvdParams {
                factors: k,
                ..self.clone()
            },
            train,
            item_factors,
            singular_values,
        })
    }
}

impl PureSvd {
    /// Row `i` of `V`.
    pub fn item_factors(&self, item: u32) -> &[f32] {
        let k = self.params.factors;
        &self.item_factors[item as usize * k..(item as usize + 1) * k]
    }
    /// Singular values, largest first.
    pub fn singular_values(&self) -> &[f32] {
        &self.singular_values
    }
    /// Exact decomposition of the score of `target`: history item `i`
    /// contributes `value(i) · (V Vᵀ)[i, target]`.
    pub fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Vec<f32> {
        let t = self.item_factors(target);
        items
            .iter()
            .zip(values)
            .map(|(&i, &v)| v * dot(self.item_factors(i), t))
            .collect()
    }

    /// The projection `x V` of a history.
    pub fn project(&self, items: &[u32], values: &[f32]) -> Vec<f32> {
        let mut p = vec![0.0f32; self.params.factors];
        for (&i, &v) in items.iter().zip(values) {
            p.iter_mut()
                .zip(self.item_factors(i))
                .for_each(|(a, &b)| *a += v * b);
        }
        p
    }
}

impl Decompose for PureSvd {
    fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Decomposition {
        let weights = PureSvd::decompose(self, items, values, target);
        Decomposition {
            score: weights.iter().sum(),
            weights,
        }
    }
}

impl ItemEmbeddings for PureSvd {
    fn item_embeddings(&self) -> (&[f32], usize) {
        (&self.item_factors, self.params.factors)
    }
}

impl because_core::InnerProduct for PureSvd {
    fn item_vectors(&self) -> because_core::ItemVectors<'_> {
        because_core::ItemVectors::dense(&self.item_factors, self.params.factors)
    }
    fn query_vector(&self, query: &Query<'_>) -> Result<because_core::QueryVector> {
        let (items, values) = match *query {
            Query::User(u) => self.history(u),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                (items, values)
            }
        };
        Ok(because_core::QueryVector {
            vector: self.project(items, values),
            offset: 0.0,
        })
    }
    fn similarity_vectors(&self) -> Option<because_core::ItemVectors<'_>> {
        Some(self.item_vectors())
    }
}

impl ModelKind for PureSvd {
    const NAME: &'static str = "svd";
    const ABOUT: &'static str = "PureSVD by randomized truncated SVD";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        exact_decomposition: true,
        item_embeddings: true,
        inner_product: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str = "factors=8";
    const DEMO: Option<&'static str> = Some("factors=32");
    crate::common::kind_accessors!(SvdParams);
    fn fit(p: &SvdParams, x: &Interactions, _: usize, _: &mut EpochObserver<'_>) -> Result<Self> {
        p.fit(x)
    }
    fn save(&self, out: &mut TensorsOut) {
        let (n, k) = (self.train.ui.n_cols(), self.params.factors);
        out.f32("item_factors", &self.item_factors, &[n, k]);
        out.f32("singular_values", &self.singular_values, &[k]);
    }
    fn load(params: SvdParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let (n, k) = (train.ui.n_cols(), params.factors);
        Ok(PureSvd {
            item_factors: t.f32("item_factors", &[n, k])?,
            singular_values: t.f32("singular_values", &[k])?,
            params,
            train,
        })
    }
}

impl Recommender for PureSvd {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let (items, values) = match *query {
            Query::User(u) => self.history(u),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                (items, values)
            }
        };
        let p = self.project(items, values);
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&p, self.item_factors(i as u32));
        }
        Ok(())
    }
    fn score_users_into(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let k = self.params.factors;
        let mut proj = Vec::with_capacity(users.len() * k);
        for &u in users {
            let (items, values) = self.history(u);
            proj.extend(self.project(items, values));
        }
        crate::common::gemm_nt(&proj, &self.item_factors, k, out);
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
