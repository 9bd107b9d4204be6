"""implicit's module name for ALS: `because.als.AlternatingLeastSquares`."""

from ._models import ALS as AlternatingLeastSquares

__all__ = ["AlternatingLeastSquares"]
