"""The Spark engine on ``local[2]``: ids, splits, the local artifact format, the CLI, parity.

One SparkSession serves the whole module (starting a JVM costs seconds); data are small.
Skipped, with the reason, when PySpark or Java is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from hybridrec.cli import main
from hybridrec.data import SynthConfig, generate
from hybridrec.mf import MatrixFactorization

pytestmark = pytest.mark.spark

pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'hybridrec[spark]')")
if not (
    shutil.which("java") or (os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"]).is_dir())
):
    pytest.skip("Java is not installed: Spark cannot start", allow_module_level=True)

from hybridrec.spark import (  # noqa: E402
    SparkMatrixFactorization,
    hash_split,
    read_ratings,
    spark_session,
)

SMALL = {"num_factors": 4, "max_iterations": 4, "bias_iterations": 2, "num_blocks": 2}
BIG_ITEM_OFFSET = 10_000_000_000  # movieIds that do not fit Spark's int


@pytest.fixture(scope="module")
def spark():
    session = spark_session(
        "local[2]",
        {
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
        },
        app_name="hybridrec-tests",
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def synth() -> pd.DataFrame:
    """200 users x 100 items, known low-rank structure."""
    data = generate(SynthConfig(n_users=200, n_items=100, n_ratings=5000, n_factors=3, seed=5))
    return data.ratings[["userId", "movieId", "rating"]]


@pytest.fixture(scope="module")
def odd_ids(synth) -> pd.DataFrame:
    """The same ratings with string userIds and movieIds beyond int32."""
    return pd.DataFrame(
        {
            "userId": "user-" + synth["userId"].astype(str),
            "movieId": synth["movieId"].astype(np.int64) + BIG_ITEM_OFFSET,
            "rating": synth["rating"],
        }
    )


@pytest.fixture(scope="module")
def odd_model(spark, odd_ids) -> SparkMatrixFactorization:
    """Fitted on a Spark DataFrame (so the hold-out is the hash split)."""
    frame = _to_spark(spark, odd_ids)
    return SparkMatrixFactorization(**SMALL, seed=3).fit(frame, spark=spark)


def _to_spark(spark, frame: pd.DataFrame):
    """Through Arrow: PySpark's pandas path warns about pandas 3."""
    return spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))


