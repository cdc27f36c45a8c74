"""MovieLens 100K parity between the Spark and local engines (realdata, slow)."""

from __future__ import annotations

import pandas as pd
import pytest
from _support.spark import require_spark

pytestmark = pytest.mark.spark


require_spark()


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_100k_parity_with_the_local_engine(ml100k_models):
    """Protocol ml100k-8020 (random 80/20, seed 42), the same split for both engines."""
    _ws, on_spark, local = ml100k_models
    pd.testing.assert_frame_equal(
        on_spark.eval_set_[["userId", "movieId"]],
        local.eval_set_[["userId", "movieId"]].reset_index(drop=True),
        check_dtype=False,
    )
    spark_rmse, local_rmse = on_spark.metrics_["rmse"], local.metrics_["rmse"]
    print(f"ml100k-8020 RMSE: local {local_rmse:.4f}, spark {spark_rmse:.4f}")
    assert abs(spark_rmse - local_rmse) <= 0.01
    recs = on_spark.recommend(903, 5, genre="Comedy")
    assert len(recs) == 5 and recs["predicted_rating"].between(1, 5).all()


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_100k_linear_hybrid_parity(spark, ml100k_models):
    """The acceptance test of the Spark hybrid: each engine's MF and linear hybrid on the
    ml100k-8020 split; the hold-out RMSEs agree within 0.01."""
    from hybridrec.hybrid import HybridRecommender
    from hybridrec.spark import SparkHybridRecommender

    ws, spark_mf, local_mf = ml100k_models
    ratings, users, movies = ws.ratings(), ws.users(), ws.movies()
    local = HybridRecommender("linear", mf_params=local_mf.get_params(), leak_free=False).fit(
        ratings, users, movies, mf=local_mf
    )
    on_spark = SparkHybridRecommender("linear", leak_free=False).fit(
        ratings, users, movies, mf=spark_mf, spark=spark
    )
    pd.testing.assert_frame_equal(
        on_spark.eval_set_[["userId", "movieId"]],
        local.eval_set_[["userId", "movieId"]],
        check_dtype=False,
    )
    spark_rmse, local_rmse = on_spark.metrics_["rmse"], local.metrics_["rmse"]
    print(f"ml100k-8020 linear hybrid RMSE: local {local_rmse:.4f}, spark {spark_rmse:.4f}")
    assert abs(spark_rmse - local_rmse) <= 0.01
