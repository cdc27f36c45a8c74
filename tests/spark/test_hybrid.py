"""The Spark hybrid: the dataset by Spark SQL, linear and boosted regressors served locally."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _support.spark import require_spark, to_spark

from hybridrec.mf import MatrixFactorization

pytestmark = pytest.mark.spark


require_spark()


@pytest.mark.parametrize("encoding", ["multi-hot", "rows"])
def test_hybrid_dataset_by_spark_sql_matches_the_duckdb_build(spark, tmp_path, encoding):
    from _support.data import write_ml20m, write_ml100k

    from hybridrec.hybrid import hybrid_dataset_sql
    from hybridrec.spark import hybrid_dataset
    from hybridrec.workspace import Workspace

    # ml-100k has user attributes; ml-20m has none (the synthetic loyalty / postcode)
    for writer in (write_ml100k, write_ml20m):
        ws = Workspace(tmp_path / writer.__name__ / "ws")
        ws.load(writer(tmp_path / writer.__name__ / "src"))
        ratings, movies, users = ws.ratings(), ws.movies(), ws.users()
        mf = MatrixFactorization(num_factors=3, max_iterations=2, eval_fraction=0).fit(ratings)
        mf.save(ws.models_dir / "mf")
        genres = sorted({g for gs in movies["genres"] for g in gs})
        user_columns = [c for c in users.columns if c != "userId"]
        query = hybrid_dataset_sql("mf", 3, genres, user_columns, encoding=encoding)
        expected = ws.sql(query)
        frame = hybrid_dataset(
            spark,
            ws.models_dir / "mf",
            to_spark(spark, ratings),
            to_spark(spark, movies),
            to_spark(spark, users) if user_columns else None,
            encoding=encoding,
        )
        got = frame.toArrow().to_pandas()
        assert list(got.columns) == list(expected.columns)
        if not user_columns:  # the hash behind loyalty is engine-specific
            assert got["loyalty"].between(0, ratings.groupby("userId").size().max()).all()
            got, expected = got.drop(columns="loyalty"), expected.drop(columns="loyalty")
        order = ["userId", "movieId"] + (["g"] if encoding == "rows" else [])
        got = _comparable(got.sort_values(order).reset_index(drop=True))
        expected = _comparable(expected.sort_values(order).reset_index(drop=True))
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float64 with NaN for missing (DuckDB gives nullable ints, Arrow floats)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            out[col] = pd.to_numeric(out[col]).astype("float64")
    return out


def test_spark_linear_hybrid_is_the_local_linear_hybrid(spark, synth_ws, tmp_path):
    """Same MF, same split, same cold-start and validation rows: Spark's ridge with
    regParam = l2_reg * sd(y) solves the local ridge's objective, so the models agree."""
    from hybridrec.hybrid import HybridRecommender, LinearRegressor
    from hybridrec.spark import SparkHybridRecommender

    ws, mf = synth_ws
    ratings, users, movies = ws.ratings(), ws.users(), ws.movies()
    local = HybridRecommender("linear", mf_params=mf.get_params(), leak_free=False).fit(
        ratings, users, movies, mf=mf
    )
    on_spark = SparkHybridRecommender("linear", leak_free=False).fit(
        ratings, users, movies, mf=mf, spark=spark
    )
    assert on_spark.feature_names_ == local.feature_names_
    np.testing.assert_allclose(on_spark.regressor_.coef_, local.regressor_.coef_, atol=1e-5)
    assert on_spark.metrics_["rmse"] == pytest.approx(local.metrics_["rmse"], abs=1e-6)

    # saved as a local hybrid with a local linear regressor; Spark's own predictions agree
    on_spark.save(tmp_path / "h")
    loaded = HybridRecommender.load(tmp_path / "h")
    assert isinstance(loaded.regressor_, LinearRegressor)
    meta = json.loads((tmp_path / "h" / "meta.json").read_text())
    assert meta["engine"]["name"] == "spark" and meta["engine"]["split"] == "row-order"
    pairs = pd.concat(
        [
            on_spark.eval_set_.head(300)[["userId", "movieId"]],
            pd.DataFrame({"userId": [10**6, 1], "movieId": [1, 10**6]}),  # cold user, cold item
        ],
        ignore_index=True,
    )
    by_spark = on_spark.transform(to_spark(spark, pairs)).toArrow().to_pandas()
    merged = pairs.merge(by_spark, on=["userId", "movieId"])
    assert len(merged) == len(pairs)
    by_local = loaded.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
    np.testing.assert_allclose(by_local, merged["predicted_rating"].to_numpy(), atol=1e-6)
    assert loaded.evaluate()["rmse"] == pytest.approx(on_spark.metrics_["rmse"])
    explained = loaded.explain(1, int(movies["movieId"].iloc[0]))
    assert explained["feature"].iloc[0] == "baseline"


def test_spark_boosted_hybrid_exports_its_trees(spark, synth_ws, tmp_path):
    from hybridrec.hybrid import HybridRecommender, TreeEnsembleRegressor
    from hybridrec.spark import SparkHybridRecommender

    ws, mf = synth_ws
    ratings, movies = ws.ratings(), ws.movies()
    model = SparkHybridRecommender(
        "boosted", leak_free=False, regressor_params={"n_estimators": 4, "max_depth": 3}
    ).fit(to_spark(spark, ratings), None, movies, mf=mf, spark=spark)
    assert model.spark_regressor_["n_trees"] <= 4
    model.save(tmp_path / "gbt")
    loaded = HybridRecommender.load(tmp_path / "gbt")
    assert isinstance(loaded.regressor_, TreeEnsembleRegressor)
    assert json.loads((tmp_path / "gbt" / "meta.json").read_text())["engine"]["split"] == "hash"

    pairs = model.eval_set_[["userId", "movieId"]].head(400)
    by_spark = model.transform(to_spark(spark, pairs)).toArrow().to_pandas()
    merged = pairs.merge(by_spark, on=["userId", "movieId"])
    by_local = loaded.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
    np.testing.assert_allclose(by_local, merged["predicted_rating"].to_numpy(), atol=1e-9)

    x = loaded.features(merged["userId"].to_numpy()[:50], merged["movieId"].to_numpy()[:50])
    contributions = loaded.regressor_.contributions(x)
    np.testing.assert_allclose(contributions.sum(axis=1), loaded.regressor_.predict(x))
    assert set(loaded.feature_importance()["feature"]) == set(loaded.feature_names_)
    assert len(loaded.recommend(int(ratings["userId"].iloc[0]), 3)) == 3

    from hybridrec import ModelError

    with pytest.raises(ModelError, match="not trained locally"):
        loaded.regressor_.fit(x, np.ones(len(x)))
    with pytest.raises(ModelError, match="n_trees"):
        SparkHybridRecommender("boosted", regressor_params={"n_trees": 3}).fit(ratings, spark=spark)
    with pytest.raises(ValueError, match="dnn trains locally"):
        SparkHybridRecommender("dnn").fit(ratings, spark=spark)
