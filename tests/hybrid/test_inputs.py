"""Bad inputs to the hybrid model, through the Python API and the CLI.

Attribute columns with nulls and categories never seen in training have documented fallbacks
(training mean for numbers, all-zero one-hot for categories and genres) and give finite
predictions; an MF that does not exist and mismatched factor widths give a one-line error
(exit code 2 from the CLI), never a traceback or a silent wrong answer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.cli import error_line, run
from _support.data import GENRES_100K

from hybridrec import DataError, HybridrecError, ModelError
from hybridrec.hybrid import HybridRecommender, LinearRegressor, hybrid_dataset_sql
from hybridrec.hybrid._features import AttributeEncoder
from hybridrec.mf import MatrixFactorization

MF_PARAMS = {"num_factors": 3, "max_iterations": 3}
OCCUPATIONS = ["artist", "doctor", "engineer", "student", "writer"]
N_USERS, N_ITEMS = 60, 30


def _tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Small ratings with user and movie attributes, every attribute sometimes missing."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "userId": np.arange(1, N_USERS + 1),
            "age": rng.integers(18, 70, N_USERS).astype(float),
            "gender": rng.choice(["F", "M"], N_USERS).astype(object),
            "occupation": rng.choice(OCCUPATIONS, N_USERS).astype(object),
            "zip": [f"{z:05d}" for z in rng.integers(0, 99999, N_USERS)],
        }
    )
    users.loc[users.index[::4], "age"] = np.nan
    users.loc[users.index[1::5], "gender"] = None
    users.loc[users.index[2::6], "occupation"] = None
    users.loc[users.index[3::7], "zip"] = None
    users.loc[0, ["age", "gender", "occupation", "zip"]] = [np.nan, None, None, None]
    genres: list[list[str] | None] = [
        ["Comedy"] if i % 3 == 0 else ["Drama", "Romance"] for i in range(N_ITEMS)
    ]
    genres[0] = None
    genres[1] = []
    items = pd.DataFrame(
        {
            "movieId": np.arange(101, 101 + N_ITEMS),
            "title": [f"Movie {i}" for i in range(N_ITEMS)],
            "genres": pd.Series(genres, dtype=object),
            "year": pd.array(rng.integers(1950, 2000, N_ITEMS), dtype="Int32"),
        }
    )
    items.loc[items.index[::5], "year"] = pd.NA
    pairs = pd.DataFrame(
        {"userId": rng.integers(1, N_USERS + 1, 2400), "movieId": rng.integers(101, 131, 2400)}
    ).drop_duplicates(["userId", "movieId"])
    women = pairs["userId"].map(users.set_index("userId")["gender"]).eq("F").to_numpy()
    noise = rng.normal(0, 0.7, len(pairs))
    pairs["rating"] = np.clip(np.round(3.2 + 0.8 * women + noise), 1, 5).astype(float)
    return pairs.reset_index(drop=True), users, items


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return _tables()


@pytest.fixture(scope="module")
def linear(tables) -> HybridRecommender:
    ratings, users, items = tables
    return HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2).fit(ratings, users, items)


# ---------------------------------------------------------------------- nulls (Python API)
@pytest.mark.parametrize("kind", ["linear", "boosted", "dnn"])
def test_null_attributes_fall_back_and_predictions_stay_finite(tables, kind):
    ratings, users, items = tables
    params = {"boosted": {"n_estimators": 20}, "dnn": {"epochs": 1}}.get(kind)
    model = HybridRecommender(
        kind, mf_params=MF_PARAMS, regressor_params=params, n_folds=2, eval_fraction=0.2
    ).fit(ratings, users, items)
    # no "None" / "nan" category is invented for the missing values
    assert not [c for c in model.feature_names_ if c.endswith(("=None", "=nan", "=<NA>", "=N"))]
    pred = model.predict(ratings["userId"], ratings["movieId"])
    assert np.isfinite(pred).all() and pred.min() >= 1 and pred.max() <= 5
    assert np.isfinite(model.metrics_["rmse"])
    recs = model.recommend(1, 5)  # user 1 has every attribute missing
    assert len(recs) == 5 and np.isfinite(recs["predicted_rating"]).all()


def test_null_numbers_become_the_training_mean_and_null_categories_all_zeros(linear, tables):
    _, users, items = tables
    enc = linear.user_encoder_
    row = pd.Series(enc.lookup(np.array([1]))[0], index=enc.columns)  # everything missing
    assert row["userId.age"] == pytest.approx(users["age"].mean())  # NaN-skipping mean
    assert (row.drop("userId.age") == 0).all()
    items_enc = linear.item_encoder_
    for movie in (101, 102):  # NULL genres, empty genres
        row = pd.Series(items_enc.lookup(np.array([movie]))[0], index=items_enc.columns)
        assert (row[[c for c in row.index if "genres=" in c]] == 0).all()
    year = pd.Series(items_enc.lookup(np.array([101]))[0], index=items_enc.columns)
    assert year["movieId.year"] == pytest.approx(items["year"].astype(float).mean())


def test_all_null_columns_and_text_in_numbers(tables):
    _, users, _ = tables
    enc = AttributeEncoder.fit(users.assign(age=np.nan, occupation=None), "userId")
    assert "userId.age" in enc.columns and enc.means["age"] == 0.0
    assert not [c for c in enc.columns if c.startswith("userId.occupation")]
    assert np.isfinite(enc.lookup(users["userId"].to_numpy())).all()
    new = pd.DataFrame([{"userId": "x", "age": "thirty", "gender": None}])
    row = enc.transform(new).reindex(columns=enc.columns).iloc[0]
    assert row["userId.age"] == 0.0 and (row.drop("userId.age") == 0).all()


def test_genre_strings_encode_like_lists(tables):
    _, _, items = tables
    as_text = items.assign(genres=[None if g is None else "|".join(g) for g in items["genres"]])
    lists = AttributeEncoder.fit(items, "movieId")
    text = AttributeEncoder.fit(as_text, "movieId")
    assert text.columns == lists.columns
    ids = items["movieId"].to_numpy()
    np.testing.assert_array_equal(text.lookup(ids), lists.lookup(ids))


# ---------------------------------------------------------------------- unseen categories
def test_unseen_categories_at_predict_time_encode_as_all_zeros(linear):
    enc = linear.user_encoder_
    new = pd.DataFrame(
        [{"userId": "x", "age": 30, "gender": "nonbinary", "occupation": "astronaut"}]
    )
    row = enc.transform(new).reindex(columns=enc.columns).iloc[0]
    assert (row[[c for c in enc.columns if "=" in c]] == 0).all()
    item_enc = linear.item_encoder_
    film = pd.DataFrame([{"movieId": 999, "genres": ["Film-Noir"], "year": 1947}])
    item_row = item_enc.transform(film).reindex(columns=item_enc.columns).iloc[0]
    assert (item_row[[c for c in item_enc.columns if "genres=" in c]] == 0).all()
    # a new user with an unseen occupation is scored like one whose occupation is unknown
    odd = linear.recommend_new_user(None, 5, attributes={"age": 30, "occupation": "astronaut"})
    plain = linear.recommend_new_user(None, 5, attributes={"age": 30})
    assert np.isfinite(odd["predicted_rating"]).all()
    pd.testing.assert_frame_equal(odd, plain)


def test_unknown_ids_are_cold_starts_with_finite_predictions(linear):
    pred = linear.predict([10**6, 1, 10**6], [101, 10**6, 10**6])
    assert np.isfinite(pred).all() and ((pred >= 1) & (pred <= 5)).all()


def test_attribute_table_that_does_not_join_is_an_error(tables):
    ratings, users, items = tables
    model = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2)
    with pytest.raises(DataError, match="no userId of the users table appears in the ratings"):
        model.fit(ratings, users.assign(userId=users["userId"].astype(str)), items)
    with pytest.raises(DataError, match="the items table has no movieId column"):
        model.fit(ratings, users, items.rename(columns={"movieId": "item"}))


# ---------------------------------------------------------------------- the MF (Python API)
def test_mf_that_is_not_a_fitted_mf_is_a_clear_error(tables):
    ratings, users, items = tables
    model = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2)
    with pytest.raises(ModelError, match=r"mf must be a fitted MatrixFactorization.*str"):
        model.fit(ratings, users, items, mf="recommender_16")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="not fitted"):
        model.fit(ratings, users, items, mf=MatrixFactorization(**MF_PARAMS))


def test_given_mf_with_another_width_than_mf_params_is_an_error(tables):
    ratings, users, items = tables
    mf = MatrixFactorization(num_factors=3, max_iterations=3, eval_fraction=0.2).fit(ratings)
    model = HybridRecommender("linear", mf_params={"num_factors": 5, "max_iterations": 3})
    with pytest.raises(DataError, match="the given MF has 3 factors but mf_params asks for 5"):
        model.fit(ratings, users, items, mf=mf)
    other = HybridRecommender("linear", mf_params={"num_factors": 3, "max_iterations": 7})
    with pytest.raises(DataError, match="max_iterations=3 vs 7"):
        other.fit(ratings, users, items, mf=mf)
    # documented fallback: without mf_params the out-of-fold MFs copy the given MF
    fitted = HybridRecommender("linear", n_folds=2).fit(ratings, users, items, mf=mf)
    assert fitted.mf_ is mf and fitted._make_mf().num_factors == 3


def test_saved_model_with_a_replaced_mf_names_both_widths(linear, tmp_path, tables):
    ratings, _, _ = tables
    linear.save(tmp_path / "h")
    other = MatrixFactorization(num_factors=5, max_iterations=2, eval_fraction=0).fit(ratings)
    shutil.rmtree(tmp_path / "h" / "mf")
    other.save(tmp_path / "h" / "mf")
    with pytest.raises(ModelError, match="trained with a 3-factor MF but mf/ holds a 5-factor"):
        HybridRecommender.load(tmp_path / "h")
    same_width = MatrixFactorization(**MF_PARAMS, eval_fraction=0).fit(ratings.iloc[::2])
    shutil.rmtree(tmp_path / "h" / "mf")
    same_width.save(tmp_path / "h" / "mf")
    with pytest.raises(ModelError, match="mf/ holds another MF"):
        HybridRecommender.load(tmp_path / "h")
    shutil.rmtree(tmp_path / "h" / "mf")
    with pytest.raises(HybridrecError, match="mf"):
        HybridRecommender.load(tmp_path / "h")


def test_saved_model_with_missing_or_mismatched_parts(linear, tmp_path):
    linear.save(tmp_path / "h")
    (tmp_path / "h" / "user_attributes.parquet").unlink()
    with pytest.raises(ModelError, match=r"user_attributes\.parquet is missing"):
        HybridRecommender.load(tmp_path / "h")
    linear.save(tmp_path / "g")
    meta_file = tmp_path / "g" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["feature_names"] = meta["feature_names"][:-1]
    meta_file.write_text(json.dumps(meta))
    n = len(linear.feature_names_)
    with pytest.raises(ModelError, match=f"meta.json names {n - 1}, the regressor expects {n}"):
        HybridRecommender.load(tmp_path / "g")


def test_regressor_given_a_factor_table_of_another_width(workspace):
    """A regressor fitted on the K=3 hybrid dataset, asked to score the K=4 one."""
    ratings = workspace.ratings()
    genres = ["Action", "Comedy"]
    tables = {}
    for k in (3, 4):
        mf = MatrixFactorization(num_factors=k, max_iterations=2, eval_fraction=0).fit(ratings)
        mf.save(workspace.models_dir / f"m{k}")
        frame = workspace.sql(hybrid_dataset_sql(f"m{k}", k, genres, []))
        cols = [c for c in frame.columns if c[0] in "up" and c[1:].isdigit()]
        tables[k] = (frame[cols].to_numpy(float), frame["rating"].to_numpy(float))
    model = LinearRegressor().fit(*tables[3])
    with pytest.raises(DataError, match="X has 8 features; the model was fitted on 6"):
        model.predict(tables[4][0])


# ---------------------------------------------------------------------- the CLI
def _write_ml100k(folder: Path, *, newcomers: bool = False) -> Path:
    """The generated tables in the ml-100k layout, with blank (NULL) attribute fields;
    ``newcomers``: plus user 9001 (an astronaut) and movie 9002 (the only Film-Noir)."""
    ratings, users, items = _tables(1)
    if newcomers:
        users.loc[len(users)] = [9001, 30.0, "F", "astronaut", "12345"]
        items.loc[len(items)] = [9002, "Noir", ["Film-Noir"], 1947]
        extra = pd.DataFrame({"userId": [9001, 5], "movieId": [101, 9002], "rating": [4.0, 3.0]})
        ratings = pd.concat([ratings, extra], ignore_index=True)
    folder.mkdir(parents=True)
    lines = [f"{r.userId}\t{r.movieId}\t{int(r.rating)}\t0" for r in ratings.itertuples()]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    rows = []
    for it in items.itertuples():
        flags = "|".join("1" if g in (it.genres or []) else "0" for g in GENRES_100K)
        release = "" if pd.isna(it.year) else f"01-Jan-{it.year}"
        rows.append(f"{it.movieId}|{it.title}|{release}||http://x|{flags}")
    (folder / "u.item").write_text("\n".join(rows) + "\n", encoding="latin-1")
    fields = users.astype(object).where(users.notna(), "")
    fields["age"] = [a if a == "" else str(int(a)) for a in fields["age"]]
    rows = ["|".join(map(str, row)) for row in fields.itertuples(index=False)]
    (folder / "u.user").write_text("\n".join(rows) + "\n", encoding="latin-1")
    return folder


@pytest.fixture(scope="module")
def cli_ws(tmp_path_factory) -> Path:
    """A workspace with NULL demographics, NULL years and genre-less movies; MF ``m``
    (3 factors) and hybrid ``h`` trained on it."""
    root = tmp_path_factory.mktemp("hybrid_inputs")
    ws = root / "ws"
    code, _, err = run(ws, "load", str(_write_ml100k(root / "ml-100k")))
    assert code == 0, err
    code, _, err = run(ws, "train", "mf", "--name", "m", "--num-factors", "3")
    assert code == 0, err
    code, _, err = run(ws, "train", "hybrid", "--mf", "m", "--name", "h", "--kind", "linear")
    assert code == 0, err
    return ws


def _predict(ws: Path, name: str, pairs: pd.DataFrame, tmp_path: Path) -> tuple[int, str, str]:
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    return run(ws, "predict", name, "--pairs", str(tmp_path / "pairs.csv"), "--format", "json")


def test_cli_nulls_in_the_workspace_give_finite_predictions(cli_ws, tmp_path):
    code, out, _ = run(cli_ws, "sql", "SELECT * FROM users WHERE userId = 1", "--format", "json")
    assert code == 0 and json.loads(out)[0]["age"] is None  # the fixture really has NULLs
    code, out, _ = run(cli_ws, "sql", "SELECT count(*) AS n FROM movies WHERE year IS NULL")
    assert code == 0
    code, out, err = run(cli_ws, "info", "h", "--format", "json")
    assert code == 0, err
    names = json.loads(out)["feature_names"]
    assert "userId.age" in names and not [c for c in names if c.endswith(("=None", "=nan"))]
    pairs = pd.DataFrame({"userId": [1, 2, 3, 4], "movieId": [101, 102, 106, 110]})
    code, out, err = _predict(cli_ws, "h", pairs, tmp_path)
    assert code == 0, err
    pred = [row["predicted_rating"] for row in json.loads(out)]
    assert len(pred) == 4 and all(np.isfinite(pred))
    code, out, err = run(cli_ws, "recommend", "h", "--user", "1", "-n", "3", "--format", "json")
    assert code == 0, err
    assert len(json.loads(out)) == 3
    assert all(np.isfinite(r["predicted_rating"]) for r in json.loads(out))


def test_cli_train_hybrid_with_a_missing_mf(cli_ws):
    code, _, err = run(cli_ws, "train", "hybrid", "--mf", "missing", "--name", "h2")
    assert "no model named 'missing'" in error_line(code, err)
    models = cli_ws / "models"
    assert not (models / "h2").exists() and not list(models.glob(".h2*"))
    code, _, err = run(cli_ws, "train", "hybrid", "--mf", "h", "--name", "h3")
    assert "'h' is a hybrid model" in error_line(code, err)
    assert not (models / "h3").exists()
    for command in ("dataset", "notebook"):
        extra = ["--out", str(cli_ws / "x.parquet")] if command == "dataset" else []
        code, _, err = run(cli_ws, "hybrid", command, "--mf", "missing", *extra)
        assert "missing" in error_line(code, err)


def test_cli_retrained_mf_with_another_width(cli_ws, tmp_path):
    """The hybrid keeps its own copy of the MF: retraining ``m`` with another width changes
    nothing for ``h``; an ``mf/`` copy replaced by hand is a one-line error naming both."""
    pairs = pd.DataFrame({"userId": [1, 2, 9001], "movieId": [101, 103, 101]})
    code, before, err = _predict(cli_ws, "h", pairs, tmp_path)
    assert code == 0, err
    code, _, err = run(cli_ws, "train", "mf", "--name", "m", "--num-factors", "5")
    assert code == 0, err
    code, after, err = _predict(cli_ws, "h", pairs, tmp_path)
    assert code == 0 and after == before, err
    code, _, err = run(cli_ws, "train", "hybrid", "--mf", "m", "--name", "h5", "--kind", "linear")
    assert code == 0, err
    shutil.rmtree(cli_ws / "models" / "h5" / "mf")
    shutil.copytree(cli_ws / "models" / "h" / "mf", cli_ws / "models" / "h5" / "mf")
    code, _, err = _predict(cli_ws, "h5", pairs, tmp_path)
    assert "trained with a 5-factor MF but mf/ holds a 3-factor MF" in error_line(code, err)
    code, _, err = run(cli_ws, "recommend", "h5", "--user", "1")
    assert "mismatched factor widths" in error_line(code, err)


def test_cli_users_and_movies_added_after_training_are_cold_starts(cli_ws, tmp_path):
    """A user with a new occupation and a movie with a new genre, loaded into the workspace
    after training, are not in the model's stored attribute tables: they are cold starts
    (all-zero one-hots), with the same finite predictions as before they were added.
    (Runs last: it reloads the module's workspace.)"""
    pairs = pd.DataFrame({"userId": [9001, 9001, 5], "movieId": [101, 9002, 9002]})
    code, before, err = _predict(cli_ws, "h", pairs, tmp_path)
    assert code == 0, err
    folder = _write_ml100k(tmp_path / "ml-100k", newcomers=True)
    code, _, err = run(cli_ws, "load", str(folder))
    assert code == 0, err
    code, out, _ = run(cli_ws, "sql", "SELECT occupation FROM users WHERE userId = 9001")
    assert code == 0 and "astronaut" in out
    code, after, err = _predict(cli_ws, "h", pairs, tmp_path)
    assert code == 0 and after == before, err
    assert all(np.isfinite([row["predicted_rating"] for row in json.loads(after)]))
    code, out, err = run(cli_ws, "recommend", "h", "--user", "9001", "-n", "3", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 3, err


def test_new_user_model_with_null_attributes_stays_finite(tables):
    """Users held out entirely, some with every attribute missing: the new-user model (fitted on
    attributes with nulls) gives finite predictions on the rating scale."""
    ratings, users, items = tables
    held = ratings["userId"].isin([1, 2, 3, 4, 5, 6])  # user 1: all attributes null
    model = HybridRecommender("linear", mf_params=MF_PARAMS, n_folds=2, eval_fraction=0.0)
    model.fit(ratings[~held], users, items)
    assert model.new_user_ is not None
    test = ratings[held]
    assert model._new_user_mask(test["userId"].to_numpy()).all()
    pred = model.predict(test["userId"], test["movieId"])
    assert np.isfinite(pred).all() and pred.min() >= 1 and pred.max() <= 5
    assert np.isfinite(model.recommend(1, 5)["predicted_rating"]).all()
    nulls = {"age": None, "gender": None, "occupation": float("nan"), "zip": None}
    recs = model.recommend_new_user(None, 5, attributes=nulls)
    assert len(recs) == 5 and np.isfinite(recs["predicted_rating"]).all()
    assert np.isfinite(model.evaluate(test)["rmse"])
