//! Requests by index, as the Python package's implicit-shaped API makes
//! them: users and items are the model's own indices, and a user's row of
//! a users × items matrix may stand for their history.

use crate::{bad, ModelHandle, Result, MAX_K};
use because_core::{Query, Recommender, Request, Scored};

/// Top-`n` lists for users by index.
#[derive(Clone, Debug)]
pub struct IndexRequest<'a> {
    /// The users (model indices; with `recalculate`, any number that
    /// names the row).
    pub users: &'a [u32],
    /// How many items each list holds at most (1 to [`MAX_K`]).
    pub n: usize,
    /// Each user's row (items and values), in the order of `users`; `None`
    /// for the model's own training histories.
    pub rows: Option<Vec<(&'a [u32], &'a [f32])>>,
    /// Leave the row's (or the history's) items out.
    pub filter_liked: bool,
    /// Score each user from their row (fold-in) instead of as trained.
    pub recalculate: bool,
    /// Items never recommended.
    pub deny: &'a [u32],
    /// When given, the only items considered.
    pub allow: Option<&'a [u32]>,
}

impl ModelHandle {
    /// Top-`n` lists for users by index (see [`IndexRequest`]), in the
    /// order of `users`. Every index is checked; the common case (trained
    /// users, their own histories left out) is scored in batches.
    pub fn recommend_indices(&self, req: &IndexRequest<'_>) -> Result<Vec<Vec<Scored>>> {
        let m = self.model();
        if req.n == 0 || req.n > MAX_K {
            return Err(bad("n", format!("must be between 1 and {MAX_K}")));
        }
        if let Some(rows) = &req.rows {
            if rows.len() != req.users.len() {
                return Err(bad(
                    "user_items",
                    format!("{} rows for {} users", rows.len(), req.users.len()),
                ));
            }
            if let Some(&i) = rows
                .iter()
                .flat_map(|(items, _)| items.iter())
                .find(|&&i| i as usize >= m.n_items())
            {
                return Err(because_core::Error::UnknownItem {
                    item: i,
                    n_items: m.n_items(),
                }
                .into());
            }
        }
        if req.recalculate && req.rows.is_none() {
            return Err(bad("recalculate_user", "needs user_items"));
        }
        for &i in req.deny.iter().chain(req.allow.into_iter().flatten()) {
            if i as usize >= m.n_items() {
                return Err(because_core::Error::UnknownItem {
                    item: i,
                    n_items: m.n_items(),
                }
                .into());
            }
        }
        if !req.recalculate {
            if let Some(&u) = req.users.iter().find(|&&u| u as usize >= m.n_users()) {
                return Err(because_core::Error::UnknownUser {
                    user: u,
                    n_users: m.n_users(),
                }
                .into());
            }
        }
        let users = req.users;
        let row = |j: usize| match &req.rows {
            Some(r) => r[j],
            None => m.history(users[j]),
        };
        // The batched path serves the common case: the trained users,
        // their own histories left out.
        let own = |j: usize| req.rows.is_none() || row(j).0 == m.history(users[j]).0;
        if req.filter_liked && !req.recalculate && req.allow.is_none() && (0..users.len()).all(own)
        {
            let deny: Vec<&[u32]> = vec![req.deny; users.len()];
            return Ok(m.recommend_users_denying(users, req.n, &deny)?);
        }
        let mut out = Vec::with_capacity(users.len());
        for (j, &u) in users.iter().enumerate() {
            let (items, values) = row(j);
            let mut deny = req.deny.to_vec();
            if req.filter_liked {
                deny.extend_from_slice(items);
            }
            let query = if req.recalculate {
                Query::History { items, values }
            } else {
                Query::User(u)
            };
            out.push(self.top(&Request {
                query,
                k: req.n,
                exclude_seen: false,
                allow: req.allow,
                deny: &deny,
            })?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;
    use because_models::persist::Meta;
    use because_models::ModelSpec;

    fn handle() -> ModelHandle {
        let x = because_core::testing::block_data(20, 15, 4, 1);
        let model = "ease:lambda=5"
            .parse::<ModelSpec>()
            .unwrap()
            .fit(&x)
            .unwrap();
        let meta = Meta {
            user_ids: (0..20).map(|u| format!("u{u}")).collect(),
            item_ids: (0..15).map(|i| format!("i{i}")).collect(),
            ..Default::default()
        };
        ModelHandle::new(model, meta).unwrap()
    }

    fn request(users: &[u32], n: usize) -> IndexRequest<'_> {
        IndexRequest {
            users,
            n,
            rows: None,
            filter_liked: true,
            recalculate: false,
            deny: &[],
            allow: None,
        }
    }

    #[test]
    fn requests_by_index_are_bounded_and_rank_as_the_model_does() {
        let h = handle();
        let users = [0, 3, 7];
        for bad in [0, MAX_K + 1] {
            let e = h.recommend_indices(&request(&users, bad)).unwrap_err();
            assert!(
                matches!(e, ServiceError::BadRequest { field: "n", .. }),
                "{e}"
            );
        }
        assert!(h.recommend_indices(&request(&[20], 5)).is_err());
        let no_rows = IndexRequest {
            recalculate: true,
            ..request(&users, 5)
        };
        assert!(h.recommend_indices(&no_rows).is_err());
        let denied = [99];
        let bad_deny = IndexRequest {
            deny: &denied,
            ..request(&users, 5)
        };
        assert!(h.recommend_indices(&bad_deny).is_err());
        // The batched path (own histories left out) and the one-by-one path
        // (an allow-list of every item) give the same lists.
        let batched = h.recommend_indices(&request(&users, 5)).unwrap();
        let all: Vec<u32> = (0..15).collect();
        let single = h
            .recommend_indices(&IndexRequest {
                allow: Some(&all),
                ..request(&users, 5)
            })
            .unwrap();
        let items = |l: &[Vec<Scored>]| -> Vec<Vec<u32>> {
            l.iter()
                .map(|v| v.iter().map(|s| s.item).collect())
                .collect()
        };
        assert_eq!(items(&batched), items(&single));
        for (j, &u) in users.iter().enumerate() {
            let seen = h.model().history(u).0;
            assert!(batched[j].iter().all(|s| !seen.contains(&s.item)));
        }
        // A user's row folded in scores like their own history.
        let rows: Vec<(&[u32], &[f32])> = users.iter().map(|&u| h.model().history(u)).collect();
        let folded = h
            .recommend_indices(&IndexRequest {
                rows: Some(rows),
                recalculate: true,
                ..request(&users, 5)
            })
            .unwrap();
        assert_eq!(items(&folded).len(), 3);
        assert!(folded.iter().all(|l| l.len() == 5));
    }
}
