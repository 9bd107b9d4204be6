//! Item-based k-nearest neighbours (Sarwar et al., "Item-based collaborative
//! filtering recommendation algorithms", WWW 2001; Deshpande and Karypis,
//! "Item-based top-N recommendation algorithms", TOIS 2004).
//!
//! Item similarity is the cosine of item columns, optionally after TF-IDF or
//! BM25 weighting of the user-item matrix, divided by `norm + shrinkage`;
//! each item keeps its `k` most similar neighbours. A user's score for item
//! `j` is `Σ_i value(i) · sim(i, j)` over their history `i`, so each history
//! item's contribution is exact.

use crate::common::{gram_row, Train};
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::{
    Capabilities, CsrMatrix, Decompose, Decomposition, EpochObserver, Error, Interactions, Query,
    Recommender, Result, Sequence,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How to weight the user-item matrix before computing similarities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Plain values (cosine similarity).
    #[serde(alias = "cosine")]
    None,
    /// Values times the item's inverse user frequency.
    TfIdf,
    /// Okapi BM25 (K1 = 1.2, B = 0.75), as in implicit.
    Bm25,
}

impl std::str::FromStr for Weighting {
    type Err = Error;
    fn from_str(s: &str) -> Result<Weighting> {
        match s {
            "none" | "cosine" => Ok(Weighting::None),
            "tfidf" => Ok(Weighting::TfIdf),
            "bm25" => Ok(Weighting::Bm25),
            other => Err(Error::param(
                "weighting",
                format!("unknown weighting {other:?} (none, tfidf, bm25)"),
            )),
        }
    }
}

/// Item-kNN parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemKnnParams {
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Added to the cosine's denominator; damps similarities from little overlap.
    pub shrinkage: f32,
    /// Weighting of the user-item matrix.
    pub weighting: Weighting,
}

impl Default for ItemKnnParams {
    fn default() -> Self {
        ItemKnnParams {
            neighbours: 100,
            shrinkage: 0.0,
            weighting: Weighting::None,
        }
    }
}

/// A fitted item-kNN model.
#[derive(Clone, Debug)]
pub struct ItemKnn {
    pub(crate) params: ItemKnnParams,
    pub(crate) train: Train,
    /// Row `i`: the neighbours of item `i` and their similarities.
    pub(crate) sim: CsrMatrix,
}

fn weighted(t: &Train, w: Weighting) -> Train {
    if w == Weighting::None {
        return t.clone();
    }
    let n_users = t.ui.n_rows() as f64;
    let idf: Vec<f64> = (0..t.iu.n_rows())
        .map(|i| {
            (n_users / (1.0 + t.iu.row_indices(i).len() as f64))
                .ln()
                .max(0.0)
                + 1e-9
        })
        .collect();
    let avg_len = t.ui.nnz() as f64 / n_users.max(1.0);
    let (k1, b) = (1.2, 0.75);
    let rows: Vec<(u32, u32, f32)> = (0..t.ui.n_rows())
        .flat_map(|u| {
            let len = t.ui.row_indices(u).len() as f64;
            let idf = &idf;
            t.ui.row_indices(u)
                .iter()
                .zip(t.ui.row_data(u))
                .map(move |(&i, &v)| {
                    let v = v as f64;
                    let w = match w {
                        Weighting::TfIdf => v.sqrt() * idf[i as usize],
                        _ => {
                            v * (k1 + 1.0) / (k1 * (1.0 - b + b * len / avg_len) + v)
                                * idf[i as usize]
                        }
                    };
                    (u as u32, i, w as f32)
                })
        })
        .collect();
    let x = Interactions::from_tuples(
        t.ui.n_rows(),
        t.ui.n_cols(),
        rows.into_iter().map(|(u, i, v)| (u, i, v, 0)),
    )
    .unwrap_or_default();
    Train::new(&x)
}

impl Validate for ItemKnnParams {
    fn validate(&self) -> Result<()> {
        if self.neighbours == 0 {
            return Err(Error::param("neighbours", "must be at least 1"));
        }
        if !(self.shrinkage >= 0.0) {
            return Err(Error::param("shrinkage", "must be non-negative"));
        }
        Ok(())
    }
}

