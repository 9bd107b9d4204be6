//! User-based k-nearest neighbours (Herlocker et al., "An algorithmic
//! framework for performing collaborative filtering", SIGIR 1999): a user's
//! score for item `j` is `Σ_v sim(u, v) · x[v, j]` over the `k` users most
//! similar to them (cosine, divided by `norm + shrinkage`). Neighbours are
//! found at query time, so ad-hoc histories need no retraining.

use crate::common::Train;
use because_core::{Error, Interactions, Query, Recommender, Result};

/// User-kNN parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct UserKnnParams {
    /// Neighbours per user.
    pub neighbours: usize,
    /// Added to the cosine's denominator.
    pub shrinkage: f32,
}

impl Default for UserKnnParams {
    fn default() -> Self {
        UserKnnParams {
            neighbours: 50,
            shrinkage: 0.0,
        }
    }
}

/// A fitted user-kNN model.
#[derive(Clone, Debug)]
pub struct UserKnn {
    pub(crate) params: UserKnnParams,
    pub(crate) train: Train,
    pub(crate) norms: Vec<f32>,
}

impl UserKnnParams {
    /// Fits on `x` (stores the data and the users' norms).
    pub fn fit(&self, x: &Interactions) -> Result<UserKnn> {
        if self.neighbours == 0 {
            return Err(Error::param("neighbours", "must be at least 1"));
        }
        if !(self.shrinkage >= 0.0) {
            return Err(Error::param("shrinkage", "must be non-negative"));
        }
        let train = Train::new(x);
        let norms = (0..train.ui.n_rows())
            .map(|u| {
                train
                    .ui
                    .row_data(u)
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        Ok(UserKnn {
            params: self.clone(),
            train,
            norms,
        })
    }
}

impl UserKnn {
    /// The `k` users most similar to a history, with their similarities
    /// (`skip`: a user to leave out, the querying user themself).
    pub fn neighbours(&self, items: &[u32], values: &[f32], skip: Option<u32>) -> Vec<(u32, f32)> {
        let mut acc = vec![0.0f32; self.train.ui.n_rows()];
        let mut touched = Vec::new();
        for (&i, &a) in items.iter().zip(values) {
            for (&v, &b) in self
                .train
                .iu
                .row_indices(i as usize)
                .iter()
                .zip(self.train.iu.row_data(i as usize))
            {
                if acc[v as usize] == 0.0 {
                    touched.push(v);
                }
                acc[v as usize] += a * b;
            }
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        let mut sims: Vec<(u32, f32)> = touched
            .into_iter()
            .filter(|&v| Some(v) != skip && acc[v as usize] != 0.0)
            .map(|v| {
                (
                    v,
                    acc[v as usize]
                        / (norm * self.norms[v as usize] + self.params.shrinkage).max(1e-12),
                )
            })
            .collect();
        let k = self.params.neighbours.min(sims.len());
        if k < sims.len() {
            sims.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            sims.truncate(k);
        }
        sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        sims
    }
}

impl Recommender for UserKnn {
    fn kind(&self) -> &'static str {
        "userknn"
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|s| *s = 0.0);
        let (items, values, skip) = match *query {
            Query::User(u) => (self.train.items(u), self.train.values(u), Some(u)),
            Query::History { items, values } => (items, values, None),
        };
        for (v, sim) in self.neighbours(items, values, skip) {
            for (&j, &x) in self.train.items(v).iter().zip(self.train.values(v)) {
                out[j as usize] += sim * x;
            }
        }
        Ok(())
    }
}
