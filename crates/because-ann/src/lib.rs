//! Approximate maximum-inner-product search over item vectors.
//!
//! An inverted-file index (IVF): the items are partitioned by k-means into
//! lists, each list keeps its items' vectors together, and a query scans
//! only the lists whose centroids score best for it. The candidates it
//! returns carry their exact inner products, so a caller that re-scores
//! them loses nothing but the items in lists it did not scan.
//!
//! **Inner product, not distance.** Recommendation scores are inner
//! products (`query · item + bias`), and the best item for a query is not
//! its nearest neighbour when item norms differ. The index uses the
//! reduction of Bachrach et al. ("Speeding Up the Xbox Recommender System
//! Using a Euclidean Transformation for Inner-Product Spaces", RecSys
//! 2014): each item `x` gains a coordinate `sqrt(M² − |x|²)` (`M` the
//! largest norm), which puts every item on one sphere, where the nearest
//! neighbour of the query `(q, 0)` is the item of the largest `q · x`.
//! k-means runs on those augmented vectors, so lists group items that win
//! for the same queries, and a query ranks lists by their centroids'
//! distance to it (scaled onto the sphere). The bias, when there is one,
//! is one more coordinate of the items and a constant 1 of the queries.
//!
//! **How many lists to scan** is measured when the index is built, not
//! guessed: for a sample of real queries (the model's own users) the exact
//! top items are found by brute force and `probe` is the fewest lists that
//! reach the target recall on them ([`Ivf::calibrate`]).
//!
//! **Deterministic.** Building depends on the seed only, not on the number
//! of threads: the sample comes from our own generator, every point's
//! assignment is computed independently, and centroid sums are reduced in
//! fixed chunks in a fixed order.

use because_core::rng::Rng;
use because_core::{ItemVectors, Scored};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Deref;

/// How to build an index.
#[derive(Clone, Debug, PartialEq)]
pub struct IvfParams {
    /// Lists (k-means clusters); 0 chooses `2·√n`.
    pub lists: usize,
    /// k-means iterations.
    pub iterations: usize,
    /// Training points per list (a sample of the items).
    pub sample_per_list: usize,
    /// The recall@10 the calibration aims for on its sample of queries.
    pub target_recall: f64,
    /// Seed of the sample and of the initial centroids.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> IvfParams {
        IvfParams {
            lists: 0,
            iterations: 12,
            sample_per_list: 64,
            target_recall: 0.995,
            seed: 42,
        }
    }
}

/// The measured recall of an index at its chosen `probe`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// Lists scanned per query.
    pub probe: usize,
    /// Mean recall@10 against exact search on the calibration queries.
    pub recall: f64,
    /// How many queries it was measured on.
    pub queries: usize,
}

/// An inverted-file index over `n` item vectors of width `dim` (the
/// model's width, plus one when items have a bias). `V` holds the vectors
/// in list order: a `Vec<f32>` when built, or a view of a mapped file.
#[derive(Clone, Debug)]
pub struct Ivf<V = Vec<f32>> {
    p: IvfParts<V>,
}

/// The parts of an index as plain arrays, to save and to load.
#[derive(Clone, Debug, PartialEq)]
pub struct IvfParts<V> {
    /// The width of a vector.
    pub dim: usize,
    /// `lists × dim` centroids of the items (without the augmented
    /// coordinate).
    pub centroids: Vec<f32>,
    /// Half of each centroid's squared norm, augmented coordinate included.
    pub half_norms: Vec<f32>,
    /// The largest item norm, `M`.
    pub max_norm: f32,
    /// `lists + 1` offsets into `ids`.
    pub offsets: Vec<u32>,
    /// Item indices in list order.
    pub ids: Vec<u32>,
    /// Item vectors in list order.
    pub vectors: V,
    /// Lists scanned for recommendations.
    pub probe: usize,
    /// Lists scanned for similar items.
    pub probe_similar: usize,
}

