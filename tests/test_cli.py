"""End-to-end CLI tests: every command on a small synthetic workspace, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hybridrec.cli import main


def run(ws: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--workspace", str(ws), "--quiet", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace with synthetic data and one trained model named ``m``."""
    root = tmp_path_factory.mktemp("cli")
    ws = root / "ws"
    data = root / "synth"
    code, out, err = run(
        ws, "synth", "--out", str(data), "--users", "150", "--items", "80", "--ratings", "6000"
    )
    assert code == 0, err
    code, out, err = run(ws, "load", str(data), "--format", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_ratings"] == 6000
    code, out, err = run(ws, "train", "mf", "--name", "m", "--num-factors", "4", "--format", "json")
    assert code == 0, err
    log = json.loads(out)
    assert log[0]["iteration"] == 0 and {"loss", "eval_loss", "duration_ms"} <= set(log[0])
    return ws


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
    assert len(json.loads(out)) == 4
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
