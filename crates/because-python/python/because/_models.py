"""Models with an API shaped like implicit's: `fit(user_items)`,
`recommend(userid, user_items, N)`, `similar_items(itemid, N)`,
`explain(userid, user_items, itemid)`, `save(path)` and `because.load`."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from . import _arrays, _because
from ._data import Interactions
from ._explain import Explanation, Explanations


@dataclass
class Decomposition:
    """A score split exactly over the history: `bias` plus every history
    item's contribution (largest first) add up to `score` when `exact`."""

    score: float
    bias: float
    exact: bool
    contributions: list[tuple[int, float]]


#: The registered kinds, as the library's registry describes them: name,
#: one line, parameters with their defaults, capabilities.
KINDS: dict[str, dict[str, Any]] = {k["name"]: k for k in json.loads(_because.kinds())}


class Recommender:
    """A `because` model. Subclasses name the kind and their keywords for
    its parameters (implicit's names where implicit has the model); `None`
    leaves a parameter at the registry's default, and the class's
    documentation lists the defaults from the registry."""

    kind: str = ""
    _names: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if not cls.kind:
            return
        info = KINDS.get(cls.kind)
        if info is None:
            raise ImportError(f"{cls.__name__}: the library registers no model kind {cls.kind!r}")
        params = ", ".join(
            f"{k}={'(optional)' if v is None else v}" for k, v in info["parameters"].items()
        )
        cls.__doc__ = (
            f"{(cls.__doc__ or '').strip() or info['about']}\n\n"
            f"Kind `{cls.kind}`; parameters and defaults: {params}."
        )

    def __getattr__(self, name: str) -> Any:
        # Parameters read as attributes (`model.factors`), as implicit's do:
        # the value given, else the registry's default.
        if name.startswith("_"):
            raise AttributeError(name)
        key = type(self)._names.get(name, name)
        info = KINDS.get(type(self).kind)
        if info is not None and key in info["parameters"]:
            return self.__dict__.get("_params", {}).get(name, info["parameters"][key])
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __init__(self, num_threads: int = 0, **params: Any):
        self._params = {k: v for k, v in params.items() if v is not None}
        self._model: _because.Model | None = None
        self.loss_history: list[float] = []
        if num_threads:
            _because.set_num_threads(int(num_threads))

    # -- what it is ---------------------------------------------------------

    @property
    def spec(self) -> str:
        """The model as the command line writes it (`als:factors=64,...`)."""
        if self._model is not None:
            return self._model.spec
        parts = [f"{self._names.get(k, k)}={_text(v)}" for k, v in sorted(self._params.items())]
        return self.kind + (":" + ",".join(parts) if parts else "")

    def _fitted(self) -> _because.Model:
        if self._model is None:
            raise ValueError(f"the {type(self).__name__} model is not fitted yet: call fit() first")
        return self._model

    @property
    def user_ids(self) -> np.ndarray:
        """External user IDs in index order."""
        return np.array(self._fitted().user_ids(), dtype=object)

    @property
    def item_ids(self) -> np.ndarray:
        """External item IDs in index order."""
        return np.array(self._fitted().item_ids(), dtype=object)

    @property
    def item_factors(self) -> np.ndarray | None:
        """Item embeddings (items × factors), for models that have them."""
        f = self._fitted().item_factors()
        if f is None:
            return None
        data, d = f
        return np.frombuffer(data, dtype="<f4").reshape(-1, d).astype(np.float32)

    def __repr__(self) -> str:
        state = "fitted" if self._model is not None else "not fitted"
        return f"<{type(self).__name__} {self.spec} ({state})>"

    # -- training -----------------------------------------------------------

    def fit(
        self,
        user_items: sp.spmatrix | Interactions,
        show_progress: bool = True,
        callback: Callable[..., Any] | None = None,
        values: str = "auto",
        item_features: str | os.PathLike | None = None,
        user_features: str | os.PathLike | None = None,
        early_stopping: int | None = None,
    ) -> "Recommender":
        """Fits on a users × items sparse matrix (as implicit does), or on
        `Interactions` (their IDs then name users and items, and `values`
        chooses binary or as-is values as `because train --values` does;
        `item_features` and `user_features` are feature files, read by the
        models that use features, such as `twotower`, and item titles are
        kept).
        With `early_stopping` (a number of checks) and `Interactions`, an
        iterative model whose spec leaves its epochs to their default picks
        them as `because train` does: each epoch checked on the latest
        interaction of up to 5,000 users held out, stopped after that many
        checks without a gain, then refitted on everything for the best
        epochs. Without it, the epochs given are trained.
        After each epoch of iterative models, `callback(epoch, elapsed)` is
        called (a true return value stops training early) and, with
        `show_progress`, a tqdm bar advances when tqdm is installed. The
        GIL is released while the model trains."""
        start = time.time()
        bar = _progress(show_progress, type(self).__name__)
        self.loss_history = []

        def on_epoch(epoch: int, of: int, loss: float | None) -> bool:
            if loss is not None:
                self.loss_history.append(loss)
            if bar is not None:
                bar.total = of
                bar.update(epoch - bar.n)
                if loss is not None:
                    bar.set_postfix(loss=f"{loss:.4g}")
            if callback is not None:
                return bool(callback(epoch, time.time() - start))
            return False

        try:
            if isinstance(user_items, Interactions):
                self._model = _because.Model.fit_data(
                    self.spec,
                    user_items._data,
                    values,
                    on_epoch,
                    None if item_features is None else os.fspath(item_features),
                    None if user_features is None else os.fspath(user_features),
                    early_stopping,
                )
            else:
                if item_features is not None or user_features is not None:
                    raise ValueError(
                        "features need Interactions read with because.read_interactions, whose IDs they name"
                    )
                if early_stopping is not None:
                    raise ValueError(
                        "early_stopping needs Interactions read with because.read_interactions"
                    )
                m = _arrays.csr(user_items)
                self._model = _because.Model.fit_csr(
                    self.spec, *_arrays.csr_bytes(m), m.shape[0], m.shape[1], on_epoch
                )
        finally:
            if bar is not None:
                bar.close()
        return self

    # -- using --------------------------------------------------------------

    def recommend(
        self,
        userid,
        user_items: sp.spmatrix | None = None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
        approximate: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `N` item indices and scores for user index `userid` (or
        an array of them: then 2-D arrays, padded with -1 and -inf where
        fewer than `N` items are left). `user_items` holds the users' rows
        (one per user asked for, or the whole training matrix): its items
        are left out with `filter_already_liked_items`, and with
        `recalculate_user` the user is scored from it (fold-in) instead of
        as trained. `filter_items` are never recommended; `items`, when
        given, are the only candidates. With `approximate`, the lists come
        from the approximate-retrieval index of a model opened with
        `because.load` whose folder has one (`save(path, index="always")`),
        as `because serve` answers, each candidate scored exactly; without
        an index every item is scored (`info()["retrieval"]` says which)."""
        m = self._fitted()
        scalar = np.ndim(userid) == 0
        users = np.atleast_1d(np.asarray(userid))
        if users.size and not np.issubdtype(users.dtype, np.integer):
            raise ValueError(f"userid must be integer user indices, got {users.dtype}")
        users = users.astype(np.int64)
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        N = min(int(N), m.n_items)
        if not recalculate_user:
            _arrays.check_indices(users, m.n_users, "user")
        elif (users < 0).any():
            raise KeyError(f"user {int(users[users < 0][0])} is not a valid index")
        rows = (b"", b"", b"")
        if user_items is not None:
            ui = _arrays.csr(user_items, m.n_items)
            if ui.shape[0] != len(users):
                if ui.shape[0] == m.n_users and not recalculate_user:
                    ui = ui[users]
                else:
                    raise ValueError(
                        f"user_items has {ui.shape[0]} rows for {len(users)} users: give their rows"
                    )
            rows = _arrays.csr_bytes(ui)
        deny = b"" if filter_items is None else _arrays.u32(_arrays.check_indices(filter_items, m.n_items, "item"))
        allow = None if items is None else _arrays.u32(_arrays.check_indices(items, m.n_items, "item"))
        ids, scores = m.recommend(
            _arrays.u32(users), int(N), *rows, bool(filter_already_liked_items), bool(recalculate_user), deny, allow,
            bool(approximate),
        )
        ids, scores = _arrays.ids_scores(ids, scores, len(users), int(N))
        if scalar:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def similar_items(
        self, itemid, N: int = 10, filter_items=None, items=None, approximate: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `N` items most similar to item index `itemid` (or each of an
        array of them), most similar first; the item itself is left out.
        `approximate` as for `recommend`."""
        m = self._fitted()
        scalar = np.ndim(itemid) == 0
        its = _arrays.check_indices(itemid, m.n_items, "item")
        if N < 1:
            raise ValueError(f"N must be at least 1, got {N}")
        deny = set() if filter_items is None else set(_arrays.check_indices(filter_items, m.n_items, "item").tolist())
        allow = None if items is None else set(_arrays.check_indices(items, m.n_items, "item").tolist())
        N = min(int(N), m.n_items)
        # Enough candidates to fill N after the filters: all items only when
        # a candidate list is given.
        n = m.n_items if allow is not None else min(m.n_items, int(N) + len(deny))
        ids, scores = _arrays.ids_scores(*m.similar_items(_arrays.u32(its), n, bool(approximate)), len(its), n)
        if deny or allow is not None:
            out_i = np.full((len(its), N), -1, dtype=np.int32)
            out_s = np.full((len(its), N), -np.inf, dtype=np.float32)
            for r in range(len(its)):
                keep = [k for k in range(n) if ids[r, k] >= 0 and ids[r, k] not in deny and (allow is None or ids[r, k] in allow)][:N]
                out_i[r, : len(keep)] = ids[r, keep]
                out_s[r, : len(keep)] = scores[r, keep]
            ids, scores = out_i, out_s
        else:
            ids, scores = ids[:, :N], scores[:, :N]
        if scalar:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def explain(self, userid: int, user_items: sp.spmatrix | None, itemid: int, user_weights=None, N: int = 10):
        """Why user `userid` gets item `itemid`, as implicit's ALS `explain`
        answers: `(score, top_contributions, decomposition)`, where
        `top_contributions` are the `N` largest `(itemid, contribution)`
        pairs of the user's history (`user_items`' row, or the training
        history when None) and `decomposition` holds every contribution and
        the bias; all contributions plus the bias add up to the score, for
        every model with an exact decomposition (ALS, EASE, item-kNN,
        PureSVD)."""
        m = self._fitted()
        _arrays.check_indices(itemid, m.n_items, "item")
        if user_items is None:
            _arrays.check_indices(userid, m.n_users, "user")
            hist_items, hist_values = m.history(int(userid))
        else:
            ui = _arrays.csr(user_items, m.n_items)
            row = ui[0] if ui.shape[0] == 1 else ui[int(userid)]
            hist_items = np.ascontiguousarray(row.indices, dtype="<u4").tobytes()
            hist_values = np.ascontiguousarray(row.data, dtype="<f4").tobytes()
        d = json.loads(m.decompose(hist_items, hist_values, int(itemid)))
        contributions = [(int(c["item"]), float(c["weight"])) for c in d["contributions"]]
        decomposition = Decomposition(float(d["score"]), float(d["bias"]), bool(d["exact"]), contributions)
        return float(d["score"]), contributions[:N], decomposition

    def explain_recommendations(self, users, N: int = 10, counterfactuals: bool = True) -> Explanations:
        """Each user's top `N` (users by external ID) with full
        explanations: narrative, typed reasons, exact contributions and,
        with `counterfactuals`, the verified counterfactual. Shown as cards
        in Jupyter."""
        m = self._fitted()
        users = [str(u) for u in (users if not isinstance(users, (str, int)) else [users])]
        out = Explanations()
        for recs in json.loads(m.explain_recommendations(users, int(N), bool(counterfactuals))):
            user = recs["subject"].get("user")
            for item in recs["items"]:
                if item.get("explanation"):
                    out.append(Explanation(user, item["rank"], item["explanation"]))
        return out

    def explain_item(self, user, item, N: int = 10, method: str | None = None) -> Explanation:
        """Why `item` is (or would be) recommended to `user` (external IDs),
        with its counterfactual out of the top `N`, by `method` (one of
        `explanation_methods`; by default the model's most faithful one).
        A method the model does not offer raises `ValueError` naming those
        it does."""
        r = json.loads(self._fitted().explain_item(str(user), str(item), int(N), method))
        return Explanation(r["subject"].get("user"), None, r["explanation"])

    @property
    def explanation_methods(self) -> list[str]:
        """The explanation methods the model offers, its default first."""
        return list(self.info()["explanation_methods"])

    def with_context(self, items=None, users=None, events=None) -> "Recommender":
        """The same model with item features, user features and the raw
        event log to draw reasons from (as `because explain --items --users
        --events`)."""
        out = _wrap(self._fitted().with_context(
            None if items is None else os.fspath(items),
            None if users is None else os.fspath(users),
            None if events is None else os.fspath(events),
        ))
        return out

    def recommend_all(self, N: int = 10, path=None) -> dict[str, Any] | None:
        """Every known user's top `N`, as `recommendations.json` holds them;
        with `path`, written there by Rust (as `because recommend --all`
        writes it) instead of returned."""
        if path is not None:
            self._fitted().recommend_all(int(N), os.fspath(path))
            return None
        return json.loads(self._fitted().recommend_all(int(N)))

    def info(self) -> dict[str, Any]:
        """Kind, spec, parameters, sizes, capabilities, data fingerprint."""
        return json.loads(self._fitted().info())

    def save(self, path, index: str = "auto") -> None:
        """Writes a model folder that `because.load` and the command line
        (`because recommend --model PATH`) open, with an approximate-retrieval
        index for models whose scores are inner products: `"auto"` from
        50,000 items, `"always"` or `"never"`."""
        self._fitted().save(os.fspath(path), index)


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _progress(show: bool, name: str):
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(desc=f"fitting {name}", unit="epoch")


class ALS(Recommender):
    """Implicit alternating least squares (Hu, Koren and Volinsky 2008)."""

    kind = "als"
    _names = {"random_state": "seed"}

    def __init__(self, factors: int | None = None, regularization: float | None = None, alpha: float | None = None,
                 iterations: int | None = None, random_state: int | None = None, solver: str | None = None,
                 cg_steps: int | None = None, num_threads: int = 0):
        super().__init__(num_threads, factors=factors, regularization=regularization, alpha=alpha,
                         iterations=iterations, random_state=random_state, solver=solver, cg_steps=cg_steps)


class BPR(Recommender):
    """Matrix factorization by the BPR (or WARP) ranking loss."""

    kind = "bpr"
    _names = {"random_state": "seed", "iterations": "epochs"}

    def __init__(self, factors: int | None = None, learning_rate: float | None = None, regularization: float | None = None,
                 iterations: int | None = None, random_state: int | None = None, loss: str | None = None,
                 num_threads: int = 0):
        super().__init__(num_threads, factors=factors, learning_rate=learning_rate,
                         regularization=regularization, iterations=iterations, random_state=random_state, loss=loss)


class EASE(Recommender):
    """The closed-form item-item autoencoder (Steck 2019)."""

    kind = "ease"
    _names = {"regularization": "lambda"}

    def __init__(self, regularization: float | None = None, num_threads: int = 0):
        super().__init__(num_threads, regularization=regularization)


class ItemKNN(Recommender):
    """Item-based k-nearest neighbours (cosine, TF-IDF or BM25 weighting)."""

    kind = "itemknn"
    _names = {"K": "neighbours"}

    def __init__(self, K: int | None = None, shrinkage: float | None = None, weighting: str | None = None,
                 num_threads: int = 0):
        super().__init__(num_threads, K=K, shrinkage=shrinkage, weighting=weighting)


class UserKNN(Recommender):
    """User-based k-nearest neighbours, found at query time."""

    kind = "userknn"
    _names = {"K": "neighbours"}

    def __init__(self, K: int | None = None, shrinkage: float | None = None, num_threads: int = 0):
        super().__init__(num_threads, K=K, shrinkage=shrinkage)


class PureSVD(Recommender):
    """PureSVD by randomized truncated SVD."""

    kind = "svd"
    _names = {"random_state": "seed"}

    def __init__(self, factors: int | None = None, oversampling: int | None = None, power_iterations: int | None = None,
                 random_state: int | None = None, num_threads: int = 0):
        super().__init__(num_threads, factors=factors, oversampling=oversampling,
                         power_iterations=power_iterations, random_state=random_state)


class Popularity(Recommender):
    """The most chosen items, over all time or a recent window."""

    kind = "pop"

    def __init__(self, window_days: float | None = None, num_threads: int = 0):
        super().__init__(num_threads, window_days=window_days)


class Model(Recommender):
    """A model of a kind given as a spec (`because.Model("mf:factors=16")`),
    for kinds without a class of their own."""

    def __init__(self, spec: str, num_threads: int = 0):
        super().__init__(num_threads)
        self.kind = spec.split(":", 1)[0]
        self._spec = spec

    @property
    def spec(self) -> str:
        if self._model is not None:
            return self._model.spec
        return self._spec


def _classes() -> dict[str, type[Recommender]]:
    """The class of each kind that has one (implicit's shape), by kind."""
    out: dict[str, type[Recommender]] = {}
    todo = list(Recommender.__subclasses__())
    while todo:
        c = todo.pop()
        todo.extend(c.__subclasses__())
        if c.kind and c.kind not in out and c.__module__ == __name__:
            out[c.kind] = c
    return out


def _wrap(m: _because.Model) -> Recommender:
    cls = _classes().get(m.kind)
    if cls is None:
        out: Recommender = Model(m.spec)
    else:
        out = cls.__new__(cls)
        Recommender.__init__(out)
    out._model = m
    return out


def load(path) -> Recommender:
    """Opens a model folder written by `save` or by the command line
    (`because train`, `tune`, `run`), as the class of its kind."""
    return _wrap(_because.Model.load(os.fspath(path)))
