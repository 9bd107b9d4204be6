//! User-based k-nearest neighbours (Herlocker et al., "An algorithmic
//! framework for performing collaborative filtering", SIGIR 1999): a user's
//! score for item `j` is `Σ_v sim(u, v) · x[v, j]` over the `k` users most
//! similar to them (cosine, divided by `norm + shrinkage`). Neighbours are
//! found at query time, so ad-hoc histories need no retraining.

use crate::common::Train;
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::{
    Capabilities, EpochObserver, Error, Interactions, Query, Recommender, Result, Sequence,
};
use serde::{Deserialize, Serialize};

/// User-kNN parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

impl Validate for UserKnnParams {
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

impl UserKnnParams {
    /// Fits on `x` (stores the data and the users' norms).
    pub fn fit(&self, x: &Interactions) -> Result<UserKnn> {
        self.validate()?;
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

impl ModelKind for UserKnn {
    const NAME: &'static str = "userknn";
    const ABOUT: &'static str = "user-based k-nearest neighbours, found at query time";
    const CAPABILITIES: Capabilities = Capabilities {
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str = "neighbours=10";
    crate::common::kind_accessors!(UserKnnParams);
    fn fit(
        p: &UserKnnParams,
        x: &Interactions,
        _: usize,
        _: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        p.fit(x)
    }
    fn save(&self, out: &mut TensorsOut) {
        out.f32("norms", &self.norms, &[self.norms.len()]);
    }
    fn load(params: UserKnnParams, train: Train, t: &TensorsIn<'_>) -> Result<Self, PersistError> {
        let norms = t.f32("norms", &[train.ui.n_rows()])?;
        Ok(UserKnn {
            params,
            train,
            norms,
        })
    }
}

impl Recommender for UserKnn {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
    }
    crate::common::train_accessors!();
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|s| *s = 0.0);
        let (items, values, skip) = match *query {
            Query::User(u) => (self.train.items(u), self.train.values(u), Some(u)),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                (items, values, None)
            }
        };
        for (v, sim) in self.neighbours(items, values, skip) {
            for (&j, &x) in self.train.items(v).iter().zip(self.train.values(v)) {
                out[j as usize] += sim * x;
            }
        }
        Ok(())
    }
}
