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
            out.push(m.recommend(&Request {
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
