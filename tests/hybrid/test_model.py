"""Hybrid model: features, leak-free stacking, cold start, explain, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridrec.hybrid import HybridRecommender
from hybridrec.hybrid._compare import compare_models, split_scenario
from hybridrec.mf import MatrixFactorization

FAST_BOOSTED = {"n_estimators": 60, "learning_rate": 0.1, "early_stopping_rounds": 10}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ratings where women rate everything 0.8 higher, plus genres that matter."""
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 120
    gender = rng.choice(["F", "M"], n_users)
    age = rng.integers(18, 70, n_users)
    users = pd.DataFrame({"userId": np.arange(1, n_users + 1), "age": age, "gender": gender})
    genres = [["Comedy"] if i % 3 == 0 else ["Drama"] for i in range(n_items)]
    items = pd.DataFrame(
        {
            "movieId": np.arange(1001, 1001 + n_items),
            "title": [f"Movie {i}" for i in range(n_items)],
            "genres": genres,
            "year": rng.integers(1950, 2020, n_items),
        }
    )
    p = rng.normal(0, 0.5, (n_users, 3))
    q = rng.normal(0, 0.5, (n_items, 3))
    pairs = pd.DataFrame(
        {"u": rng.integers(0, n_users, 16000), "i": rng.integers(0, n_items, 16000)}
    ).drop_duplicates()
    u, i = pairs["u"].to_numpy(), pairs["i"].to_numpy()
    score = 3.2 + 0.8 * (gender[u] == "F") + 0.4 * (i % 3 == 0) + (p[u] * q[i]).sum(1)
    rating = np.clip(np.round(2 * (score + rng.normal(0, 0.4, u.size))) / 2, 0.5, 5)
    ratings = pd.DataFrame({"userId": u + 1, "movieId": i + 1001, "rating": rating})
    return ratings.reset_index(drop=True), users, items


MF_PARAMS = {"num_factors": 4, "max_iterations": 6}


@pytest.fixture(scope="module")
def boosted(data) -> HybridRecommender:
    ratings, users, items = data
    return HybridRecommender(
        "boosted", mf_params=MF_PARAMS, regressor_params=FAST_BOOSTED, n_folds=3
    ).fit(ratings, users, items)


@pytest.fixture(scope="module")
def linear(data) -> HybridRecommender:
    ratings, users, items = data
    return HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=3).fit(ratings, users, items)


def test_hybrid_uses_the_same_hold_out_as_mf(data, linear):
    ratings, _, items = data
    mf = MatrixFactorization(**MF_PARAMS).fit(ratings, items=items)
    pd.testing.assert_frame_equal(
        mf.eval_set_.reset_index(drop=True),
        linear.eval_set_.reset_index(drop=True),
        check_dtype=False,
    )


def test_hybrid_beats_mf_when_attributes_matter(data, boosted):
    ratings, _, items = data
    mf = MatrixFactorization(**MF_PARAMS).fit(ratings, items=items)
    assert boosted.metrics_["rmse"] < mf.metrics_["rmse"]
    names = boosted.feature_names_
    assert (
        "mf.prediction" in names and "userId.gender=F" in names and "movieId.genres=Comedy" in names
    )


def test_cold_start_user_uses_attributes(boosted):
    woman = boosted.recommend_new_user(None, 5, attributes={"gender": "F", "age": 30})
    man = boosted.recommend_new_user(None, 5, attributes={"gender": "M", "age": 30})
    assert woman["predicted_rating"].mean() > man["predicted_rating"].mean() + 0.3
    # an unknown id with no attributes still gets an answer on the rating scale
    recs = boosted.recommend(10**9, 3)
    assert len(recs) == 3 and recs["predicted_rating"].between(0.5, 5).all()


def test_fold_in_new_user_excludes_rated_items(boosted):
    rated = {1001: 5.0, 1004: 4.5, 1002: 1.0}
    recs = boosted.recommend_new_user(rated, 5)
    assert len(recs) == 5 and not set(recs["movieId"]) & set(rated)


def test_unknown_item_and_user_predictions_are_cold_starts(boosted):
    pred = boosted.predict([1, 10**9, 1], [1001, 1001, 10**9])
    assert np.all((pred >= 0.5) & (pred <= 5))


