//! Small statistics shared by evaluation and explanation measurements.

use crate::rng::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A metric's mean over users, with its 95% bootstrap interval when it is a
/// per-user metric (catalogue measures such as coverage have none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricValue {
    /// The mean (`null` where it is not a number).
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean: f64,
    /// Its 95% bootstrap interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
}

/// An evaluation's metrics, each with its interval: what is saved with a
/// model and shown on the dashboard's model page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvaluationSummary {
    /// Users evaluated.
    pub users: usize,
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// By name (`ndcg@10`).
    pub metrics: BTreeMap<String, MetricValue>,
}

/// Reads a number, or `null` (what JSON writes for a value that is not a
/// finite number) as NaN.
pub fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Reads numbers, each possibly `null` (read as NaN).
pub fn f64s_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// The mean of `values` (0 for none).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// A percentile bootstrap confidence interval of the mean of `values`
/// (`level` such as 0.95), from `resamples` resamples with `seed`.
pub fn bootstrap_ci(values: &[f64], resamples: usize, level: f64, seed: u64) -> (f64, f64) {
    if values.is_empty() || resamples == 0 {
        return (0.0, 0.0);
    }
    let n = values.len();
    let mut means: Vec<f64> = (0..resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = Rng::stream(seed, b as u64);
            (0..n)
                .map(|_| values[rng.below(n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    let lo = ((1.0 - level) / 2.0 * resamples as f64).floor() as usize;
    let hi = (((1.0 + level) / 2.0 * resamples as f64).ceil() as usize).min(resamples) - 1;
    (means[lo.min(resamples - 1)], means[hi])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_brackets_the_mean() {
        let v: Vec<f64> = (0..200).map(|i| (i % 10) as f64 / 10.0).collect();
        let m = mean(&v);
        let (lo, hi) = bootstrap_ci(&v, 500, 0.95, 1);
        assert!(lo < m && m < hi && hi - lo < 0.2, "{lo} {m} {hi}");
        assert_eq!(bootstrap_ci(&[], 500, 0.95, 1), (0.0, 0.0));
        assert_eq!(mean(&[]), 0.0);
    }
}
