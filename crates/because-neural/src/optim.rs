//! Training on plain arrays: Adam that updates a large embedding table only
//! in the rows a step touched, the rows a step gathers, and data-parallel
//! shards of a mini-batch.
//!
//! The weights live in plain vectors between steps. Each step gathers the
//! rows of the item tables it needs (the batch's inputs, targets and sampled
//! negatives: a few hundred rows of a catalogue of a million), builds burn
//! leaf tensors over them, runs forward and backward on each shard of the
//! batch on its own thread (each shard its own autodiff graph, so that the
//! shards do not serialize on one), sums the shards' gradients, and applies
//! Adam. A dense Adam over the tables would read and write every row at every
//! step (two 173k × 64 tables: about 600 MB of memory traffic per step);
//! the row-wise ("lazy") Adam below reads and writes only the gathered rows,
//! so a step costs what its batch costs, whatever the catalogue.
//!
//! Results are reproducible for a seed and a fixed number of shards: the
//! shards partition each batch the same way whichever threads run them,
//! and their gradients are summed in shard order.

use because_core::{Error, Result};
use rayon::prelude::*;

/// Adam (Kingma and Ba, 2015) with burn's defaults (β₁ 0.9, β₂ 0.999) and
/// ε 1e-8, over a fixed list of parameter arrays. A table updated by
/// [`Grad::Rows`] keeps its other rows, and their moments, as they were
/// (TensorFlow's LazyAdam); bias correction uses the global step count.
pub(crate) struct Adam {
    lr: f32,
    t: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

/// One parameter's gradient in a step.
pub(crate) enum Grad<'a> {
    /// A gradient for every entry.
    Dense(&'a [f32]),
    /// Gradients for the table rows `rows` (`rows.len() × dim`, in order).
    Rows {
        /// The table rows, by local row.
        rows: &'a [u32],
        /// Width of a row.
        dim: usize,
        /// The gradient of each local row.
        grad: &'a [f32],
    },
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl Adam {
    /// Adam at learning rate `lr` over parameters of `sizes` entries.
    pub(crate) fn new(lr: f32, sizes: &[usize]) -> Adam {
        Adam {
            lr,
            t: 0,
            m: sizes.iter().map(|&s| vec![0.0; s]).collect(),
            v: sizes.iter().map(|&s| vec![0.0; s]).collect(),
        }
    }

    /// Starts a step (before its [`Adam::update`]s).
    pub(crate) fn tick(&mut self) {
        self.t += 1;
    }

    /// Updates parameter `k`, `w`, by its gradient.
    pub(crate) fn update(&mut self, k: usize, w: &mut [f32], g: Grad<'_>) {
        let t = self.t.max(1);
        let bc2 = (1.0 - BETA2.powi(t)).sqrt();
        let factor = self.lr * bc2 / (1.0 - BETA1.powi(t));
        let eps = EPS * bc2;
        let (m, v) = (&mut self.m[k], &mut self.v[k]);
        let mut one = |i: usize, g: f32| {
            m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
            v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
            w[i] -= factor * m[i] / (v[i].sqrt() + eps);
        };
        match g {
            Grad::Dense(g) => {
                for (i, &g) in g.iter().enumerate() {
                    one(i, g);
                }
            }
            Grad::Rows { rows, dim, grad } => {
                for (j, &r) in rows.iter().enumerate() {
                    let base = r as usize * dim;
                    for c in 0..dim {
                        one(base + c, grad[j * dim + c]);
                    }
                }
            }
        }
    }
}

/// The rows of a table that a step reads, sorted and distinct: a step's
/// tensors index them by local row.
#[derive(Clone, Debug)]
pub(crate) enum Rows {
    /// Every row of a table of this many rows.
    All(usize),
    /// These rows.
    Some(Vec<u32>),
}

impl Rows {
    /// The distinct rows among `ids`.
    pub(crate) fn of(ids: impl IntoIterator<Item = u32>) -> Rows {
        let mut rows: Vec<u32> = ids.into_iter().collect();
        rows.sort_unstable();
        rows.dedup();
        Rows::Some(rows)
    }
    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::All(n) => *n,
            Rows::Some(r) => r.len(),
        }
    }
    /// The local row of table row `id` (which must be among them).
    pub(crate) fn local(&self, id: u32) -> i64 {
        match self {
            Rows::All(_) => id as i64,
            Rows::Some(r) => r.binary_search(&id).unwrap_or(0) as i64,
        }
    }
    /// The table row of local row `j`.
    pub(crate) fn global(&self, j: usize) -> u32 {
        match self {
            Rows::All(_) => j as u32,
            Rows::Some(r) => r[j],
        }
    }
    /// The rows' values, `len × dim`, from `table`.
    pub(crate) fn gather(&self, table: &[f32], dim: usize) -> Vec<f32> {
        match self {
            Rows::All(_) => table.to_vec(),
            Rows::Some(r) => r
                .iter()
                .flat_map(|&i| {
                    table[i as usize * dim..(i as usize + 1) * dim]
                        .iter()
                        .copied()
                })
                .collect(),
        }
    }
    /// Adam's update of `table` by the local rows' gradient.
    pub(crate) fn update(
        &self,
        adam: &mut Adam,
        k: usize,
        table: &mut [f32],
        dim: usize,
        g: &[f32],
    ) {
        match self {
            Rows::All(_) => adam.update(k, table, Grad::Dense(g)),
            Rows::Some(rows) => adam.update(k, table, Grad::Rows { rows, dim, grad: g }),
        }
    }
}

