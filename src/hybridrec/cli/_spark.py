"""Every ``--engine spark`` branch of the commands (docs/spark.md): train mf, train hybrid,
hybrid dataset, recommend --all and evaluate on Apache Spark, and the options they share.

The commands check their local options, then call here; PySpark is imported only once a
branch runs, so the local engine never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from hybridrec._errors import HybridrecError, first_line
from hybridrec.cli._common import (
    F,
    State,
    emit,
    emit_mapping,
    explicit_mf,
    explicit_mf_meta,
    is_data_file,
    save_model,
    working,
)


def engine_options(what: str) -> Callable[[F], F]:
    """--engine, --spark-master and --spark-conf, as on `train mf`."""

    def decorate(func: F) -> F:
        for option in reversed(
            (
                click.option(
                    "--engine",
                    type=click.Choice(["local", "spark"]),
                    default="local",
                    show_default=True,
                    help=f"spark: {what} (pip install 'hybridrec[spark]'; see docs/spark.md).",
                ),
                click.option(
                    "--spark-master",
                    default=None,
                    help="With --engine spark: the master URL [default: spark-submit's "
                    "--master, else local[*]].",
                ),
                click.option(
                    "--spark-conf",
                    multiple=True,
                    metavar="KEY=VALUE",
                    help="With --engine spark: a Spark setting (repeatable).",
                ),
            )
        ):
            func = option(func)
        return func

    return decorate


def local_engine_only(engine: str, master: str | None, conf: tuple[str, ...], **flags: Any) -> None:
    """With --engine local, refuse the options that only mean something on Spark."""
    if engine == "spark":
        return
    given = [
        name
        for name, value in (("--spark-master", master), ("--spark-conf", conf), *flags.items())
        if value
    ]
    if given:
        raise HybridrecError(f"{', '.join(given)}: with --engine spark only")


def train_mf(
    state: State,
    name: str,
    path: Path,
    fmt: str,
    params: dict[str, Any],
    extra: dict[str, Any],
    ratings_path: str | None,
    master: str | None,
    conf_items: tuple[str, ...],
) -> None:
    """``train mf --engine spark``: hybridrec.spark's two-stage ALS (docs/spark.md)."""
    unsupported = [
        flag
        for flag, given in (
            ("--tune", bool(extra["tune"])),
            ("--feedback-type implicit", extra["feedback_type"] == "implicit"),
            ("--wals-alpha", extra["wals_alpha"] is not None),
            ("--early-stop", params.get("early_stop") is True),
            ("--min-rel-progress", "min_rel_progress" in params),
        )
        if given
    ]
    if unsupported:
        raise HybridrecError(f"{', '.join(unsupported)}: not available with --engine spark")
    params.pop("early_stop", None)  # --no-early-stop is what Spark's ALS does anyway
    conf = _spark_conf(conf_items)
    _require_pyspark()
    from hybridrec.spark import SparkMatrixFactorization, session_scope

    ws = state.workspace()
    # The workspace's ratings go to Spark from the driver (Arrow), which keeps the local
    # engine's exact hold-out and needs no filesystem shared with the executors.
    ratings: Any = ratings_path if ratings_path is not None else ws.ratings()
    movies = ws.movies() if ws.exists() else None
    model = SparkMatrixFactorization(**params)
    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        working(state, "training on Spark"),
    ):
        model.fit(ratings, items=movies, spark=spark)
        save_model(state, model, name, path, note=" (trained on Spark)")
    emit(model.training_info(), fmt, title=f"training info: {name}")


