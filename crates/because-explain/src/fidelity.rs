//! How faithful a model's explanations are, summarized over sampled users,
//! and the global view of what drives its recommendations.

use crate::global::{self, PopularityBias};
use crate::{measure, stability, Measured};
use because_core::stats::{bootstrap_ci, mean};
use because_core::{Error, Interactions, Recommender, Result};
use because_models::{Model, ModelSpec};
use serde::{Deserialize, Serialize};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FidelityOptions {
    /// Users sampled, evenly over the users with a history.
    pub users: usize,
    /// Recommendations explained per user (the N of "out of the top N").
    pub n: usize,
    /// History items removed in the deletion test.
    pub k: usize,
    /// Random draws of the deletion test's baseline.
    pub draws: usize,
    /// Largest counterfactual searched for.
    pub max_size: usize,
    /// Seed of the random draws and of seeded models.
    pub seed: u64,
}

impl Default for FidelityOptions {
    /// How fidelity is measured wherever nothing else is asked for (a
    /// served model's `/v1/model/fidelity`, the demo, `explain-eval`'s
    /// defaults): 50 training users evenly sampled, their top 10 explained,
    /// 3 named items removed against 10 random draws, counterfactuals of up
    /// to 5 items, seed 42.
    fn default() -> FidelityOptions {
        FidelityOptions {
            users: 50,
            n: 10,
            k: 3,
            draws: 10,
            max_size: 5,
            seed: 42,
        }
    }
}