/// How many shards a batch is cut into: `threads`, or every thread of the
/// pool for 0.
pub(crate) fn shard_count(threads: usize) -> usize {
    match threads {
        0 => rayon::current_num_threads().max(1),
        t => t,
    }
}

/// The contiguous range of `len` items that shard `s` of `shards` takes.
pub(crate) fn shard(len: usize, s: usize, shards: usize) -> std::ops::Range<usize> {
    let (q, r) = (len / shards, len % shards);
    let start = s * q + s.min(r);
    start..start + q + usize::from(s < r)
}

/// Runs `f` on each of `shards` shards, in parallel, and returns their
/// results in shard order.
pub(crate) fn each_shard<T: Send>(
    shards: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if shards <= 1 {
        return Ok(vec![f(0)?]);
    }
    // A closure, not `f` itself: `&f` is `Send` (`f` is `Sync`), `f` need not be.
    #[allow(clippy::redundant_closure)]
    (0..shards).into_par_iter().map(|s| f(s)).collect()
}

/// Adds one shard's gradients (one vector per parameter; none for a shard
/// without work) into the sum so far.
pub(crate) fn accumulate(sum: &mut Vec<Vec<f32>>, shard: Vec<Vec<f32>>) -> Result<()> {
    if sum.is_empty() {
        *sum = shard;
        return Ok(());
    }
    if shard.is_empty() {
        return Ok(());
    }
    for (a, b) in sum.iter_mut().zip(&shard) {
        if a.len() != b.len() {
            return Err(Error::Shape(format!(
                "adding gradients of {} and {} entries",
                a.len(),
                b.len()
            )));
        }
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_wise_adam_is_dense_adam_on_the_rows_it_touches() {
        // A 3 × 2 table; the step's gradient touches rows 0 and 2.
        let g_dense = [0.5, -1.0, 0.0, 0.0, 2.0, 0.25];
        let mut dense = vec![1.0f32; 6];
        let mut rows = vec![1.0f32; 6];
        let (mut a, mut b) = (Adam::new(0.1, &[6]), Adam::new(0.1, &[6]));
        for _ in 0..3 {
            a.tick();
            a.update(0, &mut dense, Grad::Dense(&g_dense));
            b.tick();
            let r = Rows::of([2, 0, 2]);
            let g = [0.5, -1.0, 2.0, 0.25];
            r.update(&mut b, 0, &mut rows, 2, &g);
        }
        assert_eq!(dense, rows);
        assert_eq!(&rows[2..4], &[1.0, 1.0], "an untouched row stays");
        // Adam's first step moves each touched entry by the learning rate.
        let mut w = vec![0.0f32; 2];
        let mut c = Adam::new(0.1, &[2]);
        c.tick();
        c.update(0, &mut w, Grad::Dense(&[3.0, -0.001]));
        assert!(
            (w[0] + 0.1).abs() < 1e-4 && (w[1] - 0.1).abs() < 1e-3,
            "{w:?}"
        );
    }

    #[test]
    fn shards_partition_a_batch_in_order() {
        for len in [0, 1, 5, 64, 65] {
            for shards in 1..=4 {
                let parts: Vec<_> = (0..shards).map(|s| shard(len, s, shards)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[shards - 1].end, len);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len() >= w[1].len() && w[0].len() <= w[1].len() + 1);
                }
            }
        }
        let r = Rows::of([7, 3, 7, 1]);
        assert_eq!((r.len(), r.local(7), r.global(1)), (3, 2, 3));
        assert_eq!(
            r.gather(&(0..16).map(|x| x as f32).collect::<Vec<_>>(), 2),
            vec![2.0, 3.0, 6.0, 7.0, 14.0, 15.0]
        );
    }
}
