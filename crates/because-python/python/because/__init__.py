"""because: explainable recommendations.

Models shaped like implicit's (`fit`, `recommend`, `similar_items`,
`explain`), whose every recommendation can be explained faithfully: exact
score decompositions, typed reasons, narratives and verified
counterfactuals. Data, splits and full-ranking evaluation return pandas.

>>> import because
>>> model = because.ALS(factors=32).fit(user_items)            # doctest: +SKIP
>>> ids, scores = model.recommend(0, user_items[0], N=10)       # doctest: +SKIP
>>> score, top, _ = model.explain(0, user_items[0], ids[0])     # doctest: +SKIP

The heavy work runs in Rust with the GIL released; `set_num_threads`
sizes its thread pool.
"""

from __future__ import annotations

import json

import pandas as pd

from . import _because
from ._because import num_threads, set_num_threads
from ._data import Interactions, from_pandas, read_interactions, split
from ._explain import Contribution, Explanation, Explanations, Reason
from ._figures import Figure, bar_chart
from ._models import (
    ALS,
    BPR,
    EASE,
    Decomposition,
    ItemKNN,
    Model,
    Popularity,
    PureSVD,
    Recommender,
    UserKNN,
    load,
)
from . import als, bpr, nearest_neighbours  # noqa: E402  (implicit-style module names)

__version__ = _because.__version__

__all__ = [
    "ALS", "BPR", "EASE", "ItemKNN", "UserKNN", "PureSVD", "Popularity", "Model", "Recommender",
    "Decomposition", "Interactions", "Explanation", "Explanations", "Contribution", "Reason", "Figure",
    "load", "read_interactions", "from_pandas", "split", "evaluate", "explain_recommendations",
    "bar_chart", "set_num_threads", "num_threads", "als", "bpr", "nearest_neighbours",
]


def evaluate(models, test: Interactions, k=(5, 10, 20), seed: int = 42) -> pd.DataFrame:
    """Full-ranking evaluation of fitted models on `test` (in the models'
    IDs: fit them on `Interactions`, or on a matrix whose indices the test
    IDs are): one row per model and metric, with the mean over users and
    its 95% bootstrap interval (`ci_low`, `ci_high`; empty for catalogue
    measures such as coverage). `models` is a list or a dict of names to
    models. Users or items of `test` a model does not know are left out and
    counted in `dropped_unknown`."""
    if isinstance(models, dict):
        names, fitted = list(models.keys()), list(models.values())
    else:
        fitted = list(models)
        names = [m.spec for m in fitted]
    ks = [int(x) for x in ([k] if isinstance(k, int) else k)]
    out = json.loads(_because.evaluate([m._fitted() for m in fitted], test._data, ks, int(seed)))
    rows = []
    for name, r in zip(names, out):
        s = r["summary"]
        for metric, v in s["metrics"].items():
            base, cut = metric.split("@")
            ci = v.get("ci95") or [None, None]
            rows.append({
                "model": name, "metric": base, "k": int(cut), "mean": v["mean"],
                "ci_low": ci[0], "ci_high": ci[1], "users": s["users"], "dropped_unknown": r["dropped_unknown"],
            })
    return pd.DataFrame(rows)


def explain_recommendations(model: Recommender, users, N: int = 10, counterfactuals: bool = True) -> Explanations:
    """Each user's top `N` (external IDs) with full explanations; see
    `Recommender.explain_recommendations`."""
    return model.explain_recommendations(users, N=N, counterfactuals=counterfactuals)
