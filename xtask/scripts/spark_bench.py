"""Recommend + explain on Spark in local mode, run by `cargo xtask bench spark`.

Usage: spark_bench.py MODEL_FOLDER USERS MASTER...

For each master (`local[1]`, `local[2]`), scores and explains the top 10 of
USERS users spread over the model's users (no counterfactuals), and prints
one JSON line: rows, seconds of the job (the Spark session already up, the
model shipped and opened in the first batch of each worker included),
rows per second, and the largest resident memory of a Python worker.
"""

import json
import os
import resource
import sys
import time

from pyspark.sql import SparkSession

import because
import because.spark as bspark

folder, n_users, masters = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
model = because.load(folder)
ids = model.user_ids
step = max(1, len(ids) // n_users)
users = [str(u) for u in ids[::step][:n_users]]
size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))

for master in masters:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(master)
        .appName("because-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    parallelism = spark.sparkContext.defaultParallelism
    df = spark.createDataFrame([(u,) for u in users], "user string").repartition(parallelism * 4).cache()
    df.count()
    start = time.perf_counter()
    rows = bspark.recommend_and_explain(df, folder, k=10).count()
    seconds = time.perf_counter() - start

    def rss(batches):
        import pandas as pd

        for _ in batches:
            yield pd.DataFrame({"pid": [os.getpid()], "kb": [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]})

    workers = df.mapInPandas(rss, "pid long, kb long").toPandas().groupby("pid").kb.max()
    print(json.dumps({
        "master": master,
        "users": len(users),
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds,
        "python_workers": int(len(workers)),
        "worker_peak_mb": float(workers.max()) / 1024,
        "model_bytes": size,
    }), flush=True)
    spark.stop()
