//! Full-ranking evaluation.
//!
//! # Brief overview
//!
//! [`evaluate`] ranks *every* item for each test user (never a sample of
//! negatives), leaving out what the user already has, and scores the top of
//! the list with the metrics of [`metrics`] at several cut-offs, plus
//! catalogue coverage, the Gini coefficient of exposure and novelty. It
//! keeps per-user results, from which [`bootstrap_ci`] gives confidence
//! intervals, [`paired_test`] compares two models and [`by_activity`]
//! slices users by how much history they have. It never names a concrete
//! model.
//!
//! [`experiment`] is the method built on it: parts made by a split or given
//! as files, fitting and evaluating model specifications, comparisons,
//! tuning, the model to deploy, and `evaluation.json`.
//!
//! ```
//! use because_core::testing::block_data;
//! use because_eval::{evaluate, Protocol};
//! # use because_core::{Query, Recommender, Result};
//! # struct Pop(because_core::Interactions, Vec<f32>);
//! # impl Recommender for Pop {
//! #     fn kind(&self) -> &'static str { "pop" }
//! #     fn n_users(&self) -> usize { self.0.n_users() }
//! #     fn n_items(&self) -> usize { self.0.n_items() }
//! #     fn history(&self, u: u32) -> (&[u32], &[f32]) { (self.0.user_items(u), self.0.user_values(u)) }
//! #     fn score_into(&self, _: &Query<'_>, out: &mut [f32]) -> Result<()> { out.copy_from_slice(&self.1); Ok(()) }
//! # }
//! let train = block_data(20, 10, 4, 1);
//! let test = block_data(20, 10, 2, 2);
//! let counts = train.item_counts().iter().map(|&c| c as f32).collect();
//! let ev = evaluate(&Pop(train, counts), &test, &Protocol::new(vec![5, 10])).unwrap();
//! assert!(ev.mean("ndcg@10").unwrap() >= 0.0);
//! ```
#![deny(missing_docs)]

pub mod experiment;
pub mod metrics;

pub use because_core::stats::{bootstrap_ci, EvaluationSummary, MetricValue};

use because_core::rng::Rng;
use because_core::{Interactions, Query, Recommender, Request, Result, Scored};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Protocol<'a> {
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Interactions added to each user's training history before scoring,
    /// such as the validation part when testing (`None`: training history only).
    pub extra_history: Option<&'a Interactions>,
    /// With `extra_history`: score the whole history as an ad-hoc query
    /// (fold-in, `true`), or score the trained user and only exclude the
    /// extra items from the ranking (`false`, as RecBole and implicit do).
    pub fold_in: bool,
    /// Categories of each item (genres, say), for intra-list diversity.
    pub item_categories: Option<&'a [Vec<u32>]>,
    /// **Sampled evaluation** (off by default, and labelled wherever
    /// reported): rank each user's relevant items among this many random
    /// unseen items instead of the whole catalogue. Its numbers are not
    /// comparable with full ranking and overstate quality.
    pub sampled_negatives: Option<usize>,
    /// Seed of the negative sample.
    pub seed: u64,
}

impl Protocol<'_> {
    /// Cut-offs `ks`, training history only.
    pub fn new(ks: Vec<usize>) -> Protocol<'static> {
        Protocol {
            ks,
            extra_history: None,
            fold_in: true,
            item_categories: None,
            sampled_negatives: None,
            seed: 42,
        }
    }
}

/// One user's results.
#[derive(Clone, Debug, Serialize)]
pub struct UserResult {
    /// User index.
    pub user: u32,
    /// Relevant (test) items.
    pub relevant: usize,
    /// History length the model saw.
    pub history: usize,
    /// Metrics per cut-off, in the order of [`metrics::NAMES`].
    pub values: Vec<[f64; 6]>,
}

/// A model's evaluation on a test log in external IDs.
#[derive(Clone, Debug, Serialize)]
pub struct LogEvaluation {
    /// The model, as a full spec.
    pub model: String,
    /// Test interactions of users or items the model does not know, left
    /// out.
    pub dropped_unknown: usize,
    /// Every metric's mean with its 95% bootstrap interval.
    pub summary: EvaluationSummary,
}

