"""The SQL face and the Python API agree on the same model."""

from __future__ import annotations

import numpy as np
import pytest

import hybridrec
from hybridrec.models import load_model

pytestmark = pytest.mark.realdata


def test_predict_equals_model_predict(ml100k_ws) -> None:
    frame = hybridrec.sql(
        "SELECT * FROM ML.PREDICT(MODEL `any-project.movielens.recommender_16`, "
        "(SELECT userId, movieId FROM movielens.ratings WHERE userId < 50))",
        ml100k_ws,
    )
    model = load_model(ml100k_ws.models_dir, "recommender_16")
    expected = model.predict(frame["userId"].to_numpy(), frame["movieId"].to_numpy())
    np.testing.assert_allclose(frame["predicted_rating"], expected, atol=1e-6)


def test_order_by_predicted_rating_ranks_like_raw_scores(ml100k_ws) -> None:
    frame = hybridrec.sql(
        "SELECT userId, predicted_rating FROM ML.PREDICT(MODEL movielens.recommender_16, "
        "(SELECT userId, 50 AS movieId FROM movielens.users)) ORDER BY predicted_rating DESC",
        ml100k_ws,
    )
    model = load_model(ml100k_ws.models_dir, "recommender_16")
    raw = model.predict(frame["userId"].to_numpy(), np.full(len(frame), 50), clip=False)
    assert (np.diff(raw) <= 1e-12).all()  # the SQL order is the raw scores' order
    assert frame["predicted_rating"].max() <= 5.0


def test_recommend_top5_equals_recommend(ml100k_ws) -> None:
    frame = hybridrec.sql(
        "SELECT movieId, predicted_rating FROM ML.RECOMMEND(MODEL movielens.recommender_16, "
        "(SELECT 903 AS userId)) ORDER BY predicted_rating DESC LIMIT 5",
        ml100k_ws,
    )
    model = load_model(ml100k_ws.models_dir, "recommender_16")
    expected = model.recommend(903, n=5, exclude_seen=False)
    assert frame["movieId"].tolist() == expected["movieId"].tolist()
    np.testing.assert_allclose(frame["predicted_rating"], expected["predicted_rating"], atol=1e-6)


def test_evaluate_equals_evaluate(ml100k_ws) -> None:
    frame = hybridrec.sql("SELECT * FROM ML.EVALUATE(MODEL movielens.recommender_16)", ml100k_ws)
    metrics = load_model(ml100k_ws.models_dir, "recommender_16").evaluate()
    for name in ("mean_absolute_error", "mean_squared_error", "r2_score", "explained_variance"):
        assert frame[name].iloc[0] == pytest.approx(metrics[name], rel=1e-9)


def test_weights_equal_weights(ml100k_ws) -> None:
    frame = hybridrec.sql(
        "SELECT * FROM ML.WEIGHTS(MODEL movielens.recommender_16) ORDER BY processed_input, "
        "feature",
        ml100k_ws,
    )
    expected = load_model(ml100k_ws.models_dir, "recommender_16").weights()
    expected = expected.sort_values(["processed_input", "feature"]).reset_index(drop=True)
    assert frame["feature"].tolist() == expected["feature"].tolist()
    np.testing.assert_allclose(frame["intercept"], expected["intercept"])
    got = [w["weight"] for row in frame["factor_weights"][:20] for w in row]
    want = [w["weight"] for row in expected["factor_weights"][:20] for w in row]
    np.testing.assert_allclose(got, want)


