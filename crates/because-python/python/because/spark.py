"""because on Spark: explained recommendations for every user in a batch
job, exact explanations of a model trained with Spark MLlib's ALS, and
distributed evaluation.

* `recommend_and_explain(users_df, model_path, k)` scores and explains
  each user's top `k` in the executors (`mapInPandas` over Arrow batches).
  The model folder is shipped to the executors once (`SparkContext.addFile`)
  and opened once per executor Python process, then kept for every batch.
* `from_spark_als(als_model, ratings_df, estimator=als)` turns a fitted
  `pyspark.ml.recommendation.ALSModel` into a `because` ALS model (its user
  and item factors, ID vocabularies and implicit-preference settings), so
  that its recommendations are explained by the same exact decomposition as
  ours.
* `evaluate(recommendations_df, test_df, k)` computes every user's metrics
  in the partitions with the single-machine evaluator's own definitions and
  combines them into the same means.

When is the decomposition exact? Spark's implicit-preference ALS
(`implicitPrefs=True`) solves, for each user, `(YᵀY + α·Σ r y yᵀ + λ·n_u·I)
x_u = (1 + α)·Σ y` over the user's `n_u` ratings, last in each iteration.
The imported model keeps Spark's factors (so its scores are Spark's
predictions) and uses the same system, with `regularization_scaling=count`
for `λ·n_u`, to split a score into one exact contribution per history
item. Explicit-feedback models (`implicitPrefs=False`) fit observed ratings
only, a different system with no `YᵀY` term over all items: their scores do
not decompose this way, and `from_spark_als` refuses them rather than
explain them wrongly. Ratings must be positive (Spark gives non-positive
ones preference 0, which this decomposition does not model), each (user,
item) pair must appear once (Spark counts every row in its system), and the
model must not be `nonnegative` (Spark then solves each user by
non-negative least squares).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import numpy as np

from . import _arrays, _because
from ._models import ALS, Recommender, _wrap, load

# Models opened in this (executor) process, by path: loaded once, kept for
# every batch and task the process runs.
_OPEN: dict[str, Recommender] = {}

RECOMMENDATIONS_SCHEMA = (
    "user string, rank int, item string, title string, score double, exact boolean, "
    "narrative string, contributions array<struct<item:string,title:string,weight:double>>, "
    "other_contributions double, counterfactual string"
)


def _open(path: str) -> Recommender:
    model = _OPEN.get(path)
    if model is None:
        model = load(path)
        _OPEN[path] = model
    return model


def _explained_rows(
    model: Recommender, users: list[str], k: int, counterfactuals: bool, approximate: bool = False
) -> dict[str, list]:
    cols: dict[str, list] = {
        "user": [], "rank": [], "item": [], "title": [], "score": [], "exact": [], "narrative": [],
        "contributions": [], "other_contributions": [], "counterfactual": [],
    }
    for recs in json.loads(model._fitted().explain_recommendations(users, k, counterfactuals, approximate)):
        user = recs["subject"]["user"]
        for r in recs["items"]:
            x = r.get("explanation") or {}
            cf = next((e for e in x.get("reasons", []) if e["kind"] == "counterfactual"), None)
            cols["user"].append(user)
            cols["rank"].append(r["rank"])
            cols["item"].append(r["item"])
            cols["title"].append(r.get("title") or r["item"])
            cols["score"].append(float(r["score"]))
            cols["exact"].append(bool(x.get("exact", False)))
            cols["narrative"].append(x.get("narrative", ""))
            cols["contributions"].append([
                {"item": c["item"]["id"], "title": c["item"]["title"], "weight": float(c["weight"])}
                for c in x.get("contributions", [])
            ])
            cols["other_contributions"].append(float(x.get("other_contributions", 0.0)))
            cols["counterfactual"].append(cf["sentence"] if cf else None)
    return cols


def recommend_and_explain(
    users_df,
    model_path: str | os.PathLike,
    k: int = 10,
    user_col: str = "user",
    counterfactuals: bool = False,
    approximate: bool = False,
):
    """Every user of `users_df[user_col]` with their top `k`, one row per
    recommendation: user, rank, item, title, score, whether the
    explanation is exact, its narrative, the history items' contributions
    (the largest; `other_contributions` is the rest, and with the bias they
    add up to the score), and with `counterfactuals` the verified
    counterfactual's sentence. Unknown users get the popularity fallback,
    explained as such. Computed in the executors; the model folder is
    shipped once. With `approximate`, each list comes from the folder's
    approximate-retrieval index (as `because serve` answers; every item is
    scored when the folder has none), each candidate scored exactly."""
    from pyspark import SparkFiles

    import shutil
    import tempfile

    spark = users_df.sparkSession
    path = os.path.abspath(os.fspath(model_path))
    manifest = os.path.join(path, "manifest.json")
    if not os.path.isfile(manifest):
        raise ValueError(f"model_path: {path} is not a model folder (no manifest.json)")
    # Shipped under a name that changes when the model is saved again, so
    # that executors never keep serving an older model from the same path.
    stamp = os.stat(manifest).st_mtime_ns
    name = f"{os.path.basename(path.rstrip('/'))}-{stamp}"
    sc = spark.sparkContext
    shipped = getattr(sc, "_because_shipped", set())
    if name not in shipped:
        copy = os.path.join(tempfile.mkdtemp(prefix="because-ship-"), name)
        shutil.copytree(path, copy)
        sc.addFile(copy, recursive=True)
        shipped.add(name)
        sc._because_shipped = shipped
    if user_col not in users_df.columns:
        raise KeyError(f"user_col: no column {user_col!r} (the frame has {users_df.columns})")
    kk, cf, approx = int(k), bool(counterfactuals), bool(approximate)

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        model = _open(SparkFiles.get(name))
        for pdf in batches:
            users = pdf[user_col].astype(str).tolist()
            yield pd.DataFrame(_explained_rows(model, users, kk, cf, approx))

    return users_df.select(users_df[user_col].cast("string").alias(user_col)).mapInPandas(
        score, RECOMMENDATIONS_SCHEMA
    )


def from_spark_als(
    als_model,
    ratings_df,
    path: str | os.PathLike | None = None,
    *,
    estimator=None,
    alpha: float | None = None,
    reg_param: float | None = None,
    implicit_prefs: bool | None = None,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
) -> ALS:
    """A `because` ALS model holding `als_model`'s factors and ID
    vocabularies, with `ratings_df` (the data it was fitted on) as the
    users' histories. The settings come from `estimator` (the `ALS` that
    fitted it) or are given: `alpha`, `reg_param`, `implicit_prefs`, the
    column names. Saved to `path` when given (a folder `because serve` and
    the command line open)."""

    def setting(given, getter: str, default=None):
        if given is not None:
            return given
        if estimator is not None:
            return getattr(estimator, getter)()
        if default is not None:
            return default
        raise ValueError(f"give `estimator` or the setting that {getter}() would give")

    implicit = setting(implicit_prefs, "getImplicitPrefs")
    if not implicit:
        raise ValueError(
            "implicit_prefs: Spark's explicit-feedback ALS fits observed ratings only, so its scores "
            "do not decompose over the history the way implicit ALS scores do; refit with implicitPrefs=True"
        )
    alpha = float(setting(alpha, "getAlpha"))
    reg = float(setting(reg_param, "getRegParam"))
    ucol = setting(user_col, "getUserCol", "user")
    icol = setting(item_col, "getItemCol", "item")
    rcol = setting(rating_col, "getRatingCol", "rating")
    # PySpark's default seed is a (possibly negative) hash; it plays no part
    # in imported factors, so any value that fits will do.
    seed = int(estimator.getSeed()) % (1 << 64) if estimator is not None else 0
    if estimator is not None and estimator.getNonnegative():
        raise ValueError(
            "nonnegative: Spark solved each user by non-negative least squares, not the linear "
            "system the decomposition splits, so its scores would not add up; refit with nonnegative=False"
        )
    iterations = int(estimator.getMaxIter()) if estimator is not None else 10

    uf = als_model.userFactors.toPandas().sort_values("id")
    itf = als_model.itemFactors.toPandas().sort_values("id")
    rank = int(als_model.rank)
    user_ids = [str(int(u)) for u in uf["id"]]
    item_ids = [str(int(i)) for i in itf["id"]]
    uidx = {u: k for k, u in enumerate(user_ids)}
    iidx = {i: k for k, i in enumerate(item_ids)}
    r = ratings_df.select(ucol, icol, rcol).toPandas()
    if r.duplicated([ucol, icol]).any():
        raise ValueError(
            f"{ucol}, {icol}: repeated pairs: Spark counts each row in its system, which one summed "
            "value cannot reproduce; merge them (as you want Spark to see them) before fitting"
        )
    if (r[rcol] <= 0).any():
        raise ValueError(f"{rcol}: non-positive ratings have preference 0 in Spark; this import needs positive ones")
    rows = np.array([uidx.get(str(int(u)), -1) for u in r[ucol]])
    cols = np.array([iidx.get(str(int(i)), -1) for i in r[icol]])
    known = (rows >= 0) & (cols >= 0)
    import scipy.sparse as sp

    m = sp.csr_matrix(
        (r[rcol].to_numpy(dtype=np.float32)[known], (rows[known], cols[known])),
        shape=(len(user_ids), len(item_ids)),
    )
    m = _arrays.csr(m)
    params = {
        "factors": rank,
        "regularization": reg,
        "alpha": alpha,
        "iterations": iterations,
        "cg_steps": 3,
        "solver": "cholesky",
        "seed": seed,
        "regularization_scaling": "count",
    }
    stack = lambda col: np.ascontiguousarray(np.vstack(col.to_numpy()), dtype="<f4")  # noqa: E731
    model = _wrap(_because.Model.from_als_factors(
        json.dumps(params), user_ids, item_ids, *_arrays.csr_bytes(m),
        stack(uf["features"]).tobytes(), stack(itf["features"]).tobytes(),
    ))
    if path is not None:
        model.save(path)
    return model  # type: ignore[return-value]


METRICS = ["precision", "recall", "ndcg", "map", "mrr", "hitrate"]


def evaluate(
    recommendations_df,
    test_df,
    k: int = 10,
    user_col: str = "user",
    item_col: str = "item",
    rank_col: str = "rank",
) -> dict[str, Any]:
    """Each test user's metrics at `k`, computed in the partitions with the
    single-machine evaluator's definitions (`because_eval::metrics`), then
    averaged: the same numbers `because.evaluate` gives for the same lists.
    Users of `test_df` without a list are left out and counted
    (`users_without_list`), as the evaluator leaves out users the model
    does not know."""
    from pyspark.sql import functions as F

    kk = int(k)
    lists = (
        recommendations_df.where(F.col(rank_col) <= kk)
        .groupBy(F.col(user_col).cast("string").alias("u"))
        .agg(F.sort_array(F.collect_list(F.struct(
            F.col(rank_col).alias("r"), F.col(item_col).cast("string").alias("i")
        ))).alias("ranked"))
        .select("u", F.col("ranked.i").alias("ranked"))
    )
    relevant = test_df.groupBy(F.col(user_col).cast("string").alias("u")).agg(
        F.collect_set(F.col(item_col).cast("string")).alias("relevant")
    )
    joined = relevant.join(lists, "u", "left")

    def per_user(batches):
        import pandas as pd

        for pdf in batches:
            has = pdf["ranked"].notna()
            part = pdf[has]
            values = np.frombuffer(
                _because.metrics_at_k(
                    [list(x) for x in part["ranked"]], [list(x) for x in part["relevant"]], kk
                ),
                dtype="<f8",
            ).reshape(-1, 6)
            out = pd.DataFrame(values, columns=METRICS)
            out.insert(0, "u", part["u"].to_numpy())
            yield out

    scored = joined.mapInPandas(per_user, "u string, " + ", ".join(f"{m} double" for m in METRICS))
    agg = scored.agg(F.count("u").alias("users"), *[F.sum(m).alias(m) for m in METRICS]).collect()[0]
    total = joined.count()
    n = agg["users"]
    out: dict[str, Any] = {f"{m}@{kk}": (agg[m] / n if n else 0.0) for m in METRICS}
    out["users"] = n
    out["users_without_list"] = total - n
    return out
