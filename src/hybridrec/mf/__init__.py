"""Matrix factorization: explicit ALS with intercepts (BigQuery ML's ``matrix_factorization``)."""

from hybridrec.mf._implicit import ImplicitMatrixFactorization
from hybridrec.mf._model import MatrixFactorization

__all__ = ["ImplicitMatrixFactorization", "MatrixFactorization"]
