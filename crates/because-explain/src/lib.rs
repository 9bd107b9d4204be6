//! Faithful explanations.
//!
//! # Brief overview
//!
//! [`explain`] decomposes the score a model gives an item for a history
//! into one exact contribution per history item, for the models where that
//! is possible (EASE, item-kNN, PureSVD and ALS; ALS through an exact solve,
//! as in implicit), and gives a popularity reason for the popularity model.
//! [`counterfactual`] searches, greedily from the contributions, for the
//! smallest set of history items whose removal drops the item out of the
//! top N, and verifies it by re-scoring. [`narrative`] turns an explanation
//! into a sentence from the templates in `templates/en.txt`, and
//! [`deletion_test`] measures fidelity: removing the items an explanation
//! names must hurt more than removing random ones. [`fidelity`] measures
//! and summarizes all of that over sampled users ([`FidelitySummary`]),
//! with the global view of what drives a model's recommendations.
//!
//! Explanations hold item indices of the user's own history only: never
//! another user's identity or history.
//!
//! ```
//! use because_core::testing::block_data;
//! use because_models::ModelSpec;
//!
//! let x = block_data(30, 20, 6, 1);
//! let model = "ease:lambda=5".parse::<ModelSpec>().unwrap().fit(&x).unwrap();
//! let (items, values) = (x.user_items(0), x.user_values(0));
//! let e = because_explain::explain(&model, items, values, 3).unwrap();
//! let total: f32 = e.contributions.iter().map(|c| c.weight).sum::<f32>() + e.bias;
//! assert!(e.exact && (total - e.score).abs() <= 1e-4 * (1.0 + e.score.abs()));
//! ```
#![deny(missing_docs)]

pub mod fidelity;
pub mod global;
pub mod reasons;

pub use fidelity::{FidelityOptions, FidelitySummary, MethodFidelity};
pub use reasons::{Explained, Explainer, Reason, Subject};

use because_core::rng::Rng;
use because_core::{Attribution, Error, Query, Recommender, Result};
use because_models::Model;
use serde::Serialize;

/// One history item's share of a score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Contribution {
    /// The history item.
    pub item: u32,
    /// Its additive contribution to the score.
    pub weight: f32,
}

/// What an explanation's contributions are.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// An exact decomposition: contributions add up to the score.
    Exact,
    /// The popularity model: the score is the item's count.
    Popularity,
    /// Each history item left out in turn and re-scored: measured effects.
    Occlusion,
    /// Attention of the last position, last layer, averaged over heads.
    Attention,
    /// Attention rollout across layers.
    AttentionRollout,
    /// Gradient × input on the history items' embeddings.
    GradientInput,
    /// Integrated gradients from the empty history: shares that add up to
    /// the score minus the score of nothing.
    IntegratedGradients,
    /// Cosine similarity of each history item to the recommended one.
    Similarity,
    /// A fused model's score split exactly into its parts, each part
    /// explained by its own model's method and scaled by its weight.
    Fused,
}

impl Method {
    /// The attribution method of a model behind this explanation method.
    pub fn attribution(self) -> Option<Attribution> {
        match self {
            Method::Exact | Method::Popularity | Method::Fused => None,
            Method::Occlusion => Some(Attribution::Occlusion),
            Method::Attention => Some(Attribution::Attention),
            Method::AttentionRollout => Some(Attribution::AttentionRollout),
            Method::GradientInput => Some(Attribution::GradientInput),
            Method::IntegratedGradients => Some(Attribution::IntegratedGradients),
            Method::Similarity => Some(Attribution::Similarity),
        }
    }
    /// The explanation method of an attribution.
    pub fn of(a: Attribution) -> Method {
        match a {
            Attribution::Occlusion => Method::Occlusion,
            Attribution::Attention => Method::Attention,
            Attribution::AttentionRollout => Method::AttentionRollout,
            Attribution::GradientInput => Method::GradientInput,
            Attribution::IntegratedGradients => Method::IntegratedGradients,
            Attribution::Similarity => Method::Similarity,
        }
    }
    /// Its name in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Popularity => "popularity",
            Method::Fused => "fused",
            other => other.attribution().map_or("", Attribution::name),
        }
    }
}

impl Method {
    /// Every method, in the order they are listed.
    pub const ALL: [Method; 9] = [
        Method::Exact,
        Method::Popularity,
        Method::Fused,
        Method::IntegratedGradients,
        Method::Occlusion,
        Method::Attention,
        Method::AttentionRollout,
        Method::GradientInput,
        Method::Similarity,
    ];
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    /// A method by its JSON name; `-` reads as `_` (`integrated-gradients`).
    fn from_str(s: &str) -> std::result::Result<Method, String> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Method::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown explanation method `{s}` (one of {})",
                    names.join(", ")
                )
            })
    }
}

