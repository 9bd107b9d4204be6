//! Global explanations: what drives a model's recommendations across users.

use crate::Measured;
use because_core::Scored;
use because_models::Model;
use serde::{Deserialize, Serialize};

/// Popularity bias of a set of recommendation lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PopularityBias {
    /// Share of recommendations that are among the most popular 1% of items.
    pub top1_share_of_recommendations: f64,
    /// Share of training interactions those items have.
    pub top1_share_of_interactions: f64,
}

/// Compares how often the most popular 1% of items (by `item_counts`) are
/// recommended with how often they are interacted with.
pub fn popularity_bias(recs: &[Vec<Scored>], item_counts: &[u32]) -> PopularityBias {
    let mut order: Vec<usize> = (0..item_counts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(item_counts[i]));
    let k = ((item_counts.len() as f64 * 0.01).ceil() as usize)
        .max(1)
        .min(item_counts.len());
    let mut head = vec![false; item_counts.len()];
    for &i in &order[..k] {
        head[i] = true;
    }
    let total_recs: usize = recs.iter().map(Vec::len).sum();
    let head_recs = recs
        .iter()
        .flatten()
        .filter(|s| head[s.item as usize])
        .count();
    let total: u64 = item_counts.iter().map(|&c| c as u64).sum();
    let head_inter: u64 = order[..k].iter().map(|&i| item_counts[i] as u64).sum();
    PopularityBias {
        top1_share_of_recommendations: head_recs as f64 / total_recs.max(1) as f64,
        top1_share_of_interactions: head_inter as f64 / total.max(1) as f64,
    }
}

