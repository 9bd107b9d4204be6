use crate::Interactions;
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
    /// The user-item matrix of `x`: duplicate interactions are summed.
    pub fn from_interactions(x: &Interactions) -> CsrMatrix {
        let rows: Vec<(Vec<u32>, Vec<f32>)> = (0..x.n_users())
            .into_par_iter()
            .map(|u| {
                let items = x.user_items(u as u32);
                let values = x.user_values(u as u32);
                let mut pairs: Vec<(u32, f32)> =
                    items.iter().copied().zip(values.iter().copied()).collect();
                pairs.sort_by_key(|p| p.0);
                let mut idx: Vec<u32> = Vec::with_capacity(pairs.len());
                let mut val: Vec<f32> = Vec::with_capacity(pairs.len());
                for (i, v) in pairs {
                    if idx.last() == Some(&i) {
                        *val.last_mut().unwrap_or(&mut 0.0) += v;
                    } else {
                        idx.push(i);
                        val.push(v);
                    }
                }
                (idx, val)
            })
            .collect();
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0);
        let nnz: usize = rows.iter().map(|r| r.0.len()).sum();
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        for (idx, val) in rows {
            indices.extend_from_slice(&idx);
            data.extend_from_slice(&val);
            indptr.push(indices.len());
        }
        CsrMatrix {
            n_rows: x.n_users(),
            n_cols: x.n_items(),
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
        let mut cursor = indptr[..self.n_cols].to_vec();
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        for r in 0..self.n_rows {
            for k in self.indptr[r]..self.indptr[r + 1] {
                let c = self.indices[k] as usize;
                indices[cursor[c]] = r as u32;
                data[cursor[c]] = self.data[k];
                cursor[c] += 1;
            }
        }
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
}
