//! Ordered training sequences: each user's items in time order, the windows
//! sequential models train on, and the plain dense arithmetic their
//! inference shares.

use because_core::rng::Rng;
use because_core::{Interactions, Query, Sequence};
pub use because_models::dot;
use because_models::persist::{PersistError, TensorsIn, TensorsOut};

/// Each user's training items and values in time order (duplicates kept),
/// in compressed-row form.
#[derive(Clone, Debug, Default)]
pub struct Sequences {
    indptr: Vec<u32>,
    items: Vec<u32>,
    values: Vec<f32>,
}

impl Sequences {
    /// From an interaction log, whose rows are in time order.
    pub fn new(x: &Interactions) -> Sequences {
        Sequences {
            indptr: x.indptr().iter().map(|&p| p as u32).collect(),
            items: x.items().to_vec(),
            values: x.values().to_vec(),
        }
    }
    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }
    /// How often each of `n_items` items occurs.
    pub fn counts(&self, n_items: usize) -> Vec<u32> {
        let mut c = vec![0u32; n_items];
        for &i in &self.items {
            if let Some(x) = c.get_mut(i as usize) {
                *x += 1;
            }
        }
        c
    }

    /// User `u`'s items, oldest first.
    pub fn items(&self, u: u32) -> &[u32] {
        let (a, b) = (self.indptr[u as usize], self.indptr[u as usize + 1]);
        &self.items[a as usize..b as usize]
    }
    /// User `u`'s values, oldest first.
    pub fn values(&self, u: u32) -> &[f32] {
        let (a, b) = (self.indptr[u as usize], self.indptr[u as usize + 1]);
        &self.values[a as usize..b as usize]
    }
    /// Adds the sequences to a model folder.
    pub fn save(&self, out: &mut TensorsOut) {
        out.u32("sequence.indptr", &self.indptr, &[self.indptr.len()]);
        out.u32("sequence.items", &self.items, &[self.items.len()]);
        out.f32("sequence.values", &self.values, &[self.values.len()]);
    }
    /// Reads the sequences of `n_users` users back, checking their shape.
    pub fn load(
        t: &TensorsIn<'_>,
        n_users: usize,
        n_items: usize,
    ) -> Result<Sequences, PersistError> {
        let indptr = t.u32("sequence.indptr", &[n_users + 1])?;
        let len = *indptr.last().unwrap_or(&0) as usize;
        let bad = |m: &str| PersistError::Core(because_core::Error::Shape(m.to_string()));
        if indptr.first() != Some(&0) || indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("sequence.indptr is not a row index"));
        }
        let items = t.u32("sequence.items", &[len])?;
        if items.iter().any(|&i| i as usize >= n_items) {
            return Err(bad("sequence.items holds an item beyond the catalogue"));
        }
        let values = t.f32("sequence.values", &[len])?;
        Ok(Sequences {
            indptr,
            items,
            values,
        })
    }
}

/// The items of a query in the order a sequential model reads them: a known
/// user's training sequence, or the given items (a history is read in the
/// order given, oldest first).
pub fn query_items<'a>(seqs: &'a Sequences, query: &Query<'a>) -> &'a [u32] {
    match *query {
        Query::User(u) => seqs.items(u),
        Query::History { items, .. } | Query::Sequence(Sequence { items, .. }) => items,
    }
}

/// One training window: up to `len` consecutive inputs of a sequence and
/// the item that follows each.
#[derive(Clone, Debug)]
pub struct Window {
    /// The user.
    pub user: u32,
    /// Where the inputs start in the user's sequence.
    pub start: usize,
    /// How many inputs.
    pub len: usize,
}

/// Cuts every user's sequence into windows of at most `max_len` inputs,
/// from the end, so that every position of every sequence is a training
/// target exactly once (not one prefix per target).
pub fn windows(seqs: &Sequences, max_len: usize) -> Vec<Window> {
    let mut out = Vec::new();
    for u in 0..seqs.n_users() as u32 {
        let n = seqs.items(u).len();
        if n < 2 {
            continue;
        }
        // Inputs are positions 0..n-1; targets 1..n.
        let mut end = n - 1;
        while end > 0 {
            let start = end.saturating_sub(max_len);
            out.push(Window {
                user: u,
                start,
                len: end - start,
            });
            end = start;
        }
    }
    out
}

/// The windows in a random order for one epoch.
pub fn shuffled(windows: &[Window], seed: u64, epoch: usize) -> Vec<Window> {
    let mut w = windows.to_vec();
    Rng::stream(seed, epoch as u64).shuffle(&mut w);
    w
}

/// Occlusion: the score lost when each item of `items` is left out in turn,
/// for the items from `from` on (a model that reads only its latest items
/// is unaffected by older ones, which weigh exactly 0).
pub fn occlusion(items: &[u32], from: usize, score: impl Fn(&[u32]) -> f32) -> Vec<f32> {
    let base = score(items);
    let mut out = vec![0.0f32; items.len()];
    let mut without = Vec::with_capacity(items.len());
    for k in from..items.len() {
        without.clear();
        without.extend_from_slice(&items[..k]);
        without.extend_from_slice(&items[k + 1..]);
        out[k] = base - score(&without);
    }
    out
}

/// `out[j] = Σ_i x[i] · w[i, j]` plus `b`, for a row-major `w` of `x.len()` rows.
pub fn affine(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    out.copy_from_slice(b);
    let n = out.len();
    for (xi, row) in x.iter().zip(w.chunks_exact(n)) {
        if *xi != 0.0 {
            for (o, wv) in out.iter_mut().zip(row) {
                *o += xi * wv;
            }
        }
    }
}

/// Layer normalization of `x` with gain `g` and shift `b` (population
/// variance, `eps` inside the square root), as the training graph computes it.
pub fn layer_norm(x: &[f32], g: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for i in 0..x.len() {
        out[i] = (x[i] - mean) * inv * g[i] + b[i];
    }
}

/// Scores every item as the dot product of `z` with its row of `emb`
/// (row-major, `d` wide, starting at row `offset`).
pub fn score_all(z: &[f32], emb: &[f32], d: usize, offset: usize, out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(emb[offset * d..].chunks_exact(d)) {
        *o = dot(z, row);
    }
}

/// Cosine similarity of every row of `emb` (from row `offset`) to row `item`.
pub fn cosine_all(emb: &[f32], d: usize, offset: usize, item: usize, out: &mut [f32]) {
    let rows = &emb[offset * d..];
    let q = &rows[item * d..(item + 1) * d];
    let qn = dot(q, q).sqrt().max(1e-12);
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(d)) {
        *o = dot(q, row) / (qn * dot(row, row).sqrt().max(1e-12));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_target_once() {
        let x = Interactions::from_tuples(
            2,
            20,
            (0..13u32)
                .map(|i| (0, i, 1.0, i as i64))
                .chain((0..3u32).map(|i| (1, i, 1.0, i as i64))),
        )
        .unwrap();
        let s = Sequences::new(&x);
        let w = windows(&s, 5);
        let mut targets: Vec<(u32, usize)> = w
            .iter()
            .flat_map(|w| (w.start + 1..w.start + w.len + 1).map(move |t| (w.user, t)))
            .collect();
        targets.sort_unstable();
        let expected: Vec<(u32, usize)> = (1..13)
            .map(|t| (0, t))
            .chain((1..3).map(|t| (1, t)))
            .collect();
        assert_eq!(targets, expected);
        assert!(w.iter().all(|w| w.len <= 5 && w.len > 0));
    }
}