def test_sql_model_serves_the_cli(ml100k_ws) -> None:
    from _support.cli import run

    code, out, err = run(
        ml100k_ws.path, "recommend", "recommender_16", "--user", "903", "-n", "3", "--format", "csv"
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("movieId")


def test_training_info_and_trials(ml100k_ws) -> None:
    hybridrec.sql(
        "CREATE OR REPLACE MODEL movielens.tuned OPTIONS(model_type='matrix_factorization', "
        "user_col='userId', item_col='movieId', rating_col='rating', num_trials=2, "
        "num_factors=HPARAM_CANDIDATES([4, 8]), l2_reg=HPARAM_RANGE(0.05, 0.5), "
        "max_iterations=3) AS SELECT * FROM movielens.ratings",
        ml100k_ws,
    )
    trials = hybridrec.sql("SELECT * FROM ML.TRIAL_INFO(MODEL movielens.tuned)", ml100k_ws)
    assert len(trials) == 2 and trials["is_optimal"].sum() == 1
    info = hybridrec.sql("SELECT * FROM ML.TRAINING_INFO(MODEL movielens.tuned)", ml100k_ws)
    assert list(info.columns) == [
        "training_run",
        "iteration",
        "loss",
        "eval_loss",
        "learning_rate",
        "duration_ms",
    ]
    assert 1 <= len(info) <= 3


def test_create_model_equals_train_mf(ml100k_ws) -> None:
    from _support.cli import run

    code, _, err = run(
        ml100k_ws.path,
        "train",
        "mf",
        "--name",
        "cli16",
        "--num-factors",
        "16",
        "--l2-reg",
        "0.2",
        "--eval-fraction",
        "0.1",
    )  # AUTO_SPLIT on 100,000 rows
    assert code == 0, err
    sql_model = load_model(ml100k_ws.models_dir, "recommender_16")
    cli_model = load_model(ml100k_ws.models_dir, "cli16")
    np.testing.assert_array_equal(sql_model.user_factors_, cli_model.user_factors_)
    assert sql_model.metrics_["rmse"] == cli_model.metrics_["rmse"]


def test_evaluate_over_a_query_and_implicit_feedback(ml100k_ws) -> None:
    frame = hybridrec.sql(
        "SELECT * FROM ML.EVALUATE(MODEL movielens.recommender_16, "
        "(SELECT userId, movieId, rating FROM movielens.ratings WHERE userId <= 100))",
        ml100k_ws,
    )
    model = load_model(ml100k_ws.models_dir, "recommender_16")
    data = ml100k_ws.sql("SELECT userId, movieId, rating FROM ratings WHERE userId <= 100")
    expected = model.evaluate(data)
    assert frame["mean_squared_error"].iloc[0] == pytest.approx(expected["mean_squared_error"])
    hybridrec.sql(
        "CREATE OR REPLACE MODEL movielens.imp OPTIONS(model_type='matrix_factorization', "
        "feedback_type='IMPLICIT', user_col='userId', item_col='movieId', rating_col='rating', "
        "num_factors=4, wals_alpha=10, max_iterations=3) AS SELECT * FROM movielens.ratings",
        ml100k_ws,
    )
    top = hybridrec.sql(
        "SELECT * FROM ML.RECOMMEND(MODEL movielens.imp, (SELECT 1 AS userId)) "
        "ORDER BY predicted_rating_confidence DESC LIMIT 3",
        ml100k_ws,
    )
    assert list(top.columns) == ["userId", "movieId", "predicted_rating_confidence"]
    implicit = load_model(ml100k_ws.models_dir, "imp")
    expected_top = implicit.recommend(1, n=3, exclude_seen=False)
    assert top["movieId"].tolist() == expected_top["movieId"].tolist()


def test_companion_notebook_queries(ml100k_ws) -> None:
    """The companion notebook's (als_bqml) queries: unseen movies by NOT IN UNNEST, the
    targeting query with a scalar subquery, and SPLIT into an array by SELECT * REPLACE."""
    unseen = hybridrec.sql(
        "SELECT * FROM ML.PREDICT(MODEL `movielens.recommender_16`, ("
        " WITH seen AS (SELECT ARRAY_AGG(movieId) AS movies FROM movielens.ratings"
        "  WHERE userId = 903)"
        " SELECT movieId, title, 903 AS userId FROM movielens.movies, UNNEST(genres) g, seen"
        " WHERE g = 'Comedy' AND movieId NOT IN UNNEST(seen.movies)))"
        " ORDER BY predicted_rating DESC LIMIT 5",
        ml100k_ws,
    )
    model = load_model(ml100k_ws.models_dir, "recommender_16")
    expected = model.recommend(903, n=5, genre="Comedy")
    assert unseen["movieId"].tolist() == expected["movieId"].tolist()
    target = hybridrec.sql(
        "SELECT * FROM ML.PREDICT(MODEL `movielens.recommender_16`, ("
        " WITH allUsers AS (SELECT DISTINCT userId FROM movielens.ratings)"
        " SELECT 50 AS movieId, (SELECT title FROM movielens.movies WHERE movieId = 50) title,"
        " userId FROM allUsers)) ORDER BY predicted_rating DESC LIMIT 5",
        ml100k_ws,
    )
    best = model.recommend_users(50, n=5, exclude_seen=False)
    assert target["userId"].tolist() == best["userId"].tolist()
    split = hybridrec.sql(
        "SELECT * REPLACE(SPLIT(g, '|') AS g) FROM (SELECT 'Action|Comedy' AS g)", ml100k_ws
    )
    assert list(split["g"][0]) == ["Action", "Comedy"]