/// Evaluates `model` (whose users and items `users` and `items` name) on
/// `test` with full ranking at `ks`, intervals drawn with `seed`; test
/// interactions the model cannot score (unknown users or items) are left
/// out and counted.
pub fn evaluate_log(
    model: &because_models::Model,
    users: &because_core::Vocab,
    items: &because_core::Vocab,
    test: &because_core::Dataset,
    ks: &[usize],
    seed: u64,
) -> Result<LogEvaluation> {
    let (t, dropped_unknown) = test.in_vocabulary(users, items)?;
    let e = evaluate(model, &t, &Protocol::new(ks.to_vec()))?;
    Ok(LogEvaluation {
        model: model.spec().to_string(),
        dropped_unknown,
        summary: e.summary(seed),
    })
}

/// Results of one evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Model kind.
    pub model: String,
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Users evaluated (those with at least one test item).
    pub users: usize,
    /// Mean of each metric per cut-off.
    pub means: Vec<[f64; 6]>,
    /// Share of the catalogue recommended to anyone, per cut-off.
    pub coverage: Vec<f64>,
    /// Gini coefficient of how often each item is recommended, per cut-off.
    pub gini: Vec<f64>,
    /// Mean self-information −log2(popularity) of recommended items, per cut-off.
    pub novelty: Vec<f64>,
    /// Intra-list diversity (mean pairwise Jaccard distance of the items'
    /// categories within each list), per cut-off, when categories are given.
    pub ild: Option<Vec<f64>>,
    /// Negatives sampled per user, if this was a sampled evaluation.
    pub sampled_negatives: Option<usize>,
    /// Per-user results.
    #[serde(skip)]
    pub per_user: Vec<UserResult>,
}

impl Evaluation {
    /// A metric by name, such as `ndcg@10` or `coverage@20`.
    pub fn mean(&self, key: &str) -> Option<f64> {
        let (name, k) = key.split_once('@')?;
        let k: usize = k.parse().ok()?;
        let ki = self.ks.iter().position(|&x| x == k)?;
        match name {
            "coverage" => Some(self.coverage[ki]),
            "gini" => Some(self.gini[ki]),
            "novelty" => Some(self.novelty[ki]),
            "ild" => self.ild.as_ref().map(|v| v[ki]),
            _ => metrics::NAMES
                .iter()
                .position(|&n| n == name)
                .map(|m| self.means[ki][m]),
        }
    }

    /// Per-user values of a metric (same order as `per_user`).
    pub fn per_user_values(&self, key: &str) -> Option<Vec<f64>> {
        let (name, k) = key.split_once('@')?;
        let ki = self.ks.iter().position(|&x| Some(x) == k.parse().ok())?;
        let m = metrics::NAMES.iter().position(|&n| n == name)?;
        Some(self.per_user.iter().map(|r| r.values[ki][m]).collect())
    }

    /// Every metric's mean, with a 95% bootstrap interval (1000 resamples,
    /// `seed`) for the per-user ones: what is saved with a model and shown
    /// on the dashboard's model page.
    pub fn summary(&self, seed: u64) -> EvaluationSummary {
        let mut metrics = std::collections::BTreeMap::new();
        for (key, mean) in self.table() {
            let ci95 = self.per_user_values(&key).map(|v| {
                let (lo, hi) = bootstrap_ci(&v, 1000, 0.95, seed);
                [lo, hi]
            });
            metrics.insert(key, MetricValue { mean, ci95 });
        }
        EvaluationSummary {
            users: self.users,
            ks: self.ks.clone(),
            metrics,
        }
    }

    /// All metric names with values, for tables and JSON.
    pub fn table(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (ki, k) in self.ks.iter().enumerate() {
            for (m, name) in metrics::NAMES.iter().enumerate() {
                out.push((format!("{name}@{k}"), self.means[ki][m]));
            }
            out.push((format!("coverage@{k}"), self.coverage[ki]));
            out.push((format!("gini@{k}"), self.gini[ki]));
            out.push((format!("novelty@{k}"), self.novelty[ki]));
            if let Some(ild) = &self.ild {
                out.push((format!("ild@{k}"), ild[ki]));
            }
        }
        out
    }
}

/// Gini coefficient of non-negative counts.
pub fn gini(values: &[f64]) -> f64 {
    let n = values.len();
    let total: f64 = values.iter().sum();
    if n == 0 || total == 0.0 {
        return 0.0;
    }
    let mut s = values.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let weighted: f64 = s
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as f64 + 1.0) * x)
        .sum();
    (2.0 * weighted) / (n as f64 * total) - (n as f64 + 1.0) / n as f64
}