def test_linear_explanation_sums_to_the_prediction(linear, data):
    ratings, _, _ = data
    user, item = int(ratings["userId"].iloc[0]), int(ratings["movieId"].iloc[0])
    explanation = linear.explain(user, item, top=len(linear.feature_names_))
    raw = float(linear.regressor_.predict(linear.features(np.array([user]), np.array([item])))[0])
    assert explanation["contribution"].sum() == pytest.approx(raw, abs=1e-4)
    assert explanation["feature"].iloc[0] == "baseline"


def test_boosted_explanation_and_importance(boosted):
    explanation = boosted.explain(1, 1001, top=5)
    assert len(explanation) == 6
    importance = boosted.feature_importance()
    assert importance["importance"].iloc[0] >= importance["importance"].iloc[-1]
    assert set(importance["feature"]) == set(boosted.feature_names_)


@pytest.mark.parametrize("fixture", ["linear", "boosted"])
def test_save_load_round_trip(fixture, request, tmp_path):
    model: HybridRecommender = request.getfixturevalue(fixture)
    model.save(tmp_path / "h")
    loaded = HybridRecommender.load(tmp_path / "h")
    users, items = [1, 2, 10**9], [1001, 1010, 1020]
    np.testing.assert_allclose(loaded.predict(users, items), model.predict(users, items), rtol=1e-6)
    pd.testing.assert_frame_equal(loaded.recommend(3, 5), model.recommend(3, 5))
    new = {"gender": "F", "age": 44}
    pd.testing.assert_frame_equal(
        loaded.recommend_new_user(None, 3, attributes=new),
        model.recommend_new_user(None, 3, attributes=new),
    )
    assert not list(tmp_path.glob(".h*")), "no temporary directory may be left behind"


def test_leak_free_features_differ_from_notebook_style(data):
    """Notebook-style training features come from an MF that saw the target ratings, so they
    fit the training ratings far better than the out-of-fold ones (that is the leak)."""
    ratings, users, items = data
    common = {"mf_params": MF_PARAMS, "n_folds": 3, "cold_fraction": 0.0, "eval_fraction": 0.2}
    leaky = HybridRecommender("linear", leak_free=False, **common).fit(ratings, users, items)
    clean = HybridRecommender("linear", leak_free=True, **common).fit(ratings, users, items)
    coef_leaky = leaky.feature_importance().set_index("feature")["importance"]["mf.prediction"]
    coef_clean = clean.feature_importance().set_index("feature")["importance"]["mf.prediction"]
    assert coef_leaky > coef_clean


def test_tuning_keeps_a_trials_table(data, tmp_path):
    ratings, users, items = data
    model = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2, tune=3).fit(
        ratings, users, items
    )
    assert len(model.tuning_trials_) == 3
    assert all(np.isfinite(t["rmse"]) and "l2_reg" in t["params"] for t in model.tuning_trials_[1:])
    model.save(tmp_path / "t")
    assert len(HybridRecommender.load(tmp_path / "t").tuning_trials_) == 3


def test_reusable_mf_only_for_the_ratings_it_was_trained_on(data, caplog):
    from hybridrec.hybrid import reusable_mf

    ratings = data[0]
    mf = MatrixFactorization(**MF_PARAMS).fit(ratings)
    assert reusable_mf(mf, ratings) is mf
    with caplog.at_level("WARNING", logger="hybridrec.hybrid"):
        assert reusable_mf(mf, ratings.iloc[:-1]) is None
    assert "ratings changed since the MF was trained: refitting it" in caplog.text


def test_recommend_all_reranks_mf_candidates(linear):
    batches = list(linear.recommend_all(n=3, candidates_per_user=10))
    table = pd.concat([b.to_pandas() for b in batches])
    assert table.groupby("userId")["rank"].max().max() == 3
    one = table[table["userId"] == 1].sort_values("rank")
    assert one["predicted_rating"].is_monotonic_decreasing


def test_split_scenarios_hold_out_whole_users_and_items(data):
    ratings, _, _ = data
    train, test = split_scenario(ratings, "cold-user", 1)
    assert not set(train["userId"]) & set(test["userId"])
    train, test = split_scenario(ratings, "cold-item", 1)
    assert not set(train["movieId"]) & set(test["movieId"])
    train, test = split_scenario(ratings, "warm", 1)
    assert len(test) == pytest.approx(0.2 * len(ratings), rel=0.1)