impl<V> IvfParts<V> {
    /// The same parts with the vectors held another way (moved, not copied).
    pub fn map_vectors<W>(self, f: impl FnOnce(V) -> W) -> IvfParts<W> {
        IvfParts {
            dim: self.dim,
            centroids: self.centroids,
            half_norms: self.half_norms,
            max_norm: self.max_norm,
            offsets: self.offsets,
            ids: self.ids,
            vectors: f(self.vectors),
            probe: self.probe,
            probe_similar: self.probe_similar,
        }
    }
}

/// What is wrong with parts that do not make an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIndex(pub String);

impl std::fmt::Display for InvalidIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid index: {}", self.0)
    }
}

impl std::error::Error for InvalidIndex {}

/// The inner product, with eight independent sums so that it vectorizes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            s[k] += x[k] * y[k];
        }
    }
    let mut t = (s[0] + s[4]) + (s[1] + s[5]) + (s[2] + s[6]) + (s[3] + s[7]);
    for (x, y) in ra.iter().zip(rb) {
        t += x * y;
    }
    t
}

/// The width of the index over `v`: a row, then its bias when it has one.
pub fn width(v: &ItemVectors<'_>) -> usize {
    v.dim + usize::from(v.bias.is_some())
}

/// Item `i` of `v` as the index stores it: its row, then its bias.
pub fn index_row(v: &ItemVectors<'_>, i: u32, out: &mut [f32]) {
    out[..v.dim].copy_from_slice(v.row(i));
    if let Some(b) = v.bias {
        out[v.dim] = b[i as usize];
    }
}

/// A query vector as the index over `v` reads it: the vector, then 1
/// (which meets each item's bias).
pub fn index_query(v: &ItemVectors<'_>, q: &[f32]) -> Vec<f32> {
    let mut out = q.to_vec();
    if v.bias.is_some() {
        out.push(1.0);
    }
    out
}

/// Points assigned in chunks of this many, reduced in this order.
const CHUNK: usize = 4096;

/// The index of the centroid nearest to `x` (augmented coordinate `xe`),
/// by `|x − c|² = |x|² − 2 x·c + |c|²`; ties go to the smaller index.
fn nearest(x: &[f32], xe: f32, centroids: &[f32], aug: &[f32], half: &[f32], dim: usize) -> u32 {
    let mut best = (f32::NEG_INFINITY, 0u32);
    for (l, c) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(x, c) + xe * aug[l] - half[l];
        if s > best.0 {
            best = (s, l as u32);
        }
    }
    best.1
}

