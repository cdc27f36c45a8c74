"""Implicit-feedback ALS: kernel vs reference, ranking quality, BigQuery ML metric names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support.data import taste_driven_ratings

from hybridrec._core.sparse import Csr as _Csr
from hybridrec.data import SynthConfig, generate
from hybridrec.evaluate import ranking_metrics
from hybridrec.mf import ImplicitMatrixFactorization, _kernels
from hybridrec.mf._reference import solve_side_implicit_reference


@pytest.mark.parametrize("k", [1, 4, 9])
def test_implicit_kernel_matches_dense_reference(k):
    rng = np.random.default_rng(k)
    n_rows, n_cols, nnz = 40, 25, 300
    rows = rng.integers(0, n_rows - 1, nnz)
    cols = rng.integers(0, n_cols, nnz)
    frame = pd.DataFrame({"r": rows, "c": cols}).drop_duplicates()
    values = rng.uniform(0.5, 5, len(frame)).astype(np.float32)
    csr = _Csr.build(frame["r"].to_numpy(), frame["c"].to_numpy(), values, n_rows, sort_cols=False)
    y = rng.normal(0, 0.3, (n_cols, k)).astype(np.float32)
    out = np.full((n_rows, k), 7, dtype=np.float32)
    gram = y.T.astype(np.float64) @ y.astype(np.float64)
    _kernels.solve_side_implicit(csr.indptr, csr.indices, csr.values, y, gram, 0.8, 2.0, out)
    ref = solve_side_implicit_reference(csr.indptr, csr.indices, csr.values, y, 0.8, 2.0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert np.all(out[-1] == 0)


@pytest.fixture(scope="module")
def synthetic():
    """Users choose what to watch by taste (see ``taste_driven_ratings``)."""
    n_items = 200
    ratings = taste_driven_ratings(400, n_items, per_user=40, seed=3)
    items = generate(SynthConfig(n_users=10, n_items=n_items, n_ratings=400, seed=1)).movies
    return ratings, items.assign(genres=items["genres"].str.split("|"))


@pytest.fixture(scope="module")
def implicit(synthetic) -> ImplicitMatrixFactorization:
    ratings, items = synthetic
    return ImplicitMatrixFactorization(num_factors=8, l2_reg=5.0, max_iterations=8).fit(
        ratings, items=items
    )


def test_reports_bigquery_implicit_metric_names(implicit):
    metrics = implicit.metrics_
    for name in (
        "mean_average_precision",
        "normalized_discounted_cumulative_gain",
        "average_rank",
        "mean_squared_error",
        "precision@10",
        "coverage@10",
        "novelty@10",
    ):
        assert name in metrics, name
    assert 0 <= metrics["average_rank"] < 0.5, "held-out items must rank better than chance"
    assert metrics["mean_average_precision"] == metrics["map@10"]


def test_ranks_better_than_popularity(implicit):
    held = implicit.eval_set_
    model_p10 = implicit.metrics_["precision@10"]
    # popularity baseline on the same split and exclusions
    train = implicit._train_csr
    pop = np.bincount(train.indices, minlength=len(implicit.item_vocab_)).astype(np.float32)
    n_users = len(implicit.user_vocab_)
    scores = np.tile(pop, (n_users, 1))
    top, _ = _kernels.top_n_rows(scores, 0, train.indptr, train.indices, 10)
    u = implicit.user_vocab_.index_of(held["userId"])
    i = implicit.item_vocab_.index_of(held["movieId"])
    rel = (held["rating"].to_numpy() >= 4) & (u >= 0) & (i >= 0)
    relevant = _Csr.build(u[rel], i[rel], np.ones(rel.sum(), np.float32), n_users, sort_cols=True)
    pop_p10 = ranking_metrics(top, relevant.indptr, relevant.indices, 10)["precision@10"]
    assert model_p10 > pop_p10


def test_scores_are_confidences_not_ratings(implicit):
    recs = implicit.recommend(implicit.user_vocab_.ids[0], 5)
    assert "predicted_rating_confidence" in recs.columns
    assert recs["predicted_rating_confidence"].is_monotonic_decreasing
    w = implicit.weights(users=[implicit.user_vocab_.ids[0]])
    assert w["intercept"].iloc[0] == 0.0


def test_save_load_round_trip(implicit, tmp_path):
    implicit.save(tmp_path / "imp")
    loaded = ImplicitMatrixFactorization.load(tmp_path / "imp")
    user = implicit.user_vocab_.ids[1]
    pd.testing.assert_frame_equal(loaded.recommend(user, 5), implicit.recommend(user, 5))
    assert loaded.get_params() == implicit.get_params()


def test_negative_strengths_are_rejected():
    from hybridrec import DataError

    frame = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [1.0, -1.0]})
    with pytest.raises(DataError, match=">= 0"):
        ImplicitMatrixFactorization().fit(frame)
