use crate::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What to do with several interactions of the same user and item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    /// Keep every interaction (needed for repeat-aware sequences).
    Keep,
    /// One interaction whose value is the sum, at the time of the last one.
    Sum,
    /// One interaction with the largest value (the first that has it).
    Max,
    /// The first interaction in time.
    First,
    /// The last interaction in time (the default: a re-rating replaces a rating).
    #[default]
    Last,
}

impl std::str::FromStr for DuplicatePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "keep" => DuplicatePolicy::Keep,
            "sum" => DuplicatePolicy::Sum,
            "max" => DuplicatePolicy::Max,
            "first" => DuplicatePolicy::First,
            "last" => DuplicatePolicy::Last,
            other => {
                return Err(Error::param(
                    "duplicates",
                    format!("unknown policy {other:?} (expected keep, sum, max, first or last)"),
                ))
            }
        })
    }
}

/// A cleaned interaction log in compressed-row form: for each user, that
/// user's interactions ordered by time (ties keep input order).
///
/// Every interaction has an item index, a value (a rating, an event weight or
/// 1), a timestamp in milliseconds since the Unix epoch (the row number when
/// the input had no time column) and, when the input had event types, an
/// event code indexing the dataset's event names.
///
/// **Invariant:** `indptr` has `n_users + 1` non-decreasing entries, the
/// columns all have `indptr[n_users]` entries (events: that many or none), every
/// item index is below `n_items`, and each row is sorted by time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interactions {
    n_users: usize,
    n_items: usize,
    indptr: Vec<usize>,
    items: Vec<u32>,
    values: Vec<f32>,
    times: Vec<i64>,
    events: Vec<u8>,
}

/// One interaction, as yielded by [`Interactions::iter`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interaction {
    /// User index.
    pub user: u32,
    /// Item index.
    pub item: u32,
    /// Value: rating, event weight or 1.
    pub value: f32,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// Event code, if the data has event types.
    pub event: Option<u8>,
}

/// Interactions given column by column, in any order.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    /// User index of each interaction.
    pub users: Vec<u32>,
    /// Item index of each interaction.
    pub items: Vec<u32>,
    /// Value of each interaction.
    pub values: Vec<f32>,
    /// Time of each interaction (milliseconds).
    pub times: Vec<i64>,
    /// Event code of each interaction, or empty.
    pub events: Vec<u8>,
}

impl Columns {
    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.users.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
    /// Appends one interaction.
    pub fn push(&mut self, user: u32, item: u32, value: f32, time: i64, event: Option<u8>) {
        self.users.push(user);
        self.items.push(item);
        self.values.push(value);
        self.times.push(time);
        if let Some(e) = event {
            self.events.push(e);
        }
    }
}

/// `col` with `col[i]` moved to position `dest[i]` for all `i`.
fn scatter<T: Copy + Default>(col: Vec<T>, dest: &[u32]) -> Vec<T> {
    // Independent writes (the memory system overlaps them), where following
    // the permutation's cycles in place waits on one random access at a time.
    let mut out = vec![T::default(); col.len()];
    for (&v, &d) in col.iter().zip(dest) {
        out[d as usize] = v;
    }
    out
}

/// Splits `data` into the mutable row slices given by `indptr`.
fn rows_mut<'a, T>(mut data: &'a mut [T], indptr: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(indptr.len().saturating_sub(1));
    for w in indptr.windows(2) {
        let (head, tail) = data.split_at_mut(w[1] - w[0]);
        out.push(head);
        data = tail;
    }
    out
}

fn permute<T: Copy>(xs: &mut [T], perm: &[usize]) {
    let tmp: Vec<T> = perm.iter().map(|&p| xs[p]).collect();
    xs.copy_from_slice(&tmp);
}

