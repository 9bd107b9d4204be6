"""Notebook manners: clear errors, the GIL released, threads, progress."""

import threading
import time

import numpy as np
import pytest

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
