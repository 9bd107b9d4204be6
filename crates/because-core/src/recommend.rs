//! The recommender interface.
//!
//! Models implement a few required methods: sizes, the training history of
//! a user, and scoring of all items for a [`Query`]. Everything else (top-N
//! with exclusions, allow- and deny-lists, batches, similar items) is
//! provided here, so it behaves the same for every model.

use crate::capability::{
    Attribute, Decompose, InnerProduct, ItemEmbeddings, PopularityPrior, RatingPredictor,
};
pub use crate::query::{Query, Sequence};
use crate::{Error, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Duration;

/// A recommended item and its score.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// Item index.
    pub item: u32,
    /// Model score (higher is better; not comparable across models).
    pub score: f32,
}

/// What to recommend.
#[derive(Clone, Debug, PartialEq)]
pub struct Request<'a> {
    /// Whose recommendations.
    pub query: Query<'a>,
    /// How many.
    pub k: usize,
    /// Leave out items in the user's history (the default).
    pub exclude_seen: bool,
    /// Only these items, if given.
    pub allow: Option<&'a [u32]>,
    /// Never these items.
    pub deny: &'a [u32],
}

impl<'a> Request<'a> {
    /// Top `k` for `query`, excluding seen items.
    pub fn new(query: Query<'a>, k: usize) -> Request<'a> {
        Request {
            query,
            k,
            exclude_seen: true,
            allow: None,
            deny: &[],
        }
    }
}

/// What an observer learns after one epoch (iteration) of training.
#[derive(Clone, Copy)]
pub struct Epoch<'a> {
    /// The epoch, from 1.
    pub epoch: usize,
    /// How many epochs training will run at most.
    pub of: usize,
    /// The training loss, for models that compute one.
    pub loss: Option<f64>,
    /// Time since fitting started.
    pub elapsed: Duration,
    /// The model as it stands, on the epochs where the caller asked for a
    /// snapshot (every epoch for models where that costs nothing).
    pub model: Option<&'a dyn Recommender>,
}

impl std::fmt::Debug for Epoch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Epoch")
            .field("epoch", &self.epoch)
            .field("of", &self.of)
            .field("loss", &self.loss)
            .field("elapsed", &self.elapsed)
            .field("model", &self.model.map(|m| m.kind()))
            .finish()
    }
}

/// Called after each epoch of an iterative model (once for the others);
/// `Break` stops training early and keeps the model as it stands.
pub type EpochObserver<'a> = dyn FnMut(&Epoch<'_>) -> std::ops::ControlFlow<()> + 'a;

/// An observer that watches nothing.
pub fn no_observer() -> impl FnMut(&Epoch<'_>) -> std::ops::ControlFlow<()> {
    |_| std::ops::ControlFlow::Continue(())
}

/// A trained recommender.
pub trait Recommender: Send + Sync {
    /// The model's kind, such as `"ease"`.
    fn kind(&self) -> &'static str;
    /// Number of users known at training time.
    fn n_users(&self) -> usize;
    /// Number of items.
    fn n_items(&self) -> usize;
    /// The training history of `user`: items and values.
    fn history(&self, user: u32) -> (&[u32], &[f32]);
    /// Writes the score of every item for `query` into `out` (`n_items` long).
    fn score_into(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()>;
    /// Writes the similarity of every item to `item` into `out`.
    fn similar_into(&self, item: u32, out: &mut [f32]) -> Result<()> {
        let _ = (item, out);
        Err(Error::Unsupported {
            op: "similar items",
            model: self.kind(),
        })
    }

    /// The exact decomposition of scores, if the model has one.
    fn decomposer(&self) -> Option<&dyn Decompose> {
        None
    }
    /// Item embeddings, if the model has them.
    fn embeddings(&self) -> Option<&dyn ItemEmbeddings> {
        None
    }
    /// The inner-product form of the scores, if they have one.
    fn inner_product(&self) -> Option<&dyn InnerProduct> {
        None
    }
    /// Rating predictions, if the model makes them.
    fn rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        None
    }
    /// Popularity counts, if they are the model's score.
    fn popularity(&self) -> Option<&dyn PopularityPrior> {
        None
    }
    /// The model's own attribution methods, if it has any.
    fn attributor(&self) -> Option<&dyn Attribute> {
        None
    }
    /// Scoring and attributions over user and item features, for models
    /// that read them.
    fn featured(&self) -> Option<&dyn crate::capability::Featured> {
        None
    }