def train_hybrid(
    state: State,
    name: str,
    mf_name: str,
    kind: str,
    folds: int,
    notebook_style: bool,
    cold_fraction: float,
    tune: int | None,
    ratings_path: str | None,
    master: str | None,
    conf_items: tuple[str, ...],
    fmt: str,
) -> None:
    """``train hybrid --engine spark``: features by Spark SQL, pyspark.ml regressor, saved as
    a local hybrid model (docs/spark.md)."""
    from hybridrec import artifacts
    from hybridrec.models import model_dir

    if kind == "dnn":
        raise HybridrecError("--kind dnn: not available with --engine spark (train it locally)")
    if tune:
        raise HybridrecError("--tune: not available with --engine spark")
    conf = _spark_conf(conf_items)
    _require_pyspark()
    from hybridrec.spark import SparkHybridRecommender, read_ratings, reusable_mf, session_scope

    ws = state.workspace()
    mf = explicit_mf(state, mf_name, name)
    meta = artifacts.read_meta(model_dir(ws.models_dir, mf_name))
    mf_params = dict(meta.get("engine", {}).get("params") or mf.get_params())
    params = mf.get_params()
    model = SparkHybridRecommender(
        kind,
        mf_params=mf_params,
        leak_free=not notebook_style,
        n_folds=folds,
        cold_fraction=cold_fraction,
        eval_fraction=params["eval_fraction"],
        seed=params["seed"],
    )
    has_tables = ws.exists()
    users = ws.users() if has_tables else None
    movies = ws.movies() if has_tables else None
    path = model_dir(ws.models_dir, name)
    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        working(state, f"training the {kind} hybrid on Spark"),
    ):
        ratings = ws.ratings() if ratings_path is None else read_ratings(spark, ratings_path)
        model.fit(ratings, users, movies, mf=reusable_mf(mf, ratings), spark=spark)
        save_model(state, model, name, path, note=" (trained on Spark)")
    emit_mapping(model.metrics_, fmt, title=f"evaluation on the hold-out: {name}")


def hybrid_dataset(
    state: State,
    mf_name: str,
    encoding: str,
    out: str | None,
    table: str | None,
    seed: int,
    ratings_path: str | None,
    master: str | None,
    conf_items: tuple[str, ...],
) -> None:
    """``hybrid dataset --engine spark``: hybridrec.spark.hybrid_dataset, written by Spark."""
    from hybridrec.models import model_dir

    if table is not None or out is None:
        raise HybridrecError(
            "with --engine spark give --out PATH (a Parquet folder or URI); --table is local"
        )
    conf = _spark_conf(conf_items)
    ws = state.workspace()
    explicit_mf_meta(ws, mf_name)
    path = model_dir(ws.models_dir, mf_name)
    if not ws.exists():
        raise HybridrecError("the Spark hybrid dataset needs the workspace's movies: load first")
    _require_pyspark()
    import pyarrow as pa

    from hybridrec.spark import hybrid_dataset, read_ratings, session_scope

    movies, users = ws.movies(), ws.users()
    user_columns = [c for c in users.columns if c != "userId"]
    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        working(state, f"building the hybrid dataset on Spark -> {out}"),
    ):

        def to_spark(frame: pd.DataFrame) -> Any:
            return spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))

        ratings = (
            read_ratings(spark, ratings_path)
            if ratings_path is not None
            else to_spark(ws.ratings()[["userId", "movieId", "rating"]])
        )
        frame = hybrid_dataset(
            spark,
            path,
            ratings,
            to_spark(movies),
            to_spark(users) if user_columns else None,
            encoding=encoding,
            seed=seed,
        )
        try:
            frame.write.mode("overwrite").parquet(out)
        except Exception as exc:  # Spark's write errors: path not writable, bad scheme...
            first = first_line(exc)
            raise HybridrecError(f"cannot write {out}: {first}") from None
        rows = spark.read.parquet(out).count()
    if not state.quiet:
        click.echo(f"hybrid dataset: {rows} rows -> {out} (Spark)", err=True)


