"""Matrix factorization: explicit ALS with intercepts (BigQuery ML's ``matrix_factorization``)."""

from hybridrec.mf._implicit import ImplicitMatrixFactorization
from hybridrec.mf._memory import available_memory
from hybridrec.mf._model import MAX_NUM_FACTORS, MatrixFactorization, items_metadata
from hybridrec.mf._recommend import fold_in_arrays
from hybridrec.mf._tuning import SEARCH_SPACE, tune_mf, tuned_params
from hybridrec.mf._wrapper import WrapsMatrixFactorization

__all__ = [
    "MAX_NUM_FACTORS",
    "SEARCH_SPACE",
    "ImplicitMatrixFactorization",
    "MatrixFactorization",
    "WrapsMatrixFactorization",
    "available_memory",
    "fold_in_arrays",
    "items_metadata",
    "tune_mf",
    "tuned_params",
]
