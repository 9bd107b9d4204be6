//! Popularity: every user gets the most interacted-with items, counted over
//! all time or over a recent window. The baseline every model must beat, and
//! the fallback for users nobody knows.

use crate::common::Train;
use crate::registry::{ModelKind, Validate};
use crate::tensors::{PersistError, TensorsIn, TensorsOut};
use because_core::{
    Capabilities, EpochObserver, Error, Interactions, PopularityPrior, Query, Recommender, Result,
};
use serde::{Deserialize, Serialize};

/// Popularity parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopularityParams {
    /// Count only interactions within this many days of the latest one.
    pub window_days: Option<f64>,
}

impl Validate for PopularityParams {
    fn validate(&self) -> Result<()> {
        match self.window_days {
            Some(d) if !(d * 86_400_000.0 >= 1.0 && d < 1e9) => Err(Error::param(
                "window_days",
                "must be a positive number of days (at least a millisecond, below a billion days)",
            )),
            _ => Ok(()),
        }
    }
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
        self.validate()?;
        let window_ms = self.window_days.map(|d| (d * 86_400_000.0) as i64);
        let latest = x.times().iter().copied().max().unwrap_or(0);
        let mut counts = vec![0.0f32; x.n_items()];
        for (k, &i) in x.items().iter().enumerate() {
            if window_ms.is_none_or(|w| x.times()[k] > latest.saturating_sub(w)) {
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

impl PopularityPrior for Popularity {
    fn item_counts(&self) -> &[f32] {
        &self.counts
    }
    fn window_days(&self) -> Option<f64> {
        self.params.window_days
    }
}

impl ModelKind for Popularity {
    const NAME: &'static str = "pop";
    const ABOUT: &'static str = "the most chosen items, over all time or a recent window";
    const CAPABILITIES: Capabilities = Capabilities {
        fold_in: true,
        ..Capabilities::NONE
    };
    const EXAMPLE: &'static str = "window_days=0.5";
    const DEMO: Option<&'static str> = Some("");
    crate::common::kind_accessors!(PopularityParams);
    fn fit(
        p: &PopularityParams,
        x: &Interactions,
        _: usize,
        _: &mut EpochObserver<'_>,
    ) -> Result<Self> {
        p.fit(x)
    }
    fn save(&self, out: &mut TensorsOut) {
        out.f32("counts", &self.counts, &[self.counts.len()]);
    }
    fn load(
        params: PopularityParams,
        train: Train,
        t: &TensorsIn<'_>,
    ) -> Result<Self, PersistError> {
        let counts = t.f32("counts", &[train.ui.n_cols()])?;
        Ok(Popularity {
            params,
            train,
            counts,
        })
    }
}

impl Recommender for Popularity {
    fn kind(&self) -> &'static str {
        <Self as ModelKind>::NAME
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
    fn popularity(&self) -> Option<&dyn PopularityPrior> {
        Some(self)
    }
}