/// `method` if `model` offers it, else an error naming the ones it does
/// (`None`: the model's default, the first of [`methods`]).
pub fn offered(model: &Model, method: Option<Method>) -> Result<Method> {
    let offered = methods(model);
    match method {
        None => offered.first().copied().ok_or(Error::Unsupported {
            op: "explanations",
            model: model.kind(),
        }),
        Some(m) if offered.contains(&m) => Ok(m),
        Some(m) => {
            let names: Vec<&str> = offered.iter().map(|m| m.name()).collect();
            Err(Error::param(
                "method",
                format!(
                    "{} does not offer `{m}`; it offers {}",
                    model.kind(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ))
        }
    }
}

/// The explanation methods `model` offers, its default first: the exact
/// decomposition or popularity where the model has one, else occlusion
/// (measured effects) and then the model's own attribution methods.
pub fn methods(model: &Model) -> Vec<Method> {
    if model.decomposer().is_some() {
        return vec![Method::Exact];
    }
    if model.popularity().is_some() {
        return vec![Method::Popularity];
    }
    if model.fused().is_some() {
        return vec![Method::Fused];
    }
    let mut out = Vec::new();
    if let Some(a) = model.attributor() {
        // Integrated gradients come first where the model offers them: their
        // shares add up to the score, and they cover features too.
        let offered = a.attributions();
        if offered.contains(&Attribution::IntegratedGradients) {
            out.push(Method::IntegratedGradients);
        }
        out.push(Method::Occlusion);
        for &m in offered {
            if m != Attribution::Occlusion && m != Attribution::IntegratedGradients {
                out.push(Method::of(m));
            }
        }
    }
    out
}

/// For a model that reads features ([`because_core::Featured`]): the
/// explanation of `target` for a known `user` (their features and ID) or a
/// stranger, with the history `items` (`values` are not read: the model
/// averages its history), by integrated gradients over every input; the
/// history items' shares are the contributions, and the bias is the rest
/// (the baseline plus the features' shares, returned beside). `None` for
/// other models.
pub fn explain_inputs(
    model: &Model,
    user: Option<u32>,
    items: &[u32],
    target: u32,
) -> Result<Option<(Explanation, because_core::FeatureAttribution)>> {
    explain_described(
        model,
        &because_core::Described {
            user,
            features: None,
            items: Some(items),
        },
        target,
    )
}

/// [`explain_inputs`] for a subject as the model reads them: a known user,
/// given feature tokens (a new user described by features alone), a
/// history, or any of these together.
pub fn explain_described(
    model: &Model,
    who: &because_core::Described<'_>,
    target: u32,
) -> Result<Option<(Explanation, because_core::FeatureAttribution)>> {
    let Some(f) = model.featured() else {
        return Ok(None);
    };
    let a = f.attribute_inputs(who, target)?;
    let items = who.items.unwrap_or(&[]);
    let e = assemble(
        items,
        target,
        a.score,
        a.history.clone(),
        None,
        Method::IntegratedGradients,
    );
    Ok(Some((e, a)))
}

/// Why an item is recommended, as plain data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The explained item.
    pub item: u32,
    /// Its score for this history.
    pub score: f32,
    /// The part of the score no history item accounts for.
    pub bias: f32,
    /// Whether contributions plus bias add up to the score exactly.
    pub exact: bool,
    /// What the contributions are.
    pub method: Method,
    /// Every history item's contribution, largest first.
    pub contributions: Vec<Contribution>,
    /// Share of the positive contributions carried by the top three, in [0, 1].
    pub confidence: f32,
    /// For the popularity model: how many interactions the item has.
    pub popularity: Option<f32>,
    /// For a fused model: each part's exact share of the score and its own
    /// explanation (empty otherwise).
    pub parts: Vec<PartExplanation>,
}

/// One part of a fused model's score, explained by its own model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartExplanation {
    /// The part (`session`, `history`).
    pub name: &'static str,
    /// The part's model, as a spec.
    pub model: String,
    /// How the part's model explains its own score.
    pub method: Method,
    /// The part's share of the fused score (they add up to it exactly).
    pub share: f32,
    /// What the part's own score is multiplied by in the fusion.
    pub scale: f32,
    /// The part's history items' contributions, scaled into the fused
    /// score's units, largest first.
    pub contributions: Vec<Contribution>,
}

impl Explanation {
    /// The `k` history items that support the recommendation most.
    pub fn top_items(&self, k: usize) -> Vec<u32> {
        self.contributions
            .iter()
            .filter(|c| c.weight > 0.0)
            .take(k)
            .map(|c| c.item)
            .collect()
    }
}

/// Explains several recommendations for one history, sharing work where the
/// model allows (one factorization of the user's system for ALS).
pub fn explain_many(
    model: &Model,
    items: &[u32],
    values: &[f32],
    targets: &[u32],
) -> Result<Vec<Explanation>> {
    match model.decomposer() {
        Some(d) => {
            model.check_query(&Query::History { items, values })?;
            if let Some(&t) = targets.iter().find(|&&t| t as usize >= model.n_items()) {
                return Err(Error::UnknownItem {
                    item: t,
                    n_items: model.n_items(),
                });
            }
            Ok(d.decompose_many(items, values, targets)
                .into_iter()
                .zip(targets)
                .map(|(dec, &target)| {
                    assemble(items, target, dec.score, dec.weights, None, Method::Exact)
                })
                .collect())
        }
        None => targets
            .iter()
            .map(|&t| explain(model, items, values, t))
            .collect(),
    }
}

