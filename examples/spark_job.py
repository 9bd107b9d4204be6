"""A batch job: from a Parquet interaction log to explained recommendations
written as Parquet, on Spark.

    python examples/spark_job.py ratings.parquet recommendations.parquet \
        [--model als:factors=64] [--spark-als] [--k 10] [--master local[2]]

The model is either trained by because on the driver (`--model`, any
registered kind) or by Spark MLlib's ALS on the cluster (`--spark-als`,
implicit preferences) and imported, so its recommendations are explained
exactly. Every user's top k is then scored and explained in the executors.
The log needs user, item and rating (or value) columns with those names.
"""

import argparse
import os
import sys
import tempfile

from pyspark.sql import SparkSession

import because
import because.spark as bspark

p = argparse.ArgumentParser()
p.add_argument("log")
p.add_argument("out")
p.add_argument("--model", default="als:factors=64,regularization=0.05,iterations=15")
p.add_argument("--spark-als", action="store_true")
p.add_argument("--k", type=int, default=10)
p.add_argument("--master", default="local[2]")
a = p.parse_args()

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
spark = SparkSession.builder.master(a.master).appName("because-batch").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
log = spark.read.parquet(a.log)
folder = os.path.join(tempfile.mkdtemp(prefix="because-job-"), "model")

if a.spark_als:
    from pyspark.ml.recommendation import ALS

    als = ALS(rank=32, maxIter=10, regParam=0.05, alpha=1.0, implicitPrefs=True, seed=42,
              userCol="user", itemCol="item", ratingCol="rating")
    fitted = als.fit(log)
    model = bspark.from_spark_als(fitted, log, folder, estimator=als)
else:
    # Small enough for the driver: read with because's own reader.
    model = because.Model(a.model).fit(because.read_interactions(a.log), show_progress=False)
    model.save(folder)
print(f"model: {model.spec}")

users = log.select(log["user"].cast("string").alias("user")).distinct()
recs = bspark.recommend_and_explain(users, folder, k=a.k)
recs.write.mode("overwrite").parquet(a.out)
written = spark.read.parquet(a.out)
print(f"wrote {written.count()} explained recommendations for {written.select('user').distinct().count()} users to {a.out}")
row = written.orderBy("user", "rank").first()
print(f"e.g. user {row.user}, #{row.rank} {row.title}: {row.narrative}")
spark.stop()