def test_importing_hybridrec_never_imports_pyspark():
    code = (
        "import sys, hybridrec, hybridrec.cli, hybridrec.mf, hybridrec.hybrid, hybridrec.data\n"
        "from hybridrec.cli import main\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ids_that_do_not_fit_spark_int_are_mapped(odd_model, odd_ids):
    users, items = odd_model.user_vocab_.ids, odd_model.item_vocab_.ids
    assert all(isinstance(u, str) and u.startswith("user-") for u in users)
    assert items.min() > BIG_ITEM_OFFSET and items.dtype.kind == "i"
    assert list(users) == sorted(users) and np.all(np.diff(items) > 0)
    train = odd_ids.merge(odd_model.eval_set_, how="left", indicator=True)
    train = train[train["_merge"] == "left_only"]
    assert set(users) == set(train["userId"]) and set(items) == set(train["movieId"])
    assert odd_model.user_factors_.shape == (len(users), 4)
    assert np.isfinite(odd_model.user_factors_).all() and np.isfinite(odd_model.item_bias_).all()


def test_hash_split_is_seeded_and_ignores_partitioning(spark, odd_model, odd_ids):
    frame = _to_spark(spark, odd_ids)
    one = frame.repartition(1).withColumn("e", hash_split(3, 0.2)).filter("e")
    many = frame.repartition(4, "rating").withColumn("e", hash_split(3, 0.2)).filter("e")
    key = ["userId", "movieId"]
    a = one.select(*key).toArrow().to_pandas().sort_values(key).reset_index(drop=True)
    b = many.select(*key).toArrow().to_pandas().sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(odd_model.eval_set_) == pytest.approx(0.2 * len(odd_ids), rel=0.15)
    other = frame.withColumn("e", hash_split(4, 0.2)).filter("e").select(*key).toArrow().to_pandas()
    assert set(map(tuple, other.to_numpy())) != set(map(tuple, a.to_numpy()))


def test_saved_model_loads_locally_and_predicts_like_spark(spark, odd_model, odd_ids, tmp_path):
    path = tmp_path / "spark_mf"
    odd_model.save(path)
    local = MatrixFactorization.load(path)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["engine"]["name"] == "spark" and meta["engine"]["split"] == "hash"
    assert meta["params"]["early_stop"] is False and meta["params"]["reg_exponent"] == 1.0

    # every hold-out pair, a few training pairs, and unknown user / item / both
    pairs = pd.concat(
        [
            odd_model.eval_set_[["userId", "movieId"]],
            odd_ids[["userId", "movieId"]].head(300),
            pd.DataFrame(
                {
                    "userId": ["nobody", "user-1", "nobody"],
                    "movieId": [BIG_ITEM_OFFSET + 1, 42, 42],
                }
            ),
        ],
        ignore_index=True,
    )
    by_spark = (
        odd_model.transform(_to_spark(spark, pairs))
        .select("userId", "movieId", "predicted_rating")
        .toArrow()
        .to_pandas()
    )
    merged = pairs.merge(by_spark, on=["userId", "movieId"], how="left")
    assert merged["predicted_rating"].notna().all()
    by_local = local.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
    np.testing.assert_allclose(by_local, merged["predicted_rating"].to_numpy(), atol=1e-4)
    low, high = local.rating_range_
    assert by_local[-1] == pytest.approx(np.clip(local.global_mean_, low, high))

    # the local engine serves it: recommendations, weights, evaluation, training info
    user = odd_model.user_vocab_.ids[0]
    recs = local.recommend(user, 5)
    assert len(recs) == 5 and recs["movieId"].min() > BIG_ITEM_OFFSET
    assert local.metrics_["rmse"] == pytest.approx(local.evaluate()["rmse"])
    assert local.evaluate()["rmse"] == pytest.approx(odd_model.training_log_[0]["eval_loss"] ** 0.5)
    assert list(local.training_info().columns) == ["iteration", "loss", "eval_loss", "duration_ms"]
    assert len(local.training_info()) == 1
    weights = local.weights(users=[user])
    assert weights["feature"].tolist() == [user]


def test_read_ratings_reads_movielens_layouts_and_files(spark, tmp_path):
    from _fixtures import RATINGS, write_ml20m, write_ml100k

    for folder in (write_ml100k(tmp_path / "ml-100k"), write_ml20m(tmp_path / "ml-20m")):
        frame = read_ratings(spark, folder)
        rows = frame.select("userId", "movieId", "rating").orderBy("userId", "movieId").collect()
        assert [(r.userId, r.movieId, r.rating) for r in rows] == [
            (u, m, float(r)) for u, m, r, _ in RATINGS
        ]
    parquet = tmp_path / "r.parquet"
    pd.DataFrame(RATINGS, columns=["userId", "movieId", "rating", "timestamp"]).to_parquet(parquet)
    assert read_ratings(spark, parquet).count() == len(RATINGS)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,3\n")
    from hybridrec import DataError

    with pytest.raises(DataError, match="missing userId, movieId"):
        read_ratings(spark, bad)


def test_bad_ratings_are_clear_errors(spark):
    from hybridrec import DataError

    frame = _to_spark(
        spark, pd.DataFrame({"userId": [1, 2, 3], "movieId": [1, 1, 2], "rating": [4.0, None, 3.0]})
    )
    with pytest.raises(DataError, match="rating is missing in 1 rows"):
        SparkMatrixFactorization(**SMALL).fit(frame, spark=spark)
    with pytest.raises(ValueError, match="eval_fraction"):
        SparkMatrixFactorization(eval_fraction=1.0).fit(frame, spark=spark)


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


@pytest.mark.parametrize("encoding", ["multi-hot", "rows"])
def test_hybrid_dataset_by_spark_sql_matches_the_duckdb_build(spark, tmp_path, encoding):
    from _fixtures import write_ml20m, write_ml100k

    from hybridrec.hybrid import hybrid_dataset_sql
    from hybridrec.spark import hybrid_dataset
    from hybridrec.workspace import Workspace

    # ml-100k has user attributes; ml-20m has none (the synthetic loyalty / postcode)
    for writer in (write_ml100k, write_ml20m):
        ws = Workspace(tmp_path / writer.__name__ / "ws")
        ws.load(writer(tmp_path / writer.__name__ / "src"))
        ratings, movies, users = ws.ratings(), ws.movies(), ws.users()
        mf = MatrixFactorization(num_factors=3, max_iterations=2, eval_fraction=0).fit(ratings)
        mf.save(ws.models_dir / "mf")
        genres = sorted({g for gs in movies["genres"] for g in gs})
        user_columns = [c for c in users.columns if c != "userId"]
        query = hybrid_dataset_sql("mf", 3, genres, user_columns, encoding=encoding)
        expected = ws.sql(query)
        frame = hybrid_dataset(
            spark,
            ws.models_dir / "mf",
            _to_spark(spark, ratings),
            _to_spark(spark, movies),
            _to_spark(spark, users) if user_columns else None,
            encoding=encoding,
        )
        got = frame.toArrow().to_pandas()
        assert list(got.columns) == list(expected.columns)
        if not user_columns:  # the hash behind loyalty is engine-specific
            assert got["loyalty"].between(0, ratings.groupby("userId").size().max()).all()
            got, expected = got.drop(columns="loyalty"), expected.drop(columns="loyalty")
        order = ["userId", "movieId"] + (["g"] if encoding == "rows" else [])
        got = _comparable(got.sort_values(order).reset_index(drop=True))
        expected = _comparable(expected.sort_values(order).reset_index(drop=True))
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float64 with NaN for missing (DuckDB gives nullable ints, Arrow floats)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
            out[col] = pd.to_numeric(out[col]).astype("float64")
    return out


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_100k_parity_with_the_local_engine(spark, ml100k_source, tmp_path):
    """Protocol ml100k-8020 (random 80/20, seed 42), the same split for both engines."""
    from hybridrec.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.load(ml100k_source)
    result = CliRunner().invoke(
        main,
        ["-q", "-w", str(ws.path), "train", "mf", "--name", "spark_mf", "--engine", "spark"],
    )
    assert result.exit_code == 0, result.output
    on_spark = MatrixFactorization.load(ws.models_dir / "spark_mf")
    local = MatrixFactorization().fit(ws.ratings(), items=ws.movies())
    pd.testing.assert_frame_equal(
        on_spark.eval_set_[["userId", "movieId"]],
        local.eval_set_[["userId", "movieId"]].reset_index(drop=True),
        check_dtype=False,
    )
    spark_rmse, local_rmse = on_spark.metrics_["rmse"], local.metrics_["rmse"]
    print(f"ml100k-8020 RMSE: local {local_rmse:.4f}, spark {spark_rmse:.4f}")
    assert abs(spark_rmse - local_rmse) <= 0.01
    recs = on_spark.recommend(903, 5, genre="Comedy")
    assert len(recs) == 5 and recs["predicted_rating"].between(1, 5).all()
