"""`--engine spark` from the CLI: MF and hybrids trained on Spark, refusals before Spark starts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _support.spark import require_spark
from click.testing import CliRunner

from hybridrec.cli import main
from hybridrec.data import SynthConfig
from hybridrec.mf import MatrixFactorization

pytestmark = pytest.mark.spark


require_spark()


def test_cli_engine_spark_trains_from_the_workspace_with_the_local_split(spark, tmp_path):
    """The workspace's ratings go to Spark with the local engine's exact hold-out; the model is
    saved in the local format and served by the local engine."""
    from hybridrec.data import write_synthetic
    from hybridrec.workspace import Workspace

    config = SynthConfig(n_users=200, n_items=100, n_ratings=5000, n_factors=3, seed=5)
    write_synthetic(tmp_path / "synth", config)
    ws = Workspace(tmp_path / "ws")
    ws.load(tmp_path / "synth")
    runner = CliRunner()
    base = ["-q", "-w", str(ws.path), "train", "mf", "--name", "on_spark"]
    options = ["--num-factors", "4", "--max-iterations", "4", "--seed", "11"]
    spark_options = ["--engine", "spark", "--spark-master", "local[2]"]
    conf = ["--spark-conf", "spark.sql.shuffle.partitions=4"]
    result = runner.invoke(main, [*base, *options, *spark_options, *conf, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["iteration"] == 3
    assert spark.sparkContext._jsc is not None  # the shared session was reused, not stopped

    on_spark = MatrixFactorization.load(ws.models_dir / "on_spark")
    local = MatrixFactorization(**on_spark.get_params()).fit(ws.ratings(), items=ws.movies())
    pd.testing.assert_frame_equal(
        on_spark.eval_set_, local.eval_set_.reset_index(drop=True), check_dtype=False
    )
    assert on_spark.data_fingerprint_ == local.data_fingerprint_  # train hybrid reuses it
    assert abs(on_spark.metrics_["rmse"] - local.metrics_["rmse"]) < 0.05
    assert "title" in on_spark.items_meta_.columns  # movie metadata from the workspace

    rec = runner.invoke(main, ["-w", str(ws.path), "recommend", "on_spark", "--user", "1"])
    assert rec.exit_code == 0, rec.output
    info = runner.invoke(main, ["-w", str(ws.path), "info", "on_spark", "--format", "json"])
    assert info.exit_code == 0, info.output

    # --ratings FILE works with the local engine too
    ratings_file = tmp_path / "ratings.parquet"
    ws.ratings().to_parquet(ratings_file)
    local_run = runner.invoke(main, [*base, *options, "--ratings", str(ratings_file)])
    assert local_run.exit_code == 0, local_run.output

    # options Spark cannot honour are refused before Spark starts
    for extra, message in (
        ([*spark_options, "--tune", "2"], "--tune"),
        ([*spark_options, "--early-stop"], "--early-stop"),
        ([*spark_options, "--feedback-type", "implicit"], "implicit"),
        ([*spark_options, "--spark-conf", "novalue"], "KEY=VALUE"),
        (["--spark-master", "local[2]"], "--engine spark only"),
    ):
        bad = runner.invoke(main, [*base, *extra])
        assert bad.exit_code == 2 and message in bad.stderr, (extra, bad.output)


@pytest.mark.slow
def test_cli_engine_spark_hybrid_commands(spark, synth_ws, tmp_path):
    """train hybrid (leak-free: out-of-fold MFs on Spark) and hybrid dataset on Spark; the
    result is a local model that predict / recommend / evaluate use without Spark."""
    ws, _ = synth_ws
    runner = CliRunner()
    w = ["-q", "-w", str(ws.path)]
    spark_options = ["--engine", "spark", "--spark-master", "local[2]"]
    train = [*w, "train", "hybrid", "--mf", "mf", "--name", "hyb_spark", "--kind", "linear"]
    result = runner.invoke(main, [*train, *spark_options, "--folds", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert 0 < json.loads(result.stdout)["rmse"] < 2
    meta = json.loads((ws.models_dir / "hyb_spark" / "meta.json").read_text())
    assert meta["engine"]["params"]["leak_free"] is True and meta["params"]["n_folds"] == 2
    for command in (
        ["evaluate", "hyb_spark", "--format", "json"],
        ["recommend", "hyb_spark", "--user", "1", "-n", "3"],
        ["recommend", "hyb_spark", "--all", "-n", "2", "--out", str(tmp_path / "all.parquet")],
    ):
        used = runner.invoke(main, [*w, *command])
        assert used.exit_code == 0, (command, used.output)
    assert len(pd.read_parquet(tmp_path / "all.parquet")) == 2 * 200

    out = tmp_path / "hybrid_dataset"
    built = runner.invoke(
        main, [*w, "hybrid", "dataset", "--mf", "mf", "--out", str(out), *spark_options]
    )
    assert built.exit_code == 0, built.output
    local_out = tmp_path / "local.parquet"
    local_run = runner.invoke(
        main, [*w, "hybrid", "dataset", "--mf", "mf", "--out", str(local_out)]
    )
    assert local_run.exit_code == 0, local_run.output
    on_spark, local = pd.read_parquet(out), pd.read_parquet(local_out)
    assert len(on_spark) == len(local) and list(on_spark.columns) == list(local.columns)

    for args, message in (
        ([*train, *spark_options, "--kind", "dnn"], "--kind dnn"),
        ([*train, *spark_options, "--tune", "2"], "--tune"),
        ([*train, "--spark-master", "local[2]"], "--engine spark only"),
        ([*train, "--ratings", "r.parquet"], "--engine spark only"),
        ([*train, *spark_options, "--spark-conf", "novalue"], "KEY=VALUE"),
        ([*w, "hybrid", "dataset", "--mf", "mf", "--table", "t", *spark_options], "--out PATH"),
        ([*w, "evaluate", "hyb_spark", "--engine", "spark"], "runs on the local engine"),
        ([*w, "recommend", "hyb_spark", "--all", "--engine", "spark", "--out", "x"], "local"),
        ([*w, "load", "ml-100k", "--engine", "spark"], "local DuckDB file"),
    ):
        bad = runner.invoke(main, args)
        assert bad.exit_code == 2 and message in bad.stderr, (args, bad.output)
        assert len(bad.stderr.strip().splitlines()) == 1
