"""Hybrid model: side features, the hybrid dataset, regressors, stacking, cold start."""

from hybridrec.hybrid._dataset import ENCODINGS, hybrid_dataset_sql
from hybridrec.hybrid._model import HybridRecommender
from hybridrec.hybrid._regressors import (
    REGRESSOR_KINDS,
    BoostedRegressor,
    DnnRegressor,
    LinearRegressor,
    Regressor,
    TreeEnsembleRegressor,
    load_regressor,
    make_regressor,
    search_space,
)

__all__ = [
    "ENCODINGS",
    "REGRESSOR_KINDS",
    "BoostedRegressor",
    "DnnRegressor",
    "HybridRecommender",
    "LinearRegressor",
    "Regressor",
    "TreeEnsembleRegressor",
    "hybrid_dataset_sql",
    "load_regressor",
    "make_regressor",
    "search_space",
]