impl Ivf<Vec<f32>> {
    /// Builds an index over `items`, scanning every list until
    /// [`Ivf::calibrate`] chooses how many.
    pub fn build(items: &ItemVectors<'_>, params: &IvfParams) -> Ivf<Vec<f32>> {
        let n = items.len();
        let dim = width(items);
        let lists = if params.lists == 0 {
            ((2.0 * (n as f64).sqrt()).round() as usize).max(1)
        } else {
            params.lists
        }
        .clamp(1, n.max(1));
        // Each item's squared norm as the index sees it (its row, then
        // its bias), and the augmented coordinate. Rows are made on the
        // fly from `items`: no copy of the catalogue beyond the index's own.
        let norms: Vec<f32> = (0..n as u32)
            .into_par_iter()
            .with_min_len(CHUNK)
            .map_init(
                || vec![0.0f32; dim],
                |buf, i| {
                    index_row(items, i, buf);
                    dot(buf, buf).max(0.0)
                },
            )
            .collect();
        let max_sq = norms.iter().copied().fold(0.0f32, f32::max);
        let aug: Vec<f32> = norms
            .iter()
            .map(|&s| (max_sq - s).max(0.0).sqrt())
            .collect();
        // The training sample: distinct items, from the seed, and their rows.
        let mut rng = Rng::new(params.seed);
        let mut order: Vec<u32> = (0..n as u32).collect();
        let sample = (lists * params.sample_per_list.max(1)).min(n);
        for k in 0..sample {
            let j = k + rng.below((n - k) as u64) as usize;
            order.swap(k, j);
        }
        let sample_ids = &order[..sample];
        let mut rows = vec![0.0f32; sample * dim];
        rows.par_chunks_mut(dim.max(1))
            .zip(sample_ids.par_iter())
            .for_each(|(r, &i)| index_row(items, i, r));
        let saug: Vec<f32> = sample_ids.iter().map(|&i| aug[i as usize]).collect();
        // Initial centroids: the first `lists` sampled items.
        let mut centroids: Vec<f32> = rows[..lists * dim].to_vec();
        let mut caug: Vec<f32> = saug[..lists].to_vec();
        let halves = |c: &[f32], a: &[f32]| -> Vec<f32> {
            c.chunks_exact(dim.max(1))
                .zip(a)
                .map(|(c, &e)| 0.5 * (dot(c, c) + e * e))
                .collect()
        };
        let mut half = halves(&centroids, &caug);
        for _ in 0..params.iterations {
            let assign: Vec<u32> = rows
                .par_chunks(dim.max(1))
                .zip(saug.par_iter())
                .map(|(r, &e)| nearest(r, e, &centroids, &caug, &half, dim))
                .collect();
            // Sums per chunk of the sample, reduced in chunk order (f64).
            let partial: Vec<(Vec<f64>, Vec<u32>)> = rows
                .par_chunks(CHUNK * dim.max(1))
                .zip(saug.par_chunks(CHUNK))
                .zip(assign.par_chunks(CHUNK))
                .map(|((rs, es), a)| {
                    let mut sums = vec![0.0f64; lists * (dim + 1)];
                    let mut counts = vec![0u32; lists];
                    for ((r, &e), &l) in rs.chunks_exact(dim.max(1)).zip(es).zip(a) {
                        let l = l as usize;
                        let s = &mut sums[l * (dim + 1)..(l + 1) * (dim + 1)];
                        for (s, &x) in s.iter_mut().zip(r) {
                            *s += x as f64;
                        }
                        s[dim] += e as f64;
                        counts[l] += 1;
                    }
                    (sums, counts)
                })
                .collect();
            let mut sums = vec![0.0f64; lists * (dim + 1)];
            let mut counts = vec![0u64; lists];
            for (s, c) in &partial {
                sums.iter_mut().zip(s).for_each(|(a, b)| *a += b);
                counts.iter_mut().zip(c).for_each(|(a, &b)| *a += b as u64);
            }
            for l in 0..lists {
                if counts[l] == 0 {
                    // An empty list takes a random member of the largest.
                    let big = (0..lists)
                        .max_by_key(|&b| (counts[b], std::cmp::Reverse(b)))
                        .unwrap_or(0);
                    let members: Vec<usize> =
                        (0..sample).filter(|&k| assign[k] as usize == big).collect();
                    if let Some(&k) = members.get(rng.below(members.len().max(1) as u64) as usize) {
                        centroids[l * dim..(l + 1) * dim]
                            .copy_from_slice(&rows[k * dim..(k + 1) * dim]);
                        caug[l] = saug[k];
                    }
                    continue;
                }
                let s = &sums[l * (dim + 1)..(l + 1) * (dim + 1)];
                let c = counts[l] as f64;
                for (o, &v) in centroids[l * dim..(l + 1) * dim].iter_mut().zip(s) {
                    *o = (v / c) as f32;
                }
                caug[l] = (s[dim] / c) as f32;
            }
            half = halves(&centroids, &caug);
        }
        // Every item to its nearest list; lists in order, items ascending.
        drop(rows);
        let assign: Vec<u32> = (0..n)
            .into_par_iter()
            .with_min_len(CHUNK)
            .map_init(
                || vec![0.0f32; dim],
                |buf, i| {
                    index_row(items, i as u32, buf);
                    nearest(buf, aug[i], &centroids, &caug, &half, dim)
                },
            )
            .collect();
        let mut offsets = vec![0u32; lists + 1];
        for &l in &assign {
            offsets[l as usize + 1] += 1;
        }
        for l in 0..lists {
            offsets[l + 1] += offsets[l];
        }
        let mut next: Vec<u32> = offsets[..lists].to_vec();
        let mut ids = vec![0u32; n];
        for (i, &l) in assign.iter().enumerate() {
            ids[next[l as usize] as usize] = i as u32;
            next[l as usize] += 1;
        }
        let mut vectors = vec![0.0f32; n * dim];
        vectors
            .par_chunks_mut(dim.max(1))
            .zip(ids.par_iter())
            .for_each(|(out, &i)| index_row(items, i, out));
        Ivf {
            p: IvfParts {
                dim,
                centroids,
                half_norms: half,
                max_norm: max_sq.sqrt(),
                offsets,
                ids,
                vectors,
                probe: lists,
                probe_similar: lists,
            },
        }
    }
}

