"""implicit's module name for BPR: `because.bpr.BayesianPersonalizedRanking`."""

from ._models import BPR as BayesianPersonalizedRanking

__all__ = ["BayesianPersonalizedRanking"]
