"""Arrays across the boundary: numpy arrays to little-endian bytes and back."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def u32(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64).astype("<u4")).tobytes()


def check_indices(a, n: int, what: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(a))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be integer indices, got {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise KeyError(f"{what} {int(bad[0])} is unknown to the model (it knows {n})")
    return arr


def csr(m, n_cols: int | None = None, what: str = "user_items") -> sp.csr_matrix:
    if not sp.issparse(m):
        raise ValueError(f"{what} must be a scipy.sparse matrix, got {type(m).__name__}")
    m = sp.csr_matrix(m)
    if n_cols is not None and m.shape[1] != n_cols:
        raise ValueError(f"{what} has {m.shape[1]} columns; the model has {n_cols} items")
    m.sum_duplicates()
    m.sort_indices()
    return m


def csr_bytes(m: sp.csr_matrix) -> tuple[bytes, bytes, bytes]:
    return (
        np.ascontiguousarray(m.indptr, dtype="<i8").tobytes(),
        np.ascontiguousarray(m.indices, dtype="<u4").tobytes(),
        np.ascontiguousarray(m.data, dtype="<f4").tobytes(),
    )


def ids_scores(ids: bytes, scores: bytes, rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.frombuffer(ids, dtype="<i4").reshape(rows, n)
    s = np.frombuffer(scores, dtype="<f4").reshape(rows, n)
    return i.astype(np.int32), s.astype(np.float32)
