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
        os.environ.get("HYBRIDREC_TEST_SPARK_MASTER", "local[2]"),
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


@pytest.fixture(scope="module")
def synth_ws(tmp_path_factory):
    """A workspace on synthetic data with a small local MF named ``mf``."""
    from hybridrec.data import write_synthetic
    from hybridrec.workspace import Workspace

    root = tmp_path_factory.mktemp("hybrid")
    config = SynthConfig(n_users=200, n_items=100, n_ratings=5000, n_factors=3, seed=5)
    write_synthetic(root / "synth", config)
    ws = Workspace(root / "ws")
    ws.load(root / "synth")
    mf = MatrixFactorization(num_factors=4, max_iterations=4).fit(ws.ratings(), items=ws.movies())
    mf.save(ws.models_dir / "mf")
    return ws, mf


def test_spark_linear_hybrid_is_the_local_linear_hybrid(spark, synth_ws, tmp_path):
    """Same MF, same split, same cold-start and validation rows: Spark's ridge with
    regParam = l2_reg * sd(y) solves the local ridge's objective, so the models agree."""
    from hybridrec.hybrid import HybridRecommender, LinearRegressor
    from hybridrec.spark import SparkHybridRecommender

    ws, mf = synth_ws
    ratings, users, movies = ws.ratings(), ws.users(), ws.movies()
    local = HybridRecommender("linear", mf_params=mf.get_params(), leak_free=False).fit(
        ratings, users, movies, mf=mf
    )
    on_spark = SparkHybridRecommender("linear", leak_free=False).fit(
        ratings, users, movies, mf=mf, spark=spark
    )
    assert on_spark.feature_names_ == local.feature_names_
    np.testing.assert_allclose(on_spark.regressor_.coef_, local.regressor_.coef_, atol=1e-5)
    assert on_spark.metrics_["rmse"] == pytest.approx(local.metrics_["rmse"], abs=1e-6)

    # saved as a local hybrid with a local linear regressor; Spark's own predictions agree
    on_spark.save(tmp_path / "h")
    loaded = HybridRecommender.load(tmp_path / "h")
    assert isinstance(loaded.regressor_, LinearRegressor)
    meta = json.loads((tmp_path / "h" / "meta.json").read_text())
    assert meta["engine"]["name"] == "spark" and meta["engine"]["split"] == "row-order"
    pairs = pd.concat(
        [
            on_spark.eval_set_.head(300)[["userId", "movieId"]],
            pd.DataFrame({"userId": [10**6, 1], "movieId": [1, 10**6]}),  # cold user, cold item
        ],
        ignore_index=True,
    )
    by_spark = on_spark.transform(_to_spark(spark, pairs)).toArrow().to_pandas()
    merged = pairs.merge(by_spark, on=["userId", "movieId"])
    assert len(merged) == len(pairs)
    by_local = loaded.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
    np.testing.assert_allclose(by_local, merged["predicted_rating"].to_numpy(), atol=1e-6)
    assert loaded.evaluate()["rmse"] == pytest.approx(on_spark.metrics_["rmse"])
    explained = loaded.explain(1, int(movies["movieId"].iloc[0]))
    assert explained["feature"].iloc[0] == "baseline"


def test_spark_boosted_hybrid_exports_its_trees(spark, synth_ws, tmp_path):
    from hybridrec.hybrid import HybridRecommender, TreeEnsembleRegressor
    from hybridrec.spark import SparkHybridRecommender

    ws, mf = synth_ws
    ratings, movies = ws.ratings(), ws.movies()
    model = SparkHybridRecommender(
        "boosted", leak_free=False, regressor_params={"n_estimators": 4, "max_depth": 3}
    ).fit(_to_spark(spark, ratings), None, movies, mf=mf, spark=spark)
    assert model.spark_regressor_["n_trees"] <= 4
    model.save(tmp_path / "gbt")
    loaded = HybridRecommender.load(tmp_path / "gbt")
    assert isinstance(loaded.regressor_, TreeEnsembleRegressor)
    assert json.loads((tmp_path / "gbt" / "meta.json").read_text())["engine"]["split"] == "hash"

    pairs = model.eval_set_[["userId", "movieId"]].head(400)
    by_spark = model.transform(_to_spark(spark, pairs)).toArrow().to_pandas()
    merged = pairs.merge(by_spark, on=["userId", "movieId"])
    by_local = loaded.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
    np.testing.assert_allclose(by_local, merged["predicted_rating"].to_numpy(), atol=1e-9)

    x = loaded.features(merged["userId"].to_numpy()[:50], merged["movieId"].to_numpy()[:50])
    contributions = loaded.regressor_.contributions(x)
    np.testing.assert_allclose(contributions.sum(axis=1), loaded.regressor_.predict(x))
    assert set(loaded.feature_importance()["feature"]) == set(loaded.feature_names_)
    assert len(loaded.recommend(int(ratings["userId"].iloc[0]), 3)) == 3

    from hybridrec import ModelError

    with pytest.raises(ModelError, match="not trained locally"):
        loaded.regressor_.fit(x, np.ones(len(x)))
    with pytest.raises(ModelError, match="n_trees"):
        SparkHybridRecommender("boosted", regressor_params={"n_trees": 3}).fit(ratings, spark=spark)
    with pytest.raises(ValueError, match="dnn trains locally"):
        SparkHybridRecommender("dnn").fit(ratings, spark=spark)


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


@pytest.fixture(scope="module")
def ml100k_models(spark, ml100k_source, tmp_path_factory):
    """MovieLens 100K in a workspace, the Spark MF trained by the CLI, the local default MF."""
    from hybridrec.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ml100k") / "ws")
    ws.load(ml100k_source)
    result = CliRunner().invoke(
        main,
        ["-q", "-w", str(ws.path), "train", "mf", "--name", "spark_mf", "--engine", "spark"],
    )
    assert result.exit_code == 0, result.output
    on_spark = MatrixFactorization.load(ws.models_dir / "spark_mf")
    local = MatrixFactorization().fit(ws.ratings(), items=ws.movies())
    return ws, on_spark, local


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_100k_parity_with_the_local_engine(ml100k_models):
    """Protocol ml100k-8020 (random 80/20, seed 42), the same split for both engines."""
    _ws, on_spark, local = ml100k_models
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


@pytest.mark.realdata
@pytest.mark.slow
def test_movielens_100k_linear_hybrid_parity(spark, ml100k_models):
    """The acceptance test of the Spark hybrid: each engine's MF and linear hybrid on the
    ml100k-8020 split; the hold-out RMSEs agree within 0.01."""
    from hybridrec.hybrid import HybridRecommender
    from hybridrec.spark import SparkHybridRecommender

    ws, spark_mf, local_mf = ml100k_models
    ratings, users, movies = ws.ratings(), ws.users(), ws.movies()
    local = HybridRecommender("linear", mf_params=local_mf.get_params(), leak_free=False).fit(
        ratings, users, movies, mf=local_mf
    )
    on_spark = SparkHybridRecommender("linear", leak_free=False).fit(
        ratings, users, movies, mf=spark_mf, spark=spark
    )
    pd.testing.assert_frame_equal(
        on_spark.eval_set_[["userId", "movieId"]],
        local.eval_set_[["userId", "movieId"]],
        check_dtype=False,
    )
    spark_rmse, local_rmse = on_spark.metrics_["rmse"], local.metrics_["rmse"]
    print(f"ml100k-8020 linear hybrid RMSE: local {local_rmse:.4f}, spark {spark_rmse:.4f}")
    assert abs(spark_rmse - local_rmse) <= 0.01
