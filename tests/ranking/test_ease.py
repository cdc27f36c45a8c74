"""EASE: the closed form against NumPy, choosing λ, recommending, persistence, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from _support.cli import error_line, run
from _support.data import comedy_drama_movies, taste_driven_ratings

from hybridrec import DataError, ModelError
from hybridrec.ranking import EASE
from hybridrec.ranking import _ease as ease_module
from hybridrec.ranking import _ease_kernels as kernels
from hybridrec.ranking._ease_kernels import reference_weights


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    n_items = 120
    ratings = taste_driven_ratings(250, n_items, per_user=30, seed=3)
    items = comedy_drama_movies(n_items)
    return ratings, items


@pytest.fixture(scope="module")
def model(data) -> EASE:
    ratings, items = data
    return EASE().fit(ratings, items=items)


def test_weights_match_the_closed_form_in_numpy():
    rng = np.random.default_rng(0)
    x = rng.random((40, 15)) < 0.3
    users, items = np.nonzero(x)
    ratings = pd.DataFrame({"userId": users + 1, "movieId": items + 1, "rating": 4.0})
    model = EASE(l2_reg=2.5, eval_fraction=0.0).fit(ratings)
    # the model's catalogue is the items someone rated, in id order
    kept = np.flatnonzero(x.any(axis=0))
    expected = reference_weights(x[:, kept].astype(float), 2.5)
    np.testing.assert_allclose(model.weights_, expected, atol=2e-6)
    assert np.all(np.diag(model.weights_) == 0)
    # a user's scores are x_u · B
    u = model.user_vocab_.index_one(1)
    np.testing.assert_allclose(model.user_scores(u), x[0, kept] @ expected, atol=1e-5)


def test_large_catalogues_are_inverted_by_blocks(monkeypatch):
    """Above LAPACK_MAX_ORDER the inverse is assembled from Schur-complement blocks (SciPy's
    OpenBLAS segfaults in spotrf at 26,744 items): same weights as the closed form."""
    rng = np.random.default_rng(1)
    x = rng.random((80, 37)) < 0.3
    users, items = np.nonzero(x)
    ratings = pd.DataFrame({"userId": users + 1, "movieId": items + 1, "rating": 4.0})
    monkeypatch.setattr(kernels, "LAPACK_MAX_ORDER", 8)  # 37 → 18 + 19 → 9 + 9 / 9 + 10 → …
    model = EASE(l2_reg=3.0, eval_fraction=0.0).fit(ratings)
    kept = np.flatnonzero(x.any(axis=0))
    expected = reference_weights(x[:, kept].astype(float), 3.0)
    np.testing.assert_allclose(model.weights_, expected, atol=5e-6)


def test_l2_reg_is_chosen_on_a_validation_split(model):
    tried = [t["l2_reg"] for t in model.tuning_trials_]
    assert tried[: len(ease_module.L2_GRID)] == list(ease_module.L2_GRID)
    best = max(model.tuning_trials_, key=lambda t: t["ndcg@10"])
    assert model.l2_reg_ == best["l2_reg"]
    assert model.metrics_["ndcg@10"] > 0.1 and model.metrics_["precision@10"] > 0.05


def test_l2_reg_scale_shrinks_the_chosen_l2_reg(data, model):
    ratings, items = data
    scaled = EASE(l2_reg_scale=0.25).fit(ratings, items=items)
    assert scaled.tuning_trials_ == model.tuning_trials_  # the same search
    assert scaled.l2_reg_ == pytest.approx(0.25 * model.l2_reg_)
    assert not np.allclose(scaled.weights_, model.weights_)
    # a fixed l2_reg is used as given
    assert EASE(l2_reg=40.0, l2_reg_scale=0.25).fit(ratings).l2_reg_ == 40.0


def test_recommend_skips_seen_items_and_filters_genre(model, data):
    ratings, _ = data
    seen = set(ratings.loc[ratings["userId"] == 5, "movieId"])
    recs = model.recommend(5, 6, genre="Comedy")
    assert list(recs.columns) == ["movieId", "title", "score"]
    assert len(recs) == 6 and not seen & set(recs["movieId"])
    assert all(m % 2 == 1 for m in recs["movieId"])
    assert recs["score"].is_monotonic_decreasing


def test_unknown_user_gets_the_most_rated_items(model):
    top = model.recommend(10**9, 3)
    assert list(top["score"]) == sorted(model.item_counts_, reverse=True)[:3]


def test_new_user_is_scored_from_the_items_they_rated(model, data):
    ratings, _ = data
    mine = ratings.loc[ratings["userId"] == 5]
    u = model.user_vocab_.index_one(5)
    train_items = model.item_vocab_.ids[
        model._train_csr.indices[model._train_csr.indptr[u] : model._train_csr.indptr[u + 1]]
    ]
    as_new = model.recommend_new_user(dict.fromkeys(train_items.tolist(), 4.0), 5)
    expected = model._top(
        model.user_scores(u), 5, None, None, model.item_vocab_.index_of(train_items)
    )
    pd.testing.assert_frame_equal(as_new, expected)
    assert len(mine) > 0


def test_max_items_keeps_the_most_rated(data):
    ratings, items = data
    small = EASE(l2_reg=100.0, max_items=30).fit(ratings, items=items)
    assert small.weights_.shape == (30, 30)
    kept = set(small.item_vocab_.ids[small.columns_])
    assert set(small.recommend(5, 20)["movieId"]) <= kept


def test_memory_estimate_refuses_a_matrix_that_does_not_fit(data, monkeypatch):
    ratings, _ = data
    monkeypatch.setattr(ease_module, "available_memory", lambda: 1000)
    with pytest.raises(DataError, match=r"needs about .* set max_items"):
        EASE(l2_reg=10.0).fit(ratings)


def test_save_load_round_trip_and_corruption(model, tmp_path):
    model.save(tmp_path / "e")
    loaded = EASE.load(tmp_path / "e")
    pd.testing.assert_frame_equal(loaded.recommend(5, 7), model.recommend(5, 7))
    np.testing.assert_array_equal(np.asarray(loaded.weights_), model.weights_)
    assert loaded.l2_reg_ == model.l2_reg_ and loaded.get_params() == model.get_params()
    assert loaded.evaluate() == pytest.approx(model.metrics_)
    weights = tmp_path / "e" / "matrix" / "weights.npy"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum mismatch"):
        EASE.load(tmp_path / "e")


def test_the_grid_grows_while_its_largest_l2_reg_is_best(data, monkeypatch):
    ratings, _ = data
    monkeypatch.setattr(ease_module, "L2_GRID", (1.0, 2.0))
    model = EASE(max_items=40).fit(ratings)
    tried = [t["l2_reg"] for t in model.tuning_trials_]
    assert tried[:2] == [1.0, 2.0] and len(tried) > 2
    assert all(b == 2 * a for a, b in itertools.pairwise(tried))
    # the extension stops at the first λ that is not the best so far
    assert model.l2_reg_ == tried[-2] or tried[-1] * 2 > ease_module.L2_MAX


def test_bad_parameters_are_one_line_errors(data):
    ratings, _ = data
    with pytest.raises(ValueError, match="l2_reg"):
        EASE(l2_reg=0.0).fit(ratings)
    with pytest.raises(ValueError, match="max_items"):
        EASE(max_items=0).fit(ratings)
    with pytest.raises(ValueError, match="l2_reg_scale"):
        EASE(l2_reg_scale=0.0).fit(ratings)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ease-cli")
    ws = root / "ws"
    synth = ("--users", "150", "--items", "80", "--ratings", "6000")
    assert run(ws, "synth", "--out", str(root / "synth"), *synth)[0] == 0
    assert run(ws, "load", str(root / "synth"))[0] == 0
    return ws


def test_cli_train_recommend_evaluate(workspace):
    code, out, err = run(workspace, "train", "ease", "--name", "e", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["l2_reg"] >= min(ease_module.L2_GRID)
    code, out, err = run(workspace, "recommend", "e", "--user", "1", "-n", "4", "--format", "json")
    assert code == 0, err
    assert len(json.loads(out)) == 4
    code, out, err = run(workspace, "evaluate", "e", "--format", "json")
    assert code == 0, err
    assert "ndcg@10" in json.loads(out)
    code, out, err = run(workspace, "models", "--format", "json")
    assert {"name": "e", "kind": "ease"}.items() <= next(
        m for m in json.loads(out) if m["name"] == "e"
    ).items()


def test_cli_bad_l2_reg_is_a_usage_error(workspace):
    code, _, err = run(workspace, "train", "ease", "--name", "e2", "--l2-reg", "0")
    assert code == 2 and "l2-reg" in err
    error_line(*run(workspace, "recommend", "nope", "--user", "1")[::2], "no model named")