/// Explains `model`'s score for `target` given a history, by the model's
/// default method (the first of [`methods`]).
pub fn explain(model: &Model, items: &[u32], values: &[f32], target: u32) -> Result<Explanation> {
    explain_by(model, items, values, target, offered(model, None)?)
}

/// Explains `model`'s score for `target` given a history (in time order
/// for sequential models) by `method`, which must be one of [`methods`].
pub fn explain_by(
    model: &Model,
    items: &[u32],
    values: &[f32],
    target: u32,
    method: Method,
) -> Result<Explanation> {
    offered(model, Some(method))?;
    model.check_query(&Query::History { items, values })?;
    if target as usize >= model.n_items() {
        return Err(Error::UnknownItem {
            item: target,
            n_items: model.n_items(),
        });
    }
    let unsupported = || Error::Unsupported {
        op: "this explanation method",
        model: model.kind(),
    };
    let (score, weights, popularity) = match method {
        Method::Exact => {
            let d = model.decomposer().ok_or_else(unsupported)?;
            let dec = d.decompose(items, values, target);
            (dec.score, dec.weights, None)
        }
        Method::Popularity => {
            let p = model.popularity().ok_or_else(unsupported)?;
            let c = p.item_counts()[target as usize];
            (c, vec![0.0; items.len()], Some(c))
        }
        Method::Fused => {
            let f = model.fused().ok_or_else(unsupported)?;
            let mut weights = vec![0.0f32; items.len()];
            let mut parts = Vec::new();
            for p in f.parts(items, values)? {
                let (share, method, mut contributions) = if p.scale == 0.0 || p.items.is_empty() {
                    (p.offset, Method::Exact, Vec::new())
                } else {
                    let sub = explain(p.model, &p.items, &p.values, target)?;
                    let c: Vec<Contribution> = sub
                        .contributions
                        .iter()
                        .map(|c| Contribution {
                            item: c.item,
                            weight: p.scale * c.weight,
                        })
                        .collect();
                    (p.scale * sub.score + p.offset, sub.method, c)
                };
                // Each item's contribution goes to its latest place in the history.
                for c in &contributions {
                    if let Some(k) = items.iter().rposition(|&i| i == c.item) {
                        weights[k] += c.weight;
                    }
                }
                contributions
                    .sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.item.cmp(&b.item)));
                parts.push(PartExplanation {
                    name: p.name,
                    model: p.model.spec().to_string(),
                    method,
                    share,
                    scale: p.scale,
                    contributions,
                });
            }
            let score: f32 = parts.iter().map(|p| p.share).sum();
            let mut e = assemble(items, target, score, weights, None, method);
            e.parts = parts;
            return Ok(e);
        }
        other => {
            let a = model.attributor().ok_or_else(unsupported)?;
            let m = other.attribution().ok_or_else(unsupported)?;
            if !a.attributions().contains(&m) {
                return Err(unsupported());
            }
            let score = model.scores(&Query::History { items, values })?[target as usize];
            (score, a.attribute(m, items, target)?, None)
        }
    };
    Ok(assemble(items, target, score, weights, popularity, method))
}

fn assemble(
    items: &[u32],
    target: u32,
    score: f32,
    weights: Vec<f32>,
    popularity: Option<f32>,
    method: Method,
) -> Explanation {
    let mut contributions: Vec<Contribution> = items
        .iter()
        .zip(&weights)
        .map(|(&item, &weight)| Contribution { item, weight })
        .collect();
    contributions.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.item.cmp(&b.item)));
    let positive: f32 = contributions.iter().map(|c| c.weight.max(0.0)).sum();
    let top: f32 = contributions
        .iter()
        .take(3)
        .map(|c| c.weight.max(0.0))
        .sum();
    let exact = method == Method::Exact;
    // Popularity: all of the score; effects in score units: what they leave
    // unexplained; attention weights are shares, not score units.
    let bias = match method {
        Method::Exact => 0.0,
        Method::Popularity => score,
        Method::Occlusion | Method::GradientInput | Method::IntegratedGradients | Method::Fused => {
            score - weights.iter().sum::<f32>()
        }
        Method::Attention | Method::AttentionRollout | Method::Similarity => 0.0,
    };
    Explanation {
        item: target,
        score,
        bias,
        exact,
        method,
        contributions,
        confidence: if positive > 0.0 { top / positive } else { 0.0 },
        popularity,
        parts: Vec::new(),
    }
}

/// The rank (1-based) of `target` among the items not in `exclude`, when
/// scored for the history (`items`, `values`); ties go to the smaller index.
pub fn rank_of(
    model: &dyn Recommender,
    items: &[u32],
    values: &[f32],
    exclude: &[u32],
    target: u32,
) -> Result<usize> {
    let scores = model.scores(&Query::History { items, values })?;
    Ok(rank_in(&scores, &mask(scores.len(), exclude), target))
}

