//! Anonymous sessions as the unit of evaluation: the next-item protocol of
//! GRU4Rec's papers (Hidasi et al., ICLR 2016), for logs of short visits
//! where a visitor is known only within one session.
//!
//! A log is cut into sessions (each user's interactions split at gaps
//! longer than a timeout, or each user ID taken as one session when the
//! log's user column already holds session IDs). Sessions of at least two
//! events are ordered by when they end: the latest `test` share is the
//! test part, the share before it validation, the rest training, where each
//! session is one anonymous "user" (no identity joins two sessions). A
//! validation or test session is then replayed event by event: after each
//! prefix, the model ranks every item for the prefix as an ad-hoc history
//! (items the session already holds stay rankable: shoppers view items
//! again), and the next event's item is the target. Events whose item
//! training never saw are dropped from the replayed sessions and counted,
//! as the papers' preprocessing does; sessions left with fewer than two
//! events are dropped and counted.

use super::{Error, Result};
use because_core::{Dataset, Interactions, Query, Recommender, Request, Sessions};
use because_models::ModelSpec;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Training sessions (one row each) and the validation and test sessions
/// to replay, in the dataset's item vocabulary.
#[derive(Clone, Debug)]
pub struct SessionParts {
    /// Training sessions as rows of anonymous users.
    pub train: Interactions,
    /// Validation sessions, each its items in time order.
    pub validation: Vec<Vec<u32>>,
    /// Test sessions.
    pub test: Vec<Vec<u32>>,
    /// How the log became these parts.
    pub report: SessionReport,
}

/// What cutting and splitting the sessions did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    /// The inactivity gap that ends a session, in minutes (0: each user ID
    /// is one session).
    pub timeout_minutes: f64,
    /// Sessions found.
    pub sessions: usize,
    /// Sessions of a single event, dropped (nothing to predict).
    pub single_event: usize,
    /// Training sessions.
    pub train_sessions: usize,
    /// Events of the training sessions.
    pub train_events: usize,
    /// Validation sessions kept.
    pub validation_sessions: usize,
    /// The next-item predictions validation asks for.
    pub validation_predictions: usize,
    /// Test sessions kept.
    pub test_sessions: usize,
    /// The next-item predictions test asks for.
    pub test_predictions: usize,
    /// Validation and test events of items training never saw, dropped.
    pub unknown_item_events: usize,
    /// Validation and test sessions left with fewer than two events, dropped.
    pub too_short_after: usize,
}

impl SessionParts {
    /// Cuts `d` into sessions at gaps longer than `timeout_ms` (0: each
    /// user is one session) and splits them by end time into the shares
    /// `validation` and `test`.
    pub fn split(d: &Dataset, timeout_ms: i64, validation: f64, test: f64) -> Result<SessionParts> {
        for (key, share) in [("validation", validation), ("test", test)] {
            if !(share > 0.0 && share < 0.5) {
                return Err(
                    because_core::Error::param(key, "a share of sessions in (0, 0.5)").into(),
                );
            }
        }
        if timeout_ms < 0 {
            return Err(
                because_core::Error::param("session-timeout", "must not be negative").into(),
            );
        }
        let x = &d.interactions;
        let sessions = Sessions::build(
            x,
            if timeout_ms == 0 {
                i64::MAX
            } else {
                timeout_ms
            },
        )?;
        let times = x.times();
        let mut kept: Vec<usize> = (0..sessions.len())
            .filter(|&s| sessions.range(s).len() >= 2)
            .collect();
        let single_event = sessions.len() - kept.len();
        // By end time, ties by position: the latest sessions are tested.
        kept.sort_by_key(|&s| (times[sessions.range(s).end - 1], s));
        let n = kept.len();
        let n_test = ((n as f64) * test).round() as usize;
        let n_val = ((n as f64) * validation).round() as usize;
        if n_test == 0 || n_val == 0 || n_test + n_val >= n {
            return Err(because_core::Error::Empty(format!(
                "{n} sessions of two or more events are too few for validation and test shares of {validation} and {test}"
            ))
            .into());
        }
        let n_train = n - n_test - n_val;
        let items = x.items();
        let values = x.values();
        let mut tuples = Vec::new();
        for (row, &s) in kept[..n_train].iter().enumerate() {
            for k in sessions.range(s) {
                tuples.push((row as u32, items[k], values[k], times[k]));
            }
        }
        let train_events = tuples.len();
        let train = Interactions::from_tuples(n_train, x.n_items(), tuples)?;
        let counts = train.item_counts();
        let (mut unknown, mut short) = (0usize, 0usize);
        let mut replay = |ids: &[usize]| -> Vec<Vec<u32>> {
            ids.iter()
                .filter_map(|&s| {
                    let all = sessions.items(x, s);
                    let known: Vec<u32> = all
                        .iter()
                        .copied()
                        .filter(|&i| counts[i as usize] > 0)
                        .collect();
                    unknown += all.len() - known.len();
                    if known.len() < 2 {
                        short += 1;
                        return None;
                    }
                    Some(known)
                })
                .collect()
        };
        let validation = replay(&kept[n_train..n_train + n_val]);
        let test = replay(&kept[n_train + n_val..]);
        let predictions = |p: &[Vec<u32>]| p.iter().map(|s| s.len() - 1).sum();
        let report = SessionReport {
            timeout_minutes: timeout_ms as f64 / 60_000.0,
            sessions: sessions.len(),
            single_event,
            train_sessions: n_train,
            train_events,
            validation_sessions: validation.len(),
            validation_predictions: predictions(&validation),
            test_sessions: test.len(),
            test_predictions: predictions(&test),
            unknown_item_events: unknown,
            too_short_after: short,
        };
        Ok(SessionParts {
            train,
            validation,
            test,
            report,
        })
    }
}