def test_compare_table(data):
    ratings, users, items = data
    table = compare_models(ratings, users, items, kinds=["linear"], mf_params=MF_PARAMS, k=5)
    assert set(table["scenario"]) == {"warm", "cold-user", "cold-item"}
    assert list(table["model"].unique()) == ["global mean", "biases only", "MF", "hybrid linear"]
    cold_users = table[table["scenario"] == "cold-user"].set_index("model")
    # MF knows nothing about a new user; the hybrid sees their gender
    assert cold_users.loc["hybrid linear", "rmse"] < cold_users.loc["MF", "rmse"]


def test_missing_attribute_values_and_unseen_categories_fall_back(data):
    """Nulls in attribute columns become the training mean (numbers) or no category (text);
    a category never seen in training encodes as all zeros."""
    ratings, users, items = data
    holey = users.copy()
    holey.loc[holey.index[::7], "age"] = np.nan
    holey["gender"] = holey["gender"].astype(object)
    holey.loc[holey.index[::5], "gender"] = None
    model = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2).fit(ratings, holey, items)
    assert np.isfinite(model.predict(ratings["userId"][:50], ratings["movieId"][:50])).all()
    odd = model.recommend_new_user(
        None, 3, attributes={"gender": "X", "age": None, "planet": "Mars"}
    )
    plain = model.recommend_new_user(None, 3, attributes={"gender": None})
    assert len(odd) == 3
    np.testing.assert_allclose(odd["predicted_rating"], plain["predicted_rating"], rtol=1e-6)


# ---------------------------------------------------------------------- the new-user model
@pytest.fixture(scope="module")
def cold_split(data):
    """A linear hybrid trained without 30 users (held out entirely) and the held-out ratings."""
    ratings, users, items = data
    held = ratings["userId"].isin(np.arange(1, 31))
    train, test = ratings[~held].reset_index(drop=True), ratings[held].reset_index(drop=True)
    model = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=3, eval_fraction=0.0)
    return model.fit(train, users, items), train, test


def test_new_user_model_is_used_for_unknown_users_with_attributes(cold_split, data):
    model, _, test = cold_split
    _, users, _ = data
    assert model.new_user_ is not None and model.new_user_.cv_rmse
    u, i = test["userId"].to_numpy(), test["movieId"].to_numpy()
    assert model._new_user_mask(u).all()
    pred = model.predict(u, i)
    main = model._clip(model.regressor_.predict(model.features(u, i)))
    assert not np.allclose(pred, main)
    np.testing.assert_allclose(pred, model._clip(model._new_user_scores(model.features(u, i))))
    # the women's +0.8 is learnt from demographics alone, and beats the item baseline
    y = test["rating"].to_numpy()
    baseline = model.mf_.predict(u, i)
    assert np.sqrt(np.mean((pred - y) ** 2)) < np.sqrt(np.mean((baseline - y) ** 2)) - 0.05
    # recommend for an unknown user in the user table, and recommend_new_user by attributes
    user = int(u[0])
    recs = model.recommend(user, 5)
    np.testing.assert_allclose(
        recs["predicted_rating"], model.predict([user] * 5, recs["movieId"]), rtol=1e-6
    )
    row = users.set_index("userId").loc[user]
    by_attributes = model.recommend_new_user(
        None, 5, attributes={"age": int(row["age"]), "gender": row["gender"]}
    )
    pd.testing.assert_frame_equal(by_attributes, recs, rtol=1e-5)
    # evaluate scores unknown users through the same path
    assert model.evaluate(test)["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))


def test_new_user_model_leaves_known_users_and_attribute_less_users_alone(cold_split, data):
    model, train, _ = cold_split
    _, users, items = data
    plain = HybridRecommender(
        "linear", mf_params=MF_PARAMS, n_folds=3, eval_fraction=0.0, new_user_model=False
    ).fit(train, users, items)
    assert plain.new_user_ is None
    u, i = train["userId"].to_numpy()[:500], train["movieId"].to_numpy()[:500]
    np.testing.assert_array_equal(model.predict(u, i), plain.predict(u, i))
    # an unknown id absent from the user table keeps the main regressor's cold rows
    np.testing.assert_array_equal(model.predict([10**9], [1001]), plain.predict([10**9], [1001]))
    # with ratings, a new user is folded in and scored by the main regressor
    rated = {1001: 5.0, 1004: 4.5}
    pd.testing.assert_frame_equal(
        model.recommend_new_user(rated, 5, attributes={"gender": "F"}),
        plain.recommend_new_user(rated, 5, attributes={"gender": "F"}),
    )
    # without real user attributes (the notebook's synthetic ones) there is no new-user model
    ratings, _, _ = data
    notebook = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2, eval_fraction=0.0)
    assert notebook.fit(ratings, None, items).new_user_ is None