impl Interactions {
    /// The interactions of a users × items matrix (`users` rows, `items`
    /// columns), each row's entries in column order, without times; every
    /// value must be finite.
    pub fn from_matrix(m: &crate::CsrMatrix) -> Result<Interactions> {
        if let Some(v) = m.data().iter().find(|v| !v.is_finite()) {
            return Err(crate::Error::param(
                "values",
                format!("the matrix holds {v}"),
            ));
        }
        let mut cols = Columns::default();
        for u in 0..m.n_rows() {
            for (&i, &v) in m.row_indices(u).iter().zip(m.row_data(u)) {
                cols.push(u as u32, i, v, 0, None);
            }
        }
        Interactions::from_columns(m.n_rows(), m.n_cols(), cols)
    }
}

impl crate::CsrMatrix {
    /// The user-item matrix of `x`: duplicate interactions are summed.
    pub fn from_interactions(x: &Interactions) -> crate::CsrMatrix {
        crate::CsrMatrix::from_rows(x.n_users(), x.n_items(), |u| {
            (x.user_items(u), x.user_values(u))
        })
    }
}

impl Interactions {
    /// Builds the log from columns in any order, sorting each user's
    /// interactions by time (stable, so ties keep input order).
    ///
    /// Memory: the columns are permuted in place, so the peak is the input
    /// plus four bytes per interaction.
    pub fn from_columns(n_users: usize, n_items: usize, cols: Columns) -> Result<Interactions> {
        let n = cols.users.len();
        if cols.items.len() != n || cols.values.len() != n || cols.times.len() != n {
            return Err(Error::Shape(format!(
                "columns have lengths users={} items={} values={} times={}",
                n,
                cols.items.len(),
                cols.values.len(),
                cols.times.len()
            )));
        }
        if !cols.events.is_empty() && cols.events.len() != n {
            return Err(Error::Shape(format!(
                "{} events for {n} interactions",
                cols.events.len()
            )));
        }
        if let Some(&u) = cols.users.iter().find(|&&u| u as usize >= n_users) {
            return Err(Error::Shape(format!("user index {u} >= n_users {n_users}")));
        }
        if let Some(&i) = cols.items.iter().find(|&&i| i as usize >= n_items) {
            return Err(Error::Shape(format!("item index {i} >= n_items {n_items}")));
        }
        let mut indptr = vec![0usize; n_users + 1];
        for &u in &cols.users {
            indptr[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            indptr[u + 1] += indptr[u];
        }
        if n > u32::MAX as usize {
            return Err(Error::Shape(format!(
                "{n} interactions; at most {} are supported",
                u32::MAX
            )));
        }
        let Columns {
            mut users,
            mut items,
            mut values,
            mut times,
            mut events,
        } = cols;
        // Columns built by pushing carry up to twice their length in spare
        // capacity; release it first, so the peak below is the data itself.
        users.shrink_to_fit();
        items.shrink_to_fit();
        values.shrink_to_fit();
        times.shrink_to_fit();
        events.shrink_to_fit();
        // Destination of each interaction: a stable counting sort by user.
        let mut cursor = indptr[..n_users].to_vec();
        let dest: Vec<u32> = users
            .iter()
            .map(|&u| {
                let c = &mut cursor[u as usize];
                *c += 1;
                (*c - 1) as u32
            })
            .collect();
        drop(users);
        drop(cursor);
        if dest.iter().enumerate().any(|(i, &d)| d as usize != i) {
            // One column at a time, so the peak is the columns, `dest` and
            // one copy of the widest column.
            items = scatter(items, &dest);
            values = scatter(values, &dest);
            times = scatter(times, &dest);
            if !events.is_empty() {
                events = scatter(events, &dest);
            }
        }
        drop(dest);
        let mut x = Interactions {
            n_users,
            n_items,
            indptr,
            items,
            values,
            times,
            events,
        };
        x.sort_rows_by_time();
        Ok(x)
    }

    /// Builds the log from `(user, item, value, time)` tuples; convenient in tests.
    pub fn from_tuples(
        n_users: usize,
        n_items: usize,
        tuples: impl IntoIterator<Item = (u32, u32, f32, i64)>,
    ) -> Result<Interactions> {
        let mut cols = Columns::default();
        for (u, i, v, t) in tuples {
            cols.push(u, i, v, t, None);
        }
        Interactions::from_columns(n_users, n_items, cols)
    }

    fn sort_rows_by_time(&mut self) {
        let indptr = &self.indptr;
        let has_events = !self.events.is_empty();
        let items = rows_mut(&mut self.items, indptr);
        let values = rows_mut(&mut self.values, indptr);
        let times = rows_mut(&mut self.times, indptr);
        let mut events = if has_events {
            rows_mut(&mut self.events, indptr)
        } else {
            Vec::new()
        };
        events.resize_with(items.len(), || &mut []);
        items
            .into_par_iter()
            .zip(values)
            .zip(times)
            .zip(events)
            .for_each(|(((it, va), ti), ev)| {
                if ti.windows(2).all(|w| w[0] <= w[1]) {
                    return;
                }
                let mut perm: Vec<usize> = (0..ti.len()).collect();
                perm.sort_by_key(|&p| ti[p]);
                permute(it, &perm);
                permute(va, &perm);
                permute(ti, &perm);
                if !ev.is_empty() {
                    permute(ev, &perm);
                }
            });
    }

    /// Number of users (rows), including users with no interactions.
    pub fn n_users(&self) -> usize {
        self.n_users
    }
    /// Number of items (columns).
    pub fn n_items(&self) -> usize {
        self.n_items
    }
    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether there are no interactions.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Row pointers: user `u`'s interactions are `indptr[u]..indptr[u + 1]`.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }
    /// The index range of user `u`'s interactions.
    pub fn range(&self, user: u32) -> std::ops::Range<usize> {
        self.indptr[user as usize]..self.indptr[user as usize + 1]
    }
    /// All item indices in row order.
    pub fn items(&self) -> &[u32] {
        &self.items
    }
    /// All values in row order.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
    /// All times in row order.
    pub fn times(&self) -> &[i64] {
        &self.times
    }
    /// All event codes in row order, if the data has event types.
    pub fn events(&self) -> Option<&[u8]> {
        (!self.events.is_empty()).then_some(&self.events[..])
    }
    /// The user of each interaction, in row order.
    pub fn users(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len());
        for u in 0..self.n_users {
            out.extend(std::iter::repeat_n(
                u as u32,
                self.indptr[u + 1] - self.indptr[u],
            ));
        }
        out
    }
    /// User `u`'s items in time order.
    pub fn user_items(&self, user: u32) -> &[u32] {
        &self.items[self.range(user)]
    }
    /// User `u`'s values in time order.
    pub fn user_values(&self, user: u32) -> &[f32] {
        &self.values[self.range(user)]
    }
    /// User `u`'s interactions in time order, with times and event types:
    /// what sequential models train on.
    pub fn user_sequence(&self, user: u32) -> crate::Sequence<'_> {
        let r = self.range(user);
        crate::Sequence {
            items: &self.items()[r.clone()],
            values: &self.values()[r.clone()],
            times: Some(&self.times()[r.clone()]),
            events: self.events().map(|e| &e[r]),
        }
    }

    /// Millisecond times of `user`'s interactions, oldest first.
    pub fn user_times(&self, user: u32) -> &[i64] {
        &self.times[self.range(user)]
    }
    /// Number of interactions of each user.
    pub fn user_counts(&self) -> Vec<u32> {
        self.indptr
            .windows(2)
            .map(|w| (w[1] - w[0]) as u32)
            .collect()
    }
    /// Number of interactions of each item.
    pub fn item_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.n_items];
        for &i in &self.items {
            c[i as usize] += 1;
        }
        c
    }
    /// The `k` items with the most interactions, most first (ties by index).
    pub fn most_popular(&self, k: usize) -> Vec<u32> {
        let counts = self.item_counts();
        let mut order: Vec<u32> = (0..counts.len() as u32).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(counts[i as usize]));
        order.truncate(k);
        order
    }
    /// Every interaction in row order.
    pub fn iter(&self) -> impl Iterator<Item = Interaction> + '_ {
        (0..self.n_users).flat_map(move |u| {
            self.range(u as u32).map(move |k| Interaction {
                user: u as u32,
                item: self.items[k],
                value: self.values[k],
                time: self.times[k],
                event: self.events.get(k).copied(),
            })
        })
    }

    /// The interactions whose position (in row order) has `keep[k]`, in the
    /// same index space.
    pub fn select(&self, keep: &[bool]) -> Interactions {
        assert_eq!(
            keep.len(),
            self.len(),
            "keep mask must cover every interaction"
        );
        let mut indptr = Vec::with_capacity(self.n_users + 1);
        indptr.push(0);
        let kept = keep.iter().filter(|&&k| k).count();
        let mut items = Vec::with_capacity(kept);
        let mut values = Vec::with_capacity(kept);
        let mut times = Vec::with_capacity(kept);
        let mut events = Vec::with_capacity(if self.events.is_empty() { 0 } else { kept });
        for u in 0..self.n_users {
            for k in self.indptr[u]..self.indptr[u + 1] {
                if keep[k] {
                    items.push(self.items[k]);
                    values.push(self.values[k]);
                    times.push(self.times[k]);
                    if let Some(&e) = self.events.get(k) {
                        events.push(e);
                    }
                }
            }
            indptr.push(items.len());
        }
        Interactions {
            n_users: self.n_users,
            n_items: self.n_items,
            indptr,
            items,
            values,
            times,
            events,
        }
    }

    /// Renumbers users and items (`u32::MAX` drops the index) into spaces of
    /// `n_users` and `n_items`. Row order and time order are kept, provided
    /// the user map is increasing on kept users (as [`crate::Vocab::retain`] gives).
    pub fn remap(
        &self,
        user_map: &[u32],
        item_map: &[u32],
        n_users: usize,
        n_items: usize,
    ) -> Interactions {
        let mut indptr = Vec::with_capacity(n_users + 1);
        indptr.push(0);
        let mut items = Vec::new();
        let mut values = Vec::new();
        let mut times = Vec::new();
        let mut events = Vec::new();
        for u in 0..self.n_users {
            let nu = user_map[u];
            if nu == u32::MAX {
                continue;
            }
            debug_assert!(
                indptr.len() <= nu as usize + 1,
                "user map must be increasing"
            );
            while indptr.len() <= nu as usize {
                indptr.push(items.len());
            }
            for k in self.indptr[u]..self.indptr[u + 1] {
                let ni = item_map[self.items[k] as usize];
                if ni == u32::MAX {
                    continue;
                }
                items.push(ni);
                values.push(self.values[k]);
                times.push(self.times[k]);
                if let Some(&e) = self.events.get(k) {
                    events.push(e);
                }
            }
        }
        while indptr.len() <= n_users {
            indptr.push(items.len());
        }
        Interactions {
            n_users,
            n_items,
            indptr,
            items,
            values,
            times,
            events,
        }
    }

    /// Merges interactions with the same user and item according to `policy`.
    /// `event_strength[e]` ranks event codes; a merged interaction keeps the
    /// strongest event of its group (the furthest funnel stage reached).
    /// Returns the merged log and the number of interactions removed.
    pub fn dedup(self, policy: DuplicatePolicy, event_strength: &[f32]) -> (Interactions, usize) {
        if policy == DuplicatePolicy::Keep || !self.has_duplicates() {
            return (self, 0);
        }
        let mut out = self;
        let mut keep = vec![true; out.len()];
        {
            let Interactions {
                indptr,
                items,
                values,
                times,
                events,
                ..
            } = &mut out;
            let keep_rows = rows_mut(&mut keep, indptr);
            let values = rows_mut(values, indptr);
            let times = rows_mut(times, indptr);
            let has_events = !events.is_empty();
            let mut events = if has_events {
                rows_mut(events, indptr)
            } else {
                Vec::new()
            };
            events.resize_with(keep_rows.len(), || &mut []);
            let (indptr, items) = (&*indptr, &*items);
            keep_rows
                .into_par_iter()
                .zip(values)
                .zip(times)
                .zip(events)
                .enumerate()
                .for_each(|(u, (((kp, va), ti), ev))| {
                    let row = &items[indptr[u]..indptr[u + 1]];
                    merge_row(row, kp, va, ti, ev, policy, event_strength);
                });
        }
        let removed = keep.iter().filter(|&&k| !k).count();
        if removed == 0 {
            return (out, 0);
        }
        let mut merged = out.select(&keep);
        merged.sort_rows_by_time();
        (merged, removed)
    }

    /// Whether any user has the same item twice.
    pub fn has_duplicates(&self) -> bool {
        let mut seen = vec![u32::MAX; self.n_items];
        for u in 0..self.n_users {
            for &i in self.user_items(u as u32) {
                if seen[i as usize] == u as u32 {
                    return true;
                }
                seen[i as usize] = u as u32;
            }
        }
        false
    }

    /// Replaces every value with `value`.
    pub fn with_constant_values(mut self, value: f32) -> Interactions {
        self.values.iter_mut().for_each(|v| *v = value);
        self
    }

    /// Replaces the values.
    pub fn with_values(mut self, values: Vec<f32>) -> Result<Interactions> {
        if values.len() != self.len() {
            return Err(Error::Shape(format!(
                "{} values for {} interactions",
                values.len(),
                self.len()
            )));
        }
        self.values = values;
        Ok(self)
    }

    /// Approximate heap size in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.capacity() * 8
            + self.items.capacity() * 4
            + self.values.capacity() * 4
            + self.times.capacity() * 8
            + self.events.capacity()
    }
}

