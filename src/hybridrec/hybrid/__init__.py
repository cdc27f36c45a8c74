"""Hybrid model: side features, the hybrid dataset, regressors, stacking, cold start."""

from hybridrec.hybrid._compare import compare_models
from hybridrec.hybrid._dataset import ENCODINGS, hybrid_dataset_sql
from hybridrec.hybrid._feature_model import FeatureEncoder, FeatureRegressor
from hybridrec.hybrid._features import AttributeEncoder, RatingStats, has_attributes
from hybridrec.hybrid._model import HybridRecommender
from hybridrec.hybrid._notebook import notebook_linear
from hybridrec.hybrid._reuse import reusable_mf
from hybridrec.hybrid._stacking import BaseFeatures
from hybridrec.hybrid.regressors import (
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
    "AttributeEncoder",
    "BaseFeatures",
    "BoostedRegressor",
    "DnnRegressor",
    "FeatureEncoder",
    "FeatureRegressor",
    "HybridRecommender",
    "LinearRegressor",
    "RatingStats",
    "Regressor",
    "TreeEnsembleRegressor",
    "compare_models",
    "has_attributes",
    "hybrid_dataset_sql",
    "load_regressor",
    "make_regressor",
    "notebook_linear",
    "reusable_mf",
    "search_space",
]
