"""The ranking recommender: candidates, learned order, notebook order, persistence."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from _support.cli import run
from _support.data import comedy_drama_movies, taste_driven_ratings

from hybridrec.data import holdout_mask
from hybridrec.mf import MatrixFactorization
from hybridrec.ranking import RankingRecommender, _features
from hybridrec.ranking._features import FEATURES, ItemStats, Scorers, UserSignals
from hybridrec.ranking._model import EASE_L2_SCALE

FAST = {
    "mf_params": {"num_factors": 4, "max_iterations": 4},
    "implicit_params": {"num_factors": 4, "l2_reg": 5.0, "max_iterations": 5},
    "ease_params": {"l2_reg": 50.0},
    "ranker_params": {"num_boost_round": 30},
    "n_candidates": 30,
    "validation_fraction": 0.2,
}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users pick movies by taste and like what they pick (see test_implicit)."""
    n_items = 150
    ratings = taste_driven_ratings(300, n_items, per_user=35, seed=11)
    ratings["timestamp"] = 10**9 + 1000 * ratings["userId"] + ratings["movieId"]
    items = comedy_drama_movies(n_items)
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


def test_candidates_come_from_both_implicit_als_and_ease(ranker):
    u = ranker.mf_.user_vocab_.index_one(7)
    cands, x = ranker._block(np.array([u], dtype=np.int32), ranker._all_items(), ranker.mf_.seen_)
    valid = cands[0] >= 0
    assert len(FEATURES) == x.shape[2]
    implicit_rank = x[0, valid, FEATURES.index("implicit.rank")]
    ease_rank = x[0, valid, FEATURES.index("ease.rank")]
    # the union is larger than either model's own top list
    assert valid.sum() > FAST["n_candidates"]
    assert np.isfinite(implicit_rank).all() and np.isfinite(ease_rank).all()


def test_a_new_user_is_ranked_by_the_ranker(ranker, data):
    ratings, _ = data
    train = ranker.mf_._train_csr
    u = ranker.mf_.user_vocab_.index_one(7)
    items = ranker.mf_.item_vocab_.ids[train.indices[train.indptr[u] : train.indptr[u + 1]]]
    mine = ratings.set_index("movieId").loc[items]
    mine = mine[mine["userId"] == 7]["rating"]
    as_new = ranker.recommend_new_user(mine.to_dict(), 10, genre="Comedy")
    assert list(as_new.columns) == ["movieId", "title", "predicted_rating", "relevance"]
    assert as_new["relevance"].is_monotonic_decreasing
    assert not set(items) & set(as_new["movieId"]) and all(m % 2 for m in as_new["movieId"])
    # the same person, known or new, gets much the same list (fold-in ≈ the trained vectors)
    known = ranker.recommend(7, 10, genre="Comedy")
    assert len(set(as_new["movieId"]) & set(known["movieId"])) >= 6
    # the fold-in order of the explicit MF alone is a different list
    by_rating = ranker.mf_.recommend_new_user(mine.to_dict(), 10, genre="Comedy")
    assert list(by_rating["movieId"]) != list(as_new["movieId"])


def test_a_new_user_with_no_known_movie_gets_the_mf_fallback(ranker):
    recs = ranker.recommend_new_user({10**9: 5.0}, 3)
    pd.testing.assert_frame_equal(recs, ranker.mf_.recommend_new_user({10**9: 5.0}, 3))


def test_cli_and_http_rank_a_new_user(tmp_path):
    ws = tmp_path / "ws"
    synth = ("--users", "150", "--items", "80", "--ratings", "6000")
    assert run(ws, "synth", "--out", str(tmp_path / "synth"), *synth)[0] == 0
    assert run(ws, "load", str(tmp_path / "synth"))[0] == 0
    assert run(ws, "train", "mf", "--name", "m", "--num-factors", "4")[0] == 0
    code, _, err = run(ws, "train", "ranker", "--name", "r", "--mf", "m", "--candidates", "20")
    assert code == 0, err
    model = RankingRecommender.load(ws / "models" / "r")
    liked = {int(i): 5.0 for i in model.item_vocab_.ids[:5]}
    pd.DataFrame({"movieId": list(liked), "rating": list(liked.values())}).to_csv(
        tmp_path / "me.csv", index=False
    )
    code, out, err = run(
        ws, "recommend", "r", "--ratings", str(tmp_path / "me.csv"), "-n", "5", "--format", "json"
    )
    assert code == 0, err
    expected = model.recommend_new_user(liked, 5)
    got = json.loads(out)
    assert [r["movieId"] for r in got] == expected["movieId"].tolist()
    assert all("relevance" in r for r in got)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from hybridrec.serve import create_app

    client = TestClient(create_app(ws / "models" / "r"))
    body = {"ratings": [{"item": i, "rating": r} for i, r in liked.items()], "n": 5}
    answer = client.post("/recommend/new-user", json=body)
    assert answer.status_code == 200, answer.text
    assert [x["movieId"] for x in answer.json()["items"]] == expected["movieId"].tolist()


