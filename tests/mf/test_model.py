"""Known answers for MatrixFactorization: recovery, predict, recommend, fold-in, persistence."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from hybridrec import ModelError
from hybridrec.data import SynthConfig, generate, true_ratings
from hybridrec.mf import MatrixFactorization


@pytest.fixture(scope="module")
def synthetic():
    config = SynthConfig(n_users=400, n_items=200, n_ratings=30_000, n_factors=4, seed=7)
    return generate(config)


@pytest.fixture(scope="module")
def tiny_ratings() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    users = rng.integers(1, 60, 1500)
    items = rng.integers(100, 140, 1500)
    frame = pd.DataFrame({"userId": users, "movieId": items}).drop_duplicates()
    frame["rating"] = rng.integers(1, 11, len(frame)) / 2
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def items_meta() -> pd.DataFrame:
    ids = np.arange(100, 140)
    return pd.DataFrame(
        {
            "movieId": ids,
            "title": [f"Movie {i}" for i in ids],
            "genres": [["Comedy"] if i % 2 else ["Drama", "War"] for i in ids],
        }
    )


@pytest.fixture(scope="module")
def fitted(tiny_ratings, items_meta) -> MatrixFactorization:
    return MatrixFactorization(num_factors=4, max_iterations=5, eval_fraction=0.2, seed=1).fit(
        tiny_ratings, items=items_meta
    )


def test_recovers_synthetic_ground_truth(synthetic):
    ratings = synthetic.ratings
    model = MatrixFactorization(
        num_factors=4,
        l2_reg=0.05,
        l2_reg_item=None,
        item_reg_exponent=None,
        max_iterations=25,
        early_stop=False,
        seed=0,
    ).fit(ratings)
    held = model.eval_set_
    truth = true_ratings(synthetic.truth, held["userId"].to_numpy(), held["movieId"].to_numpy())
    pred = model.predict(held["userId"].to_numpy(), held["movieId"].to_numpy())
    rmse_vs_truth = float(np.sqrt(np.mean((pred - truth) ** 2)))
    baseline = MatrixFactorization(num_factors=1, l2_reg=1e6, max_iterations=5, seed=0).fit(ratings)
    biases_only = baseline.predict(held["userId"].to_numpy(), held["movieId"].to_numpy())
    rmse_biases = float(np.sqrt(np.mean((biases_only - truth) ** 2)))
    # Far closer to the truth than the observation noise (sd 0.5 plus half-star rounding) and
    # than a biases-only model: the low-rank structure is recovered.
    assert rmse_vs_truth < 0.3
    assert rmse_vs_truth < 0.6 * rmse_biases
    log = model.training_info()
    assert log["loss"].iloc[-1] < log["loss"].iloc[0]


def test_fit_is_deterministic_under_a_seed(tiny_ratings):
    a = MatrixFactorization(num_factors=3, max_iterations=3, seed=5).fit(tiny_ratings)
    b = MatrixFactorization(num_factors=3, max_iterations=3, seed=5).fit(tiny_ratings)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert a.eval_set_.equals(b.eval_set_)


def test_predictions_clipped_and_unknown_ids_fall_back(fitted):
    low, high = fitted.rating_range_
    users = fitted.user_vocab_.ids[:5]
    items = fitted.item_vocab_.ids[:5]
    pred = fitted.predict(users, items)
    assert np.all((pred >= low) & (pred <= high))
    item0 = fitted.item_vocab_.ids[0]
    user0 = fitted.user_vocab_.ids[0]
    mu = fitted.global_mean_
    unknown = fitted.predict([999_999, user0, 999_999], [item0, 999_999, 999_998])
    assert unknown[0] == pytest.approx(np.clip(mu + fitted.item_bias_[0], low, high))
    assert unknown[1] == pytest.approx(np.clip(mu + fitted.user_bias_[0], low, high))
    assert unknown[2] == pytest.approx(mu)


def test_string_ids_from_the_cli_match_integer_vocabulary(fitted):
    user = fitted.user_vocab_.ids[3]
    item = fitted.item_vocab_.ids[4]
    assert fitted.predict([str(user)], [str(item)])[0] == fitted.predict([user], [item])[0]


def test_recommend_excludes_seen_and_filters_genre(fitted, tiny_ratings):
    user = int(tiny_ratings["userId"].iloc[0])
    seen = set(tiny_ratings.loc[tiny_ratings["userId"] == user, "movieId"])
    recs = fitted.recommend(user, n=5)
    assert list(recs.columns) == ["movieId", "title", "predicted_rating", "score"]
    assert not seen & set(recs["movieId"])
    assert recs["predicted_rating"].is_monotonic_decreasing
    comedy = fitted.recommend(user, n=50, genre="Comedy")
    assert len(comedy) > 0 and all(m % 2 == 1 for m in comedy["movieId"])
    with_seen = fitted.recommend(user, n=40, exclude_seen=False)
    assert seen <= set(with_seen["movieId"])


def test_ties_at_the_clip_are_ordered_by_the_shown_unclipped_score(fitted):
    """Raise every prediction above the scale: all predicted ratings clip to the top and tie,
    and the ``score`` column shows the unclipped values that order the list."""
    shifted = copy.deepcopy(fitted)
    shifted.global_mean_ += 10.0
    high = shifted.rating_range_[1]
    user, item = fitted.user_vocab_.ids[0], fitted.item_vocab_.ids[0]
    for recs in (shifted.recommend(user, n=4), shifted.recommend_users(item, n=4)):
        assert (recs["predicted_rating"] == high).all()
        assert recs["score"].is_monotonic_decreasing and recs["score"].nunique() == 4
        assert (recs["score"] > high).all()
    users = shifted.recommend_users(item, n=4)
    raw = fitted.recommend_users(item, n=4)
    assert users["userId"].tolist() == raw["userId"].tolist()
    np.testing.assert_allclose(users["score"], raw["score"] + 10.0)


def test_recommend_for_unknown_user_uses_item_intercepts(fitted):
    recs = fitted.recommend(123_456, n=3)
    best = fitted.item_vocab_.ids[np.argsort(-fitted.item_bias_)[:3]]
    assert recs["movieId"].tolist() == best.tolist()


def test_recommend_users_and_recommend_all_agree_with_predict(fitted):
    item = fitted.item_vocab_.ids[2]
    top_users = fitted.recommend_users(item, n=4)
    np.testing.assert_allclose(
        top_users["predicted_rating"], fitted.predict(top_users["userId"], [item] * 4), rtol=1e-5
    )
    batches = list(fitted.recommend_all(n=3, block_size=7))
    table = pd.concat([b.to_pandas() for b in batches])
    assert table["userId"].nunique() == len(fitted.user_vocab_)
    user = fitted.user_vocab_.ids[10]
    mine = table[table["userId"] == user].sort_values("rank")
    single = fitted.recommend(user, n=3)
    assert mine["movieId"].tolist() == single["movieId"].tolist()
    np.testing.assert_allclose(mine["predicted_rating"], single["predicted_rating"], rtol=1e-5)


def test_weights_have_ml_weights_shape_and_rebuild_predictions(fitted):
    w = fitted.weights()
    assert list(w.columns) == ["processed_input", "feature", "factor_weights", "intercept"]
    assert set(w["processed_input"]) == {"userId", "movieId", "global__intercept__"}
    glob = w[w["processed_input"] == "global__intercept__"]
    assert len(glob) == 1 and glob["intercept"].iloc[0] == pytest.approx(fitted.global_mean_)
    user, item = fitted.user_vocab_.ids[1], fitted.item_vocab_.ids[1]
    sub = fitted.weights(users=[user], items=[item])
    assert len(sub) == 2
    u_row = sub[sub["processed_input"] == "userId"].iloc[0]
    i_row = sub[sub["processed_input"] == "movieId"].iloc[0]
    assert u_row["feature"] == str(user)
    assert [fw["factor"] for fw in u_row["factor_weights"]] == [1, 2, 3, 4]
    dot = sum(
        a["weight"] * b["weight"]
        for a, b in zip(u_row["factor_weights"], i_row["factor_weights"], strict=True)
    )
    manual = fitted.global_mean_ + u_row["intercept"] + i_row["intercept"] + dot
    low, high = fitted.rating_range_
    assert fitted.predict([user], [item])[0] == pytest.approx(np.clip(manual, low, high), rel=1e-5)


def test_evaluate_reports_bigquery_names_and_ranking(fitted):
    metrics = fitted.evaluate()
    for name in (
        "mean_absolute_error",
        "mean_squared_error",
        "mean_squared_log_error",
        "median_absolute_error",
        "r2_score",
        "explained_variance",
        "rmse",
        "precision@10",
        "ndcg@10",
    ):
        assert name in metrics
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["mean_squared_error"]))
    assert metrics["rmse"] == pytest.approx(np.sqrt(fitted.training_info()["eval_loss"].iloc[-1]))


def test_save_load_round_trip(fitted, tmp_path):
    path = tmp_path / "m"
    fitted.save(path)
    loaded = MatrixFactorization.load(path)
    users, items = fitted.eval_set_["userId"], fitted.eval_set_["movieId"]
    np.testing.assert_array_equal(loaded.predict(users, items), fitted.predict(users, items))
    user = fitted.user_vocab_.ids[0]
    pd.testing.assert_frame_equal(loaded.recommend(user, 5), fitted.recommend(user, 5))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.evaluate() == pytest.approx(fitted.evaluate())
    assert not list(tmp_path.glob(".m.*")), "no temporary directory may be left behind"


def test_unknown_format_version_is_a_clear_error(fitted, tmp_path):
    path = tmp_path / "m"
    fitted.save(path)
    meta = json.loads((path / "meta.json").read_text())
    meta["format_version"] = 99
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format version 99"):
        MatrixFactorization.load(path)


def test_unfitted_model_and_bad_params_raise():
    with pytest.raises(ModelError):
        MatrixFactorization().predict([1], [2])
    frame = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [3.0, 4.0]})
    with pytest.raises(ValueError, match="num_factors"):
        MatrixFactorization(num_factors=0).fit(frame)
    with pytest.raises(ValueError, match="eval_fraction"):
        MatrixFactorization(eval_fraction=1.5).fit(frame)


def test_fold_in_reproduces_a_training_user(fitted, tiny_ratings):
    """Folding in a user's training ratings gives the factors one more user half-step gives."""
    user = fitted.user_vocab_.ids[0]
    u = 0
    cols = fitted._train_csr.indices[fitted._train_csr.indptr[u] : fitted._train_csr.indptr[u + 1]]
    own = tiny_ratings[tiny_ratings["userId"] == user].set_index("movieId")["rating"]
    rated = {int(m): float(own[m]) for m in fitted.item_vocab_.ids[cols]}
    factors, bias = fitted.fold_in(rated)
    # the fitted user factors were solved against item factors of the previous sweep, so
    # compare with a fresh solve: the new-user prediction must track the training user's.
    pred_new = fitted.global_mean_ + bias + fitted.item_bias_ + fitted.item_factors_ @ factors
    pred_old = (
        fitted.global_mean_
        + fitted.user_bias_[u]
        + fitted.item_bias_
        + fitted.item_factors_ @ fitted.user_factors_[u]
    )
    assert np.corrcoef(pred_new, pred_old)[0, 1] > 0.9
    recs = fitted.recommend_new_user(rated, n=5)
    assert not set(recs["movieId"]) & set(rated)
    assert len(recs) == 5


