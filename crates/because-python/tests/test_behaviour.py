"""Notebook manners: clear errors, the GIL released, threads, progress."""

import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import because


def test_bad_parameters_name_the_key(small):
    with pytest.raises(ValueError, match="factors"):
        because.ALS(factors=0).fit(small, show_progress=False)
    with pytest.raises(ValueError, match="lambda"):
        because.EASE(regularization=-1).fit(small, show_progress=False)
    with pytest.raises(ValueError, match="not fitted"):
        because.ALS().recommend(0, small[0])
    with pytest.raises(ValueError, match="N must be"):
        because.EASE(regularization=5).fit(small, show_progress=False).recommend(0, small[0], N=0)


def test_unknown_ids_are_key_errors(small):
    model = because.EASE(regularization=5).fit(small, show_progress=False)
    with pytest.raises(KeyError):
        model.recommend(10_000, small[0])
    with pytest.raises(KeyError):
        model.similar_items(999)
    with pytest.raises(KeyError):
        model.explain(0, small, 999)
    with pytest.raises(KeyError):
        model.explain_item("0", "no such item")


def test_not_supported_is_not_implemented(small):
    model = because.UserKNN(K=10).fit(small, show_progress=False)
    with pytest.raises(NotImplementedError):
        model.similar_items(0)


def test_fitting_releases_the_gil(ml_csr):
    model = because.ALS(factors=64, iterations=15, random_state=1)
    worker = threading.Thread(target=lambda: model.fit(ml_csr, show_progress=False))
    spins = 0
    worker.start()
    while worker.is_alive():
        spins += 1
        time.sleep(0.001)
    worker.join()
    # With the GIL held for the whole fit, this loop could not have run.
    assert spins > 20


def test_threads_are_configurable_and_do_not_change_results(small):
    before = because.num_threads()
    try:
        because.set_num_threads(1)
        assert because.num_threads() == 1
        one = because.ALS(factors=8, iterations=5, random_state=2).fit(small, show_progress=False)
        because.set_num_threads(2)
        two = because.ALS(factors=8, iterations=5, random_state=2).fit(small, show_progress=False)
        a, _ = one.recommend(np.arange(20), small[:20])
        b, _ = two.recommend(np.arange(20), small[:20])
        assert (a == b).all()
    finally:
        because.set_num_threads(before)


def test_callbacks_see_every_epoch_and_can_stop(small):
    seen = []
    because.ALS(factors=8, iterations=6).fit(small, show_progress=False, callback=lambda e, t: seen.append(e))
    assert seen == [1, 2, 3, 4, 5, 6]
    seen.clear()
    because.BPR(factors=8, iterations=50).fit(small, show_progress=False, callback=lambda e, t: seen.append(e) or e >= 3)
    assert seen == [1, 2, 3]


def test_a_failing_callback_raises_its_own_error(small):
    def boom(epoch, elapsed):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        because.ALS(factors=8, iterations=6).fit(small, show_progress=False, callback=boom)


def test_sequential_and_neural_models_fit_and_reload(small, tmp_path):
    for spec in (
        "sasrec:dim=16,layers=1,heads=2,ffn=16,max_len=8,epochs=2",
        "gru4rec:dim=8,epochs=2,batch_size=16",
        "item2vec:dim=8,epochs=2",
    ):
        model = because.Model(spec).fit(small, show_progress=False)
        assert len(model.loss_history) == 2, spec
        ids, scores = model.recommend(0, small[0], N=5)
        assert len(ids) == 5 and np.all(np.diff(scores) <= 0), spec
        assert not set(ids) & set(small[0].indices), spec
        model.save(tmp_path / spec.split(":")[0])
        back = because.load(tmp_path / spec.split(":")[0])
        ids2, _ = back.recommend(0, small[0], N=5)
        assert list(ids2) == list(ids), spec