/// Evaluates `model` on `test` (same index space as the training data).
pub fn evaluate(
    model: &dyn Recommender,
    test: &Interactions,
    protocol: &Protocol<'_>,
) -> Result<Evaluation> {
    let ks = protocol.ks.clone();
    if ks.is_empty() || ks.contains(&0) {
        return Err(because_core::Error::param("k", "cut-offs must be positive"));
    }
    let kmax = *ks.iter().max().unwrap_or(&10);
    let users: Vec<u32> = (0..test.n_users().min(model.n_users()) as u32)
        .filter(|&u| !test.range(u).is_empty())
        .collect();
    // Users scored as trained (with any extra items only excluded) go
    // through the batched path; folded-in histories are scored one by one.
    let extra_of = |u: u32| {
        protocol
            .extra_history
            .filter(|e| (u as usize) < e.n_users() && !e.range(u).is_empty())
    };
    let sampled = protocol.sampled_negatives;
    let (batched, folded): (Vec<u32>, Vec<u32>) = users
        .iter()
        .partition(|&&u| sampled.is_none() && (extra_of(u).is_none() || !protocol.fold_in));
    let deny: Vec<&[u32]> = batched
        .iter()
        .map(|&u| extra_of(u).map(|e| e.user_items(u)).unwrap_or(&[]))
        .collect();
    let batch_lists = model.recommend_users_denying(&batched, kmax, &deny)?;
    let folded_lists: Vec<(Vec<Scored>, usize)> = folded
        .par_iter()
        .map(|&u| -> Result<(Vec<Scored>, usize)> {
            let (hi, hv) = model.history(u);
            let mut items = hi.to_vec();
            let mut values = hv.to_vec();
            if let Some(e) = extra_of(u) {
                items.extend_from_slice(e.user_items(u));
                values.extend_from_slice(e.user_values(u));
            }
            let candidates = sampled.map(|n| {
                sample_candidates(
                    model.n_items(),
                    &items,
                    test.user_items(u),
                    n,
                    protocol.seed,
                    u,
                )
            });
            let fold = protocol.fold_in && extra_of(u).is_some();
            let query = if fold {
                Query::History {
                    items: &items,
                    values: &values,
                }
            } else {
                Query::User(u)
            };
            let deny: &[u32] = match extra_of(u) {
                Some(e) if !fold => e.user_items(u),
                _ => &[],
            };
            let req = Request {
                query,
                k: kmax,
                exclude_seen: true,
                allow: candidates.as_deref(),
                deny,
            };
            // A model that reads user features or IDs scores the known
            // user with the longer history, rather than a stranger with it.
            let ranked = match (fold, model.featured()) {
                (true, Some(f)) => {
                    let mut scores = vec![0.0f32; model.n_items()];
                    f.score_described(
                        &because_core::Described {
                            user: Some(u),
                            features: None,
                            items: Some(&items),
                        },
                        &mut scores,
                    )?;
                    because_core::select(scores, &items, &req)
                }
                _ => model.recommend(&req)?,
            };
            Ok((ranked, items.len()))
        })
        .collect::<Result<_>>()?;
    let mut ranked_by_user: Vec<(u32, Vec<Scored>, usize)> = batched
        .iter()
        .zip(batch_lists)
        .map(|(&u, r)| {
            (
                u,
                r,
                model.history(u).0.len() + extra_of(u).map(|e| e.range(u).len()).unwrap_or(0),
            )
        })
        .chain(
            folded
                .iter()
                .zip(folded_lists)
                .map(|(&u, (r, h))| (u, r, h)),
        )
        .collect();
    ranked_by_user.sort_by_key(|x| x.0);
    let lists: Vec<(UserResult, Vec<u32>)> = ranked_by_user
        .into_par_iter()
        .map(|(u, ranked, history)| {
            let mut relevant = test.user_items(u).to_vec();
            relevant.sort_unstable();
            relevant.dedup();
            let ranked: Vec<u32> = ranked.iter().map(|s| s.item).collect();
            let values = ks
                .iter()
                .map(|&k| metrics::at_k(&ranked, &relevant, k))
                .collect();
            (
                UserResult {
                    user: u,
                    relevant: relevant.len(),
                    history,
                    values,
                },
                ranked,
            )
        })
        .collect();
    let n_items = model.n_items();
    let ild = protocol.item_categories.map(|cats| {
        ks.iter()
            .map(|&k| {
                let per_list: Vec<f64> = lists
                    .iter()
                    .filter_map(|(_, ranked)| {
                        intra_list_distance(&ranked[..k.min(ranked.len())], cats)
                    })
                    .collect();
                if per_list.is_empty() {
                    0.0
                } else {
                    per_list.iter().sum::<f64>() / per_list.len() as f64
                }
            })
            .collect()
    });
    let mut popularity = vec![0u64; n_items];
    for u in 0..model.n_users() as u32 {
        for &i in model.history(u).0 {
            popularity[i as usize] += 1;
        }
    }
    let n_users = model.n_users().max(1) as f64;
    let mut means = vec![[0.0; 6]; ks.len()];
    let (mut coverage, mut ginis, mut novelty) = (Vec::new(), Vec::new(), Vec::new());
    for (ki, &k) in ks.iter().enumerate() {
        let mut exposure = vec![0.0f64; n_items];
        let mut info = 0.0;
        let mut shown = 0usize;
        for (r, ranked) in &lists {
            for m in 0..6 {
                means[ki][m] += r.values[ki][m];
            }
            for &i in ranked.iter().take(k) {
                exposure[i as usize] += 1.0;
                let p = (popularity[i as usize].max(1) as f64) / n_users;
                info -= p.log2();
                shown += 1;
            }
        }
        let n = lists.len().max(1) as f64;
        means[ki].iter_mut().for_each(|v| *v /= n);
        coverage.push(exposure.iter().filter(|&&e| e > 0.0).count() as f64 / n_items.max(1) as f64);
        ginis.push(gini(&exposure));
        novelty.push(if shown == 0 { 0.0 } else { info / shown as f64 });
    }
    Ok(Evaluation {
        model: model.kind().to_string(),
        ks,
        users: lists.len(),
        means,
        coverage,
        gini: ginis,
        novelty,
        ild,
        sampled_negatives: sampled,
        per_user: lists.into_iter().map(|(r, _)| r).collect(),
    })
}