def test_fold_in_with_only_unknown_items_gives_the_intercept_ranking(fitted):
    recs = fitted.recommend_new_user({10**9: 5.0}, n=3)
    assert recs["movieId"].tolist() == fitted.recommend(-1, n=3)["movieId"].tolist()
    with pytest.raises(Exception, match="at least one"):
        fitted.fold_in({})


def test_text_ids_map_only_when_they_are_exact_integers():
    from hybridrec.data import IdVocabulary

    vocab = IdVocabulary([1, 2, 903])
    got = vocab.index_of(np.array(["903", "1.5", "2.0", "abc"]))
    assert got.tolist() == [2, -1, -1, -1]
    assert vocab.index_of(np.array([2.0, 2.5])).tolist() == [1, -1]


def test_genre_mask_cache_does_not_leak_between_calls(fitted):
    user = fitted.user_vocab_.ids[0]
    first = fitted.recommend(user, n=40, genre="Comedy")
    second = fitted.recommend(user, n=40, genre="Comedy", candidates=[101, 103])
    assert set(second["movieId"]) <= {101, 103}
    again = fitted.recommend(user, n=40, genre="Comedy")
    pd.testing.assert_frame_equal(first, again)


def test_users_who_saw_an_item(fitted, tiny_ratings):
    item = fitted.item_vocab_.ids[5]
    expected = set(tiny_ratings.loc[tiny_ratings["movieId"] == item, "userId"])
    got = set(fitted.user_vocab_.ids[fitted.users_who_saw(5)])
    assert got == expected & set(fitted.user_vocab_.ids)