/// `true` at the indices in `items`.
fn mask(len: usize, items: &[u32]) -> Vec<bool> {
    let mut m = vec![false; len];
    for &i in items {
        m[i as usize] = true;
    }
    m
}

/// The rank (1-based) of `target` in `scores` among the items not
/// `excluded`; ties go to the smaller index.
fn rank_in(scores: &[f32], excluded: &[bool], target: u32) -> usize {
    let t = scores[target as usize];
    1 + scores
        .iter()
        .enumerate()
        .filter(|&(i, &s)| {
            !excluded[i] && i as u32 != target && (s > t || (s == t && (i as u32) < target))
        })
        .count()
}

/// A counterfactual explanation: the history items whose removal pushes the
/// item out of the top `n`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counterfactual {
    /// The removed history items, in the order they were tried.
    pub removed: Vec<u32>,
    /// Whether re-scoring without them confirmed that the item leaves the top `n`.
    pub verified: bool,
    /// The item's rank with the full history.
    pub rank_before: usize,
    /// Its rank without the removed items.
    pub rank_after: usize,
}

/// How many items beyond the top `n` a counterfactual search watches as
/// competitors that could overtake the explained item.
const WATCHED: usize = 20;

/// How many of the strongest supporting items a counterfactual search
/// considers removing at each step.
const CANDIDATES: usize = 25;

/// Searches greedily for at most `max_size` history items whose removal
/// drops `e.item` out of the top `n`, and verifies every candidate set by
/// re-scoring.
///
/// Taking out the items that support the explained item most is not enough:
/// they often support its competitors as well (a sequel and its neighbours
/// rest on the same original). So each step scores the reduced history,
/// takes the top `n` + 20 competitors, decomposes their scores and the
/// item's own (one factorization for ALS), and removes the supporting item
/// that leaves the `n`-th competitor furthest ahead of the item, by the
/// decomposition. For EASE, item-kNN and PureSVD that prediction is exact;
/// for ALS, whose user factors are re-solved, it is a first-order estimate,
/// which is why every step is re-scored. Items of the full history stay
/// excluded from the ranking.
pub fn counterfactual(
    model: &Model,
    items: &[u32],
    values: &[f32],
    e: &Explanation,
    n: usize,
    max_size: usize,
) -> Result<Counterfactual> {
    counterfactual_for(model, None, items, values, e, n, max_size)
}

/// [`counterfactual`] for a known `user` of a model that reads features
/// ([`because_core::Featured`]): each re-ranking scores that user (their
/// features and ID) with the reduced history, as their recommendations
/// were scored. For other models, or without a user, the same as
/// [`counterfactual`].
pub fn counterfactual_for(
    model: &Model,
    user: Option<u32>,
    items: &[u32],
    values: &[f32],
    e: &Explanation,
    n: usize,
    max_size: usize,
) -> Result<Counterfactual> {
    let featured = model.featured().filter(|_| user.is_some());
    let score = |ki: &[u32], kv: &[f32]| -> Result<Vec<f32>> {
        match featured {
            Some(f) => {
                let mut out = vec![0.0f32; model.n_items()];
                f.score_described(
                    &because_core::Described {
                        user,
                        features: None,
                        items: Some(ki),
                    },
                    &mut out,
                )?;
                Ok(out)
            }
            None => model.scores(&Query::History {
                items: ki,
                values: kv,
            }),
        }
    };
    if n == 0 {
        return Err(Error::param("n", "the list size must be at least 1"));
    }
    let target = e.item;
    let excluded = mask(model.n_items(), items);
    let mut removed: Vec<u32> = Vec::new();
    let (mut rank_before, mut rank_after) = (0, 0);
    for step in 0..=max_size {
        let (ki, kv): (Vec<u32>, Vec<f32>) = items
            .iter()
            .zip(values)
            .filter(|(i, _)| !removed.contains(i))
            .map(|(&i, &v)| (i, v))
            .unzip();
        let mut scores = score(&ki, &kv)?;
        let rank = rank_in(&scores, &excluded, target);
        if step == 0 {
            rank_before = rank;
        }
        rank_after = rank;
        if rank > n && step > 0 {
            return Ok(Counterfactual {
                removed,
                verified: true,
                rank_before,
                rank_after,
            });
        }
        if step == max_size || ki.is_empty() {
            break;
        }
        if model.decomposer().is_none() {
            // Without a decomposition of the competitors' scores: remove the
            // item with the largest measured effect on the target's own score
            // for the reduced history, and re-rank.
            let x = match featured {
                Some(_) => explain_inputs(model, user, &ki, target)?
                    .map(|(x, _)| x)
                    .ok_or(Error::Unsupported {
                        op: "explanations",
                        model: model.kind(),
                    })?,
                None => explain(model, &ki, &kv, target)?,
            };
            let Some(c) = x.contributions.iter().find(|c| c.weight > 0.0) else {
                break;
            };
            removed.push(c.item);
            continue;
        }
        for (i, s) in scores.iter_mut().enumerate() {
            if excluded[i] || i as u32 == target {
                *s = f32::NEG_INFINITY;
            }
        }
        let competitors: Vec<u32> = because_core::top_k(&scores, n + WATCHED)
            .into_iter()
            .filter(|c| c.score.is_finite())
            .map(|c| c.item)
            .collect();
        let mut targets = vec![target];
        targets.extend(&competitors);
        let ex = explain_many(model, &ki, &kv, &targets)?;
        // Contribution of each reduced-history item, per explained item.
        let contribution = |x: &Explanation, item: u32| -> f32 {
            x.contributions
                .iter()
                .find(|c| c.item == item)
                .map_or(0.0, |c| c.weight)
        };
        let mut best: Option<(f32, f32, u32)> = None;
        for c in ex[0]
            .contributions
            .iter()
            .filter(|c| c.weight > 0.0)
            .take(CANDIDATES)
        {
            // Margins of the competitors over the item once `c.item` is gone.
            let mut margins: Vec<f32> = ex[1..]
                .iter()
                .map(|x| (x.score - contribution(x, c.item)) - (ex[0].score - c.weight))
                .collect();
            margins.sort_by(|a, b| b.total_cmp(a));
            let nth = margins.get(n - 1).copied().unwrap_or(f32::NEG_INFINITY);
            let better = match best {
                None => true,
                Some((m, w, _)) => nth > m || (nth == m && c.weight > w),
            };
            if better {
                best = Some((nth, c.weight, c.item));
            }
        }
        let Some((_, _, next)) = best else { break };
        removed.push(next);
    }
    Ok(Counterfactual {
        removed,
        verified: false,
        rank_before,
        rank_after,
    })
}