/// Merges the duplicates of one user's row in place: surviving positions
/// keep `kp[k] == true` and carry the merged value, time and event.
fn merge_row(
    row: &[u32],
    kp: &mut [bool],
    va: &mut [f32],
    ti: &mut [i64],
    ev: &mut [u8],
    policy: DuplicatePolicy,
    strength: &[f32],
) {
    if row.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..row.len()).collect();
    // Rows are time-sorted, so a stable sort by item leaves each group in time order.
    order.sort_by_key(|&k| row[k]);
    if order.windows(2).all(|w| row[w[0]] != row[w[1]]) {
        return;
    }
    let strength_of = |e: u8| strength.get(e as usize).copied().unwrap_or(0.0);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && row[order[end]] == row[order[start]] {
            end += 1;
        }
        if end - start > 1 {
            let group = &order[start..end];
            let first = group[0];
            let last = group[group.len() - 1];
            let (survivor, value, time) = match policy {
                DuplicatePolicy::First => (first, va[first], ti[first]),
                DuplicatePolicy::Last | DuplicatePolicy::Keep => (last, va[last], ti[last]),
                DuplicatePolicy::Sum => (last, group.iter().map(|&k| va[k]).sum(), ti[last]),
                DuplicatePolicy::Max => {
                    let best = group
                        .iter()
                        .copied()
                        .fold(first, |b, k| if va[k] > va[b] { k } else { b });
                    (best, va[best], ti[best])
                }
            };
            let event = if ev.is_empty() {
                None
            } else {
                group
                    .iter()
                    .map(|&k| ev[k])
                    .fold(None, |b: Option<u8>, e| match b {
                        Some(b) if strength_of(b) >= strength_of(e) => Some(b),
                        _ => Some(e),
                    })
            };
            for &k in group {
                kp[k] = k == survivor;
            }
            va[survivor] = value;
            ti[survivor] = time;
            if let Some(e) = event {
                ev[survivor] = e;
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Interactions {
        Interactions::from_tuples(
            3,
            4,
            [
                (2, 0, 1.0, 50),
                (0, 1, 2.0, 30),
                (0, 2, 3.0, 10),
                (2, 3, 4.0, 40),
                (0, 1, 5.0, 20),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_are_grouped_and_time_sorted() {
        let x = sample();
        assert_eq!(x.indptr(), &[0, 3, 3, 5]);
        assert_eq!(x.user_items(0), &[2, 1, 1]);
        assert_eq!(x.user_times(0), &[10, 20, 30]);
        assert_eq!(x.user_items(2), &[3, 0]);
        assert_eq!(x.user_counts(), vec![3, 0, 2]);
        assert_eq!(x.item_counts(), vec![1, 2, 1, 1]);
        assert!(x.has_duplicates());
    }

    proptest::proptest! {
        #[test]
        fn from_columns_groups_stably_and_sorts_by_time(rows in proptest::collection::vec((0u32..6, 0u32..5, 0i64..4), 0..80)) {
            let mut cols = Columns::default();
            for (k, &(u, i, t)) in rows.iter().enumerate() {
                cols.push(u, i, k as f32, t, Some((k % 3) as u8));
            }
            let x = Interactions::from_columns(6, 5, cols).unwrap();
            for u in 0..6u32 {
                let mut expected: Vec<(i64, usize, u32)> = rows.iter().enumerate()
                    .filter(|(_, r)| r.0 == u).map(|(k, r)| (r.2, k, r.1)).collect();
                expected.sort();
                let got: Vec<(i64, usize, u32)> = x.range(u).map(|k| (x.times()[k], x.values()[k] as usize, x.items()[k])).collect();
                proptest::prop_assert_eq!(&got, &expected);
                for k in x.range(u) {
                    proptest::prop_assert_eq!(x.events().unwrap()[k] as usize, x.values()[k] as usize % 3);
                }
            }
        }
    }

    #[test]
    fn out_of_range_indices_are_errors() {
        assert!(Interactions::from_tuples(1, 1, [(0, 1, 1.0, 0)]).is_err());
        assert!(Interactions::from_tuples(1, 1, [(1, 0, 1.0, 0)]).is_err());
    }

    #[test]
    fn dedup_policies() {
        let x = sample();
        let check = |p: DuplicatePolicy, value: f32, time: i64| {
            let (d, removed) = x.clone().dedup(p, &[]);
            assert_eq!(removed, 1, "{p:?}");
            assert_eq!(d.len(), 4);
            let k = d.user_items(0).iter().position(|&i| i == 1).unwrap();
            assert_eq!(d.user_values(0)[k], value, "{p:?}");
            assert_eq!(d.user_times(0)[k], time, "{p:?}");
            assert!(!d.has_duplicates());
        };
        check(DuplicatePolicy::First, 5.0, 20);
        check(DuplicatePolicy::Last, 2.0, 30);
        check(DuplicatePolicy::Sum, 7.0, 30);
        check(DuplicatePolicy::Max, 5.0, 20);
        assert_eq!(x.clone().dedup(DuplicatePolicy::Keep, &[]).1, 0);
    }

    #[test]
    fn dedup_keeps_strongest_event() {
        let mut cols = Columns::default();
        cols.push(0, 0, 1.0, 1, Some(2));
        cols.push(0, 0, 1.0, 2, Some(0));
        cols.push(0, 1, 1.0, 3, Some(0));
        let x = Interactions::from_columns(1, 2, cols).unwrap();
        let (d, _) = x.dedup(DuplicatePolicy::Last, &[1.0, 3.0, 5.0]);
        assert_eq!(d.events().unwrap(), &[2, 0]);
        assert_eq!(d.user_times(0), &[2, 3]);
    }

    #[test]
    fn select_and_remap() {
        let x = sample();
        let s = x.select(&[true, false, true, true, false]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.user_items(0), &[2, 1]);
        let r = s.remap(&[0, u32::MAX, 1], &[0, 1, 2, u32::MAX], 2, 3);
        assert_eq!(r.indptr(), &[0, 2, 2]);
        assert_eq!(r.user_items(0), &[2, 1]);
        assert_eq!(r.n_users(), 2);
    }
}