def test_twotower_reads_feature_files(tmp_path):
    # Two groups of users, each choosing among its own genre's items.
    rng = np.random.default_rng(0)
    log = ["user,item,timestamp"]
    for u in range(60):
        genre = u % 2
        for k, i in enumerate(rng.choice(np.arange(genre, 40, 2), size=8, replace=False)):
            log.append(f"u{u},i{i},{1000 * u + k}")
    (tmp_path / "log.csv").write_text("\n".join(log) + "\n")
    (tmp_path / "items.csv").write_text(
        "item,title,genres\n" + "".join(f"i{i},Film {i},{'Drama' if i % 2 else 'Comedy'}\n" for i in range(40))
    )
    (tmp_path / "users.csv").write_text("user,taste\n" + "".join(f"u{u},{'odd' if u % 2 else 'even'}\n" for u in range(60)))
    data = because.read_interactions(tmp_path / "log.csv")
    model = because.Model("twotower:dim=8,hidden=8,epochs=5,batch_size=32,min_support=2").fit(
        data, show_progress=False, item_features=tmp_path / "items.csv", user_features=tmp_path / "users.csv"
    )
    e = model.explain_item("u1", "i39")
    inputs = e.raw["inputs"]
    shares = [s["share"] for s in inputs["user_inputs"] + inputs["item_inputs"]]
    # Integrated gradients: with the baseline, the shares add up to the score.
    assert abs(inputs["baseline"] + sum(shares) - e.score) < 1e-3
    assert any(s["input"] == "taste=odd" for s in inputs["user_inputs"])
    assert any(s["input"] == "genres=Drama" for s in inputs["item_inputs"])
    assert e.title == "Film 39"
    model.save(tmp_path / "tt")
    back = because.load(tmp_path / "tt")
    assert abs(back.explain_item("u1", "i39").score - e.score) < 1e-5
    with pytest.raises(ValueError, match="features"):
        because.Model("twotower:epochs=1").fit(sp.random(4, 4, density=0.5, format="csr"), item_features="x.csv")


def test_explanation_methods_are_chosen_by_name(small):
    model = because.Model("sasrec:dim=16,layers=1,heads=2,ffn=16,max_len=8,epochs=1").fit(small, show_progress=False)
    methods = model.explanation_methods
    assert methods == ["occlusion", "attention", "attention_rollout", "gradient_input"]
    ids, _ = model.recommend(0, small[0], N=1)
    item = str(ids[0])
    for method in methods + ["attention-rollout"]:
        e = model.explain_item("0", item, method=method)
        assert e.method == method.replace("-", "_"), method
        assert method.replace("-", "_") in e._repr_html_()
    assert model.explain_item("0", item).raw["method"] == "occlusion"
    with pytest.raises(ValueError, match="offers occlusion, attention"):
        model.explain_item("0", item, method="exact")
    with pytest.raises(ValueError, match="unknown explanation method"):
        model.explain_item("0", item, method="shapley")


def test_approximate_retrieval_from_a_saved_index(ml_csr, tmp_path):
    """`save(index="always")` builds the index; a loaded model answers
    `approximate=True` from it with the model's own scores, and says so."""
    model = because.Model("als:factors=32,iterations=5").fit(ml_csr, show_progress=False)
    model.save(tmp_path / "m", index="always")
    back = because.load(tmp_path / "m")
    retrieval = back.info()["retrieval"]
    assert retrieval["index"]["recall_at_10"] >= 0.99 and not retrieval["approximate"]
    users = np.arange(0, ml_csr.shape[0], 7)
    exact_ids, exact_scores = back.recommend(users, ml_csr[users], N=10)
    ids, scores = back.recommend(users, ml_csr[users], N=10, approximate=True)
    hits = sum(len(set(a) & set(b)) for a, b in zip(ids, exact_ids))
    assert hits / exact_ids.size >= 0.97
    same = ids == exact_ids
    np.testing.assert_allclose(scores[same], exact_scores[same], rtol=1e-5)
    sim, _ = back.similar_items(3, N=10, approximate=True)
    assert len(set(sim) & set(back.similar_items(3, N=10)[0])) >= 8
    # Without an index, `approximate` scores every item.
    model.save(tmp_path / "plain", index="never")
    plain = because.load(tmp_path / "plain")
    assert plain.info()["retrieval"]["index"] is None
    np.testing.assert_array_equal(plain.recommend(users, ml_csr[users], N=10, approximate=True)[0], exact_ids)