impl FidelityOptions {
    fn validate(&self) -> Result<()> {
        for (name, v) in [("users", self.users), ("n", self.n), ("k", self.k)] {
            if v == 0 {
                return Err(Error::param(name, "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// A mean with its 95% bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Estimate {
    /// The mean.
    pub mean: f64,
    /// Its 95% bootstrap interval.
    pub ci95: [f64; 2],
}

impl Estimate {
    /// The mean of `values` with an interval from 1000 resamples.
    pub fn of(values: &[f64], seed: u64) -> Estimate {
        let (lo, hi) = bootstrap_ci(values, 1000, 0.95, seed);
        Estimate {
            mean: mean(values),
            ci95: [lo, hi],
        }
    }
}

/// The deletion test of one explanation method, over every measured
/// recommendation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MethodFidelity {
    /// The method (`exact`, `popularity`, `occlusion`, `attention`,
    /// `attention_rollout`, `gradient_input`).
    pub method: crate::Method,
    /// Rank lost when the `k` items it names are removed.
    pub deletion_rank_drop_named: Estimate,
    /// Rank lost when `k` random history items are removed.
    pub deletion_rank_drop_random: Estimate,
    /// Named over random (how many times more the named items matter);
    /// `None` when random removal costs nothing.
    pub named_over_random: Option<f64>,
}

/// The fidelity of a model's explanations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FidelitySummary {
    /// The model's full specification.
    pub model: String,
    /// Recommendations explained.
    pub recommendations: usize,
    /// Recommendations per user.
    pub n: usize,
    /// Items removed in the deletion test.
    pub k: usize,
    /// Rank lost when the `k` items an explanation names are removed.
    pub deletion_rank_drop_named: Estimate,
    /// Rank lost when `k` random history items are removed.
    pub deletion_rank_drop_random: Estimate,
    /// Share of recommendations that leave the top `n` when the named items go.
    pub named_removal_leaves_top_n: Estimate,
    /// Share with a verified counterfactual.
    pub counterfactual_validity: Estimate,
    /// Mean size of the verified counterfactuals.
    pub counterfactual_mean_size: f64,
    /// Share with at least one supporting history item.
    pub explainability_precision: Estimate,
    /// Share with a non-trivial reason.
    pub explanation_coverage: Estimate,
    /// Mean overlap of the top-3 reasons between two trainings with
    /// different seeds (`None`: not measured, or nothing shared).
    pub stability_top3_overlap: Option<f64>,
    /// What drives the model's recommendations across users.
    pub global: Option<GlobalView>,
    /// The deletion test of each explanation method the model offers, its
    /// default first.
    pub methods: Vec<MethodFidelity>,
}

impl FidelitySummary {
    /// Summarizes `measured` (from [`measure`] with `opts`).
    pub fn new(
        model: &Model,
        measured: &[Measured],
        stability: Option<f64>,
        opts: &FidelityOptions,
    ) -> FidelitySummary {
        let col = |f: &dyn Fn(&Measured) -> f64| -> Vec<f64> { measured.iter().map(f).collect() };
        let flag = |b: bool| f64::from(u8::from(b));
        let est = |v: Vec<f64>| Estimate::of(&v, opts.seed);
        let sizes: Vec<f64> = measured
            .iter()
            .filter(|r| r.counterfactual.verified)
            .map(|r| r.counterfactual.removed.len() as f64)
            .collect();
        FidelitySummary {
            model: model.spec().to_string(),
            recommendations: measured.len(),
            n: opts.n,
            k: opts.k,
            deletion_rank_drop_named: est(col(&|r| r.deletion.explained_drop)),
            deletion_rank_drop_random: est(col(&|r| r.deletion.random_drop)),
            named_removal_leaves_top_n: est(col(&|r| flag(r.named_leaves_top))),
            counterfactual_validity: est(col(&|r| flag(r.counterfactual.verified))),
            counterfactual_mean_size: mean(&sizes),
            explainability_precision: est(col(&|r| flag(r.supported))),
            explanation_coverage: est(col(&|r| flag(r.covered))),
            stability_top3_overlap: stability,
            global: None,
            methods: crate::methods(model)
                .into_iter()
                .map(|m| {
                    let pick = |f: &dyn Fn(&crate::Deletion) -> f64| -> Vec<f64> {
                        measured
                            .iter()
                            .filter_map(|r| r.by_method.iter().find(|d| d.method == m))
                            .map(|d| f(&d.deletion))
                            .collect()
                    };
                    let named = est(pick(&|d| d.explained_drop));
                    let random = est(pick(&|d| d.random_drop));
                    MethodFidelity {
                        method: m,
                        named_over_random: (random.mean > 0.0).then(|| named.mean / random.mean),
                        deletion_rank_drop_named: named,
                        deletion_rank_drop_random: random,
                    }
                })
                .collect(),
        }
    }
}

/// The deletion test of each explanation method `model` offers, on up to
/// 40 sampled users (their top 5, 3 items removed, 3 random draws), four
/// users at a time until `budget` is spent (at least four): what a model
/// folder records when it is saved, so that each explanation can show how
/// faithful its method measured.
pub fn method_ratios(
    model: &Model,
    budget: std::time::Duration,
) -> Result<Vec<because_models::persist::MethodRatio>> {
    let opts = FidelityOptions {
        users: 40,
        n: 5,
        k: 3,
        draws: 3,
        max_size: 0,
        seed: 42,
    };
    let start = std::time::Instant::now();
    let mut measured = Vec::new();
    for group in sample_users(model, opts.users).chunks(4) {
        measured.extend(crate::measure(
            model,
            group,
            opts.n,
            opts.k,
            opts.draws,
            opts.max_size,
            opts.seed,
        )?);
        if start.elapsed() >= budget {
            break;
        }
    }
    let summary = FidelitySummary::new(model, &measured, None, &opts);
    Ok(summary
        .methods
        .into_iter()
        .map(|m| because_models::persist::MethodRatio {
            method: m.method.name().to_string(),
            named_over_random: m.named_over_random,
            recommendations: measured.len(),
        })
        .collect())
}

/// `count` users spread evenly over the model's users, skipping those
/// without a history.
pub fn sample_users(model: &dyn Recommender, count: usize) -> Vec<u32> {
    let n = model.n_users();
    let step = (n / count.max(1)).max(1);
    (0..n as u32)
        .step_by(step)
        .filter(|&u| !model.history(u).0.is_empty())
        .take(count)
        .collect()
}

/// A fitted model with its explanations measured.
#[derive(Clone, Debug)]
pub struct Fidelity {
    /// The model (fitted with `opts.seed`).
    pub model: Model,
    /// Each explained recommendation's measurements.
    pub measured: Vec<Measured>,
    /// Their summary.
    pub summary: FidelitySummary,
}

/// Fits `spec` on `x` and measures its explanations; seeded models are
/// fitted a second time (seed + 1) to measure stability.
pub fn measure_spec(
    spec: &ModelSpec,
    x: &Interactions,
    opts: &FidelityOptions,
) -> Result<Fidelity> {
    opts.validate()?;
    let seeded = |seed: u64| {
        if spec.seeded() {
            spec.clone().with("seed", seed)
        } else {
            spec.clone()
        }
    };
    let model = seeded(opts.seed).fit(x)?;
    let users = sample_users(&model, opts.users);
    let measured = measure(
        &model,
        &users,
        opts.n,
        opts.k,
        opts.draws,
        opts.max_size,
        opts.seed,
    )?;
    let second = seeded(opts.seed + 1).fit(x)?;
    let again = measure(&second, &users, opts.n, opts.k, 1, 0, opts.seed)?;
    let summary = FidelitySummary::new(&model, &measured, stability(&measured, &again), opts);
    Ok(Fidelity {
        model,
        measured,
        summary,
    })
}

/// Measures the explanations of a fitted model (no stability: that needs
/// a second training).
pub fn measure_model(model: &Model, opts: &FidelityOptions) -> Result<Fidelity> {
    opts.validate()?;
    let users = sample_users(model, opts.users);
    let measured = measure(
        model,
        &users,
        opts.n,
        opts.k,
        opts.draws,
        opts.max_size,
        opts.seed,
    )?;
    let summary = FidelitySummary::new(model, &measured, None, opts);
    Ok(Fidelity {
        model: model.clone(),
        measured,
        summary,
    })
}

/// An item that drives recommendations: how often it is among the top-3 reasons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Driver {
    /// Its external ID.
    pub item: String,
    /// Its title (the ID when there is none).
    pub title: String,
    /// How often it is among the top-3 reasons.
    pub count: usize,
}

/// A latent dimension, its items named.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamedTheme {
    /// The dimension.
    pub dimension: usize,
    /// Titles of the items with the largest values on it.
    pub top_items: Vec<String>,
    /// The most common feature levels among them, with counts.
    pub dominant: Vec<(String, usize)>,
}

/// What drives a model's recommendations across users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GlobalView {
    /// Popularity bias of everyone's top `n`.
    pub popularity_bias: PopularityBias,
    /// The history items most often among the top-3 reasons.
    pub top_driver_items: Vec<Driver>,
    /// Feature levels (genres) of the reason items, counted.
    pub feature_drivers: Vec<(String, usize)>,
    /// One theme per latent dimension, for models with item embeddings.
    pub themes: Option<Vec<NamedTheme>>,
    /// For how many users each recommended item is in the top `n`, most
    /// reached first (items recommended to nobody left out).
    pub reach: Vec<usize>,
}