/// Next-item metrics over replayed sessions: the mean over every
/// prediction (each event after a session's first) of `hitrate@k` (the
/// next item among the top k; with one target per prediction it is also
/// recall@k), `mrr@k` and `ndcg@k`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NextItem {
    /// Sessions replayed.
    pub sessions: usize,
    /// Predictions scored.
    pub predictions: usize,
    /// Metric name to mean.
    pub metrics: BTreeMap<String, f64>,
}

/// Replays `sessions` through `model` (see the module's documentation).
pub fn next_item(model: &dyn Recommender, sessions: &[Vec<u32>], ks: &[usize]) -> Result<NextItem> {
    if ks.is_empty() || ks.contains(&0) {
        return Err(because_core::Error::param("k", "cut-offs must be positive").into());
    }
    let kmax = *ks.iter().max().unwrap_or(&10);
    // The rank of each prediction's target (kmax when beyond the top kmax).
    let ranks: Vec<usize> = sessions
        .par_iter()
        .map(|s| -> Result<Vec<usize>> {
            let ones = vec![1.0f32; s.len()];
            (1..s.len())
                .map(|t| {
                    let req = Request {
                        query: Query::History {
                            items: &s[..t],
                            values: &ones[..t],
                        },
                        k: kmax,
                        exclude_seen: false,
                        allow: None,
                        deny: &[],
                    };
                    let top = model.recommend(&req)?;
                    Ok(top.iter().position(|r| r.item == s[t]).unwrap_or(kmax))
                })
                .collect()
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let n = ranks.len().max(1) as f64;
    let mut metrics = BTreeMap::new();
    for &k in ks {
        let (mut hit, mut mrr, mut ndcg) = (0.0, 0.0, 0.0);
        for &r in ranks.iter().filter(|&&r| r < k) {
            hit += 1.0;
            mrr += 1.0 / (r as f64 + 1.0);
            ndcg += 1.0 / (r as f64 + 2.0).log2();
        }
        metrics.insert(format!("hitrate@{k}"), hit / n);
        metrics.insert(format!("mrr@{k}"), mrr / n);
        metrics.insert(format!("ndcg@{k}"), ndcg / n);
    }
    Ok(NextItem {
        sessions: sessions.len(),
        predictions: ranks.len(),
        metrics,
    })
}

/// One model under the session protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionTrial {
    /// The model.
    pub spec: String,
    /// Seconds fitting on the training sessions took.
    pub fit_seconds: f64,
    /// Next-item metrics on validation (the best is chosen on these).
    pub validation: NextItem,
    /// Next-item metrics on test, from the same fit.
    pub test: NextItem,
}

/// Every model of a session comparison, and the one chosen.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionComparison {
    /// How the sessions were cut and split.
    pub report: SessionReport,
    /// The cut-offs.
    pub ks: Vec<usize>,
    /// Each model, in the order given.
    pub trials: Vec<SessionTrial>,
    /// The best on validation NDCG at the first cut-off (ties to the earlier).
    pub best: String,
    /// `validation ndcg@K`.
    pub selected_by: String,
}

