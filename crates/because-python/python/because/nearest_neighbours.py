"""implicit's item-item models by their implicit names: `ItemItemRecommender`
and `CosineRecommender` (cosine), `TFIDFRecommender` and `BM25Recommender`."""

from ._models import ItemKNN


class ItemItemRecommender(ItemKNN):
    """Item-item nearest neighbours, keeping the `K` most similar items."""

    def __init__(self, K: int = 20, num_threads: int = 0):
        super().__init__(K=K, num_threads=num_threads)


class CosineRecommender(ItemKNN):
    """Item-item nearest neighbours by cosine similarity."""

    def __init__(self, K: int = 20, num_threads: int = 0):
        super().__init__(K=K, weighting="none", num_threads=num_threads)


class TFIDFRecommender(ItemKNN):
    """Item-item nearest neighbours on TF-IDF weighted interactions."""

    def __init__(self, K: int = 20, num_threads: int = 0):
        super().__init__(K=K, weighting="tfidf", num_threads=num_threads)


class BM25Recommender(ItemKNN):
    """Item-item nearest neighbours on BM25 weighted interactions (with the
    usual K1 = 1.2 and B = 0.75; other values are not supported)."""

    def __init__(self, K: int = 20, K1: float = 1.2, B: float = 0.75, num_threads: int = 0):
        if (K1, B) != (1.2, 0.75):
            raise ValueError("K1 and B: only the usual 1.2 and 0.75 are supported")
        super().__init__(K=K, weighting="bm25", num_threads=num_threads)


__all__ = ["ItemItemRecommender", "CosineRecommender", "TFIDFRecommender", "BM25Recommender"]
