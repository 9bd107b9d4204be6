"""because on Spark in local mode (local[2]) on MovieLens-100k: batch
recommend + explain equals the single-machine results, a Spark ALS model is
explained exactly, and distributed evaluation equals the local evaluator.
CI requires PySpark (BECAUSE_REQUIRE_DATA=1): these fail, not skip, there."""

import os
import sys

import numpy as np
import pytest

import because

pyspark = pytest.importorskip("pyspark") if os.environ.get("BECAUSE_REQUIRE_DATA") != "1" else __import__("pyspark")
from pyspark.sql import SparkSession  # noqa: E402

import because.spark as bspark  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("because-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def ratings(ml100k):
    import pandas as pd

    return pd.read_csv(ml100k / "ratings.csv")


def test_batch_recommend_and_explain_equals_the_single_machine(spark, ml100k, tmp_path):
    data = because.read_interactions(ml100k / "ratings.csv")
    model = because.EASE(regularization=200).fit(data, show_progress=False)
    folder = tmp_path / "ease"
    model.save(folder)
    users = [str(u) for u in model.user_ids] + ["not-a-user"]
    users_df = spark.createDataFrame([(u,) for u in users], "user string").repartition(3)
    rows = bspark.recommend_and_explain(users_df, folder, k=5).toPandas()
    assert len(rows) == 5 * len(users)
    local = because.load(folder).explain_recommendations(users, N=5, counterfactuals=False)
    want = {(e.user, e.rank): e for e in local}
    assert len(want) == len(rows)
    for r in rows.itertuples():
        e = want[(r.user, r.rank)]
        assert r.item == e.item
        assert abs(r.score - e.score) <= 1e-6 * (1 + abs(e.score))
        assert r.narrative == e.narrative
        total = sum(c["weight"] for c in r.contributions) + r.other_contributions
        if r.exact:
            assert abs(total - r.score) <= 1e-4 * (1 + abs(r.score))
    # The unknown user gets the popularity fallback, explained as such.
    fallback = rows[rows.user == "not-a-user"]
    assert len(fallback) == 5 and fallback.narrative.str.len().min() > 0


def test_a_spark_als_model_is_explained_exactly(spark, ratings, tmp_path):
    from pyspark.ml.recommendation import ALS as SparkALS

    df = spark.createDataFrame(ratings.rename(columns={"user_id": "user", "item_id": "item"}))
    als = SparkALS(rank=16, maxIter=10, regParam=0.05, alpha=2.0, implicitPrefs=True, seed=1,
                   userCol="user", itemCol="item", ratingCol="rating")
    fitted = als.fit(df)
    model = bspark.from_spark_als(fitted, df, tmp_path / "spark-als", estimator=als)
    assert "regularization_scaling=count" in model.spec
    users = [1, 42, 196, 500, 943]
    items = [1, 50, 100, 181, 258]
    pairs = spark.createDataFrame([(u, i) for u in users for i in items], "user int, item int")
    predicted = {(int(r.user), int(r.item)): float(r.prediction) for r in fitted.transform(pairs).collect()}
    uidx = {u: k for k, u in enumerate(model.user_ids)}
    iidx = {i: k for k, i in enumerate(model.item_ids)}
    for (u, i), p in predicted.items():
        score, _, d = model.explain(uidx[str(u)], None, iidx[str(i)])
        total = d.bias + sum(w for _, w in d.contributions)
        assert d.exact
        # The contributions add up to Spark's own prediction.
        assert abs(total - p) <= 1e-4 * abs(p) + 1e-6, (u, i, total, p)
        # And the model serves Spark's prediction.
        ids, scores = model.recommend(uidx[str(u)], N=model._fitted().n_items, filter_already_liked_items=False)
        served = dict(zip(ids.tolist(), scores.tolist()))
        assert abs(served[iidx[str(i)]] - p) <= 1e-5 * abs(p) + 1e-6
    # The saved folder opens as an ALS model that the command line can serve.
    assert isinstance(because.load(tmp_path / "spark-als"), because.ALS)
    with pytest.raises(ValueError, match="implicit"):
        bspark.from_spark_als(fitted, df, estimator=SparkALS(implicitPrefs=False))
    with pytest.raises(ValueError, match="nonnegative"):
        bspark.from_spark_als(fitted, df, estimator=SparkALS(implicitPrefs=True, nonnegative=True))
    # PySpark's default seed is a hash, often negative: still imported.
    unseeded = SparkALS(rank=16, regParam=0.05, alpha=2.0, implicitPrefs=True,
                        userCol="user", itemCol="item", ratingCol="rating")
    bspark.from_spark_als(fitted, df, estimator=unseeded)
    with pytest.raises(ValueError, match="repeated pairs"):
        bspark.from_spark_als(fitted, df.union(df.limit(5)), estimator=als)


def test_distributed_evaluation_equals_the_local_evaluator(spark, ml100k, tmp_path):
    data = because.read_interactions(ml100k / "ratings.csv")
    train, _, test = because.split(data, "user_temporal", 0.0, 0.2, seed=3)
    model = because.EASE(regularization=200).fit(train, show_progress=False)
    model.save(tmp_path / "m")
    local = because.evaluate([model], test, k=[10])
    test_pd = test.to_pandas()[["user", "item"]]
    test_df = spark.createDataFrame(test_pd)
    users_df = test_df.select("user").distinct()
    recs = bspark.recommend_and_explain(users_df, tmp_path / "m", k=10)
    got = bspark.evaluate(recs, test_df, k=10)
    assert got["users"] == int(local.users.iloc[0])
    assert got["users_without_list"] == 0
    for m in bspark.METRICS:
        want = float(local[(local.metric == m) & (local.k == 10)]["mean"].iloc[0])
        assert abs(got[f"{m}@10"] - want) <= 1e-12, (m, got[f"{m}@10"], want)


def test_the_example_job(spark, ratings, tmp_path):
    import subprocess
    from pathlib import Path

    log = tmp_path / "ratings.parquet"
    ratings.rename(columns={"user_id": "user", "item_id": "item"}).head(20000).to_parquet(log)
    job = Path(__file__).resolve().parents[3] / "examples" / "spark_job.py"
    out = subprocess.run(
        [sys.executable, str(job), str(log), str(tmp_path / "recs.parquet"), "--spark-als", "--k", "3"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert "regularization_scaling=count" in out
    import pandas as pd

    recs = pd.read_parquet(tmp_path / "recs.parquet")
    assert set(recs.columns) >= {"user", "rank", "item", "score", "narrative", "contributions"}
    assert len(recs) == 3 * recs.user.nunique()
    assert recs.narrative.str.startswith("Because").all()
