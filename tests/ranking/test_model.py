"""The ranking recommender: candidates, learned order, notebook order, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support.data import taste_driven_ratings

from hybridrec.mf import MatrixFactorization
from hybridrec.ranking import RankingRecommender

FAST = {
    "mf_params": {"num_factors": 4, "max_iterations": 4},
    "implicit_params": {"num_factors": 4, "l2_reg": 5.0, "max_iterations": 5},
    "ranker_params": {"num_boost_round": 30},
    "n_candidates": 30,
    "validation_fraction": 0.2,
}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users pick movies by taste and like what they pick (see test_implicit)."""
    n_items = 150
    ratings = taste_driven_ratings(300, n_items, per_user=35, seed=11)
    items = pd.DataFrame(
        {
            "movieId": np.arange(1, n_items + 1),
            "title": [f"Movie {i}" for i in range(1, n_items + 1)],
            "genres": [["Comedy"] if i % 2 else ["Drama"] for i in range(1, n_items + 1)],
        }
    )
    return ratings, items


@pytest.fixture(scope="module")
def ranker(data) -> RankingRecommender:
    ratings, items = data
    return RankingRecommender(**FAST).fit(ratings, items=items)


def test_ranked_lists_skip_seen_items_and_respect_genre(ranker, data):
    ratings, _ = data
    seen = set(ratings.loc[ratings["userId"] == 7, "movieId"])
    recs = ranker.recommend(7, 5, genre="Comedy")
    assert list(recs.columns) == ["movieId", "title", "predicted_rating", "relevance"]
    assert len(recs) == 5 and not seen & set(recs["movieId"])
    assert all(m % 2 == 1 for m in recs["movieId"])
    assert recs["relevance"].is_monotonic_decreasing
    assert recs["predicted_rating"].between(0.5, 5).all()


def test_rank_by_predicted_rating_is_the_notebook_order(ranker):
    notebook = ranker.recommend(7, 5, rank_by="predicted_rating")
    pd.testing.assert_frame_equal(notebook, ranker.mf_.recommend(7, 5))


def test_ranking_beats_popularity_and_reports_catalogue_metrics(ranker):
    metrics = ranker.metrics_
    assert {"rmse", "precision@10", "ndcg@10", "coverage@10", "novelty@10"} <= set(metrics)
    train = ranker.mf_._train_csr
    popularity = np.bincount(train.indices, minlength=len(ranker.item_vocab_))
    # the same lists for everyone would cover at most 10 items of the catalogue
    assert metrics["coverage@10"] > 10 / popularity.size
    assert metrics["precision@10"] > 0.05


def test_hold_out_is_the_mf_hold_out(ranker, data):
    ratings, items = data
    mf = MatrixFactorization(num_factors=4, max_iterations=2).fit(ratings, items=items)
    assert len(mf.eval_set_) == len(ranker.eval_set_)
    assert (mf.eval_set_["movieId"].to_numpy() == ranker.eval_set_["movieId"].to_numpy()).all()


def test_save_load_round_trip(ranker, tmp_path):
    ranker.save(tmp_path / "r")
    loaded = RankingRecommender.load(tmp_path / "r")
    pd.testing.assert_frame_equal(loaded.recommend(9, 6), ranker.recommend(9, 6))
    assert loaded.get_params() == ranker.get_params()


def test_unknown_user_and_bad_rank_by(ranker):
    recs = ranker.recommend(10**9, 3)
    assert len(recs) == 3
    with pytest.raises(Exception, match="rank_by"):
        ranker.recommend(7, 3, rank_by="popularity")