/// The relevant items plus `n` random items the user has neither seen nor
/// is being tested on (deterministic for the seed and user).
fn sample_candidates(
    n_items: usize,
    seen: &[u32],
    relevant: &[u32],
    n: usize,
    seed: u64,
    user: u32,
) -> Vec<u32> {
    let mut rng = Rng::stream(seed, user as u64);
    let mut out: Vec<u32> = relevant.to_vec();
    let banned: std::collections::HashSet<u32> = seen.iter().chain(relevant).copied().collect();
    let available = n_items.saturating_sub(banned.len());
    let mut chosen = std::collections::HashSet::new();
    while chosen.len() < n.min(available) {
        let i = rng.below(n_items as u64) as u32;
        if !banned.contains(&i) && chosen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// Mean pairwise Jaccard distance between the category sets of a list's
/// items; `None` for lists of fewer than two items.
pub fn intra_list_distance(items: &[u32], categories: &[Vec<u32>]) -> Option<f64> {
    if items.len() < 2 {
        return None;
    }
    let empty = Vec::new();
    let cat = |i: u32| categories.get(i as usize).unwrap_or(&empty);
    let mut total = 0.0;
    let mut pairs = 0usize;
    for a in 0..items.len() {
        for b in a + 1..items.len() {
            let (x, y) = (cat(items[a]), cat(items[b]));
            let inter = x.iter().filter(|c| y.contains(c)).count();
            let union = x.len() + y.len() - inter;
            total += if union == 0 {
                0.0
            } else {
                1.0 - inter as f64 / union as f64
            };
            pairs += 1;
        }
    }
    Some(total / pairs as f64)
}

/// RMSE and MAE of `predict(user, item)` against the ratings (values) of `test`.
pub fn rating_accuracy(
    test: &Interactions,
    predict: impl Fn(u32, u32) -> f32 + Sync,
) -> (f64, f64) {
    let users = test.users();
    let predicted: Vec<f32> = users
        .par_iter()
        .zip(test.items().par_iter())
        .map(|(&u, &i)| predict(u, i))
        .collect();
    (
        metrics::rmse(&predicted, test.values()),
        metrics::mae(&predicted, test.values()),
    )
}

/// Two-sided paired randomization (sign-flip) test of equal means for
/// per-user values `a` and `b` of two models on the same users: the share of
/// random sign assignments of the differences whose mean is at least as
/// extreme as the observed one.
pub fn paired_test(a: &[f64], b: &[f64], permutations: usize, seed: u64) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.is_empty() {
        return 1.0;
    }
    let observed = d.iter().sum::<f64>().abs();
    let extreme: usize = (0..permutations)
        .into_par_iter()
        .map(|p| {
            let mut rng = Rng::stream(seed, p as u64);
            let s: f64 = d
                .iter()
                .map(|&x| if rng.next_u64() & 1 == 0 { x } else { -x })
                .sum();
            usize::from(s.abs() >= observed - 1e-12)
        })
        .sum();
    (extreme as f64 + 1.0) / (permutations as f64 + 1.0)
}

/// Mean of a metric per slice of users by history length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// The slice, such as `20-49`.
    pub label: String,
    /// Users in it.
    pub users: usize,
    /// Mean of the metric.
    pub mean: f64,
}