/// A candidate in a heap whose top is the worst kept so far.
#[derive(Clone, Copy, PartialEq)]
struct Worst(Scored);
impl Eq for Worst {}
impl Ord for Worst {
    fn cmp(&self, o: &Worst) -> Ordering {
        // Better = higher score, then smaller item; the heap's top is the worst.
        o.0.score
            .total_cmp(&self.0.score)
            .then(self.0.item.cmp(&o.0.item))
    }
}
impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Worst) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Keeps the best `k` scores seen, best first at the end.
struct Best {
    k: usize,
    heap: BinaryHeap<Worst>,
}
impl Best {
    fn new(k: usize) -> Best {
        Best {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }
    #[inline]
    fn push(&mut self, item: u32, score: f32) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        if self.heap.len() == self.k {
            let worst = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0.score);
            if score < worst {
                return;
            }
        }
        self.heap.push(Worst(Scored { item, score }));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }
    fn into_sorted(self) -> Vec<Scored> {
        // `into_sorted_vec` is ascending by `Ord`: best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// How a query ranks lists and scores items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// The largest inner product (recommendations).
    InnerProduct,
    /// The largest cosine over the first this many coordinates (similar
    /// items; a bias column left out).
    Cosine(usize),
}

impl<V: Deref<Target = [f32]> + Sync> Ivf<V> {
    /// An index from its saved parts, checked for consistency with `n`
    /// items.
    pub fn from_parts(p: IvfParts<V>, n: usize) -> Result<Ivf<V>, InvalidIndex> {
        let lists = p.half_norms.len();
        let bad = |m: String| Err(InvalidIndex(m));
        if p.dim == 0 || lists == 0 {
            return bad("no lists or a zero width".into());
        }
        if p.centroids.len() != lists * p.dim {
            return bad(format!(
                "{} centroid values for {lists} lists of width {}",
                p.centroids.len(),
                p.dim
            ));
        }
        if p.offsets.len() != lists + 1
            || p.offsets[0] != 0
            || p.offsets.windows(2).any(|w| w[0] > w[1])
        {
            return bad("list offsets are not increasing from 0".into());
        }
        if p.offsets[lists] as usize != n || p.ids.len() != n || p.vectors.len() != n * p.dim {
            return bad(format!(
                "the lists hold {} items, the model has {n}",
                p.ids.len()
            ));
        }
        let mut seen = vec![false; n];
        for &i in &p.ids {
            if i as usize >= n || std::mem::replace(&mut seen[i as usize], true) {
                return bad(format!("item {i} is out of range or in two lists"));
            }
        }
        if p.probe == 0 || p.probe > lists || p.probe_similar == 0 || p.probe_similar > lists {
            return bad(format!(
                "probe {} / {} with {lists} lists",
                p.probe, p.probe_similar
            ));
        }
        Ok(Ivf { p })
    }