/// Fits each spec on the training sessions and replays validation and
/// test through it, calling `on_trial` after each.
pub fn compare_sessions(
    parts: &SessionParts,
    specs: &[ModelSpec],
    ks: &[usize],
    on_trial: &mut dyn FnMut(&SessionTrial),
) -> Result<SessionComparison> {
    let k = *ks
        .first()
        .ok_or_else(|| because_core::Error::param("k", "give a cut-off"))?;
    let key = format!("ndcg@{k}");
    let mut trials = Vec::with_capacity(specs.len());
    for spec in specs {
        let start = Instant::now();
        let model = spec.fit(&parts.train).map_err(|source| Error::Fit {
            spec: spec.to_string(),
            source,
        })?;
        let fit_seconds = start.elapsed().as_secs_f64();
        let trial = SessionTrial {
            spec: spec.to_string(),
            fit_seconds,
            validation: next_item(&model, &parts.validation, ks)?,
            test: next_item(&model, &parts.test, ks)?,
        };
        on_trial(&trial);
        trials.push(trial);
    }
    let score = |t: &SessionTrial| t.validation.metrics.get(&key).copied().unwrap_or(f64::NAN);
    let best = trials
        .iter()
        .enumerate()
        .fold(None::<usize>, |b, (i, t)| match b {
            Some(j) if score(&trials[j]) >= score(t) => Some(j),
            _ => Some(i),
        })
        .map(|i| trials[i].spec.clone())
        .unwrap_or_default();
    Ok(SessionComparison {
        report: parts.report.clone(),
        ks: ks.to_vec(),
        trials,
        best,
        selected_by: format!("validation {key}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use because_core::Vocab;

    /// Visitors who walk a chain of items 0 → 1 → 2 → ... in sessions an
    /// hour apart.
    fn chains() -> Dataset {
        let hour = 3_600_000;
        let mut tuples = Vec::new();
        for u in 0..40u32 {
            for s in 0..3i64 {
                let start = (u as i64 * 3 + s) * hour;
                let first = (u * 7 + s as u32 * 13) % 60;
                for t in 0..4u32 {
                    tuples.push((u, (first + t) % 60, 1.0, start + t as i64 * 60_000));
                }
            }
        }
        let x = Interactions::from_tuples(40, 60, tuples).unwrap();
        Dataset {
            users: Vocab::from_ids((0..40).map(|u| format!("u{u}"))),
            items: Vocab::from_ids((0..60).map(|i| format!("i{i}"))),
            interactions: x,
            has_time: true,
            ..Default::default()
        }
    }

    #[test]
    fn sessions_split_by_end_time_and_replay_every_next_event() {
        let d = chains();
        let p = SessionParts::split(&d, 30 * 60_000, 0.1, 0.2).unwrap();
        let r = &p.report;
        assert_eq!((r.sessions, r.single_event), (120, 0));
        assert_eq!(
            (r.train_sessions, r.validation_sessions, r.test_sessions),
            (84, 12, 24)
        );
        assert_eq!(r.train_events, 84 * 4);
        assert_eq!(r.test_predictions, 24 * 3);
        // Items training never saw are dropped from replays, and counted.
        assert_eq!(
            r.validation_predictions + r.test_predictions + r.unknown_item_events,
            (12 + 24) * 3 - 2 * r.too_short_after
        );
        // One user ID per session: the whole log is one session per user.
        let whole = SessionParts::split(&d, 0, 0.1, 0.2).unwrap();
        assert_eq!(whole.report.sessions, 40);
        assert!(SessionParts::split(&d, 30 * 60_000, 0.0, 0.2).is_err());

        // A model of the chain predicts every next item; popularity cannot.
        let itemknn: ModelSpec = "itemknn".parse().unwrap();
        let pop: ModelSpec = "pop".parse().unwrap();
        let c = compare_sessions(&p, &[pop, itemknn], &[5, 1], &mut |_| {}).unwrap();
        let test = |i: usize, m: &str| c.trials[i].test.metrics[m];
        assert!(test(1, "hitrate@5") > 0.5, "{:?}", c.trials[1].test);
        assert!(test(1, "hitrate@5") > 2.0 * test(0, "hitrate@5"));
        assert!(test(1, "mrr@5") <= test(1, "hitrate@5"));
        assert_eq!(test(1, "ndcg@1"), test(1, "hitrate@1"));
        assert_eq!(c.best, "itemknn");
        assert_eq!(c.trials[1].test.predictions, r.test_predictions);
    }
}