/// History items that appear most often among the top-3 reasons.
pub fn top_drivers(measured: &[Measured], k: usize) -> Vec<(u32, usize)> {
    let mut counts: std::collections::HashMap<u32, usize> = Default::default();
    for m in measured {
        for &i in &m.top3 {
            *counts.entry(i).or_default() += 1;
        }
    }
    let mut v: Vec<(u32, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

/// Feature levels (genres, say) of the top-3 reason items, counted.
pub fn feature_drivers(
    measured: &[Measured],
    codes: &[Vec<u32>],
    levels: &[String],
) -> Vec<(String, usize)> {
    let mut counts = vec![0usize; levels.len()];
    for m in measured {
        for &i in &m.top3 {
            for &c in codes.get(i as usize).map(Vec::as_slice).unwrap_or(&[]) {
                counts[c as usize] += 1;
            }
        }
    }
    let mut v: Vec<(String, usize)> = levels
        .iter()
        .cloned()
        .zip(counts)
        .filter(|x| x.1 > 0)
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// A latent dimension described by its items.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Theme {
    /// The dimension.
    pub dimension: usize,
    /// Items with the largest values on it.
    pub top_items: Vec<u32>,
    /// The most common feature levels (genres) among them, with counts.
    pub dominant: Vec<(String, usize)>,
}

/// One theme per latent dimension of row-major item factors (`f` columns):
/// its `k` highest-loading items and their dominant feature levels.
pub fn themes(
    factors: &[f32],
    f: usize,
    k: usize,
    codes: Option<(&[Vec<u32>], &[String])>,
) -> Vec<Theme> {
    let n = factors.len() / f.max(1);
    (0..f)
        .map(|d| {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by(|&a, &b| {
                factors[b as usize * f + d]
                    .total_cmp(&factors[a as usize * f + d])
                    .then(a.cmp(&b))
            });
            order.truncate(k);
            let dominant = match codes {
                Some((codes, levels)) => {
                    let mut c = vec![0usize; levels.len()];
                    for &i in &order {
                        for &l in codes.get(i as usize).map(Vec::as_slice).unwrap_or(&[]) {
                            c[l as usize] += 1;
                        }
                    }
                    let mut v: Vec<(String, usize)> =
                        levels.iter().cloned().zip(c).filter(|x| x.1 > 0).collect();
                    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    v.truncate(3);
                    v
                }
                None => Vec::new(),
            };
            Theme {
                dimension: d,
                top_items: order,
                dominant,
            }
        })
        .collect()
}

/// How alike two items are: the cosine of their embeddings for factor
/// models, otherwise the cosine of the sets of users who chose them in the
/// training data (the item-item similarity matrix of the explainable-model
/// seed). In `[-1, 1]`; 0 for an item nobody chose.
pub fn item_similarity(model: &Model, a: u32, b: u32) -> f32 {
    if let Some((factors, f)) = model.item_embeddings() {
        let row = |i: u32| &factors[i as usize * f..(i as usize + 1) * f];
        let (x, y) = (row(a), row(b));
        let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        let norm = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
        let d = norm(x) * norm(y);
        return if d > 0.0 {
            (dot / d).clamp(-1.0, 1.0)
        } else {
            0.0
        };
    }
    let iu = &model.train().iu;
    let (x, y) = (iu.row_indices(a as usize), iu.row_indices(b as usize));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f32 / ((x.len() * y.len()) as f32).sqrt()
}

/// Projects row-major item factors (`f` columns) on their first two
/// principal components (power iteration with deflation, deterministic).
pub fn pca_2d(factors: &[f32], f: usize) -> Vec<(f64, f64)> {
    let n = factors.len() / f.max(1);
    if n == 0 || f == 0 {
        return Vec::new();
    }
    let mean: Vec<f64> = (0..f)
        .map(|d| (0..n).map(|i| factors[i * f + d] as f64).sum::<f64>() / n as f64)
        .collect();
    let mut cov = vec![0.0f64; f * f];
    for i in 0..n {
        let row: Vec<f64> = (0..f)
            .map(|d| factors[i * f + d] as f64 - mean[d])
            .collect();
        for a in 0..f {
            for b in 0..f {
                cov[a * f + b] += row[a] * row[b];
            }
        }
    }
    let mut components: Vec<Vec<f64>> = Vec::new();
    for _ in 0..2.min(f) {
        let mut v: Vec<f64> = (0..f).map(|d| 1.0 + d as f64 * 0.01).collect();
        for _ in 0..200 {
            let mut w: Vec<f64> = (0..f)
                .map(|a| (0..f).map(|b| cov[a * f + b] * v[b]).sum())
                .collect();
            for c in &components {
                let p: f64 = w.iter().zip(c).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(c).for_each(|(x, y)| *x -= p * y);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            v = w.into_iter().map(|x| x / norm).collect();
        }
        components.push(v);
    }
    (0..n)
        .map(|i| {
            let proj = |c: &Vec<f64>| {
                (0..f)
                    .map(|d| (factors[i * f + d] as f64 - mean[d]) * c[d])
                    .sum::<f64>()
            };
            (
                proj(&components[0]),
                components.get(1).map(proj).unwrap_or(0.0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::testing::block_data;
    use because_models::ModelSpec;

    #[test]
    fn pca_finds_the_main_direction() {
        // Points along (1, 1) with a little spread across.
        let mut f = Vec::new();
        for k in 0..50 {
            let t = k as f32 / 10.0;
            f.extend([t + 0.01 * (k % 3) as f32, t - 0.01 * (k % 2) as f32]);
        }
        let p = pca_2d(&f, 2);
        let spread = |sel: fn(&(f64, f64)) -> f64| {
            let v: Vec<f64> = p.iter().map(sel).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>()
        };
        assert!(spread(|x| x.0) > 100.0 * spread(|x| x.1));
    }

    #[test]
    fn bias_and_themes() {
        let counts = vec![100, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        let recs = vec![vec![
            Scored {
                item: 0,
                score: 1.0,
            },
            Scored {
                item: 1,
                score: 0.5,
            },
        ]];
        let b = popularity_bias(&recs, &counts);
        assert_eq!(b.top1_share_of_recommendations, 0.5);
        assert!((b.top1_share_of_interactions - 100.0 / 109.0).abs() < 1e-12);
        // Two dimensions: items 0 and 1 load on the first, item 2 on the second.
        let factors = vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0];
        let codes = vec![vec![0], vec![0], vec![1]];
        let levels = vec!["Horror".to_string(), "Comedy".to_string()];
        let t = themes(&factors, 2, 2, Some((&codes, &levels)));
        assert_eq!(t[0].top_items, vec![0, 1]);
        assert_eq!(t[0].dominant[0], ("Horror".to_string(), 2));
        assert_eq!(t[1].top_items[0], 2);
    }

    #[test]
    fn item_similarity_is_a_cosine() {
        let x = block_data(40, 16, 4, 5);
        let knn = "itemknn".parse::<ModelSpec>().unwrap().fit(&x).unwrap();
        let users = |i: u32| -> Vec<u32> {
            (0..40u32)
                .filter(|&u| x.user_items(u).contains(&i))
                .collect()
        };
        for (a, b) in [(0, 1), (0, 9), (3, 3), (5, 12)] {
            let (ua, ub) = (users(a), users(b));
            let both = ua.iter().filter(|u| ub.contains(u)).count() as f32;
            let want = both / ((ua.len() * ub.len()) as f32).sqrt();
            assert!((item_similarity(&knn, a, b) - want).abs() < 1e-6);
        }
        let als = "als:factors=4,iterations=3"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        assert!((item_similarity(&als, 2, 2) - 1.0).abs() < 1e-5);
        let s = item_similarity(&als, 2, 7);
        assert!((-1.0..=1.0).contains(&s));
        assert_eq!(s, item_similarity(&als, 7, 2));
    }
}
