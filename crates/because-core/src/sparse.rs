use rayon::prelude::*;

/// A compressed sparse row matrix with `u32` column indices and `f32` values.
///
/// **Invariant:** column indices are strictly increasing within each row, so
/// there are no duplicate entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsrMatrix {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl CsrMatrix {
    /// The matrix of `n_rows` rows over `n_cols` columns whose row `r`
    /// holds the entries `row(r)` (columns and values, in any order;
    /// repeated columns are summed in the order given).
    pub(crate) fn from_rows<'a>(
        n_rows: usize,
        n_cols: usize,
        row: impl Fn(u32) -> (&'a [u32], &'a [f32]) + Sync,
    ) -> CsrMatrix {
        // Users in chunks of about 64k interactions, each chunk sorted and
        // summed into buffers of its own, then concatenated in order.
        let bounds = {
            let mut b = vec![0usize];
            let mut since = 0usize;
            for u in 0..n_rows {
                since += row(u as u32).0.len();
                if since >= 1 << 16 {
                    b.push(u + 1);
                    since = 0;
                }
            }
            if *b.last().unwrap_or(&0) != n_rows {
                b.push(n_rows);
            }
            b
        };
        type Chunk = (Vec<usize>, Vec<u32>, Vec<f32>);
        let chunks: Vec<Chunk> = bounds
            .par_windows(2)
            .map(|w| {
                let (mut lens, mut idx, mut val) = (Vec::new(), Vec::new(), Vec::new());
                let mut keys: Vec<u64> = Vec::new();
                for u in w[0]..w[1] {
                    let (items, values) = row(u as u32);
                    // Item, then position in the log: sorted, duplicates
                    // are summed in log order.
                    keys.clear();
                    keys.extend(
                        items
                            .iter()
                            .enumerate()
                            .map(|(k, &i)| (i as u64) << 32 | k as u64),
                    );
                    keys.sort_unstable();
                    let before = idx.len();
                    for &key in &keys {
                        let (i, v) = ((key >> 32) as u32, values[key as u32 as usize]);
                        if idx.len() > before && idx.last() == Some(&i) {
                            *val.last_mut().unwrap_or(&mut 0.0) += v;
                        } else {
                            idx.push(i);
                            val.push(v);
                        }
                    }
                    lens.push(idx.len() - before);
                }
                (lens, idx, val)
            })
            .collect();
        let mut indptr = Vec::with_capacity(n_rows + 1);
        indptr.push(0);
        let nnz: usize = chunks.iter().map(|c| c.1.len()).sum();
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        for (lens, idx, val) in chunks {
            for l in lens {
                indptr.push(indptr.last().copied().unwrap_or(0) + l);
            }
            indices.extend_from_slice(&idx);
            data.extend_from_slice(&val);
        }
        CsrMatrix {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        }
    }

    /// A matrix from its parts, checked: `indptr` has `n_rows + 1`
    /// non-decreasing entries ending at the number of entries, and each row's
    /// column indices are strictly increasing and below `n_cols`.
    pub fn from_parts(
        n_rows: usize,
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f32>,
    ) -> crate::Result<CsrMatrix> {
        let bad = |m: String| Err(crate::Error::Shape(m));
        if n_rows.checked_add(1) != Some(indptr.len())
            || indptr[0] != 0
            || indptr[n_rows] != indices.len()
            || indices.len() != data.len()
        {
            return bad(format!(
                "inconsistent CSR parts: {} rows, indptr {}, {} indices, {} values",
                n_rows,
                indptr.len(),
                indices.len(),
                data.len()
            ));
        }
        for r in 0..n_rows {
            if indptr[r] > indptr[r + 1] || indptr[r + 1] > indices.len() {
                return bad(format!("indptr decreases or overruns at row {r}"));
            }
            let row = &indices[indptr[r]..indptr[r + 1]];
            if row.windows(2).any(|w| w[0] >= w[1])
                || row.last().is_some_and(|&c| c as usize >= n_cols)
            {
                return bad(format!("row {r} has unsorted or out-of-range columns"));
            }
        }
        Ok(CsrMatrix {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        })
    }

    /// All column indices, row after row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// All values, row after row.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }
    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Row pointers.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }
    /// Column indices of row `r`.
    pub fn row_indices(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r]..self.indptr[r + 1]]
    }
    /// Values of row `r`.
    pub fn row_data(&self, r: usize) -> &[f32] {
        &self.data[self.indptr[r]..self.indptr[r + 1]]
    }
    /// The value at `(r, c)`, zero when not stored.
    pub fn get(&self, r: usize, c: u32) -> f32 {
        let idx = self.row_indices(r);
        idx.binary_search(&c)
            .map(|k| self.row_data(r)[k])
            .unwrap_or(0.0)
    }

    /// The transpose, also in CSR form (the CSC form of `self`).
    pub fn transpose(&self) -> CsrMatrix {
        let mut indptr = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for c in 0..self.n_cols {
            indptr[c + 1] += indptr[c];
        }
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        // Output rows (our columns) in as many ranges as threads, each
        // range filled by one thread scanning the whole matrix for its
        // columns: every write lands in that range's own slice.
        let parts = rayon::current_num_threads().clamp(1, 8);
        let mut cuts = vec![0usize];
        for p in 1..parts {
            let goal = self.nnz() * p / parts;
            let c = indptr.partition_point(|&v| v < goal).min(self.n_cols);
            cuts.push(c.max(*cuts.last().unwrap_or(&0)));
        }
        cuts.push(self.n_cols);
        let mut slices = Vec::with_capacity(parts);
        let (mut rest_i, mut rest_d) = (&mut indices[..], &mut data[..]);
        for w in cuts.windows(2) {
            let len = indptr[w[1]] - indptr[w[0]];
            let (a, b) = std::mem::take(&mut rest_i).split_at_mut(len);
            let (c, d) = std::mem::take(&mut rest_d).split_at_mut(len);
            slices.push((w[0], w[1], a, c));
            rest_i = b;
            rest_d = d;
        }
        slices.into_par_iter().for_each(|(lo, hi, out_i, out_d)| {
            let base = indptr[lo];
            let mut cursor: Vec<usize> = indptr[lo..hi].iter().map(|&p| p - base).collect();
            for r in 0..self.n_rows {
                for k in self.indptr[r]..self.indptr[r + 1] {
                    let c = self.indices[k] as usize;
                    if (lo..hi).contains(&c) {
                        let at = &mut cursor[c - lo];
                        out_i[*at] = r as u32;
                        out_d[*at] = self.data[k];
                        *at += 1;
                    }
                }
            }
        });
        CsrMatrix {
            n_rows: self.n_cols,
            n_cols: self.n_rows,
            indptr,
            indices,
            data,
        }
    }

    /// Approximate heap size in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.capacity() * 8 + self.indices.capacity() * 4 + self.data.capacity() * 4
    }
}