def test_recommend_all_matches_recommend(ranker):
    import pyarrow as pa

    table = pa.Table.from_batches(list(ranker.recommend_all(3))).to_pandas()
    assert table["userId"].nunique() == len(ranker.user_vocab_)
    first = table[table["userId"] == 7]
    assert first["movieId"].tolist() == ranker.recommend(7, 3)["movieId"].tolist()


def test_a_small_dataset_lends_every_fold_to_the_ranker_a_large_one_one_fold(data):
    ratings, _ = data
    folds = RankingRecommender(**FAST)._ranker_folds(ratings)
    assert len(folds) == 5  # validation_fraction 0.2: five disjoint folds
    masks = np.array([val for val, _ in folds])
    assert (masks.sum(axis=0) == 1).all()  # every training rating labels candidates once
    assert all(0.15 < mask.mean() < 0.25 for mask in masks)
    # enough labelled users in the first fold: the ranker learns from that fold alone
    few = RankingRecommender(**{**FAST, "max_ranker_users": 10})._ranker_folds(ratings)
    assert len(few) == 1 and few[0][1] == 10
    assert (
        len(RankingRecommender(**{**FAST, "validation_fraction": 0.4})._ranker_folds(ratings)) == 2
    )


def test_the_rankers_ease_is_less_shrunk_than_ease_alone():
    _, _, ease = RankingRecommender()._base_models()
    assert ease.l2_reg is None and ease.l2_reg_scale == EASE_L2_SCALE < 1
    # the later folds and serving reuse the λ of the first fold as it is
    _, _, fixed = RankingRecommender()._base_models(ease_l2=123.0)
    assert fixed.l2_reg == 123.0
    _, _, own = RankingRecommender(ease_params={"l2_reg_scale": 1.0})._base_models()
    assert own.l2_reg_scale == 1.0


def test_time_features_place_the_item_debut_against_the_user_activity():
    year = _features.SECONDS_PER_YEAR
    items = ItemStats(
        popularity_log=np.zeros(3),
        mean_rating=np.zeros(3),
        recent_share=np.zeros(3),
        age_years=np.zeros(3),
        first_rated=np.array([0.0, 2 * year, np.nan]),  # item 2: no timestamps
        genres=np.zeros((3, 1), np.float32),
    )
    user = UserSignals(
        implicit=np.ones((1, 2), np.float32),
        ease_scores=np.array([[3.0, 2.0, 1.0]], np.float32),
        mf_factors=np.zeros((1, 2), np.float32),
        mf_bias=np.zeros(1),
        n_rated=np.array([4.0]),
        genre_profile=np.zeros((1, 1), np.float32),
        first_rated=np.array([1.0 * year]),
        last_rated=np.array([1.5 * year]),
    )
    scorers = Scorers(
        implicit_items=np.ones((3, 2), np.float32),
        mf_items=np.zeros((3, 2), np.float32),
        mf_item_bias=np.zeros(3),
        mf_mean=3.0,
        rating_range=(1.0, 5.0),
    )
    allowed = np.ones(3, dtype=bool)
    cands, x = _features.candidates_and_features(
        user, scorers, items, allowed, [np.zeros(0, np.int64)], 3
    )
    assert list(cands[0]) == [0, 1, 2, -1, -1, -1]  # the union of both top-3 lists
    after_last = x[0, :, FEATURES.index("time.item_first_vs_user_last")]
    after_first = x[0, :, FEATURES.index("time.item_first_vs_user_first")]
    np.testing.assert_allclose(after_last[:2], [-1.5, 0.5])  # item 1 appeared after they left
    np.testing.assert_allclose(after_first[:2], [-1.0, 1.0])
    assert np.isnan(after_last[2]) and np.isnan(after_first[2])


def test_users_activity_is_learned_and_a_new_user_rates_at_the_end_of_the_data(ranker, data):
    ratings, _ = data
    train = ratings[~holdout_mask(len(ratings), ranker.eval_fraction, ranker.seed)]
    last = train.groupby("userId")["timestamp"].max()
    ids = ranker.mf_.user_vocab_.ids
    np.testing.assert_array_equal(ranker.user_last_, last.loc[ids].to_numpy(np.float64))
    signals = ranker._new_user_signals(np.array([0, 1]), np.array([5.0, 4.0]))
    assert signals.last_rated[0] == signals.first_rated[0] == train["timestamp"].max()
