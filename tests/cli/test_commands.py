"""End-to-end CLI tests: every command on a small synthetic workspace, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _support.cli import run
from click.testing import CliRunner

from hybridrec.cli import main
from hybridrec.mf import MatrixFactorization


def test_info_and_models_list(trained):
    code, out, _ = run(trained, "info", "m", "--format", "json")
    assert code == 0
    meta = json.loads(out)
    assert meta["kind"] == "matrix_factorization" and meta["params"]["num_factors"] == 4
    code, out, _ = run(trained, "models", "--format", "json")
    assert [m["name"] for m in json.loads(out)] == ["m"]
    code, out, _ = run(trained, "info", "m")
    assert code == 0 and "training info" in out


def test_recommend_user_genre_and_where(trained):
    code, out, err = run(
        trained, "recommend", "m", "--user", "5", "--genre", "Comedy", "-n", "3", "--format", "json"
    )
    assert code == 0, err
    recs = json.loads(out)
    assert 0 < len(recs) <= 3
    assert {"movieId", "title", "predicted_rating"} <= set(recs[0])
    code, out, _ = run(
        trained,
        "sql",
        "SELECT movieId FROM movies WHERE list_contains(genres, 'Comedy')",
        "--format",
        "json",
    )
    comedies = {row["movieId"] for row in json.loads(out)}
    assert {r["movieId"] for r in recs} <= comedies
    code, out, err = run(
        trained, "recommend", "m", "--user", "5", "--where", "movieId <= 10", "--format", "csv"
    )
    assert code == 0, err
    ids = [int(line.split(",")[0]) for line in out.strip().splitlines()[1:]]
    assert ids and all(i <= 10 for i in ids)


def test_recommend_item_and_all(trained, tmp_path):
    code, out, err = run(trained, "recommend", "m", "--item", "3", "-n", "4", "--format", "json")
    assert code == 0, err
    users = json.loads(out)
    assert len(users) == 4 and list(users[0]) == ["userId", "predicted_rating", "score"]
    # the unclipped score orders the list (and breaks ties at the top of the scale)
    scores = [u["score"] for u in users]
    assert scores == sorted(scores, reverse=True)
    low, high = MatrixFactorization.load(trained / "models" / "m").rating_range_
    assert all(u["predicted_rating"] == min(max(u["score"], low), high) for u in users)
    code, out, err = run(trained, "recommend", "m", "--user", "5", "-n", "2", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "movieId,title,predicted_rating,score", err
    target = tmp_path / "all.parquet"
    code, _, err = run(trained, "recommend", "m", "--all", "-n", "5", "--out", str(target))
    assert code == 0, err
    table = pd.read_parquet(target)
    assert list(table.columns) == ["userId", "rank", "movieId", "predicted_rating"]
    assert table["userId"].nunique() == 150 and table["rank"].max() == 5


def test_predict_weights_evaluate(trained, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"userId": [1, 2, 999999], "movieId": [1, 2, 3]}).to_csv(pairs, index=False)
    code, out, err = run(trained, "predict", "m", "--pairs", str(pairs), "--format", "json")
    assert code == 0, err
    preds = json.loads(out)
    assert len(preds) == 3 and all(0.5 <= p["predicted_rating"] <= 5 for p in preds)
    code, out, err = run(trained, "weights", "m", "--user", "1", "--item", "2", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["processed_input"] for r in rows] == ["userId", "movieId"]
    assert len(rows[0]["factor_weights"]) == 4
    code, out, err = run(
        trained, "sql", "SELECT COUNT(*) AS n FROM ml_weights('m')", "--format", "json"
    )
    assert code == 0, err
    code, out, err = run(trained, "evaluate", "m", "--format", "json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["rmse"] > 0 and "ndcg@10" in metrics and "r2_score" in metrics
    code, out, err = run(trained, "evaluate", "m", "--data", "ratings", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rmse"] < metrics["rmse"], (
        "training data should fit better than hold-out"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recommend", "nope", "--user", "1"], "no model named 'nope'"),
        (["recommend", "../../etc", "--user", "1"], "invalid model name"),
        (["recommend", "m", "--user", "1", "--item", "2"], "exactly one of"),
        (["recommend", "m", "--all"], "--out"),
        (["recommend", "m", "--item", "987654"], "987654"),
        (["recommend", "m", "--user", "1", "--where", "no_such_column > 1"], "no_such_column"),
        (["weights", "m", "--user", "424242"], "424242"),
        (["sql", "DROP TABLE ratings"], "read-only"),
        (["predict", "m", "--pairs", "/does/not/exist.csv"], "no such file"),
        (["load", "/does/not/exist"], "/does/not/exist"),
        (["evaluate", "m", "--data", "/nope/x.csv"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(trained, args, message):
    code, out, err = run(trained, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message.lower() in lines[0].lower()
    assert "Traceback" not in err


def test_predict_file_missing_columns(trained, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n1,2\n")
    code, _, err = run(trained, "predict", "m", "--pairs", str(bad))
    assert code == 2 and "missing column userId" in err and "bad.csv" in err


def test_every_command_help_has_an_example():
    runner = CliRunner()
    for command in (
        "load",
        "synth",
        "sql",
        "info",
        "models",
        "recommend",
        "predict",
        "weights",
        "evaluate",
        "demo",
    ):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.stdout, command
    result = runner.invoke(main, ["train", "mf", "--help"])
    assert "Example" in result.stdout


def test_no_workspace_yet_is_a_clear_error(tmp_path):
    code, _, err = run(tmp_path / "empty", "sql", "SELECT 1")
    assert code == 2 and "hybridrec load" in err


def test_hybrid_commands(trained, tmp_path):
    code, out, err = run(
        trained, "train", "hybrid", "--mf", "m", "--kind", "linear", "--name", "h", "--folds", "2",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["rmse"] > 0
    code, out, err = run(trained, "explain", "h", "--user", "1", "--item", "2", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows[0]["feature"] == "baseline" and len(rows) == 11
    code, out, err = run(trained, "explain", "h", "--global", "--format", "json")
    assert code == 0 and json.loads(out)[0]["importance"] >= json.loads(out)[-1]["importance"]
    code, out, err = run(trained, "recommend", "h", "--user", "3", "-n", "4", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 4
    new_user = tmp_path / "me.csv"
    pd.DataFrame({"movieId": [1, 2, 3], "rating": [5, 4, 1]}).to_csv(new_user, index=False)
    for model in ("m", "h"):
        code, out, err = run(
            trained, "recommend", model, "--ratings", str(new_user), "--format", "json"
        )
        assert code == 0, err
        assert not {1, 2, 3} & {r["movieId"] for r in json.loads(out)}
    target = tmp_path / "hd.parquet"
    code, _, err = run(trained, "hybrid", "dataset", "--mf", "m", "--out", str(target))
    assert code == 0, err
    table = pd.read_parquet(target)
    assert len(table) == 6000 and {"u1", "u4", "p4", "loyalty", "postcode", "rating"} <= set(
        table.columns
    )
    code, _, err = run(
        trained, "hybrid", "dataset", "--mf", "m", "--encoding", "rows", "--table", "hd"
    )
    assert code == 0, err
    code, out, _ = run(
        trained,
        "sql",
        "SELECT COUNT(*) AS n, COUNT(DISTINCT g) AS genres FROM hd",
        "--format",
        "json",
    )
    assert json.loads(out)[0]["n"] > 6000


def test_hybrid_bad_inputs(trained):
    code, _, err = run(trained, "explain", "m", "--user", "1", "--item", "2")
    assert code == 2 and "hybrid" in err
    code, _, err = run(trained, "train", "hybrid", "--mf", "nope", "--name", "x")
    assert code == 2 and "nope" in err
    code, _, err = run(trained, "hybrid", "dataset", "--mf", "m")
    assert code == 2 and "--out" in err


def test_train_mf_tune_saves_the_best_of_the_trials(trained):
    code, _, err = run(
        trained, "train", "mf", "--name", "tuned", "--num-factors", "4", "--max-iterations", "3",
        "--tune", "2", quiet=False,
    )  # fmt: skip
    assert code == 0, err
    assert "best of 2 trials: {'num_factors': " in err
    code, out, _ = run(trained, "info", "tuned", "--format", "json")
    meta = json.loads(out)
    trials = meta["tuning_trials"]
    best = min(trials, key=lambda t: t["rmse"])["params"]
    assert len(trials) == 2 and meta["params"]["num_factors"] == best["num_factors"]
    assert f"best of 2 trials: {best}" in err


def test_implicit_training_and_ranking_evaluation(trained):
    code, out, err = run(
        trained, "train", "mf", "--name", "imp", "--feedback-type", "implicit",
        "--num-factors", "4", "--wals-alpha", "1", "--l2-reg", "5", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run(trained, "evaluate", "imp", "--format", "json")
    assert code == 0, err
    metrics = json.loads(out)
    assert {
        "mean_average_precision",
        "normalized_discounted_cumulative_gain",
        "average_rank",
    } <= set(metrics)
    code, out, err = run(trained, "evaluate", "m", "--ranking", "--format", "json")
    assert code == 0, err
    assert set(json.loads(out)) == {
        "precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "coverage@10", "novelty@10"
    }  # fmt: skip
    code, out, err = run(trained, "recommend", "imp", "--user", "3", "-n", "3", "--format", "json")
    assert code == 0 and "predicted_rating_confidence" in json.loads(out)[0]
    code, _, err = run(
        trained, "train", "mf", "--name", "x", "--feedback-type", "implicit", "--l2-reg-bias", "1"
    )
    assert code == 2 and "l2_reg_bias" in err


def test_weights_out_writes_every_row_to_parquet_or_csv(trained, tmp_path):
    import pyarrow.parquet as pq

    code, _, err = run(trained, "weights", "m", "--out", str(tmp_path / "w.parquet"))
    assert code == 0, err
    table = pq.read_table(tmp_path / "w.parquet")
    code, out, _ = run(trained, "weights", "m", "--format", "json")
    assert table.num_rows == len(json.loads(out))  # users, items and the global row
    first = table.slice(0, 1).to_pylist()[0]
    assert len(first["factor_weights"]) == 4 and first["factor_weights"][0]["factor"] == 1
    code, _, err = run(trained, "weights", "m", "--user", "1", "--out", str(tmp_path / "w.csv"))
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "w.csv")
    assert len(frame) == 1 and json.loads(frame["factor_weights"][0])[0]["factor"] == 1
    code, _, err = run(trained, "weights", "m", "--out", str(tmp_path / "no" / "w.parquet"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "no").exists()


def test_hybrid_notebook_reproduction(trained):
    code, out, err = run(trained, "hybrid", "notebook", "--mf", "m", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    # rows encoding: one row per (rating, genre), split by the MF's own hold-out
    assert result["rows_train"] > result["rows_eval"] > 0
    assert result["features"] > 4 + 4 + 1  # factors, loyalty, then one-hot postcode and genre
    assert 0 < result["rmse_train"] < 2 and 0 < result["rmse_eval"] < 2
    code, _, err = run(trained, "hybrid", "notebook", "--mf", "nope")
    assert code == 2 and "nope" in err


def test_hybrid_notebook_one_pass_moments_match_a_fit_in_memory(trained):
    """The structured one-pass normal equations give the fit of the materialised dataset."""
    from hybridrec.hybrid._dataset import hybrid_dataset_sql
    from hybridrec.hybrid._notebook import NotebookMoments, notebook_linear
    from hybridrec.hybrid.regressors import LinearRegressor
    from hybridrec.workspace import Workspace

    ws = Workspace(trained)
    genres = ws.sql("SELECT DISTINCT unnest(genres) AS g FROM movies ORDER BY g")["g"].tolist()
    postcodes = sorted(ws.ratings()["userId"].astype(str).str[:2].unique())
    eval_file = ws.models_dir / "m" / "eval.parquet"
    query = f"""SELECT d.*, e.userId IS NOT NULL AS is_eval
        FROM ({hybrid_dataset_sql("m", 4, genres, [], encoding="rows")}) d
        LEFT JOIN read_parquet('{eval_file}') e ON e.userId = d.userId AND e.movieId = d.movieId"""
    frame = ws.sql(query)
    moments = NotebookMoments(4, genres, postcodes)
    x = frame[moments.numeric].to_numpy(float)
    one_hot = [(frame["postcode"] == p).to_numpy(float) for p in postcodes]
    one_hot += [(frame["g"] == g).to_numpy(float) for g in genres]
    x = np.column_stack([x, *one_hot])
    y, held = frame["rating"].to_numpy(float), frame["is_eval"].to_numpy(bool)
    reference = LinearRegressor(l2_reg=1e-6).fit(x[~held], y[~held])
    want_train = np.sqrt(np.mean((y[~held] - reference.predict(x[~held])) ** 2))
    want_eval = np.sqrt(np.mean((y[held] - reference.predict(x[held])) ** 2))

    got = notebook_linear(ws, "m", 4)
    assert got["rows_train"] == (~held).sum() and got["rows_eval"] == held.sum()
    assert got["rmse_train"] == pytest.approx(want_train, rel=1e-6)
    assert got["rmse_eval"] == pytest.approx(want_eval, rel=1e-6)
    batch_moments = NotebookMoments(4, genres, postcodes)
    for batch in ws.sql_batches(query, rows_per_batch=1000):  # several batches
        batch_moments.add(batch)
    model = batch_moments.regressor(l2_reg=1e-6)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-5, atol=1e-7)