/// Slices users by history length (1-4, 5-9, 10-19, 20-49, 50-99, 100-199, 200+).
pub fn by_activity(ev: &Evaluation, key: &str) -> Vec<Slice> {
    let Some(values) = ev.per_user_values(key) else {
        return Vec::new();
    };
    let edges = [1usize, 5, 10, 20, 50, 100, 200, usize::MAX];
    let mut out = Vec::new();
    for w in edges.windows(2) {
        let vs: Vec<f64> = ev
            .per_user
            .iter()
            .zip(&values)
            .filter(|(r, _)| r.history >= w[0] && r.history < w[1])
            .map(|(_, &v)| v)
            .collect();
        if vs.is_empty() {
            continue;
        }
        let label = if w[1] == usize::MAX {
            format!("{}+", w[0])
        } else {
            format!("{}-{}", w[0], w[1] - 1)
        };
        out.push(Slice {
            label,
            users: vs.len(),
            mean: vs.iter().sum::<f64>() / vs.len() as f64,
        });
    }
    out
}

/// Slices users by a categorical user attribute (`group[u]`, `None` for unknown).
pub fn by_group(ev: &Evaluation, key: &str, group: &[Option<String>]) -> Vec<Slice> {
    let Some(values) = ev.per_user_values(key) else {
        return Vec::new();
    };
    let mut acc: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
    for (r, v) in ev.per_user.iter().zip(values) {
        let g = group
            .get(r.user as usize)
            .cloned()
            .flatten()
            .unwrap_or_else(|| "(unknown)".into());
        let e = acc.entry(g).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += v;
    }
    acc.into_iter()
        .map(|(label, (n, s))| Slice {
            label,
            users: n,
            mean: s / n as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_test_detects_a_shift_and_not_noise() {
        let a: Vec<f64> = (0..100).map(|i| (i % 7) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 0.5).collect();
        assert!(paired_test(&a, &b, 2000, 3) < 0.01);
        let c: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| if i % 2 == 0 { x + 0.5 } else { x - 0.5 })
            .collect();
        assert!(paired_test(&a, &c, 2000, 3) > 0.5);
    }

    #[test]
    fn intra_list_distance_of_categories() {
        let cats = vec![vec![0], vec![0], vec![1], vec![0, 1]];
        assert_eq!(intra_list_distance(&[0, 1], &cats), Some(0.0));
        assert_eq!(intra_list_distance(&[0, 2], &cats), Some(1.0));
        assert_eq!(intra_list_distance(&[0, 3], &cats), Some(0.5));
        assert_eq!(intra_list_distance(&[0], &cats), None);
    }

    #[test]
    fn sampled_candidates_hold_relevant_and_unseen() {
        let c = sample_candidates(100, &[1, 2, 3], &[4, 5], 20, 1, 7);
        assert_eq!(c.len(), 22);
        assert!(c.contains(&4) && c.contains(&5));
        assert!(!c.contains(&1) && !c.contains(&2) && !c.contains(&3));
        assert_eq!(c, sample_candidates(100, &[1, 2, 3], &[4, 5], 20, 1, 7));
    }

    #[test]
    fn gini_of_exposure() {
        assert!(gini(&[1.0, 1.0, 1.0]).abs() < 1e-12);
        assert!((gini(&[0.0, 0.0, 3.0]) - 2.0 / 3.0).abs() < 1e-12);
    }
}
