"""SparkMatrixFactorization on ``local[2]``: odd ids, the hash split, the local artifact format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _support.spark import BIG_ITEM_OFFSET, SMALL, require_spark, to_spark

from hybridrec.mf import MatrixFactorization

pytestmark = pytest.mark.spark


require_spark()


from hybridrec.spark import (  # noqa: E402
    SparkMatrixFactorization,
    hash_split,
)


def test_ids_that_do_not_fit_spark_int_are_mapped(odd_model, odd_ids):
    users, items = odd_model.user_vocab_.ids, odd_model.item_vocab_.ids
    assert all(isinstance(u, str) and u.startswith("user-") for u in users)
    assert items.min() > BIG_ITEM_OFFSET and items.dtype.kind == "i"
    assert list(users) == sorted(users) and np.all(np.diff(items) > 0)
    train = odd_ids.merge(odd_model.eval_set_, how="left", indicator=True)
    train = train[train["_merge"] == "left_only"]
    assert set(users) == set(train["userId"]) and set(items) == set(train["movieId"])
    assert odd_model.user_factors_.shape == (len(users), 4)
    assert np.isfinite(odd_model.user_factors_).all() and np.isfinite(odd_model.item_bias_).all()


def test_hash_split_is_seeded_and_ignores_partitioning(spark, odd_model, odd_ids):
    frame = to_spark(spark, odd_ids)
    one = frame.repartition(1).withColumn("e", hash_split(3, 0.2)).filter("e")
    many = frame.repartition(4, "rating").withColumn("e", hash_split(3, 0.2)).filter("e")
    key = ["userId", "movieId"]
    a = one.select(*key).toArrow().to_pandas().sort_values(key).reset_index(drop=True)
    b = many.select(*key).toArrow().to_pandas().sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(odd_model.eval_set_) == pytest.approx(0.2 * len(odd_ids), rel=0.15)
    other = frame.withColumn("e", hash_split(4, 0.2)).filter("e").select(*key).toArrow().to_pandas()
    assert set(map(tuple, other.to_numpy())) != set(map(tuple, a.to_numpy()))


def test_saved_model_loads_locally_and_predicts_like_spark(spark, odd_model, odd_ids, tmp_path):
    path = tmp_path / "spark_mf"
    odd_model.save(path)
    local = MatrixFactorization.load(path)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["engine"]["name"] == "spark" and meta["engine"]["split"] == "hash"
    assert meta["params"]["early_stop"] is False and meta["params"]["reg_exponent"] == 1.0

    # every hold-out pair, a few training pairs, and unknown user / item / both
    pairs = pd.concat(
        [
            odd_model.eval_set_[["userId", "movieId"]],
            odd_ids[["userId", "movieId"]].head(300),
            pd.DataFrame(
                {
                    "userId": ["nobody", "user-1", "nobody"],
                    "movieId": [BIG_ITEM_OFFSET + 1, 42, 42],
                }
            ),
        ],
        ignore_index=True,
    )
    by_spark = (
        odd_model.transform(to_spark(spark, pairs))
        .select("userId", "movieId", "predicted_rating")
        .toArrow()
        .to_pandas()
    )
    merged = pairs.merge(by_spark, on=["userId", "movieId"], how="left")
    assert merged["predicted_rating"].notna().all()
    by_local = local.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
    np.testing.assert_allclose(by_local, merged["predicted_rating"].to_numpy(), atol=1e-4)
    low, high = local.rating_range_
    assert by_local[-1] == pytest.approx(np.clip(local.global_mean_, low, high))

    # the local engine serves it: recommendations, weights, evaluation, training info
    user = odd_model.user_vocab_.ids[0]
    recs = local.recommend(user, 5)
    assert len(recs) == 5 and recs["movieId"].min() > BIG_ITEM_OFFSET
    assert local.metrics_["rmse"] == pytest.approx(local.evaluate()["rmse"])
    assert local.evaluate()["rmse"] == pytest.approx(odd_model.training_log_[0]["eval_loss"] ** 0.5)
    assert list(local.training_info().columns) == ["iteration", "loss", "eval_loss", "duration_ms"]
    assert len(local.training_info()) == 1
    weights = local.weights(users=[user])
    assert weights["feature"].tolist() == [user]


def test_bad_ratings_are_clear_errors(spark):
    from hybridrec import DataError

    frame = to_spark(
        spark, pd.DataFrame({"userId": [1, 2, 3], "movieId": [1, 1, 2], "rating": [4.0, None, 3.0]})
    )
    with pytest.raises(DataError, match="rating is missing in 1 rows"):
        SparkMatrixFactorization(**SMALL).fit(frame, spark=spark)
    with pytest.raises(ValueError, match="eval_fraction"):
        SparkMatrixFactorization(eval_fraction=1.0).fit(frame, spark=spark)