    /// The parts, moved out (no copy of the vectors).
    pub fn into_parts(self) -> IvfParts<V> {
        self.p
    }

    /// The parts, to save.
    pub fn parts(&self) -> &IvfParts<V> {
        &self.p
    }

    /// The width of a vector (the model's, plus one for a bias).
    pub fn dim(&self) -> usize {
        self.p.dim
    }
    /// How many items.
    pub fn len(&self) -> usize {
        self.p.ids.len()
    }
    /// Whether the index holds no items.
    pub fn is_empty(&self) -> bool {
        self.p.ids.is_empty()
    }
    /// How many lists.
    pub fn lists(&self) -> usize {
        self.p.half_norms.len()
    }
    /// Lists scanned per query, for `metric`.
    pub fn probe(&self, metric: Metric) -> usize {
        match metric {
            Metric::InnerProduct => self.p.probe,
            Metric::Cosine(_) => self.p.probe_similar,
        }
    }
    /// Bytes the index holds beyond the model (vectors, ids, centroids).
    pub fn bytes(&self) -> usize {
        4 * (self.p.vectors.len()
            + self.p.ids.len()
            + self.p.offsets.len()
            + self.p.centroids.len()
            + self.p.half_norms.len())
    }

    /// The lists in the order a query should scan them, best first.
    fn ranked_lists(&self, q: &[f32], metric: Metric) -> Vec<u32> {
        let qn = dot(q, q).sqrt();
        let lists = self.lists();
        let mut s: Vec<(f32, u32)> = match metric {
            // The nearest centroid to the query scaled onto the items'
            // sphere, (M q / |q|, 0), in the augmented space.
            Metric::InnerProduct => {
                let scale = if qn > 0.0 { self.p.max_norm / qn } else { 0.0 };
                self.p
                    .centroids
                    .chunks_exact(self.p.dim)
                    .zip(&self.p.half_norms)
                    .enumerate()
                    .map(|(l, (c, &h))| (scale * dot(q, c) - h, l as u32))
                    .collect()
            }
            Metric::Cosine(m) => {
                let q = &q[..m];
                let qn = dot(q, q).sqrt();
                self.p
                    .centroids
                    .chunks_exact(self.p.dim)
                    .enumerate()
                    .map(|(l, c)| {
                        let c = &c[..m];
                        let n = dot(c, c).sqrt() * qn;
                        (if n > 0.0 { dot(q, c) / n } else { -1.0 }, l as u32)
                    })
                    .collect()
            }
        };
        s.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        debug_assert_eq!(s.len(), lists);
        s.into_iter().map(|(_, l)| l).collect()
    }

    /// The best `k` items for `q` (the index's width) among the `probe`
    /// best lists (the calibrated number when `None`), leaving out items
    /// `skip` names; each with its inner product (or cosine) with `q`.
    /// Best first; ties go to the smaller index.
    pub fn search(
        &self,
        q: &[f32],
        k: usize,
        metric: Metric,
        probe: Option<usize>,
        skip: &dyn Fn(u32) -> bool,
    ) -> Vec<Scored> {
        assert_eq!(q.len(), self.p.dim, "query width");
        if let Metric::Cosine(m) = metric {
            assert!(
                m <= self.p.dim,
                "cosine over {m} of {} coordinates",
                self.p.dim
            );
        }
        let probe = probe.unwrap_or(self.probe(metric)).clamp(1, self.lists());
        let ranked = self.ranked_lists(q, metric);
        let mut best = Best::new(k);
        for &l in &ranked[..probe] {
            let (a, b) = (
                self.p.offsets[l as usize] as usize,
                self.p.offsets[l as usize + 1] as usize,
            );
            let vecs = &self.p.vectors[a * self.p.dim..b * self.p.dim];
            for (&i, v) in self.p.ids[a..b].iter().zip(vecs.chunks_exact(self.p.dim)) {
                if skip(i) {
                    continue;
                }
                let s = match metric {
                    Metric::InnerProduct => dot(q, v),
                    Metric::Cosine(m) => {
                        let v = &v[..m];
                        let n = dot(v, v).sqrt();
                        if n > 0.0 {
                            dot(&q[..m], v) / n
                        } else {
                            0.0
                        }
                    }
                };
                best.push(i, s);
            }
        }
        best.into_sorted()
    }

