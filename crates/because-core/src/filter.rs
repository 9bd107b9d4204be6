//! Filters that remove interactions: rating thresholds, activity bounds and
//! iterated k-cores. Each returns a keep-mask over interactions (in row
//! order) so that the caller can count what it dropped.

use crate::{Error, Interactions, Result};
use std::collections::VecDeque;

/// Keep-mask of the interactions whose value is at least `threshold`.
pub fn at_least(x: &Interactions, threshold: f32) -> Vec<bool> {
    x.values().iter().map(|&v| v >= threshold).collect()
}

/// Bounds on the number of interactions per user and per item. `None` means
/// unbounded. Users are filtered first, then items, in one pass each; use
/// [`kcore`] for the iterated form of the lower bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivityBounds {
    /// Fewest interactions a user must have.
    pub min_user: Option<u32>,
    /// Most interactions a user may have (more marks a bot or a shared account).
    pub max_user: Option<u32>,
    /// Fewest interactions an item must have.
    pub min_item: Option<u32>,
    /// Most interactions an item may have.
    pub max_item: Option<u32>,
}

impl ActivityBounds {
    /// Checks that each minimum is at most its maximum.
    pub fn validate(&self) -> Result<()> {
        if let (Some(lo), Some(hi)) = (self.min_user, self.max_user) {
            if lo > hi {
                return Err(Error::param(
                    "min-user",
                    format!("{lo} exceeds max-user {hi}"),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_item, self.max_item) {
            if lo > hi {
                return Err(Error::param(
                    "min-item",
                    format!("{lo} exceeds max-item {hi}"),
                ));
            }
        }
        Ok(())
    }

    /// Keep-masks after the user bounds and after both bounds.
    pub fn apply(&self, x: &Interactions) -> (Vec<bool>, Vec<bool>) {
        let within = |c: u32, lo: Option<u32>, hi: Option<u32>| {
            lo.is_none_or(|l| c >= l) && hi.is_none_or(|h| c <= h)
        };
        let uc = x.user_counts();
        let users = x.users();
        let after_users: Vec<bool> = users
            .iter()
            .map(|&u| within(uc[u as usize], self.min_user, self.max_user))
            .collect();
        let mut ic = vec![0u32; x.n_items()];
        for (k, &i) in x.items().iter().enumerate() {
            if after_users[k] {
                ic[i as usize] += 1;
            }
        }
        let after_items = after_users
            .iter()
            .zip(x.items())
            .map(|(&keep, &i)| keep && within(ic[i as usize], self.min_item, self.max_item))
            .collect();
        (after_users, after_items)
    }
}

/// The iterated (`user_k`, `item_k`)-core: the largest set of interactions in
/// which every user that remains has at least `user_k` of them and every item
/// that remains has at least `item_k`. Computed by peeling to a fixed point,
/// which yields the unique maximal such set.
pub fn kcore(x: &Interactions, user_k: u32, item_k: u32) -> Vec<bool> {
    let n = x.len();
    let mut alive = vec![true; n];
    if user_k <= 1 && item_k <= 1 {
        return alive;
    }
    let users = x.users();
    let mut user_deg = x.user_counts();
    let mut item_deg = x.item_counts();
    // Positions of each item's interactions.
    let mut item_ptr = vec![0usize; x.n_items() + 1];
    for &i in x.items() {
        item_ptr[i as usize + 1] += 1;
    }
    for i in 0..x.n_items() {
        item_ptr[i + 1] += item_ptr[i];
    }
    let mut cursor = item_ptr[..x.n_items()].to_vec();
    let mut item_pos = vec![0usize; n];
    for (k, &i) in x.items().iter().enumerate() {
        item_pos[cursor[i as usize]] = k;
        cursor[i as usize] += 1;
    }
    // Vertices: users are 0..n_users, items follow.
    let nu = x.n_users();
    let mut queued = vec![false; nu + x.n_items()];
    let mut queue = VecDeque::new();
    for u in 0..nu {
        if user_deg[u] > 0 && user_deg[u] < user_k {
            queued[u] = true;
            queue.push_back(u);
        }
    }
    for i in 0..x.n_items() {
        if item_deg[i] > 0 && item_deg[i] < item_k {
            queued[nu + i] = true;
            queue.push_back(nu + i);
        }
    }
    while let Some(v) = queue.pop_front() {
        if v < nu {
            for k in x.range(v as u32) {
                if !alive[k] {
                    continue;
                }
                alive[k] = false;
                user_deg[v] -= 1;
                let i = x.items()[k] as usize;
                item_deg[i] -= 1;
                if !queued[nu + i] && item_deg[i] > 0 && item_deg[i] < item_k {
                    queued[nu + i] = true;
                    queue.push_back(nu + i);
                }
            }
        } else {
            let i = v - nu;
            for &k in &item_pos[item_ptr[i]..item_ptr[i + 1]] {
                if !alive[k] {
                    continue;
                }
                alive[k] = false;
                item_deg[i] -= 1;
                let u = users[k] as usize;
                user_deg[u] -= 1;
                if !queued[u] && user_deg[u] > 0 && user_deg[u] < user_k {
                    queued[u] = true;
                    queue.push_back(u);
                }
            }
        }
    }
    alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn satisfies_core(x: &Interactions, keep: &[bool], uk: u32, ik: u32) -> bool {
        let mut ud = vec![0u32; x.n_users()];
        let mut id = vec![0u32; x.n_items()];
        for (k, (u, i)) in x.users().into_iter().zip(x.items()).enumerate() {
            if keep[k] {
                ud[u as usize] += 1;
                id[*i as usize] += 1;
            }
        }
        ud.iter().all(|&d| d == 0 || d >= uk) && id.iter().all(|&d| d == 0 || d >= ik)
    }

    fn arb_interactions() -> impl Strategy<Value = Interactions> {
        (1usize..6, 1usize..6).prop_flat_map(|(nu, ni)| {
            proptest::collection::btree_set((0..nu as u32, 0..ni as u32), 0..=nu * ni).prop_map(
                move |pairs| {
                    Interactions::from_tuples(
                        nu,
                        ni,
                        pairs.into_iter().map(|(u, i)| (u, i, 1.0, 0)),
                    )
                    .unwrap()
                },
            )
        })
    }

    proptest! {
        #[test]
        fn kcore_is_the_largest_core(x in arb_interactions(), uk in 1u32..4, ik in 1u32..4) {
            let keep = kcore(&x, uk, ik);
            prop_assert!(satisfies_core(&x, &keep, uk, ik));
            // Brute force over vertex subsets: no valid induced subgraph has more edges.
            let (nu, ni) = (x.n_users(), x.n_items());
            let users = x.users();
            let kept = keep.iter().filter(|&&k| k).count();
            let mut best = 0;
            for mask in 0u32..(1 << (nu + ni)) {
                let sub: Vec<bool> = users.iter().zip(x.items()).map(|(&u, &i)| {
                    mask & (1 << u) != 0 && mask & (1 << (nu + i as usize)) != 0
                }).collect();
                if satisfies_core(&x, &sub, uk, ik) {
                    best = best.max(sub.iter().filter(|&&k| k).count());
                }
            }
            prop_assert_eq!(kept, best);
        }
    }

    #[test]
    fn kcore_peels_to_a_fixed_point() {
        // User 2 has one item; removing it leaves item 2 with one user, which then goes too.
        let x = Interactions::from_tuples(
            3,
            3,
            [
                (0, 0, 1.0, 0),
                (0, 1, 1.0, 0),
                (1, 0, 1.0, 0),
                (1, 1, 1.0, 0),
                (1, 2, 1.0, 0),
                (2, 2, 1.0, 0),
            ],
        )
        .unwrap();
        let keep = kcore(&x, 2, 2);
        assert_eq!(keep, vec![true, true, true, true, false, false]);
    }

    #[test]
    fn activity_bounds() {
        let x = Interactions::from_tuples(2, 2, [(0, 0, 1.0, 0), (0, 1, 1.0, 0), (1, 0, 1.0, 0)])
            .unwrap();
        let b = ActivityBounds {
            max_user: Some(1),
            ..Default::default()
        };
        assert_eq!(b.apply(&x).1, vec![false, false, true]);
        let b = ActivityBounds {
            min_item: Some(2),
            ..Default::default()
        };
        assert_eq!(b.apply(&x).1, vec![true, false, true]);
        assert!(ActivityBounds {
            min_user: Some(3),
            max_user: Some(2),
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn threshold() {
        let x = Interactions::from_tuples(1, 2, [(0, 0, 3.0, 0), (0, 1, 4.0, 1)]).unwrap();
        assert_eq!(at_least(&x, 4.0), vec![false, true]);
    }
}
