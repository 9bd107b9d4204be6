"""The Python binding's overhead, run by `cargo xtask bench python`.

Usage: python_bench.py MODEL_FOLDER OUT_JSON

Prints, for one user at a time, the mean seconds of `model.recommend` from
Python (with the model's own history, and implicit-style with the user's
row of a user × items matrix) against the same call timed inside Rust, and
the seconds of batch recommendation for every user (arrays, and the
`recommendations.json` document the command line writes), model loading
included.
"""

import json
import sys
import time

import numpy as np
import scipy.sparse as sp

import because

folder, out = sys.argv[1], sys.argv[2]

start = time.perf_counter()
model = because.load(folder)
load_s = time.perf_counter() - start
m = model._model
n_users = model._model.n_users
users = np.linspace(0, n_users - 1, 500).astype(np.int64)
REPS = 20

# Rust: the library call the binding makes, timed inside the library.
rust = np.mean([m.time_recommend(int(u), 10, REPS) for u in users])

# Python, the model's own history.
for u in users[:20]:
    model.recommend(int(u), N=10)
start = time.perf_counter()
for _ in range(REPS):
    for u in users:
        model.recommend(int(u), N=10)
python_own = (time.perf_counter() - start) / (REPS * len(users))

# Python, implicit-style: the user's row passed in (sliced beforehand).
rows = []
for u in users:
    items, values = m.history(int(u))
    i = np.frombuffer(items, dtype="<u4")
    v = np.frombuffer(values, dtype="<f4")
    rows.append(sp.csr_matrix((v, (np.zeros(len(i), dtype=np.int64), i)), shape=(1, model._model.n_items)))
start = time.perf_counter()
for _ in range(REPS):
    for u, row in zip(users, rows):
        model.recommend(int(u), row, N=10)
python_row = (time.perf_counter() - start) / (REPS * len(users))

# Every user at once: arrays, and the JSON document the command line writes.
start = time.perf_counter()
model2 = because.load(folder)
ids, scores = model2.recommend(np.arange(n_users), N=10)
batch_arrays = time.perf_counter() - start
start = time.perf_counter()
model3 = because.load(folder)
model3.recommend_all(10, path=out)
batch_json = time.perf_counter() - start
start = time.perf_counter()
doc = model3.recommend_all(10)
batch_dict = time.perf_counter() - start

print(json.dumps({
    "users": n_users,
    "load_seconds": load_s,
    "rust_single": rust,
    "python_single_own_history": python_own,
    "python_single_with_row": python_row,
    "batch_arrays_seconds": batch_arrays,
    "batch_json_seconds": batch_json,
    "batch_dict_seconds": batch_dict,
}))
