//! Ranking metrics of one user's list, with binary relevance.
//!
//! Definitions (`rel(i)` is 1 when the item at rank `i`, 1-based, is
//! relevant; `R` is the number of relevant items; only the first `k` ranks
//! count):
//!
//! * Precision@k = hits / k.
//! * Recall@k = hits / R.
//! * NDCG@k = DCG / IDCG with DCG = Σ rel(i) / log2(i + 1) and IDCG the DCG
//!   of min(R, k) hits at the top.
//! * AP@k = Σ Precision@i · rel(i) / min(R, k); MAP@k is its mean.
//! * RR@k = 1 / rank of the first hit (0 without one); MRR@k is its mean.
//! * HitRate@k = 1 if there is at least one hit.

/// The metrics a user's list is scored with.
pub const NAMES: [&str; 6] = ["precision", "recall", "ndcg", "map", "mrr", "hitrate"];

/// The six metrics ([`NAMES`]) of each list of IDs (best first) at `k`
/// against the relevant IDs at the same place (in any order, repeats
/// ignored): the evaluator's definitions for lists made elsewhere (Spark
/// partitions).
pub fn at_k_by_id(
    ranked: &[Vec<String>],
    relevant: &[Vec<String>],
    k: usize,
) -> because_core::Result<Vec<[f64; 6]>> {
    if ranked.len() != relevant.len() {
        return Err(because_core::Error::param(
            "relevant",
            "as many relevant sets as lists are needed",
        ));
    }
    if k == 0 {
        return Err(because_core::Error::param("k", "must be at least 1"));
    }
    let mut vocab = because_core::Vocab::new();
    Ok(ranked
        .iter()
        .zip(relevant)
        .map(|(list, rel)| {
            let list: Vec<u32> = list.iter().map(|i| vocab.intern(i)).collect();
            let mut rel: Vec<u32> = rel.iter().map(|i| vocab.intern(i)).collect();
            rel.sort_unstable();
            rel.dedup();
            at_k(&list, &rel, k)
        })
        .collect())
}

/// All six metrics of `ranked` (best first) at `k` against `relevant` (sorted).
pub fn at_k(ranked: &[u32], relevant: &[u32], k: usize) -> [f64; 6] {
    let r = relevant.len();
    if r == 0 || k == 0 {
        return [0.0; 6];
    }
    let mut hits = 0usize;
    let mut dcg = 0.0;
    let mut ap = 0.0;
    let mut rr = 0.0;
    for (pos, item) in ranked.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / ((pos + 2) as f64).log2();
            ap += hits as f64 / (pos + 1) as f64;
            if rr == 0.0 {
                rr = 1.0 / (pos + 1) as f64;
            }
        }
    }
    let idcg: f64 = (0..r.min(k)).map(|p| 1.0 / ((p + 2) as f64).log2()).sum();
    [
        hits as f64 / k as f64,
        hits as f64 / r as f64,
        dcg / idcg,
        ap / r.min(k) as f64,
        rr,
        if hits > 0 { 1.0 } else { 0.0 },
    ]
}

/// Root mean squared error.
pub fn rmse(predicted: &[f32], truth: &[f32]) -> f64 {
    let n = predicted.len().min(truth.len());
    if n == 0 {
        return 0.0;
    }
    (predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| ((p - t) as f64).powi(2))
        .sum::<f64>()
        / n as f64)
        .sqrt()
}

/// Mean absolute error.
pub fn mae(predicted: &[f32], truth: &[f32]) -> f64 {
    let n = predicted.len().min(truth.len());
    if n == 0 {
        return 0.0;
    }
    predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| ((p - t) as f64).abs())
        .sum::<f64>()
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_example() {
        // Relevant {2, 5}; ranked 2 (hit), 9, 5 (hit).
        let m = at_k(&[2, 9, 5], &[2, 5], 3);
        assert!((m[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m[1], 1.0);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((m[2] - dcg / idcg).abs() < 1e-12);
        assert!((m[3] - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(m[4], 1.0);
        assert_eq!(m[5], 1.0);
        assert_eq!(at_k(&[1, 3], &[2], 2), [0.0; 6]);
        assert!((rmse(&[1.0, 3.0], &[2.0, 3.0]) - 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(mae(&[1.0, 3.0], &[2.0, 5.0]), 1.5);
    }

    proptest! {
        #[test]
        fn bounds_and_monotone_recall(ranked in proptest::collection::btree_set(0u32..30, 0..20), relevant in proptest::collection::btree_set(0u32..30, 1..8)) {
            let ranked: Vec<u32> = ranked.into_iter().collect();
            let relevant: Vec<u32> = relevant.into_iter().collect();
            let mut last_recall = 0.0;
            for k in 1..25 {
                let m = at_k(&ranked, &relevant, k);
                for v in m {
                    prop_assert!((0.0..=1.0 + 1e-12).contains(&v));
                }
                prop_assert!(m[1] + 1e-12 >= last_recall);
                last_recall = m[1];
            }
        }
    }
}
