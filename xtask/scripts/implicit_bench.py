"""The implicit side of `cargo xtask bench models`: same data, same modes.

usage: implicit_bench.py MODE TRAIN.csv [TEST.csv] [N]
Prints seconds-per-unit first, like the Rust side.
"""
import os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np, pandas as pd, scipy.sparse as sp
import implicit
from implicit.evaluation import ranking_metrics_at_k

def load(path, users=None, items=None):
    df = pd.read_csv(path, usecols=["user_id", "item_id"])
    if users is None:
        users, u = np.unique(df["user_id"].to_numpy(), return_inverse=True)
        items, i = np.unique(df["item_id"].to_numpy(), return_inverse=True)
    else:
        u = np.searchsorted(users, df["user_id"].to_numpy())
        i = np.searchsorted(items, df["item_id"].to_numpy())
        ok = (u < len(users)) & (i < len(items))
        ok &= users[np.minimum(u, len(users) - 1)] == df["user_id"].to_numpy()
        ok &= items[np.minimum(i, len(items) - 1)] == df["item_id"].to_numpy()
        u, i = u[ok], i[ok]
    m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(users), len(items)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, users, items

mode, train_path = sys.argv[1], sys.argv[2]
threads = int(os.environ.get("BENCH_THREADS", "2"))
train, users, items = load(train_path)
if mode == "als":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    model = implicit.cpu.als.AlternatingLeastSquares(factors=64, iterations=n, use_cg=True, num_threads=threads, random_state=42)
    t = time.perf_counter(); model.fit(train, show_progress=False); s = time.perf_counter() - t
    print(f"{s / n:.4f} als seconds/iteration over {n} iterations")
elif mode == "bpr":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    model = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, iterations=n, num_threads=threads, random_state=42)
    t = time.perf_counter(); model.fit(train, show_progress=False); s = time.perf_counter() - t
    print(f"{s / n:.4f} bpr seconds/epoch over {n} epochs")
elif mode == "eval":
    test, _, _ = load(sys.argv[3], users, items)
    model = implicit.cpu.als.AlternatingLeastSquares(factors=64, iterations=3, use_cg=True, num_threads=threads, random_state=42)
    model.fit(train, show_progress=False)
    t = time.perf_counter()
    m = ranking_metrics_at_k(model, train, test, K=10, show_progress=False, num_threads=threads)
    print(f"{time.perf_counter() - t:.4f} eval seconds (ndcg@10 {m['ndcg']:.4f}, precision@10 {m['precision']:.4f})")