/// The global view of `model`'s top-`n` lists for every user, with the
/// reasons of `measured`. `id` and `title` name items; `genres` gives
/// each item's levels of a categorical feature.
pub fn global_view(
    model: &Model,
    measured: &[Measured],
    n: usize,
    id: &dyn Fn(u32) -> String,
    title: &dyn Fn(u32) -> String,
    genres: Option<(&[Vec<u32>], &[String])>,
) -> Result<GlobalView> {
    let users: Vec<u32> = (0..model.n_users() as u32).collect();
    let recs = model.recommend_users(&users, n)?;
    let iu = &model.train().iu;
    let counts: Vec<u32> = iu
        .indptr()
        .windows(2)
        .map(|w| (w[1] - w[0]) as u32)
        .collect();
    let mut reach = vec![0usize; model.n_items()];
    for s in recs.iter().flatten() {
        reach[s.item as usize] += 1;
    }
    reach.retain(|&c| c > 0);
    reach.sort_unstable_by(|a, b| b.cmp(a));
    Ok(GlobalView {
        popularity_bias: global::popularity_bias(&recs, &counts),
        top_driver_items: global::top_drivers(measured, 8)
            .into_iter()
            .map(|(i, count)| Driver {
                item: id(i),
                title: title(i),
                count,
            })
            .collect(),
        feature_drivers: genres
            .map(|(codes, levels)| global::feature_drivers(measured, codes, levels))
            .unwrap_or_default(),
        themes: model.item_embeddings().map(|(factors, d)| {
            global::themes(factors, d, 5, genres)
                .into_iter()
                .map(|t| NamedTheme {
                    dimension: t.dimension,
                    top_items: t.top_items.iter().map(|&i| title(i)).collect(),
                    dominant: t.dominant,
                })
                .collect()
        }),
        reach,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::testing::block_data;

    #[test]
    fn summaries_of_an_exact_model() {
        let x = block_data(40, 20, 6, 3);
        let opts = FidelityOptions {
            users: 10,
            n: 3,
            k: 2,
            draws: 2,
            max_size: 3,
            seed: 1,
        };
        let spec: ModelSpec = "ease:lambda=5".parse().unwrap();
        let f = measure_spec(&spec, &x, &opts).unwrap();
        let s = &f.summary;
        assert_eq!(s.recommendations, 30);
        assert_eq!(s.model, f.model.spec().to_string());
        // EASE does not depend on a seed: the two trainings agree.
        assert_eq!(s.stability_top3_overlap, Some(1.0));
        assert!(s.deletion_rank_drop_named.mean >= s.deletion_rank_drop_random.mean);
        let e = s.explanation_coverage;
        assert!(e.ci95[0] <= e.mean && e.mean <= e.ci95[1]);
        let g = global_view(
            &f.model,
            &f.measured,
            3,
            &|i| i.to_string(),
            &|i| format!("item {i}"),
            None,
        )
        .unwrap();
        assert_eq!(g.reach.iter().sum::<usize>(), 40 * 3);
        assert!(g.themes.is_none() && !g.top_driver_items.is_empty());
        assert!(measure_spec(&spec, &x, &FidelityOptions { n: 0, ..opts })
            .unwrap_err()
            .to_string()
            .contains("`n`"));
    }
}