def test_tune_mf_returns_the_tuned_model_with_its_trials(tiny_ratings):
    from hybridrec.mf import SEARCH_SPACE, tune_mf, tuned_params

    base = MatrixFactorization(num_factors=4, max_iterations=3, seed=5, show_progress=True)
    model = tune_mf(tiny_ratings, 3, base)
    assert model is not base and not hasattr(model, "user_factors_")  # chosen, not fitted
    trials = model.tuning_trials_
    assert [t["trial"] for t in trials] == [0, 1, 2] and base.tuning_trials_ == []
    best = min(trials, key=lambda t: t["rmse"])["params"]
    assert tuned_params(model) == best and set(best) == set(SEARCH_SPACE)
    kept = {k: v for k, v in base.get_params().items() if k not in SEARCH_SPACE}
    assert {k: model.get_params()[k] for k in kept} == kept and model.show_progress


def test_trained_on_compares_the_data_fingerprint(fitted, tiny_ratings):
    assert fitted.trained_on(tiny_ratings)
    assert not fitted.trained_on(tiny_ratings.iloc[1:])
    changed = tiny_ratings.assign(rating=tiny_ratings["rating"].iloc[::-1].to_numpy())
    assert not fitted.trained_on(changed)
    with pytest.raises(ModelError, match="not fitted"):
        MatrixFactorization().trained_on(tiny_ratings)