    /// Chooses `probe` for `metric`: the fewest lists at which the mean
    /// recall@`k` of `queries` (row-major, the index's width) against the
    /// exact top `k` over the indexed items reaches `target`, leaving out the items
    /// `skip[j]` names (sorted) for query `j`, as serving leaves out what
    /// a user has seen. Returns what it chose
    /// and the recall measured there.
    pub fn calibrate(
        &mut self,
        queries: &[f32],
        skip: &[Vec<u32>],
        k: usize,
        target: f64,
        metric: Metric,
    ) -> Calibration {
        let lists = self.lists();
        // Where each item sits.
        let mut list_of = vec![0u32; self.len()];
        for l in 0..lists {
            for &i in &self.p.ids[self.p.offsets[l] as usize..self.p.offsets[l + 1] as usize] {
                list_of[i as usize] = l as u32;
            }
        }
        let dim = self.p.dim;
        let m = match metric {
            Metric::Cosine(m) => m,
            Metric::InnerProduct => dim,
        };
        // The index's own rows (list order) stand for the items: no copy.
        let vectors: &[f32] = &self.p.vectors;
        let norms: Vec<f32> = vectors
            .chunks_exact(dim)
            .map(|r| dot(&r[..m], &r[..m]).sqrt())
            .collect();
        // For each query, the rank of the list of each of its exact top k.
        let positions: Vec<Vec<usize>> = queries
            .par_chunks(dim)
            .enumerate()
            .map(|(j, q)| {
                let mut best = Best::new(k);
                let skip = skip.get(j).map_or(&[][..], Vec::as_slice);
                for ((at, r), &i) in vectors.chunks_exact(dim).enumerate().zip(&self.p.ids) {
                    if skip.binary_search(&i).is_ok() {
                        continue;
                    }
                    let s = match metric {
                        Metric::InnerProduct => dot(q, r),
                        Metric::Cosine(m) if norms[at] > 0.0 => dot(&q[..m], &r[..m]) / norms[at],
                        Metric::Cosine(_) => 0.0,
                    };
                    best.push(i, s);
                }
                let ranked = self.ranked_lists(q, metric);
                let mut rank_of = vec![0usize; lists];
                for (r, &l) in ranked.iter().enumerate() {
                    rank_of[l as usize] = r;
                }
                best.into_sorted()
                    .iter()
                    .map(|s| rank_of[list_of[s.item as usize] as usize])
                    .collect()
            })
            .collect();
        let recall_at = |p: usize| -> f64 {
            if positions.is_empty() {
                return 1.0;
            }
            positions
                .iter()
                .map(|pos| {
                    if pos.is_empty() {
                        1.0
                    } else {
                        pos.iter().filter(|&&r| r < p).count() as f64 / pos.len() as f64
                    }
                })
                .sum::<f64>()
                / positions.len() as f64
        };
        // Recall grows with probe: the fewest lists that reach the target.
        let (mut lo, mut hi) = (1usize, lists);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if recall_at(mid) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        match metric {
            Metric::InnerProduct => self.p.probe = lo,
            Metric::Cosine(_) => self.p.probe_similar = lo,
        }
        Calibration {
            probe: lo,
            recall: recall_at(lo),
            queries: positions.len(),
        }
    }
}

#[cfg(test)]
mod tests;
