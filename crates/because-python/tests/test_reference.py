"""Against references on MovieLens-100k: numpy EASE, exact ALS explanations."""

import numpy as np

import because


def test_ease_equals_a_numpy_ease(ml_csr):
    lam = 200.0
    X = ml_csr.toarray().astype(np.float64)
    G = X.T @ X + lam * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    reference = X @ B

    model = because.EASE(regularization=lam).fit(ml_csr, show_progress=False)
    users = np.arange(0, ml_csr.shape[0], 7)
    ids, scores = model.recommend(users, ml_csr[users], N=10)
    for r, u in enumerate(users):
        want = reference[u, ids[r]]
        np.testing.assert_allclose(scores[r], want, rtol=1e-5, atol=1e-5)
        # And the same top 10 (ties aside).
        ref = reference[u].copy()
        ref[ml_csr[u].indices] = -np.inf
        tenth = np.sort(ref)[-10]
        assert (ref[ids[r]] >= tenth - 1e-5).all()


def test_als_explanations_add_up_to_the_score(ml_csr):
    model = because.ALS(factors=32, iterations=10, regularization=0.05, random_state=3)
    model.fit(ml_csr, show_progress=False)
    for u in range(0, 900, 45):
        ids, scores = model.recommend(u, ml_csr[u], N=3)
        for i, s in zip(ids, scores):
            score, top, d = model.explain(u, ml_csr[u], int(i))
            total = d.bias + sum(w for _, w in d.contributions)
            assert abs(total - score) <= 1e-4 * (1 + abs(score)), (u, i, total, score)
            assert abs(score - s) <= 1e-4 * (1 + abs(s)), "explained score is the served score"
            assert [w for _, w in top] == sorted([w for _, w in top], reverse=True)
            assert len(d.contributions) == len(ml_csr[u].indices)


def test_every_exact_model_explains_exactly(small):
    for model in [because.EASE(regularization=5), because.ItemKNN(K=20), because.PureSVD(factors=8)]:
        model.fit(small, show_progress=False)
        ids, _ = model.recommend(4, small[4], N=2)
        score, _, d = model.explain(4, small[4], int(ids[0]))
        assert d.exact
        assert abs(d.bias + sum(w for _, w in d.contributions) - score) <= 1e-4 * (1 + abs(score))