#[cfg(test)]
mod parts_tests {
    use super::CsrMatrix;

    #[test]
    fn inconsistent_parts_are_errors_not_panics() {
        assert!(CsrMatrix::from_parts(2, 3, vec![0, 100, 5], vec![0; 5], vec![0.0; 5]).is_err());
        assert!(CsrMatrix::from_parts(usize::MAX, 3, vec![0], vec![], vec![]).is_err());
        assert!(CsrMatrix::from_parts(1, 3, vec![0, 2], vec![1, 1], vec![0.0; 2]).is_err());
        assert!(CsrMatrix::from_parts(1, 3, vec![0, 2], vec![0, 2], vec![0.0; 2]).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Interactions;

    #[test]
    fn sums_duplicates_and_transposes() {
        let x = Interactions::from_tuples(
            2,
            3,
            [
                (0, 2, 1.0, 0),
                (0, 0, 2.0, 1),
                (0, 2, 3.0, 2),
                (1, 1, 1.0, 0),
            ],
        )
        .unwrap();
        let m = CsrMatrix::from_interactions(&x);
        assert_eq!(m.row_indices(0), &[0, 2]);
        assert_eq!(m.row_data(0), &[2.0, 4.0]);
        assert_eq!(m.nnz(), 3);
        let t = m.transpose();
        assert_eq!(t.n_rows(), 3);
        assert_eq!(t.get(2, 0), 4.0);
        assert_eq!(t.get(1, 1), 1.0);
        assert_eq!(t.get(1, 0), 0.0);
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn transpose_and_building_are_the_same_at_any_thread_count() {
        // Enough rows for several chunks of users and column ranges.
        let rows: Vec<(u32, u32, f32, i64)> = (0..40_000u32)
            .map(|k| (k % 997, (k * 7919) % 311, (k % 5) as f32, k as i64))
            .collect();
        let x = Interactions::from_tuples(997, 311, rows).unwrap();
        let build = || {
            let m = CsrMatrix::from_interactions(&x);
            let t = m.transpose();
            (m, t)
        };
        let (m, t) = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(build);
        for threads in [2, 3, 5] {
            let other = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(build);
            assert_eq!(other, (m.clone(), t.clone()), "{threads} threads");
        }
        // Every entry lands where it belongs, and back.
        for r in 0..m.n_rows() {
            for (&c, &v) in m.row_indices(r).iter().zip(m.row_data(r)) {
                assert_eq!(t.get(c as usize, r as u32), v);
            }
        }
        assert_eq!(t.transpose(), m);
    }
}
