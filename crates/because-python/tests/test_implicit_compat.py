"""The call sequences of implicit's documentation run unchanged, but for
the import (`import because as implicit`)."""

import numpy as np
import scipy.sparse as sp

import because as implicit


def test_quickstart_sequence(small):
    # From implicit's quickstart: fit on users × items, then recommend,
    # recommend in batch, similar items and explain.
    user_plays = small
    model = implicit.als.AlternatingLeastSquares(factors=16, iterations=10)
    model.fit(user_plays)

    userid = 12
    ids, scores = model.recommend(userid, user_plays[userid], N=10, filter_already_liked_items=False)
    assert len(ids) == len(scores) == 10
    assert np.all(np.diff(scores) <= 0)

    ids, scores = model.recommend(userid, user_plays[userid])
    assert not set(ids) & set(user_plays[userid].indices), "liked items are filtered"

    userids = np.arange(10)
    ids, scores = model.recommend(userids, user_plays[userids])
    assert ids.shape == scores.shape == (10, 10)
    single, _ = model.recommend(3, user_plays[3])
    assert (ids[3] == single).all(), "a batch gives each user what a single call gives"

    itemid = 7
    ids, scores = model.similar_items(itemid)
    assert len(ids) == 10 and itemid not in ids

    score, contributions, _ = model.explain(userid, user_plays, itemid)
    assert len(contributions) <= 10
    assert all(i in user_plays[userid].indices for i, _ in contributions)


def test_other_models_by_their_implicit_names(small):
    for model in [
        implicit.bpr.BayesianPersonalizedRanking(factors=16, iterations=20),
        implicit.nearest_neighbours.CosineRecommender(K=20),
        implicit.nearest_neighbours.BM25Recommender(K=20),
        implicit.nearest_neighbours.TFIDFRecommender(K=20),
    ]:
        model.fit(small, show_progress=False)
        ids, scores = model.recommend(0, small[0], N=5)
        assert len(ids) == 5
        assert not set(ids) & set(small[0].indices)


def test_recalculate_user_scores_a_new_row(small):
    model = implicit.ALS(factors=16, iterations=10).fit(small, show_progress=False)
    new_user = sp.csr_matrix(small[5])
    ids_new, _ = model.recommend(0, new_user, N=5, recalculate_user=True)
    ids_known, _ = model.recommend(5, small[5], N=5)
    # ALS folds the same row in to the same user it trained (exact solve).
    assert (ids_new == ids_known).all()


def test_asking_for_more_than_the_catalogue_gives_the_catalogue(small):
    model = implicit.EASE(regularization=10).fit(small, show_progress=False)
    ids, scores = model.recommend(np.arange(3), small[:3], N=10**9, filter_already_liked_items=False)
    assert ids.shape == (3, small.shape[1])
    sim, _ = model.similar_items(0, N=10**9, filter_items=[1, 2])
    assert len(sim) == small.shape[1] - 3


def test_filters_and_candidates(small):
    model = implicit.EASE(regularization=10).fit(small, show_progress=False)
    ids, _ = model.recommend(0, small[0], N=5)
    again, _ = model.recommend(0, small[0], N=5, filter_items=ids[:2])
    assert not set(ids[:2]) & set(again)
    allowed = np.array([1, 2, 3, 50, 51])
    only, _ = model.recommend(0, small[0], N=10, items=allowed)
    assert set(only) <= set(allowed)