impl ItemKnnParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<ItemKnn> {
        self.validate()?;
        let train = Train::new(x);
        let w = weighted(&train, self.weighting);
        let n = x.n_items();
        let norms: Vec<f64> = (0..n)
            .map(|i| {
                w.iu.row_data(i)
                    .iter()
                    .map(|&v| (v as f64) * (v as f64))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0.0f64; n], Vec::new()),
                |(acc, touched), i| {
                    gram_row(&w, i, acc, touched);
                    let mut nb: Vec<(u32, f32)> = Vec::with_capacity(touched.len());
                    for &j in touched.iter() {
                        let d = acc[j as usize];
                        acc[j as usize] = 0.0;
                        if j as usize == i || d == 0.0 {
                            continue;
                        }
                        let s = d / (norms[i] * norms[j as usize] + self.shrinkage as f64);
                        nb.push((j, s as f32));
                    }
                    let k = self.neighbours.min(nb.len());
                    if k < nb.len() {
                        nb.select_nth_unstable_by(k, |a, b| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        });
                        nb.truncate(k);
                    }
                    nb.sort_by_key(|p| p.0);
                    nb
                },
            )
            .collect();
        let tuples = rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.iter().map(move |&(j, s)| (i as u32, j, s, 0)));
        let sim = CsrMatrix::from_interactions(&Interactions::from_tuples(n, n, tuples)?);
        crate::common::check_finite(<ItemKnn as ModelKind>::NAME, "similarity", sim.data())?;
        Ok(ItemKnn {
            params: self.clone(),
            train,
            sim,
        })
    }
}

impl ItemKnn {
    /// The neighbours of `item` and their similarities.
    pub fn neighbours(&self, item: u32) -> (&[u32], &[f32]) {
        (
            self.sim.row_indices(item as usize),
            self.sim.row_data(item as usize),
        )
    }
    /// Exact decomposition of the score of `target`: history item `i`
    /// contributes `value(i) · sim(i, target)`.
    pub fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Vec<f32> {
        items
            .iter()
            .zip(values)
            .map(|(&i, &v)| v * self.sim.get(i as usize, target))
            .collect()
    }
}

impl Decompose for ItemKnn {
    fn decompose(&self, items: &[u32], values: &[f32], target: u32) -> Decomposition {
        let weights = ItemKnn::decompose(self, items, values, target);
        Decomposition {
            score: weights.iter().sum(),
            weights,
        }
    }
}

impl ModelKind for ItemKnn {
    const NAME: &'static str = "itemknn";
    const ABOUT: &'static str = "item-based k-nearest neighbours (cosine, TF-IDF or BM25)";
    const CAPABILITIES: Capabilities = Capabilities {
        similar_items: true,
        exact_decomposition: true,
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str = "neighbours=20,shrinkage=5";
    const DEMO: Option<&'static str> = Some("");
    crate::common::kind_accessors!(ItemKnnParams);
    fn fit(
        p: &ItemKnnParams,
        x: &Interactions,
        _: usize,
        _: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        p.fit(x)
    }
    fn save(&self, out: &mut TensorsOut) {
        out.csr("similarity", &self.sim);
    }
    fn load(params: ItemKnnParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let n = train.ui.n_cols();
        let sim = t.csr("similarity", n, n)?;
        Ok(ItemKnn { params, train, sim })
    }
}

impl Recommender for ItemKnn {
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
            let (nb, s) = self.neighbours(i);
            for (&j, &w) in nb.iter().zip(s) {
                out[j as usize] += v * w;
            }
        }
        Ok(())
    }
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|s| *s = 0.0);
        let (nb, s) = self.neighbours(item);
        for (&j, &w) in nb.iter().zip(s) {
            out[j as usize] = w;
        }
        Ok(())
    }
    fn decomposer(&self) -> Option<&dyn Decompose> {
        Some(self)
    }
}
