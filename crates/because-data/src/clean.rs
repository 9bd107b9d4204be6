//! Whole-data cleaning steps applied after reading, each counted in the report.

use crate::read::Loaded;
use crate::report::Reason;
use crate::{Error, Result};
use because_core::filter::{self, ActivityBounds};

/// Filters to apply, in this order: binarize, activity bounds, k-core.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterOptions {
    /// Keep interactions whose value is at least this, and set their value to 1.
    pub binarize: Option<f32>,
    /// Per-user and per-item bounds (one pass).
    pub bounds: ActivityBounds,
    /// Iterated (user, item) k-core.
    pub kcore: Option<(u32, u32)>,
}

impl FilterOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<()> {
        self.bounds.validate()?;
        if let Some(t) = self.binarize {
            if !t.is_finite() {
                return Err(Error::param("binarize", "must be a finite number"));
            }
        }
        Ok(())
    }
}

/// Applies `opts` to `loaded`, updating its report.
pub fn apply_filters(mut loaded: Loaded, opts: &FilterOptions) -> Result<Loaded> {
    opts.validate()?;
    if let Some(t) = opts.binarize {
        let keep = filter::at_least(&loaded.dataset.interactions, t);
        let before = loaded.dataset.interactions.len();
        let mut d = loaded.dataset.retain(&keep);
        d.interactions = d.interactions.with_constant_values(1.0);
        d.has_ratings = false;
        loaded.report.drop_many(
            Reason::BelowThreshold,
            format!("binarize at {t}"),
            before,
            d.interactions.len(),
        );
        loaded.dataset = d;
    }
    if opts.bounds != ActivityBounds::default() {
        let before = loaded.dataset.interactions.len();
        let (_, keep) = opts.bounds.apply(&loaded.dataset.interactions);
        loaded.dataset = loaded.dataset.retain(&keep);
        loaded.report.drop_many(
            Reason::ActivityBounds,
            "activity bounds",
            before,
            loaded.dataset.interactions.len(),
        );
    }
    if let Some((uk, ik)) = opts.kcore {
        let before = loaded.dataset.interactions.len();
        let keep = filter::kcore(&loaded.dataset.interactions, uk, ik);
        loaded.dataset = loaded.dataset.retain(&keep);
        loaded.report.drop_many(
            Reason::KCore,
            format!("{uk}/{ik}-core"),
            before,
            loaded.dataset.interactions.len(),
        );
    }
    loaded.report.users = loaded.dataset.users.len();
    loaded.report.items = loaded.dataset.items.len();
    if loaded.dataset.interactions.is_empty() {
        return Err(Error::param(
            "filters",
            "the filters removed every interaction",
        ));
    }
    Ok(loaded)
}