/// Result of the deletion test for one recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Deletion {
    /// Rank lost when removing the `k` items the explanation names.
    pub explained_drop: f64,
    /// Mean rank lost when removing `k` random history items.
    pub random_drop: f64,
}

/// Removes the `k` history items with the largest contributions, and (on
/// average over `draws`) `k` random history items, and measures how far the
/// explained item falls in each case.
pub fn deletion_test(
    model: &dyn Recommender,
    items: &[u32],
    values: &[f32],
    e: &Explanation,
    k: usize,
    draws: usize,
    seed: u64,
) -> Result<Deletion> {
    let before = rank_of(model, items, values, items, e.item)? as f64;
    let without = |drop: &[u32]| -> Result<f64> {
        let (ki, kv): (Vec<u32>, Vec<f32>) = items
            .iter()
            .zip(values)
            .filter(|(i, _)| !drop.contains(i))
            .map(|(&i, &v)| (i, v))
            .unzip();
        Ok(rank_of(model, &ki, &kv, items, e.item)? as f64 - before)
    };
    let named: Vec<u32> = e.contributions.iter().take(k).map(|c| c.item).collect();
    let explained_drop = without(&named)?;
    let mut rng = Rng::new(seed);
    let mut total = 0.0;
    for _ in 0..draws {
        let mut pool = items.to_vec();
        rng.shuffle(&mut pool);
        pool.truncate(k);
        total += without(&pool)?;
    }
    Ok(Deletion {
        explained_drop,
        random_drop: total / draws.max(1) as f64,
    })
}

/// The deletion test of one explanation method.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MethodDeletion {
    /// The method.
    pub method: Method,
    /// Its deletion test.
    pub deletion: Deletion,
}

/// Fidelity measurements for one explained recommendation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measured {
    /// The user (index).
    pub user: u32,
    /// The recommended item.
    pub item: u32,
    /// Rank lost when removing the `k` named items, and `k` random ones.
    pub deletion: Deletion,
    /// Whether removing the `k` named items drops the item out of the top `n`.
    pub named_leaves_top: bool,
    /// The counterfactual found.
    pub counterfactual: Counterfactual,
    /// Whether at least one history item supports the recommendation.
    pub supported: bool,
    /// Whether the explanation has a non-trivial reason (a supporting item, or popularity).
    pub covered: bool,
    /// The top three supporting items.
    pub top3: Vec<u32>,
    /// The deletion test of every explanation method the model offers (the
    /// default one first, as in `deletion`).
    pub by_method: Vec<MethodDeletion>,
}

