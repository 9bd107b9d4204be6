"""Interaction logs: read with the command line's column detection and
cleaning report, converted to and from pandas and scipy."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _because


class Interactions:
    """A cleaned interaction log in external IDs (users and items numbered
    in order of first appearance). `report` says what was read, kept and
    dropped, and why."""

    def __init__(self, data: _because.Data):
        self._data = data

    @property
    def n_users(self) -> int:
        return self._data.n_users

    @property
    def n_items(self) -> int:
        return self._data.n_items

    def __len__(self) -> int:
        return len(self._data)

    @property
    def user_ids(self) -> np.ndarray:
        return np.array(self._data.user_ids(), dtype=object)

    @property
    def item_ids(self) -> np.ndarray:
        return np.array(self._data.item_ids(), dtype=object)

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self._data.report())

    def _columns(self):
        u, i, v, t, e = self._data.columns()
        return (
            np.frombuffer(u, dtype="<u4"),
            np.frombuffer(i, dtype="<u4"),
            np.frombuffer(v, dtype="<f4"),
            np.frombuffer(t, dtype="<i8"),
            np.frombuffer(e, dtype=np.uint8),
        )

    def to_pandas(self) -> pd.DataFrame:
        """One row per interaction: user, item, value, and timestamp (and
        event) when the log has them; each user's rows in time order."""
        u, i, v, t, e = self._columns()
        df = pd.DataFrame({"user": self.user_ids[u], "item": self.item_ids[i], "value": v})
        if self._data.has_time:
            df["timestamp"] = pd.to_datetime(t, unit="ms")
        names = self._data.event_names()
        if names and len(e):
            df["event"] = pd.Categorical.from_codes(e.astype(np.int64), categories=names)
        return df

    def to_csr(self) -> sp.csr_matrix:
        """Users × items, repeated pairs summed: what `fit` takes."""
        u, i, v, _, _ = self._columns()
        m = sp.csr_matrix((v, (u, i)), shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        return m

    def __repr__(self) -> str:
        return f"<Interactions: {len(self):,} of {self.n_users:,} users on {self.n_items:,} items>"


def read_interactions(
    path: str | os.PathLike,
    *,
    user: str | None = None,
    item: str | None = None,
    rating: str | None = None,
    time: str | None = None,
    event: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    ignore_rating: bool = False,
    strict: bool = False,
    min_user_interactions: int | None = None,
    min_item_interactions: int | None = None,
    kcore: int | str | None = None,
    binarize: float | None = None,
    **settings: Any,
) -> Interactions:
    """Reads a log as `because train --data` does: CSV, TSV, MovieLens
    files, JSON Lines or Parquet, columns detected from their names unless
    given, malformed rows dropped and counted (or, with `strict`, an error
    naming the file, line and column), then filtered. Any other reading
    flag of the command line is a keyword with `_` for `-`
    (`rating_range="1,5"`, `event_weights="view=1,purchase=5"`,
    `time_unit="ms"`, `kcore="5,3"`); the library checks them all."""
    opts: dict[str, Any] = {
        "user_col": user,
        "item_col": item,
        "rating_col": rating,
        "time_col": time,
        "event_col": event,
        "delimiter": delimiter,
        "header": header is True,
        "no_header": header is False,
        "no_rating": ignore_rating,
        "strict": strict,
        "min_user_interactions": min_user_interactions,
        "min_item_interactions": min_item_interactions,
        "kcore": None if kcore is None else str(kcore),
        "binarize": binarize,
        **settings,
    }
    opts = {k: v for k, v in opts.items() if v is not None}
    return Interactions(_because.Data.read(os.fspath(path), json.dumps(opts)))


def from_pandas(
    df: pd.DataFrame,
    user: str = "user",
    item: str = "item",
    value: str | None = None,
    time: str | None = None,
    ratings: bool = False,
) -> Interactions:
    """An interaction log from a data frame: a user and an item column
    (any values, read as text), optionally a value column (1 each when
    absent; `ratings=True` marks them explicit ratings) and a time column
    (datetimes or epoch milliseconds)."""
    for name, col in (("user", user), ("item", item), ("value", value), ("time", time)):
        if col is not None and col not in df.columns:
            raise KeyError(f"`{name}`: no column {col!r} (the frame has {list(df.columns)})")
    users = df[user].astype(str).tolist()
    items = df[item].astype(str).tolist()
    values = np.ones(len(df), dtype="<f4") if value is None else df[value].to_numpy(dtype="<f4")
    if time is None:
        times = np.zeros(len(df), dtype="<i8")
    else:
        t = df[time]
        if pd.api.types.is_datetime64_any_dtype(t):
            ms = (pd.to_datetime(t, utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
            times = ms.to_numpy(dtype="<i8")
        else:
            times = t.to_numpy(dtype="<i8")
    return Interactions(
        _because.Data.from_columns(users, items, values.tobytes(), times.tobytes(), time is not None, ratings)
    )


def split(
    data: Interactions,
    method: str = "user-temporal",
    validation: float = 0.1,
    test: float = 0.1,
    seed: int = 42,
    per_user: bool = False,
) -> tuple[Interactions, Interactions, Interactions]:
    """Train, validation and test parts in one vocabulary, with no
    (user, item) pair in two parts, as `because split` makes them. `method`
    as the command line names it: `random` (of all interactions, or of
    each user's with `per_user`), `temporal` (one pair of cut-off times),
    `user-temporal` (each user's latest shares) or `leave-last-out`; `_`
    reads as `-`."""
    parts = data._data.split(method, float(validation), float(test), int(seed), bool(per_user))
    return tuple(Interactions(p) for p in parts)  # type: ignore[return-value]
