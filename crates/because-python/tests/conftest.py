"""Shared fixtures: MovieLens-100k (fetched by `cargo xtask fetch-data`;
required when BECAUSE_REQUIRE_DATA=1, as CI sets it), the `because` binary
for comparisons with the command line (BECAUSE_BIN), and small synthetic
data."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp


def _need(what: str):
    if os.environ.get("BECAUSE_REQUIRE_DATA") == "1":
        pytest.fail(f"{what} is required here (BECAUSE_REQUIRE_DATA=1)")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def ml100k() -> Path:
    d = os.environ.get("BECAUSE_ML100K")
    if not d or not (Path(d) / "ratings.csv").is_file():
        _need("MovieLens-100k (BECAUSE_ML100K)")
    return Path(d)


@pytest.fixture(scope="session")
def ml_csr(ml100k):
    """MovieLens-100k as a binary users × items matrix, indices as in the file minus one."""
    raw = np.loadtxt(ml100k / "ratings.csv", dtype=np.int64, delimiter=",", skiprows=1)
    users, items = raw[:, 0] - 1, raw[:, 1] - 1
    m = sp.csr_matrix(
        (np.ones(len(raw), dtype=np.float32), (users, items)),
        shape=(users.max() + 1, items.max() + 1),
    )
    m.sum_duplicates()
    return m


@pytest.fixture(scope="session")
def because_bin() -> str:
    b = os.environ.get("BECAUSE_BIN") or shutil.which("because")
    if not b:
        _need("the because binary (BECAUSE_BIN)")
    return b


@pytest.fixture()
def small():
    """200 users × 60 items in three taste blocks, with noise."""
    rng = np.random.default_rng(7)
    rows, cols = [], []
    for u in range(200):
        block = u % 3
        liked = rng.choice(np.arange(block * 20, block * 20 + 20), size=8, replace=False)
        noise = rng.choice(60, size=2, replace=False)
        for i in np.concatenate([liked, noise]):
            rows.append(u)
            cols.append(i)
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(200, 60))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