def recommend_all(
    state: State,
    name: str,
    all_users: bool,
    given: dict[str, str | None],
    ratings_path: str | None,
    n: int,
    include_seen: bool,
    out: str | None,
    master: str | None,
    conf_items: tuple[str, ...],
) -> None:
    """``recommend --all --engine spark``: hybridrec.spark.recommend_all (docs/spark.md)."""
    if not all_users:
        raise HybridrecError(
            "recommend --engine spark computes --all only; --user, --item and a new user's "
            "--ratings run on the local engine (drop --engine spark)"
        )
    refused = [flag for flag, value in given.items() if value is not None]
    if refused:
        raise HybridrecError(f"{', '.join(refused)}: not available with --all --engine spark")
    if include_seen and ratings_path is not None:
        raise HybridrecError("--ratings names the pairs to exclude: not with --include-seen")
    if out is None:
        raise HybridrecError("--all needs --out PATH (a Parquet folder or URI Spark writes)")
    conf = _spark_conf(conf_items)
    path = _spark_mf_model(state, name, "recommend")
    _require_pyspark()
    from hybridrec.spark import recommend_all, session_scope, write_parquet

    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        working(state, f"top-{n} for every user on Spark -> {out}"),
    ):
        frame = recommend_all(spark, path, n, exclude_seen=not include_seen, seen=ratings_path)
        rows = write_parquet(frame, out)
    if not state.quiet:
        click.echo(f"wrote {rows} recommendations to {out} (Spark)", err=True)


def evaluate(
    state: State,
    name: str,
    data: str | None,
    ranking: bool,
    fmt: str,
    master: str | None,
    conf_items: tuple[str, ...],
) -> None:
    """``evaluate --engine spark``: hybridrec.spark.evaluate_saved_model (docs/spark.md)."""
    if ranking:
        raise HybridrecError(
            "--ranking: ranking metrics are not computed with --engine spark; "
            "run evaluate on the local engine for them"
        )
    conf = _spark_conf(conf_items)
    path = _spark_mf_model(state, name, "evaluate")
    table = None
    if data is not None and not is_data_file(data):
        table = state.workspace().sql(f'SELECT userId, movieId, rating FROM "{data}"')
    _require_pyspark()
    import pyarrow as pa

    from hybridrec.spark import evaluate_saved_model, session_scope

    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        working(state, "evaluating on Spark"),
    ):
        source: Any = data
        if table is not None:
            source = spark.createDataFrame(pa.Table.from_pandas(table, preserve_index=False))
        metrics = evaluate_saved_model(spark, path, source)
    emit_mapping(metrics, fmt, title=f"evaluation: {name} (Spark)")
    if not state.quiet:
        click.echo(
            "ranking metrics (@k) are not computed with --engine spark: run evaluate on the "
            "local engine for them",
            err=True,
        )


def _spark_conf(items: tuple[str, ...]) -> dict[str, str]:
    """``--spark-conf KEY=VALUE`` options as a dict."""
    conf: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HybridrecError(f"--spark-conf expects KEY=VALUE, got {item!r}")
        conf[key.strip()] = value
    return conf


def _require_pyspark() -> None:
    """A one-line error, before any work, when the Spark extra is missing."""
    try:
        import hybridrec.spark  # noqa: F401
    except ImportError as exc:
        raise HybridrecError(str(exc)) from None


def _spark_mf_model(state: State, name: str, what: str) -> Path:
    """The directory of the saved model ``name``, checked to be a matrix factorization (the
    one kind the Spark engine scores) before Spark starts."""
    from hybridrec import artifacts
    from hybridrec.models import list_models, model_dir

    root = state.models_root()
    path = model_dir(root, name)
    if not path.is_dir():
        known = ", ".join(m["name"] for m in list_models(root)) or "none yet"
        raise HybridrecError(f"no model named {name!r} (models: {known})")
    kind = artifacts.read_meta(path).get("kind")
    if kind != "matrix_factorization":
        raise HybridrecError(
            f"{what} --engine spark takes matrix factorization models only: {name!r} is a "
            f"{kind!r} model, which runs on the local engine (drop --engine spark)"
        )
    return path