def test_new_user_model_is_saved_and_loaded(cold_split, tmp_path):
    import json

    from hybridrec import ModelError

    model, _, test = cold_split
    model.save(tmp_path / "h")
    loaded = HybridRecommender.load(tmp_path / "h")
    assert loaded.new_user_ is not None and loaded.new_user_.penalty == model.new_user_.penalty
    u, i = test["userId"].to_numpy()[:200], test["movieId"].to_numpy()[:200]
    np.testing.assert_allclose(loaded.predict(u, i), model.predict(u, i), rtol=1e-9)
    new = {"gender": "F", "age": 44}
    pd.testing.assert_frame_equal(
        loaded.recommend_new_user(None, 3, attributes=new),
        model.recommend_new_user(None, 3, attributes=new),
    )
    assert loaded.get_params() == model.get_params()
    meta_file = tmp_path / "h" / "meta.json"
    meta = json.loads(meta_file.read_text())
    assert "new_user_model" not in meta["params"]  # older releases can still read the params
    meta["new_user"]["coef"] = meta["new_user"]["coef"][:-3]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="new-user model does not match") as err:
        HybridRecommender.load(tmp_path / "h")
    assert "\n" not in str(err.value)
    del meta["new_user"]["coef"]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="malformed new-user model"):
        HybridRecommender.load(tmp_path / "h")
    # a model saved before the new-user model existed loads and uses the regressor's cold rows
    del meta["new_user"], meta["new_user_model"]
    meta_file.write_text(json.dumps(meta))
    old = HybridRecommender.load(tmp_path / "h")
    assert old.new_user_ is None
    np.testing.assert_allclose(
        old.predict(u, i), model._clip(model.regressor_.predict(model.features(u, i))), rtol=1e-6
    )


def test_explanation_of_a_new_user_prediction_sums_to_it(cold_split):
    model, _, test = cold_split
    user, item = int(test["userId"].iloc[0]), int(test["movieId"].iloc[0])
    explanation = model.explain(user, item, top=10_000)
    x = model.features(np.array([user]), np.array([item]))
    assert explanation["contribution"].sum() == pytest.approx(
        float(model._new_user_scores(x)[0]), abs=1e-6
    )
    assert explanation["feature"].str.contains(" × ").any()


def test_max_train_rows_samples_the_regressor_rows_only(data, linear):
    from hybridrec.hybrid._stacking import out_of_fold_matrix

    ratings, users, items = data
    sampled = HybridRecommender(
        "linear", mf_params=MF_PARAMS, n_folds=3, max_train_rows=2000, new_user_model=False
    ).fit(ratings, users, items)
    assert sampled.regressor_.n_samples_ < 2000 < linear.regressor_.n_samples_  # minus validation
    # the MF used for predictions still saw every training rating
    assert sampled.mf_.user_factors_.shape == linear.mf_.user_factors_.shape
    assert sampled.metrics_["rmse"] < linear.metrics_["rmse"] + 0.05
    # the sampled out-of-fold rows are exactly those rows of the full out-of-fold matrix
    train = ratings.iloc[:3000].reset_index(drop=True)
    cold = np.zeros(len(train), dtype=bool)
    mask = np.random.default_rng(1).random(len(train)) < 0.3

    def make_mf() -> MatrixFactorization:
        return MatrixFactorization(**MF_PARAMS, eval_fraction=0.0)

    full = out_of_fold_matrix(train, make_mf, 3, 42, cold, cold)
    part = out_of_fold_matrix(train, make_mf, 3, 42, cold, cold, rows=mask)
    np.testing.assert_allclose(part, full[mask])
    with pytest.raises(ValueError, match="max_train_rows"):
        HybridRecommender("linear", max_train_rows=5).fit(ratings, users, items)


def test_ranking_metrics_sample_users_when_there_are_too_many_pairs(linear, monkeypatch):
    from hybridrec.hybrid import _evaluation

    full = linear.evaluate()
    monkeypatch.setattr(_evaluation, "RANKING_PAIRS", 0)
    monkeypatch.setattr(_evaluation, "RANKING_MIN_USERS", 20)
    sampled = linear.evaluate()
    assert sampled["rmse"] == full["rmse"]  # regression metrics use every held-out rating
    assert 0 <= sampled["precision@10"] <= 1 and sampled["precision@10"] != full["precision@10"]
