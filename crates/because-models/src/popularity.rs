//! Popularity: every user gets the most interacted-with items, counted over
//! all time or over a recent window. The baseline every model must beat, and
//! the fallback for users nobody knows.

use crate::common::Train;
use because_core::{Error, Interactions, Query, Recommender, Result};

/// Popularity parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PopularityParams {
    /// Count only interactions within this many milliseconds of the latest one.
    pub window_ms: Option<i64>,
}

/// A fitted popularity model.
#[derive(Clone, Debug)]
pub struct Popularity {
    pub(crate) params: PopularityParams,
    pub(crate) train: Train,
    pub(crate) counts: Vec<f32>,
}

impl PopularityParams {
    /// Fits on `x`.
    pub fn fit(&self, x: &Interactions) -> Result<Popularity> {
        if let Some(w) = self.window_ms {
            if w <= 0 {
                return Err(Error::param("window", "must be positive"));
            }
        }
        let latest = x.times().iter().copied().max().unwrap_or(0);
        let mut counts = vec![0.0f32; x.n_items()];
        for (k, &i) in x.items().iter().enumerate() {
            if self.window_ms.is_none_or(|w| x.times()[k] > latest - w) {
                counts[i as usize] += 1.0;
            }
        }
        Ok(Popularity {
            params: self.clone(),
            train: Train::new(x),
            counts,
        })
    }
}

impl Popularity {
    /// Interaction count of each item (within the window).
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }
    /// The parameters.
    pub fn params(&self) -> &PopularityParams {
        &self.params
    }
}

impl Recommender for Popularity {
    fn kind(&self) -> &'static str {
        "pop"
    }
    fn n_users(&self) -> usize {
        self.train.ui.n_rows()
    }
    fn n_items(&self) -> usize {
        self.counts.len()
    }
    fn history(&self, user: u32) -> (&[u32], &[f32]) {
        (self.train.items(user), self.train.values(user))
    }
    fn score_into(&self, _query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(&self.counts);
        Ok(())
    }
}
