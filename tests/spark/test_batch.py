"""Batch jobs on Spark (recommend --all, evaluate) give the local engine's answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _support.spark import require_spark
from click.testing import CliRunner

from hybridrec.cli import main
from hybridrec.mf import MatrixFactorization

pytestmark = pytest.mark.spark


require_spark()


def _recommend_all_local(model: MatrixFactorization, n: int, **options) -> pd.DataFrame:
    batches = list(model.recommend_all(n, **options))
    return pa.Table.from_batches(batches).to_pandas()


def _assert_same_top_n(on_spark: pd.DataFrame, local: pd.DataFrame) -> None:
    """Same users, ranks and items in the same row order; scores within 1e-4."""
    assert list(on_spark.columns) == ["userId", "rank", "movieId", "predicted_rating"]
    assert list(on_spark.columns) == list(local.columns) and len(on_spark) == len(local)
    for col in ("userId", "rank", "movieId"):
        assert on_spark[col].tolist() == local[col].tolist(), col
    gap = np.abs(on_spark["predicted_rating"].to_numpy() - local["predicted_rating"].to_numpy())
    assert gap.max() < 1e-4


def test_recommend_all_on_spark_is_the_local_recommend_all(spark, synth_ws, odd_model, tmp_path):
    """recommend --all --engine spark (a local MF) and recommend_all (a Spark MF with string
    user ids and int64 movie ids, small blocks) give the local engine's top-n."""
    from hybridrec.spark import recommend_all

    ws, _ = synth_ws
    runner = CliRunner()
    w = ["-q", "-w", str(ws.path)]
    spark_options = ["--engine", "spark", "--spark-master", "local[1]"]
    local_out = tmp_path / "local.parquet"
    local_run = runner.invoke(
        main, [*w, "recommend", "mf", "--all", "-n", "5", "--out", str(local_out)]
    )
    assert local_run.exit_code == 0, local_run.output
    spark_out = tmp_path / "spark_top"
    for _ in range(2):  # the second run replaces the first folder
        run = runner.invoke(
            main,
            [*w, "recommend", "mf", "--all", "-n", "5", "--out", str(spark_out), *spark_options],
        )
        assert run.exit_code == 0, run.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    local = pd.read_parquet(local_out)
    _assert_same_top_n(pd.read_parquet(spark_out), local)

    # --ratings: the pairs of those ratings are excluded; all ratings = the model's seen pairs
    ratings_file = tmp_path / "ratings.parquet"
    ws.ratings()[["userId", "movieId", "rating"]].to_parquet(ratings_file)
    with_ratings = tmp_path / "spark_ratings"
    run = runner.invoke(
        main,
        [
            *w,
            "recommend",
            "mf",
            "--all",
            "-n",
            "5",
            "--out",
            str(with_ratings),
            *spark_options,
            "--ratings",
            str(ratings_file),
        ],
    )
    assert run.exit_code == 0, run.output
    _assert_same_top_n(pd.read_parquet(with_ratings), local)

    # a Spark-trained model with odd ids; --include-seen; blocks smaller than a batch
    path = tmp_path / "odd"
    odd_model.save(path)
    odd_local = MatrixFactorization.load(path)
    for exclude_seen in (True, False):
        frame = recommend_all(spark, path, 3, exclude_seen=exclude_seen, block_rows=7)
        on_spark = frame.toArrow().to_pandas()
        _assert_same_top_n(on_spark, _recommend_all_local(odd_local, 3, exclude_seen=exclude_seen))


def test_evaluate_on_spark_is_the_local_evaluate(spark, synth_ws, odd_model, tmp_path):
    """evaluate --engine spark: the local regression metrics, on the hold-out and on --data
    with unknown users and items; refusals are one line before Spark starts."""
    from hybridrec.evaluate import REGRESSION_METRICS
    from hybridrec.spark import evaluate_saved_model

    ws, mf = synth_ws
    runner = CliRunner()
    w = ["-q", "-w", str(ws.path)]
    spark_options = ["--engine", "spark", "--spark-master", "local[1]"]

    def check(on_spark: dict, local: dict) -> None:
        assert list(on_spark) == list(REGRESSION_METRICS)
        for key in REGRESSION_METRICS:
            assert on_spark[key] == pytest.approx(local[key], rel=1e-6, abs=1e-9), key

    run = runner.invoke(main, [*w, "evaluate", "mf", "--format", "json", *spark_options])
    assert run.exit_code == 0, run.output
    check(json.loads(run.stdout), mf.evaluate())

    # --data: a file with unknown users, unknown items and unknown pairs
    data = pd.concat(
        [
            ws.ratings()[["userId", "movieId", "rating"]].sample(700, random_state=1),
            pd.DataFrame(
                {"userId": [10**6, 1, 10**6], "movieId": [1, 10**6, 10**6], "rating": 3.0}
            ),
        ]
    )
    data_file = tmp_path / "data.parquet"
    data.to_parquet(data_file)
    run = runner.invoke(
        main, [*w, "evaluate", "mf", "--data", str(data_file), "--format", "json", *spark_options]
    )
    assert run.exit_code == 0, run.output
    check(json.loads(run.stdout), mf.evaluate(data))

    # a Spark-trained model with string user ids, on its own hold-out
    path = tmp_path / "odd"
    odd_model.save(path)
    check(evaluate_saved_model(spark, path), MatrixFactorization.load(path).evaluate())

    (ws.models_dir / "fake_hybrid").mkdir(exist_ok=True)
    (ws.models_dir / "fake_hybrid" / "meta.json").write_text(
        '{"format_version": 1, "kind": "hybrid"}'
    )
    for args, message in (
        (["evaluate", "mf", "--ranking", *spark_options], "--ranking"),
        (["evaluate", "fake_hybrid", *spark_options], "matrix factorization models only"),
        (["evaluate", "mf", "--spark-master", "local[1]"], "--engine spark only"),
        (["recommend", "mf", "--user", "1", *spark_options], "--all only"),
        (["recommend", "mf", "--all", *spark_options], "--out PATH"),
        (["recommend", "mf", "--all", "--genre", "Drama", "--out", "x", *spark_options], "--genre"),
        (["recommend", "fake_hybrid", "--all", "--out", "x", *spark_options], "local engine"),
        (["recommend", "mf", "--all", "--out", str(tmp_path), "-n", "2"], "is a folder"),
        (["load", "ml-100k", "--engine", "spark"], "local DuckDB file"),
    ):
        bad = runner.invoke(main, [*w, *args])
        assert bad.exit_code == 2 and message in bad.stderr, (args, bad.output)
        assert len(bad.stderr.strip().splitlines()) == 1