    /// Writes the scores of every item for each of `users` into `out`
    /// (row-major, `users.len() × n_items`). Models with a faster batched
    /// form (a matrix product) override it; users are already checked.
    fn score_users_into(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let n = self.n_items();
        for (&u, row) in users.iter().zip(out.chunks_mut(n.max(1))) {
            self.score_into(&Query::User(u), row)?;
        }
        Ok(())
    }

    /// Checks a query against the model's sizes.
    fn check_query(&self, query: &Query<'_>) -> Result<()> {
        match *query {
            Query::User(u) if u as usize >= self.n_users() => Err(Error::UnknownUser {
                user: u,
                n_users: self.n_users(),
            }),
            Query::History { items, values } | Query::Sequence(Sequence { items, values, .. }) => {
                if let Query::Sequence(s) = query {
                    let bad = |len: Option<usize>| len.is_some_and(|n| n != items.len());
                    if bad(s.times.map(<[i64]>::len)) || bad(s.events.map(<[u8]>::len)) {
                        return Err(Error::Shape(format!(
                            "{} sequence items but times or event types of another length",
                            items.len()
                        )));
                    }
                }
                if items.len() != values.len() {
                    return Err(Error::Shape(format!(
                        "{} history items but {} values",
                        items.len(),
                        values.len()
                    )));
                }
                match items.iter().find(|&&i| i as usize >= self.n_items()) {
                    Some(&i) => Err(Error::UnknownItem {
                        item: i,
                        n_items: self.n_items(),
                    }),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Scores of all items for `query`.
    fn scores(&self, query: &Query<'_>) -> Result<Vec<f32>> {
        self.check_query(query)?;
        let mut out = vec![0.0; self.n_items()];
        self.score_into(query, &mut out)?;
        Ok(out)
    }

    /// The top items for a request, best first; ties go to the smaller index.
    fn recommend(&self, req: &Request<'_>) -> Result<Vec<Scored>> {
        let scores = self.scores(&req.query)?;
        let seen = match req.query.bag() {
            None => match req.query {
                Query::User(u) => self.history(u).0,
                _ => &[],
            },
            Some((items, _)) => items,
        };
        Ok(select(scores, seen, req))
    }

    /// Top `k` unseen items for many known users, in parallel batches.
    fn recommend_users(&self, users: &[u32], k: usize) -> Result<Vec<Vec<Scored>>> {
        self.recommend_users_denying(users, k, &vec![&[][..]; users.len()])
    }

    /// Top `k` unseen items for many known users, also leaving out
    /// `deny[j]` for `users[j]` (such as validation items at test time).
    fn recommend_users_denying(
        &self,
        users: &[u32],
        k: usize,
        deny: &[&[u32]],
    ) -> Result<Vec<Vec<Scored>>> {
        if deny.len() != users.len() {
            return Err(Error::Shape(format!(
                "{} deny lists for {} users",
                deny.len(),
                users.len()
            )));
        }
        if let Some(&u) = users.iter().find(|&&u| u as usize >= self.n_users()) {
            return Err(Error::UnknownUser {
                user: u,
                n_users: self.n_users(),
            });
        }
        const BATCH: usize = 128;
        let n = self.n_items();
        let batch = |us: &[u32], ds: &[&[u32]]| -> Result<Vec<Vec<Scored>>> {
            let mut scores = vec![0.0f32; us.len() * n];
            self.score_users_into(us, &mut scores)?;
            Ok(us
                .iter()
                .zip(ds)
                .zip(scores.chunks_mut(n.max(1)))
                .map(|((&u, d), row)| {
                    for &i in self.history(u).0.iter().chain(d.iter()) {
                        if let Some(s) = row.get_mut(i as usize) {
                            *s = f32::NEG_INFINITY;
                        }
                    }
                    top_k(row, k)
                })
                .collect())
        };
        // One batch runs on the calling thread: no hand-off to a pool for,
        // say, a single user's request.
        if users.len() <= BATCH {
            return batch(users, deny);
        }
        let batches: Vec<Vec<Vec<Scored>>> = users
            .par_chunks(BATCH)
            .zip(deny.par_chunks(BATCH))
            .map(|(us, ds)| batch(us, ds))
            .collect::<Result<_>>()?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// The `k` items most similar to `item` (itself excluded).
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        if item as usize >= self.n_items() {
            return Err(Error::UnknownItem {
                item,
                n_items: self.n_items(),
            });
        }
        let mut out = vec![0.0; self.n_items()];
        self.similar_into(item, &mut out)?;
        out[item as usize] = f32::NEG_INFINITY;
        Ok(top_k(&out, k))
    }
}

/// The `k` best finite-or-not-excluded scores, best first; ties to the smaller index.
pub fn top_k(scores: &[f32], k: usize) -> Vec<Scored> {
    let k = k.min(scores.len());
    if k == 0 {
        return Vec::new();
    }
    let better = |a: &Scored, b: &Scored| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item));
    let mut heap: Vec<Scored> = Vec::with_capacity(k + 1);
    // A sorted buffer of the best k so far; cheap for the small k of recommendations.
    let mut threshold = f32::NEG_INFINITY;
    for (i, &s) in scores.iter().enumerate() {
        if s == f32::NEG_INFINITY || s.is_nan() || (heap.len() == k && s <= threshold) {
            continue;
        }
        let cand = Scored {
            item: i as u32,
            score: s,
        };
        let pos = heap.partition_point(|h| better(h, &cand) == std::cmp::Ordering::Less);
        heap.insert(pos, cand);
        if heap.len() > k {
            heap.pop();
        }
        if heap.len() == k {
            threshold = heap[k - 1].score;
        }
    }
    heap
}

/// The top `req.k` of `scores` under `req`'s rules: `seen` left out when
/// `req.exclude_seen`, `req.deny` left out, only `req.allow` when given.
/// [`Recommender::recommend`] is this over the model's scores; callers that
/// score another way (a described user) select the same way.
pub fn select(mut scores: Vec<f32>, seen: &[u32], req: &Request<'_>) -> Vec<Scored> {
    if req.exclude_seen {
        for &i in seen {
            if let Some(s) = scores.get_mut(i as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
    }
    for &i in req.deny {
        if let Some(s) = scores.get_mut(i as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
    match req.allow {
        Some(allow) => {
            let mut cand: Vec<Scored> = allow
                .iter()
                .filter(|&&i| (i as usize) < scores.len() && scores[i as usize] > f32::NEG_INFINITY)
                .map(|&i| Scored {
                    item: i,
                    score: scores[i as usize],
                })
                .collect();
            cand.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
            cand.dedup_by_key(|s| s.item);
            cand.truncate(req.k);
            cand
        }
        None => top_k(&scores, req.k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn top_k_matches_a_full_sort(scores in proptest::collection::vec(-5i32..5, 0..60), k in 0usize..10) {
            let scores: Vec<f32> = scores.into_iter().map(|s| if s == -5 { f32::NEG_INFINITY } else { s as f32 }).collect();
            let mut all: Vec<Scored> = scores.iter().enumerate().filter(|(_, s)| s.is_finite()).map(|(i, &s)| Scored { item: i as u32, score: s }).collect();
            all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
            all.truncate(k);
            prop_assert_eq!(top_k(&scores, k), all);
        }
    }
}