/// Explains and measures the top-`n` recommendations of `users` (for their
/// training histories): deletion test with `k` items (`draws` random
/// draws), counterfactual (at most `max_size` items), support and coverage.
pub fn measure(
    model: &Model,
    users: &[u32],
    n: usize,
    k: usize,
    draws: usize,
    max_size: usize,
    seed: u64,
) -> Result<Vec<Measured>> {
    use rayon::prelude::*;
    let per_user: Vec<Vec<Measured>> = users
        .par_iter()
        .map(|&u| -> Result<Vec<Measured>> {
            let (items, values) = model.history(u);
            let recs = model.recommend(&because_core::Request::new(
                Query::History { items, values },
                n,
            ))?;
            let mut out = Vec::new();
            for r in recs {
                let e = explain(model, items, values, r.item)?;
                let deletion = deletion_test(model, items, values, &e, k, draws, seed ^ u as u64)?;
                let named = e.top_items(k);
                let (ki, kv): (Vec<u32>, Vec<f32>) = items
                    .iter()
                    .zip(values)
                    .filter(|(i, _)| !named.contains(i))
                    .map(|(&i, &v)| (i, v))
                    .unzip();
                let named_leaves_top =
                    !named.is_empty() && rank_of(model, &ki, &kv, items, r.item)? > n;
                let counterfactual = counterfactual(model, items, values, &e, n, max_size)?;
                let supported = e.contributions.iter().any(|c| c.weight > 0.0);
                let mut by_method = vec![MethodDeletion {
                    method: e.method,
                    deletion,
                }];
                for &m in methods(model).iter().skip(1) {
                    let x = explain_by(model, items, values, r.item, m)?;
                    by_method.push(MethodDeletion {
                        method: m,
                        deletion: deletion_test(
                            model,
                            items,
                            values,
                            &x,
                            k,
                            draws,
                            seed ^ u as u64,
                        )?,
                    });
                }
                out.push(Measured {
                    user: u,
                    item: r.item,
                    deletion,
                    named_leaves_top,
                    counterfactual,
                    supported,
                    covered: supported || e.popularity.is_some(),
                    top3: e.top_items(3),
                    by_method,
                });
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    Ok(per_user.into_iter().flatten().collect())
}

/// Mean overlap of the top-3 reasons of the same recommendations in two
/// measurements (two trainings with different seeds); `None` when no
/// recommendation is shared.
pub fn stability(a: &[Measured], b: &[Measured]) -> Option<f64> {
    let mut total = 0.0;
    let mut shared = 0usize;
    for x in a {
        if let Some(y) = b.iter().find(|y| y.user == x.user && y.item == x.item) {
            let denom = x.top3.len().max(y.top3.len());
            if denom > 0 {
                total += x.top3.iter().filter(|i| y.top3.contains(i)).count() as f64 / denom as f64;
                shared += 1;
            }
        }
    }
    (shared > 0).then(|| total / shared as f64)
}

/// Smallest group an exemplar may describe, so that no statement is about
/// a handful of identifiable people.
pub const MIN_GROUP: usize = 5;

/// An exemplar: how many other people who have all of `items` also chose
/// the recommended item. Only a count is ever reported, and only when it
/// is at least `min_group` (else `None`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exemplar {
    /// The shared history items.
    pub items: Vec<u32>,
    /// People in the training data who have all of them and the recommended item.
    pub people: usize,
    /// People who have all of them.
    pub of: usize,
}

/// The exemplar for `e`: people with the explanation's top two history
/// items (or the top one, if two leave too small a group) who also have the
/// recommended item. `exclude` is the asking user's own training row, if any.
pub fn exemplar(
    model: &Model,
    e: &Explanation,
    exclude: Option<u32>,
    min_group: usize,
) -> Option<Exemplar> {
    exemplar_with(model, e, exclude, min_group, &mut Groups::default())
}

/// The groups [`exemplar_with`] has formed (people with a set of history
/// items, as a bitset of users, and their number), kept across the items of
/// one list: their top supporting items are often the same.
#[derive(Default)]
pub struct Groups(std::collections::HashMap<Vec<u32>, (Vec<u64>, usize)>);

/// [`exemplar`], reusing the groups of earlier calls for the same subject.
pub fn exemplar_with(
    model: &Model,
    e: &Explanation,
    exclude: Option<u32>,
    min_group: usize,
    groups: &mut Groups,
) -> Option<Exemplar> {
    let iu = &model.train().iu;
    let users_of = |i: u32| iu.row_indices(i as usize);
    // Membership in a bitset of users: linear in the lists' lengths, with
    // no branchy merges (popular items have tens of thousands of users).
    let words = model.n_users().div_ceil(64);
    let mark = |users: &[u32]| -> Vec<u64> {
        let mut bits = vec![0u64; words];
        for &u in users {
            bits[u as usize / 64] |= 1 << (u % 64);
        }
        bits
    };
    let has = |bits: &[u64], u: u32| bits[u as usize / 64] >> (u % 64) & 1 == 1;
    let top = e.top_items(2);
    for take in (1..=top.len()).rev() {
        let (group, of) = groups.0.entry(top[..take].to_vec()).or_insert_with(|| {
            let mut group = mark(users_of(top[0]));
            for &i in &top[1..take] {
                let both: Vec<u32> = users_of(i)
                    .iter()
                    .copied()
                    .filter(|&u| has(&group, u))
                    .collect();
                group = mark(&both);
            }
            if let Some(u) = exclude {
                if (u as usize) < model.n_users() {
                    group[u as usize / 64] &= !(1 << (u % 64));
                }
            }
            let of = group.iter().map(|w| w.count_ones() as usize).sum();
            (group, of)
        });
        let (group, of) = (&*group, *of);
        let chose = users_of(e.item).iter().filter(|&&u| has(group, u)).count();
        if chose >= min_group {
            return Some(Exemplar {
                items: top[..take].to_vec(),
                people: chose,
                of,
            });
        }
    }
    None
}

/// Feature levels (genres, say) the recommended item shares with the
/// explanation's top three history items, with how many of them share each.
pub fn feature_matches(
    e: &Explanation,
    codes: &[Vec<u32>],
    levels: &[String],
) -> Vec<(String, usize)> {
    let of = |i: u32| codes.get(i as usize).map(Vec::as_slice).unwrap_or(&[]);
    let target = of(e.item);
    let mut out: Vec<(String, usize)> = target
        .iter()
        .map(|&l| {
            (
                levels[l as usize].clone(),
                e.top_items(3)
                    .iter()
                    .filter(|&&i| of(i).contains(&l))
                    .count(),
            )
        })
        .filter(|x| x.1 > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The explanation's top three supporting items that belong to the user's
/// latest session (a session reason: "it follows what you just viewed").
pub fn session_reason(e: &Explanation, latest_session: &[u32]) -> Vec<u32> {
    e.top_items(3)
        .into_iter()
        .filter(|i| latest_session.contains(i))
        .collect()
}

/// Narrative templates (`key = text` lines).
pub struct Templates(Vec<(String, String)>);

impl Default for Templates {
    fn default() -> Self {
        Templates::parse(include_str!("../templates/en.txt"))
    }
}

impl Templates {
    /// Parses `key = text` lines; `#` starts a comment line.
    pub fn parse(text: &str) -> Templates {
        Templates(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| {
                    l.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                })
                .collect(),
        )
    }

    /// Names joined as a list: "A", "A and B", "A, B and C" (the word for
    /// "and" is template `and`).
    pub fn list<S: AsRef<str>>(&self, names: &[S]) -> String {
        match names {
            [] => String::new(),
            [a] => a.as_ref().to_string(),
            [init @ .., last] => {
                let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
                let and = match self.get("and") {
                    "" => "and",
                    word => word,
                };
                format!("{} {and} {}", init.join(", "), last.as_ref())
            }
        }
    }

    /// Whether template `key` exists.
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Fills template `key` with `(name, value)` pairs.
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.get(key).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }
}

/// A short sentence for `e`, naming history items by `title`.
pub fn narrative(e: &Explanation, title: &dyn Fn(u32) -> String, t: &Templates) -> String {
    if e.popularity.is_some() {
        return t.fill("popular", &[]);
    }
    let top: Vec<String> = e.top_items(3).into_iter().map(title).collect();
    let verb = t.get("verb").to_string();
    let positive = e.contributions.iter().filter(|c| c.weight > 0.0).count();
    // Approximate methods say what the named titles rest on.
    let key = format!("method.{}", e.method.name());
    let evidence = if e.exact || top.is_empty() || !t.has(&key) {
        String::new()
    } else {
        format!(" {}", t.fill(&key, &[]))
    };
    let sentence = match top.as_slice() {
        [] => t.fill("popular", &[]),
        [a] => t.fill("because_one", &[("verb", &verb), ("a", a)]),
        [a, b] => t.fill("because_two", &[("verb", &verb), ("a", a), ("b", b)]),
        [a, b, c, ..] if positive <= 3 => t.fill(
            "because_three",
            &[("verb", &verb), ("a", a), ("b", b), ("c", c)],
        ),
        [a, b, ..] => t.fill(
            "because_more",
            &[
                ("verb", &verb),
                ("a", a),
                ("b", b),
                ("n", &(positive - 2).to_string()),
            ],
        ),
    };
    sentence + &evidence
}

/// A sentence for a verified counterfactual.
pub fn counterfactual_sentence(
    c: &Counterfactual,
    n: usize,
    title: &dyn Fn(u32) -> String,
    t: &Templates,
) -> Option<String> {
    if !c.verified {
        return None;
    }
    if c.removed.is_empty() {
        return None;
    }
    let names: Vec<String> = c.removed.iter().map(|&i| title(i)).collect();
    let items = t.list(&names);
    Some(t.fill(
        "counterfactual",
        &[("items", &items), ("n", &n.to_string())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::testing::block_data;
    use because_models::ModelSpec;

    #[test]
    fn methods_read_by_their_json_names() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{m}\""));
        }
        assert_eq!(
            "Integrated-Gradients".parse::<Method>().unwrap(),
            Method::IntegratedGradients
        );
        let e = "shapley".parse::<Method>().unwrap_err();
        assert!(
            e.contains("shapley") && e.contains("attention_rollout"),
            "{e}"
        );
    }

    #[test]
    fn a_method_the_model_lacks_is_an_error_naming_those_it_offers() {
        let x = block_data(20, 12, 4, 3);
        let ease = "ease:lambda=1"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        assert_eq!(offered(&ease, None).unwrap(), Method::Exact);
        assert_eq!(offered(&ease, Some(Method::Exact)).unwrap(), Method::Exact);
        let e = offered(&ease, Some(Method::Occlusion))
            .unwrap_err()
            .to_string();
        assert!(e.contains("method") && e.contains("offers exact"), "{e}");
        let items = [0u32, 1];
        let by = explain_by(&ease, &items, &[1.0, 1.0], 5, Method::Attention);
        assert!(by.is_err());
    }

    #[test]
    fn narratives_use_templates_and_titles() {
        let t = Templates::default();
        let e = Explanation {
            item: 9,
            score: 1.0,
            bias: 0.0,
            exact: true,
            method: Method::Exact,
            parts: Vec::new(),
            contributions: vec![
                Contribution {
                    item: 1,
                    weight: 0.6,
                },
                Contribution {
                    item: 2,
                    weight: 0.4,
                },
                Contribution {
                    item: 3,
                    weight: -0.1,
                },
            ],
            confidence: 1.0,
            popularity: None,
        };
        let title = |i: u32| ["", "Alien (1979)", "Aliens (1986)", "Heat"][i as usize].to_string();
        assert_eq!(
            narrative(&e, &title, &t),
            "Because you liked Alien (1979) and Aliens (1986)."
        );
        let c = Counterfactual {
            removed: vec![1, 2],
            verified: true,
            rank_before: 1,
            rank_after: 14,
        };
        assert_eq!(
            counterfactual_sentence(&c, 10, &title, &t).unwrap(),
            "Without Alien (1979) and Aliens (1986) in your history, this would not be among your top 10."
        );
        let custom = Templates::parse("because_two = Weil du {a} und {b} {verb}.\nverb = mochtest");
        assert_eq!(
            narrative(&e, &title, &custom),
            "Weil du Alien (1979) und Aliens (1986) mochtest."
        );
    }

    #[test]
    fn lists_and_bad_list_sizes() {
        let t = Templates::default();
        assert_eq!(t.list::<&str>(&[]), "");
        assert_eq!(t.list(&["A"]), "A");
        assert_eq!(t.list(&["A", "B", "C"]), "A, B and C");
        assert_eq!(Templates::parse("and = und").list(&["A", "B"]), "A und B");
        let x = block_data(20, 12, 4, 1);
        let m = "ease:lambda=5"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        let (items, values) = (x.user_items(0), x.user_values(0));
        let e = explain(&m, items, values, 11).unwrap();
        assert!(matches!(
            counterfactual(&m, items, values, &e, 0, 5),
            Err(Error::InvalidParam { ref name, .. }) if name == "n"
        ));
    }

    #[test]
    fn exemplars_count_groups_and_respect_the_minimum() {
        let x = block_data(60, 20, 8, 3);
        let m = "itemknn".parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        let (items, values) = (x.user_items(0), x.user_values(0));
        let rec = m
            .recommend(&because_core::Request::new(Query::User(0), 1))
            .unwrap()[0]
            .item;
        let e = explain(&m, items, values, rec).unwrap();
        let ex = exemplar(&m, &e, Some(0), 1).unwrap();
        // Count by brute force over users.
        let brute = (1..60u32)
            .filter(|&u| {
                ex.items.iter().all(|i| x.user_items(u).contains(i))
                    && x.user_items(u).contains(&rec)
            })
            .count();
        assert_eq!(ex.people, brute);
        assert!(ex.people <= ex.of);
        assert!(exemplar(&m, &e, Some(0), 10_000).is_none());
        let json = serde_json::to_string(&ex).unwrap();
        assert!(!json.contains("user"));
    }

    #[test]
    fn explaining_many_equals_explaining_each() {
        let x = block_data(30, 20, 6, 2);
        let m = "als:factors=6,iterations=4"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        let (items, values) = (x.user_items(3), x.user_values(3));
        let many = explain_many(&m, items, values, &[1, 5, 7]).unwrap();
        for (e, t) in many.iter().zip([1, 5, 7]) {
            let one = explain(&m, items, values, t).unwrap();
            assert_eq!(e.contributions.len(), one.contributions.len());
            assert!((e.score - one.score).abs() <= 1e-5 * (1.0 + one.score.abs()));
            let score = m.scores(&Query::History { items, values }).unwrap()[t as usize];
            assert!(
                (e.score - score).abs() <= 1e-4 * (1.0 + score.abs()),
                "{} vs fold-in {score}",
                e.score
            );
        }
    }

    #[test]
    fn session_reasons_name_recent_supporters() {
        let e = Explanation {
            item: 9,
            score: 1.0,
            bias: 0.0,
            exact: true,
            method: Method::Exact,
            parts: Vec::new(),
            contributions: vec![
                Contribution {
                    item: 1,
                    weight: 0.6,
                },
                Contribution {
                    item: 2,
                    weight: 0.3,
                },
                Contribution {
                    item: 3,
                    weight: 0.1,
                },
            ],
            confidence: 1.0,
            popularity: None,
        };
        assert_eq!(session_reason(&e, &[2, 7]), vec![2]);
        assert!(session_reason(&e, &[7]).is_empty());
    }

    #[test]
    fn unsupported_models_say_so() {
        let x = block_data(20, 12, 4, 1);
        let m = "bpr:factors=4,epochs=2"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        assert!(matches!(
            explain(&m, x.user_items(0), x.user_values(0), 1),
            Err(Error::Unsupported { .. })
        ));
        let e = explain(&m, x.user_items(0), x.user_values(0), 99);
        assert!(e.is_err());
    }
}
