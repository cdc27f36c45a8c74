"""Hyper-parameters through the Python API: NaN, inf and out-of-range values are named."""

from __future__ import annotations

import pytest
from _support.data import random_ratings

from hybridrec.hybrid import HybridRecommender
from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization
from hybridrec.ranking import RankingRecommender

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("model", "parameter"),
    [
        (MatrixFactorization(l2_reg=NAN), "l2_reg"),
        (MatrixFactorization(l2_reg=INF), "l2_reg"),
        (MatrixFactorization(l2_reg_item=NAN), "l2_reg_item"),
        (MatrixFactorization(l2_reg_bias=NAN), "l2_reg_bias"),
        (MatrixFactorization(reg_exponent=INF), "reg_exponent"),
        (MatrixFactorization(min_rel_progress=NAN), "min_rel_progress"),
        (MatrixFactorization(eval_fraction=NAN), "eval_fraction"),
        (MatrixFactorization(init_scale=NAN), "init_scale"),
        (MatrixFactorization(num_factors=True), "num_factors"),
        (MatrixFactorization(num_factors=5000), "num_factors"),
        (MatrixFactorization(max_iterations=2.5), "max_iterations"),  # type: ignore[arg-type]
        (ImplicitMatrixFactorization(wals_alpha=NAN), "wals_alpha"),
        (ImplicitMatrixFactorization(l2_reg=-INF), "l2_reg"),
    ],
)
def test_python_api_names_the_bad_parameter(model, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        model.fit(random_ratings())


@pytest.mark.parametrize(
    ("model", "parameter"),
    [
        (HybridRecommender("linear", cold_fraction=NAN), "cold_fraction"),
        (HybridRecommender("linear", validation_fraction=0.0), "validation_fraction"),
        (HybridRecommender("linear", eval_fraction=INF), "eval_fraction"),
        (RankingRecommender(validation_fraction=NAN), "validation_fraction"),
        (RankingRecommender(relevance_threshold=INF), "relevance_threshold"),
        (RankingRecommender(mf_params={"l2_reg": NAN}), "l2_reg"),
    ],
)
def test_hybrid_and_ranking_parameters(model, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        model.fit(random_ratings())


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"l2_reg": float("nan")}, "l2_reg"),
        ({"l2_reg_bias": float("inf")}, "l2_reg_bias"),
        ({"num_factors": 5000}, "num_factors"),
        ({"eval_fraction": float("nan")}, "eval_fraction"),
    ],
)
def test_spark_engine_parameters_are_checked_like_the_local_ones(params, parameter):
    pytest.importorskip("pyspark")
    from hybridrec.spark import SparkHybridRecommender, SparkMatrixFactorization

    with pytest.raises(ValueError, match=f"^{parameter} must be"):
        SparkMatrixFactorization(**params)._check_params()
    if parameter == "eval_fraction":
        with pytest.raises(ValueError, match=r"^eval_fraction must be"):
            SparkHybridRecommender("linear", **params)._check_params()
