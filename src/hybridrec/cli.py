"""The ``hybridrec`` command: parse, call the Python API, print. The only place that sets up
logging.

Exit codes: 0 success, 2 bad input (one-line message on stderr), 1 internal error.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from hybridrec._core.contract import describe
from hybridrec._errors import HybridrecError, first_line

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = "\n\n\b\nExample:\n  "


def _examples(*lines: str) -> str:
    return EXAMPLES + "\n  ".join(lines)


class _State:
    def __init__(self, workspace: str | None, quiet: bool, verbose: int) -> None:
        self.workspace_path = workspace
        self.quiet = quiet
        self.verbose = verbose

    @property
    def show_progress(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    def workspace(self) -> Any:
        from hybridrec.workspace import Workspace

        return Workspace(self.workspace_path)

    def models_root(self) -> Path:
        return Path(self.workspace().models_dir)

    def load_model(self, name: str) -> Any:
        from hybridrec.models import load_model

        model = load_model(self.models_root(), name)
        if hasattr(model, "show_progress"):
            model.show_progress = self.show_progress
        return model


def _guarded(func: F) -> F:
    """Turn user errors into a one-line message and exit code 2; bugs into exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HybridrecError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (ValueError, KeyError) as exc:
            # Parameter validation in the library raises ValueError; report it like bad input.
            message = first_line(exc)
            click.echo(f"error: {message}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (rerun with -vv for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _working(state: _State, message: str) -> Iterator[None]:
    """A spinner with elapsed time on stderr for a step with no measurable progress (one SQL
    query, reading a table); nothing unless progress is shown (a terminal, no --quiet)."""
    if not state.show_progress:
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as spinner:
        spinner.add_task(message, total=None)
        yield


def _emit(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    from hybridrec._core.output import render

    click.echo(render(frame, fmt, title=title))


def _emit_mapping(values: dict[str, Any], fmt: str, title: str | None = None) -> None:
    from hybridrec._core.output import render_mapping

    click.echo(render_mapping(values, fmt, title=title))


def _local_only_engine(what: str) -> Callable[[F], F]:
    """A hidden ``--engine`` on commands that run on the local engine only: ``--engine spark``
    gets a one-line explanation instead of "no such option" (docs/spark.md)."""
    return click.option(
        "--engine",
        type=click.Choice(["local", "spark"]),
        default="local",
        hidden=True,
        expose_value=True,
        callback=lambda _ctx, _param, value: _refuse_spark(value, what),
    )


def _refuse_spark(engine: str, what: str) -> str:
    if engine == "spark":
        raise click.exceptions.Exit(_one_line_error(f"{what} (see docs/spark.md)"))
    return engine


def _one_line_error(message: str) -> int:
    click.echo(f"error: {message}", err=True)
    return 2


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)


EPILOG = """\b
Exit codes:
  0    success
  1    internal error (a bug: rerun with -vv for the traceback)
  2    bad input: one line "error: ..." on stderr naming the file, line, column or id
  130  interrupted (Ctrl-C)

Results go to stdout (--format table|json|csv); progress bars, summaries and logs go to
stderr. Progress is drawn only when stderr is a terminal and never with --quiet, so piped
output stays clean. Run "hybridrec COMMAND --help" for a command's options and examples.
"""


class _OneLineUsageErrors(click.Group):
    """Click's usage errors (a bad option value, a missing option, an unknown command) as the
    one line every other bad input gets: ``error: ...`` and exit code 2, not four lines of
    usage and hints."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "hybridrec"
            sys.exit(_one_line_error(f"{exc.format_message()} (see {where} --help)"))
        except click.ClickException as exc:
            sys.exit(_one_line_error(exc.format_message()))
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)  # click.exceptions.Exit gives its code


@click.group(
    cls=_OneLineUsageErrors,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.option(
    "--workspace",
    "-w",
    envvar="HYBRIDREC_WORKSPACE",
    default=None,
    help="Workspace directory [default: $HYBRIDREC_WORKSPACE or ./hybridrec-workspace].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries on stderr.")
@click.option("--verbose", "-v", count=True, help="Log to stderr (-vv for debug and tracebacks).")
@click.version_option(package_name="hybridrec")
@click.pass_context
def main(ctx: click.Context, workspace: str | None, quiet: bool, verbose: int) -> None:
    """Hybrid recommendation on rating data: BigQuery ML's matrix factorization workflow,
    locally, with DuckDB and fast ALS.

    \b
    Typical session:
      hybridrec load ml-100k
      hybridrec train mf --name recommender_16 --num-factors 16
      hybridrec recommend recommender_16 --user 903 --genre Comedy -n 5
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = _State(workspace, quiet, verbose)


# ---------------------------------------------------------------------- data
@main.command(
    help="Load MovieLens (any layout) or RecBole files into the workspace."
    + _examples(
        "hybridrec load ml-100k",
        "hybridrec load ./ml-latest-small.zip",
        "hybridrec load ./synth20m",
    )
)
@click.argument("source")
@format_option
@_local_only_engine(
    "load runs on the local engine: the workspace is a local DuckDB file; Spark reads "
    "MovieLens / RecBole layouts, Parquet and CSV directly through --ratings (train mf, "
    "train hybrid, hybrid dataset, recommend --all) or --data (evaluate)"
)
@click.pass_obj
@_guarded
def load(state: _State, source: str, fmt: str, engine: str) -> None:
    """SOURCE is a dataset name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small,
    ml-latest) or a folder / .zip / .whl holding one of the MovieLens or RecBole layouts."""
    summary = state.workspace().load(source, show_progress=state.show_progress)
    _emit_mapping(summary.as_dict(), fmt, title="loaded")


@main.command(
    help="Write a synthetic dataset in the ml-20m CSV layout, with its ground truth."
    + _examples(
        "hybridrec synth --out ./synth20m",
        "hybridrec synth --out ./small --users 1000 --items 500 --ratings 50000",
    )
)
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@click.option("--users", type=click.IntRange(min=1), default=138_493, show_default=True)
@click.option("--items", type=click.IntRange(min=1), default=26_744, show_default=True)
@click.option("--ratings", type=click.IntRange(min=1), default=20_000_263, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--force", is_flag=True, help="Replace ratings.csv / movies.csv that are not synthetic."
)
@format_option
@click.pass_obj
@_guarded
def synth(
    state: _State,
    out_dir: str,
    users: int,
    items: int,
    ratings: int,
    seed: int,
    force: bool,
    fmt: str,
) -> None:
    from dataclasses import asdict

    from hybridrec.data import SynthConfig, write_synthetic

    out = Path(out_dir)
    theirs = [f for f in ("ratings.csv", "movies.csv") if (out / f).exists()]
    if theirs and not (out / "truth").is_dir() and not force:
        # a synthetic dataset (it has truth/) may be regenerated; anything else is someone's data
        raise HybridrecError(
            f"--out {out_dir} already holds {' and '.join(theirs)} that synth did not write: "
            "choose another folder, or give --force to replace them"
        )
    config = SynthConfig(n_users=users, n_items=items, n_ratings=ratings, seed=seed)
    summary = write_synthetic(out_dir, config, show_progress=state.show_progress)
    _emit_mapping(
        {k: str(v) if isinstance(v, Path) else v for k, v in asdict(summary).items()},
        fmt,
        title="written",
    )


@main.command(
    help="Run read-only SQL against the workspace (tables ratings, movies, users; "
    "ml_weights('model') gives a model's weights like ML.WEIGHTS)."
    + _examples(
        'hybridrec sql "SELECT COUNT(*) FROM ratings"',
        "hybridrec sql \"SELECT * FROM ml_weights('recommender_16') WHERE feature = '903'\"",
    )
)
@click.argument("query")
@format_option
@click.pass_obj
@_guarded
def sql(state: _State, query: str, fmt: str) -> None:
    _emit(state.workspace().sql(query), fmt)


# ---------------------------------------------------------------------- training
@main.group(help="Train a model on the workspace's ratings.")
def train() -> None:
    pass


@train.command(
    "mf",
    help="Train explicit matrix factorization by ALS (BigQuery ML's matrix_factorization)."
    + _examples("hybridrec train mf --name recommender_16 --num-factors 16 --l2-reg 0.2"),
)
@click.option("--name", required=True, help="Model name (saved under the workspace's models/).")
@click.option("--num-factors", type=click.IntRange(min=1), default=None, help="Latent factors K.")
@click.option("--l2-reg", type=click.FloatRange(min=0), default=None, help="L2 penalty on factors.")
@click.option(
    "--l2-reg-bias", type=click.FloatRange(min=0), default=None, help="L2 penalty on intercepts."
)
@click.option("--max-iterations", type=click.IntRange(min=1), default=None)
@click.option("--early-stop/--no-early-stop", default=None, help="Stop when progress is small.")
@click.option("--min-rel-progress", type=click.FloatRange(min=0), default=None)
@click.option("--eval-fraction", type=click.FloatRange(min=0, max=1, max_open=True), default=None)
@click.option("--seed", type=int, default=None)
@click.option(
    "--tune",
    type=click.IntRange(min=1),
    default=None,
    help="Random search over N trials (like NUM_TRIALS), scored on a validation split of the "
    "training ratings; the options given are kept fixed only where not searched.",
)
@click.option(
    "--feedback-type",
    type=click.Choice(["explicit", "implicit"]),
    default="explicit",
    show_default=True,
    help="implicit: weighted ALS on who rated what, for ranking (BigQuery ML's IMPLICIT).",
)
@click.option(
    "--wals-alpha",
    type=click.FloatRange(min=0),
    default=None,
    help="Implicit only: confidence 1 + alpha * rating.",
)
@click.option(
    "--ratings",
    "ratings_path",
    default=None,
    help="Train on this Parquet or CSV file (userId, movieId, rating) instead of the "
    "workspace's ratings; with --engine spark also a folder, a MovieLens layout or any URI "
    "Spark reads (hdfs://, s3a://, ...).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="spark: Apache Spark ALS (pip install 'hybridrec[spark]'; see docs/spark.md), saved "
    "in the same format, so recommend and serve use it without Spark.",
)
@click.option(
    "--spark-master",
    default=None,
    help="With --engine spark: the master URL [default: spark-submit's --master, else "
    "local[*]]; spark://HOST:7077, yarn, k8s://https://HOST:443.",
)
@click.option(
    "--spark-conf",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --engine spark: a Spark setting (repeatable), e.g. spark.executor.memory=8g.",
)
@format_option
@click.pass_obj
@_guarded
def train_mf(
    state: _State,
    name: str,
    fmt: str,
    tune: int | None,
    feedback_type: str,
    wals_alpha: float | None,
    ratings_path: str | None,
    engine: str,
    spark_master: str | None,
    spark_conf: tuple[str, ...],
    **options: Any,
) -> None:
    from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization, tune_mf
    from hybridrec.models import model_dir

    params = {k: v for k, v in options.items() if v is not None}
    ws = state.workspace()
    path = model_dir(ws.models_dir, name)
    if engine == "spark":
        extra = {"tune": tune, "feedback_type": feedback_type, "wals_alpha": wals_alpha}
        _train_mf_spark(
            state, name, path, fmt, params, extra, ratings_path, spark_master, spark_conf
        )
        return
    if spark_master or spark_conf:
        raise HybridrecError("--spark-master and --spark-conf apply to --engine spark only")
    with _working(state, "reading ratings"):
        ratings = ws.ratings() if ratings_path is None else _ratings_file(ratings_path)
    movies = ws.movies() if ws.exists() else None
    if feedback_type == "implicit":
        explicit_only = sorted({"l2_reg_bias"} & set(params)) + (["--tune"] if tune else [])
        if explicit_only:
            raise HybridrecError(f"{', '.join(explicit_only)} do not apply to implicit feedback")
        if wals_alpha is not None:
            params["wals_alpha"] = wals_alpha
        implicit = ImplicitMatrixFactorization(**params, show_progress=state.show_progress)
        implicit.fit(ratings, items=movies)
        _save_model(state, implicit, name, path)
        _emit(implicit.training_info(), fmt, title=f"training info: {name}")
        return
    if wals_alpha is not None:
        raise HybridrecError("--wals-alpha applies to --feedback-type implicit only")
    trials: list[dict[str, Any]] = []
    if tune:
        best, trials = tune_mf(ratings, tune, MatrixFactorization(**params))
        params.update(best)
        if not state.quiet:
            click.echo(f"best of {tune} trials: {best}", err=True)
    model = MatrixFactorization(**params, show_progress=state.show_progress)
    model.fit(ratings, items=movies)
    model.tuning_trials_ = trials
    _save_model(state, model, name, path)
    _emit(model.training_info(), fmt, title=f"training info: {name}")


def _ratings_file(path: str) -> pd.DataFrame:
    """A ratings file (train mf --ratings, evaluate --data), checked as ``load`` checks
    ratings; errors name the file and line (CSV) or row (Parquet)."""
    from hybridrec.data import read_ratings

    return read_ratings(path)


def _new_user_file(state: _State, model: Any, name: str, path: str) -> pd.DataFrame:
    """A new user's ratings file (recommend --ratings), checked like :func:`_ratings_file`
    and with each movieId once; a note names the movieIds the model does not know (fold-in
    ignores them)."""
    from hybridrec.data import read_new_user_ratings

    rated = read_new_user_ratings(path)
    ignored = getattr(model, "mf_", model).ignored_items(rated)
    if ignored.size and not state.quiet:
        shown = ", ".join(map(str, ignored[:5])) + (", …" if ignored.size > 5 else "")
        plural = "s" if ignored.size > 1 else ""
        click.echo(
            f"note: fold-in ignores {ignored.size} movieId{plural} of {path} that model "
            f"{name!r} does not know: {shown}",
            err=True,
        )
    return rated


def _train_mf_spark(
    state: _State,
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
        _working(state, "training on Spark"),
    ):
        model.fit(ratings, items=movies, spark=spark)
        _save_model(state, model, name, path, note=" (trained on Spark)")
    _emit(model.training_info(), fmt, title=f"training info: {name}")


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


def _local_engine_only(
    engine: str, master: str | None, conf: tuple[str, ...], **flags: Any
) -> None:
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


def _spark_engine_options(what: str) -> Callable[[F], F]:
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


@train.command(
    "hybrid",
    help="Train a hybrid model: MF factors + user/item features → a regressor (leak-free by "
    "default: out-of-fold MF features)."
    + _examples(
        "hybridrec train hybrid --mf recommender_16 --kind boosted --name hybrid_gbm",
        "hybridrec train hybrid --mf recommender_16 --kind linear --name hybrid_lin --tune 10",
    ),
)
@click.option("--name", required=True, help="Name of the hybrid model to save.")
@click.option(
    "--mf", "mf_name", required=True, help="Trained MF model: its options and split are reused."
)
@click.option(
    "--kind", type=click.Choice(["linear", "boosted", "dnn"]), default="boosted", show_default=True
)
@click.option(
    "--folds",
    type=click.IntRange(min=2, max=20),
    default=5,
    show_default=True,
    help="Folds for the out-of-fold MF features.",
)
@click.option(
    "--notebook-style",
    is_flag=True,
    help="Features from the one MF fitted on all training ratings, as the notebook does "
    "(leaks: for comparison only).",
)
@click.option(
    "--cold-fraction",
    type=click.FloatRange(min=0, max=0.5),
    default=0.05,
    show_default=True,
    help="Share of training rows built as cold-start users / items.",
)
@click.option(
    "--tune",
    type=click.IntRange(min=1),
    default=None,
    help="Random search over N regressor settings on a validation split.",
)
@click.option(
    "--max-train-rows",
    type=click.IntRange(min=100),
    default=None,
    help="Train the regressor on a seeded sample of at most N training ratings (the MFs still "
    "use all of them): for tens of millions of ratings.",
)
@click.option(
    "--ratings",
    "ratings_path",
    default=None,
    help="With --engine spark: ratings from this Parquet / CSV file or folder, MovieLens "
    "layout or URI (hdfs://, s3a://, ...) instead of the workspace's.",
)
@_spark_engine_options(
    "train on Apache Spark with pyspark.ml LinearRegression (linear) or GBTRegressor (boosted)"
)
@format_option
@click.pass_obj
@_guarded
def train_hybrid(
    state: _State,
    name: str,
    mf_name: str,
    kind: str,
    folds: int,
    notebook_style: bool,
    cold_fraction: float,
    tune: int | None,
    max_train_rows: int | None,
    ratings_path: str | None,
    engine: str,
    spark_master: str | None,
    spark_conf: tuple[str, ...],
    fmt: str,
) -> None:
    from hybridrec.hybrid import HybridRecommender
    from hybridrec.models import model_dir

    _local_engine_only(engine, spark_master, spark_conf, **{"--ratings": ratings_path})
    if engine == "spark" and max_train_rows is not None:
        raise HybridrecError("--max-train-rows applies to the local engine (Spark trains on all)")
    if engine == "spark":
        _train_hybrid_spark(
            state, name, mf_name, kind, folds, notebook_style, cold_fraction, tune,
            ratings_path, spark_master, spark_conf, fmt,
        )  # fmt: skip
        return
    ws = state.workspace()
    mf = _explicit_mf(state, mf_name, name)
    with _working(state, "reading ratings"):
        ratings = ws.ratings()
    params = mf.get_params()
    model = HybridRecommender(
        kind,
        mf_params=params,
        leak_free=not notebook_style,
        n_folds=folds,
        cold_fraction=cold_fraction,
        tune=tune or 0,
        eval_fraction=params["eval_fraction"],
        seed=params["seed"],
        show_progress=state.show_progress,
        max_train_rows=max_train_rows,
    )
    model.fit(ratings, ws.users(), ws.movies(), mf=mf if _same_data(mf, ratings) else None)
    _save_model(state, model, name, model_dir(ws.models_dir, name))
    _emit_mapping(model.metrics_, fmt, title=f"evaluation on the hold-out: {name}")


def _train_hybrid_spark(
    state: _State,
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
    from hybridrec.spark import SparkHybridRecommender, data_fingerprint, session_scope

    ws = state.workspace()
    mf = _explicit_mf(state, mf_name, name)
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
        _working(state, f"training the {kind} hybrid on Spark"),
    ):
        if ratings_path is None:
            ratings: Any = ws.ratings()
            same = _same_data(mf, ratings)
        else:
            from hybridrec.spark import read_ratings

            ratings = read_ratings(spark, ratings_path)
            same = data_fingerprint(ratings) == mf.data_fingerprint_
            if not same:
                logging.getLogger(__name__).warning(
                    "the MF was not trained on these ratings: refitting it on Spark"
                )
        model.fit(ratings, users, movies, mf=mf if same else None, spark=spark)
        _save_model(state, model, name, path, note=" (trained on Spark)")
    _emit_mapping(model.metrics_, fmt, title=f"evaluation on the hold-out: {name}")


def _same_data(mf: Any, ratings: pd.DataFrame) -> bool:
    """Whether the MF was trained on these ratings (then its fitted factors are reused)."""
    from hybridrec.data import fingerprint as _fingerprint
    from hybridrec.data import ratings_arrays as _ratings_arrays

    users, items, values = _ratings_arrays(ratings)
    same = bool(_fingerprint(users, items, values) == mf.data_fingerprint_)
    if not same:
        logging.getLogger(__name__).warning(
            "ratings changed since the MF was trained: refitting it"
        )
    return same


@train.command(
    "ranker",
    help="Train a ranking recommender: implicit-ALS candidates re-ranked by a learned ranker "
    "(LambdaRank over implicit score, MF predicted rating, popularity). It becomes the "
    "default order of `recommend` for this model."
    + _examples("hybridrec train ranker --name ranker --mf recommender_16"),
)
@click.option("--name", required=True, help="Name of the ranking model to save.")
@click.option("--mf", "mf_name", default=None, help="Reuse this MF model's options and split.")
@click.option(
    "--candidates",
    type=click.IntRange(min=1, max=10_000),
    default=None,
    help="Candidates per user from the implicit model [default: 100].",
)
@format_option
@click.pass_obj
@_guarded
def train_ranker(
    state: _State, name: str, mf_name: str | None, candidates: int | None, fmt: str
) -> None:
    from hybridrec.models import model_dir
    from hybridrec.ranking import RankingRecommender

    ws = state.workspace()
    options: dict[str, Any] = {}
    if mf_name is not None:
        params = _explicit_mf(state, mf_name, name).get_params()
        options = {
            "mf_params": params,
            "eval_fraction": params["eval_fraction"],
            "seed": params["seed"],
        }
    if candidates is not None:
        options["n_candidates"] = candidates
    model = RankingRecommender(**options, show_progress=state.show_progress)
    model.fit(ws.ratings(), items=ws.movies())
    _save_model(state, model, name, model_dir(ws.models_dir, name))
    _emit_mapping(model.metrics_, fmt, title=f"evaluation on the hold-out: {name}")


@main.group(help="The hybrid dataset of the reference notebook.")
def hybrid() -> None:
    pass


@hybrid.command(
    "dataset",
    help="Build the notebook's hybrid_dataset (user factors u1..uK, product factors p1..pK, "
    "user features, genres, rating) by SQL in the workspace."
    + _examples(
        "hybridrec hybrid dataset --mf recommender_16 --out hybrid.parquet",
        "hybridrec hybrid dataset --mf recommender_16 --encoding rows --table hybrid_dataset",
    ),
)
@click.option("--mf", "mf_name", required=True, help="Trained MF model whose weights are used.")
@click.option(
    "--encoding",
    type=click.Choice(["multi-hot", "rows"]),
    default="multi-hot",
    show_default=True,
    help="rows: one row per (rating, genre), as the notebook; multi-hot: one row per rating.",
)
@click.option(
    "--out",
    help="Write to this Parquet file (streamed); with --engine spark a Parquet folder or URI, "
    "replaced if it exists.",
)
@click.option("--table", help="Or store as this workspace table.")
@click.option(
    "--seed", type=int, default=42, show_default=True, help="Seed of the synthetic loyalty."
)
@click.option(
    "--ratings",
    "ratings_path",
    default=None,
    help="With --engine spark: ratings from this Parquet / CSV file or folder, MovieLens "
    "layout or URI instead of the workspace's (movies and users still from the workspace).",
)
@_spark_engine_options(
    "build it with Spark SQL, written by Spark to --out (a Parquet folder or URI)"
)
@click.pass_obj
@_guarded
def hybrid_dataset(
    state: _State,
    mf_name: str,
    encoding: str,
    out: str | None,
    table: str | None,
    seed: int,
    ratings_path: str | None,
    engine: str,
    spark_master: str | None,
    spark_conf: tuple[str, ...],
) -> None:
    from hybridrec import artifacts
    from hybridrec.hybrid import hybrid_dataset_sql
    from hybridrec.models import model_dir

    _local_engine_only(engine, spark_master, spark_conf, **{"--ratings": ratings_path})
    if engine == "spark":
        _hybrid_dataset_spark(
            state, mf_name, encoding, out, table, seed, ratings_path, spark_master, spark_conf
        )
        return
    if (out is None) == (table is None):
        raise HybridrecError("give exactly one of --out FILE.parquet or --table NAME")
    if out is not None:
        _output(state, out, (".parquet",))
    ws = state.workspace()
    meta = artifacts.read_meta(model_dir(ws.models_dir, mf_name))
    if meta.get("kind") != "matrix_factorization":
        raise HybridrecError(f"--mf {mf_name!r} is not a matrix factorization model")
    genres = ws.genres()
    user_columns = [c for c in ws.sql("SELECT * FROM users LIMIT 0").columns if c != "userId"]
    query = hybrid_dataset_sql(
        mf_name,
        int(meta["params"]["num_factors"]),
        genres,
        user_columns,
        encoding=encoding,
        seed=seed,
    )
    with _working(state, f"building the hybrid dataset -> {out or table}"):
        rows = ws.export_parquet(query, out) if out else ws.create_table(str(table), query)
    if not state.quiet:
        click.echo(f"hybrid dataset: {rows} rows -> {out or table}", err=True)


def _hybrid_dataset_spark(
    state: _State,
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
    from hybridrec import artifacts
    from hybridrec.models import model_dir

    if table is not None or out is None:
        raise HybridrecError(
            "with --engine spark give --out PATH (a Parquet folder or URI); --table is local"
        )
    conf = _spark_conf(conf_items)
    ws = state.workspace()
    path = model_dir(ws.models_dir, mf_name)
    meta = artifacts.read_meta(path)
    if meta.get("kind") != "matrix_factorization":
        raise HybridrecError(f"--mf {mf_name!r} is not a matrix factorization model")
    if not ws.exists():
        raise HybridrecError("the Spark hybrid dataset needs the workspace's movies: load first")
    _require_pyspark()
    import pyarrow as pa

    from hybridrec.spark import hybrid_dataset, read_ratings, session_scope

    movies, users = ws.movies(), ws.users()
    user_columns = [c for c in users.columns if c != "userId"]
    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        _working(state, f"building the hybrid dataset on Spark -> {out}"),
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


@hybrid.command(
    "notebook",
    help="Reproduce the notebook's recommender_hybrid exactly: its rows-encoded SQL dataset "
    "with synthetic loyalty/postcode, and a linear regression on it (streamed, one pass), "
    "trained on the MF's training ratings and scored on its hold-out."
    + _examples("hybridrec hybrid notebook --mf recommender_16"),
)
@click.option("--mf", "mf_name", required=True, help="Trained MF model whose weights are used.")
@click.option(
    "--seed", type=int, default=42, show_default=True, help="Seed of the synthetic loyalty."
)
@format_option
@click.pass_obj
@_guarded
def hybrid_notebook(state: _State, mf_name: str, seed: int, fmt: str) -> None:
    from hybridrec import artifacts
    from hybridrec.hybrid import notebook_linear
    from hybridrec.models import model_dir

    ws = state.workspace()
    meta = artifacts.read_meta(model_dir(ws.models_dir, mf_name))
    if meta.get("kind") != "matrix_factorization":
        raise HybridrecError(f"--mf {mf_name!r} is not a matrix factorization model")
    result = notebook_linear(ws, mf_name, int(meta["params"]["num_factors"]), seed=seed)
    _emit_mapping(result, fmt, title=f"notebook-style linear hybrid on {mf_name}")


@main.command(
    help="Explain one prediction of a hybrid model (feature contributions, like "
    "ML.EXPLAIN_PREDICT), or show global feature importance."
    + _examples(
        "hybridrec explain hybrid_gbm --user 903 --item 50", "hybridrec explain hybrid_gbm --global"
    )
)
@click.argument("name")
@click.option("--user", help="userId of the prediction to explain.")
@click.option("--item", help="movieId of the prediction to explain.")
@click.option("--global", "global_", is_flag=True, help="Global feature importance instead.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@format_option
@click.pass_obj
@_guarded
def explain(
    state: _State, name: str, user: str | None, item: str | None, global_: bool, top: int, fmt: str
) -> None:
    model = state.load_model(name)
    if not hasattr(model, "explain"):
        kind = describe(model)
        raise HybridrecError(f"model {name!r} is {kind} model: explain needs a hybrid model")
    if global_ and (user is not None or item is not None):
        raise HybridrecError("--global explains the whole model: not with --user or --item")
    if global_:
        _emit(model.feature_importance().head(top), fmt, title=f"feature importance: {name}")
        return
    if user is None or item is None:
        raise HybridrecError("give --user and --item (or --global)")
    prediction = float(model.predict([user], [item])[0])
    _emit(
        model.explain(user, item, top),
        fmt,
        title=f"{name}: user {user}, item {item} → {prediction:.3f}",
    )


@main.command(
    help="Compare baselines, MF and hybrid models on warm, cold-user and cold-item test sets "
    "(trains them all on the workspace's ratings)."
    + _examples("hybridrec compare", "hybridrec compare --kinds linear,boosted --format json")
)
@click.option(
    "--kinds", default="linear,boosted,dnn", show_default=True, help="Hybrid kinds to include."
)
@click.option("--num-factors", type=click.IntRange(min=1), default=None, help="MF factors.")
@click.option("-k", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@format_option
@click.pass_obj
@_guarded
def compare(
    state: _State, kinds: str, num_factors: int | None, k: int, seed: int, fmt: str
) -> None:
    from hybridrec.hybrid import compare_models

    chosen = list(dict.fromkeys(kind.strip() for kind in kinds.split(",") if kind.strip()))
    if not chosen:
        raise HybridrecError("--kinds is empty: give some of linear, boosted, dnn")
    ws = state.workspace()
    mf_params = {} if num_factors is None else {"num_factors": num_factors}
    table = compare_models(
        ws.ratings(),
        ws.users(),
        ws.movies(),
        kinds=chosen,
        mf_params=mf_params,
        k=k,
        seed=seed,
        show_progress=state.show_progress,
    )
    _emit(table, fmt, title="model comparison")


# ---------------------------------------------------------------------- using a model
@main.command(
    help="Show a model's options, training log (like ML.TRAINING_INFO) and metrics."
    + _examples("hybridrec info recommender_16")
)
@click.argument("name")
@format_option
@click.pass_obj
@_guarded
def info(state: _State, name: str, fmt: str) -> None:
    from hybridrec import artifacts
    from hybridrec.models import model_dir

    path = model_dir(state.models_root(), name)
    meta = state.load_model(name) and artifacts.read_meta(path)
    if fmt == "json":
        from hybridrec._core.output import json_text

        click.echo(json_text(meta))
        return
    summary = {k: v for k, v in meta.items() if not isinstance(v, dict | list)}
    summary.update({f"param.{k}": v for k, v in meta.get("params", {}).items()})
    _emit_mapping(summary, fmt, title=f"model {name}")
    _emit(pd.DataFrame(meta.get("training_log", [])), fmt, title="training info")
    if meta.get("metrics"):
        _emit_mapping(meta["metrics"], fmt, title="evaluation on the hold-out")


@main.command(
    "models",
    help="List the models in the workspace." + _examples("hybridrec models"),
)
@format_option
@click.pass_obj
@_guarded
def models_(state: _State, fmt: str) -> None:
    from hybridrec.models import list_models

    ws = state.workspace()
    if not ws.path.is_dir():
        what = "is a file, not a workspace folder" if ws.path.exists() else "does not exist"
        raise HybridrecError(f"workspace {ws.path} {what} (hybridrec load SOURCE creates one)")
    _emit(
        pd.DataFrame(list_models(ws.models_dir), columns=["name", "kind", "trained_at", "rmse"]),
        fmt,
    )


@main.command(
    help="Recommend items to a user, users for an item, or top-N for every user."
    + _examples(
        "hybridrec recommend recommender_16 --user 903 --genre Comedy -n 5",
        'hybridrec recommend recommender_16 --user 903 --where "year >= 1990"',
        "hybridrec recommend recommender_16 --item 50 -n 5",
        "hybridrec recommend recommender_16 --all -n 10 --out top10.parquet",
    )
)
@click.argument("name")
@click.option("--user", help="Recommend items to this userId.")
@click.option("--item", help="Find the users most likely to rate this movieId highly.")
@click.option("--all", "all_users", is_flag=True, help="Top-N for every user, streamed to --out.")
@click.option(
    "--ratings",
    "ratings_file",
    type=click.Path(),
    help="A new user's ratings (CSV/Parquet: movieId, rating): fold-in, no retraining. With "
    "--all --engine spark: ratings (path or URI) whose pairs are excluded instead of the "
    "model's seen pairs.",
)
@click.option("-n", "n", type=click.IntRange(min=1, max=100_000), default=10, show_default=True)
@click.option("--genre", help="Only items of this genre.")
@click.option("--where", "predicate", help="Only movies matching this SQL predicate on `movies`.")
@click.option("--include-seen", is_flag=True, help="Also recommend items already rated.")
@click.option(
    "--rank-by",
    type=click.Choice(["relevance", "predicted_rating"]),
    default=None,
    help="Ranking models order by relevance (default) or, as the notebook, by "
    "predicted rating; other models always order by predicted rating.",
)
@click.option(
    "--out",
    type=click.Path(),
    help="Parquet file for --all (with --engine spark: a Parquet folder, path or URI).",
)
@format_option
@_spark_engine_options("top-N for every user (--all) of a matrix factorization, on Spark")
@click.pass_obj
@_guarded
def recommend(
    state: _State,
    name: str,
    user: str | None,
    item: str | None,
    all_users: bool,
    ratings_file: str | None,
    n: int,
    genre: str | None,
    predicate: str | None,
    include_seen: bool,
    rank_by: str | None,
    out: str | None,
    fmt: str,
    engine: str,
    spark_master: str | None,
    spark_conf: tuple[str, ...],
) -> None:
    if engine == "spark":
        given = {"--user": user, "--item": item, "--genre": genre, "--where": predicate}
        given["--rank-by"] = rank_by
        _recommend_all_spark(
            state,
            name,
            all_users,
            given,
            ratings_file,
            n,
            include_seen,
            out,
            spark_master,
            spark_conf,
        )
        return
    _local_engine_only(engine, spark_master, spark_conf)
    if sum(x is not None for x in (user, item, all_users or None, ratings_file)) != 1:
        raise HybridrecError("give exactly one of --user, --item, --all or --ratings")
    if ratings_file is not None and Path(ratings_file).is_dir():
        raise HybridrecError(f"--ratings {ratings_file} is a directory: give a CSV or Parquet file")
    if all_users and out is None:
        raise HybridrecError(
            "--all needs --out FILE.parquet (the result has a row per user and rank)"
        )
    if out is not None and not all_users:
        raise HybridrecError("--out is for --all; the other modes print (--format csv > FILE)")
    if (genre or predicate) and (all_users or item is not None):
        raise HybridrecError(
            "--genre and --where choose movies for one user: not with --all or --item"
        )
    target = _output(state, out, (".parquet",)) if out is not None else None
    model = state.load_model(name)
    if target is not None:
        rows = _write_batches(model.recommend_all(n, exclude_seen=not include_seen), target)
        if not state.quiet:
            click.echo(f"wrote {rows} recommendations to {out}", err=True)
        return
    if item is not None:
        _emit(model.recommend_users(item, n, exclude_seen=not include_seen), fmt)
        return
    candidates = state.workspace().item_ids_where(predicate) if predicate else None
    if ratings_file is not None:
        rated = _new_user_file(state, model, name, ratings_file)
        recs = model.recommend_new_user(rated, n, genre=genre, candidates=candidates)
        _emit(recs, fmt)
        return
    options: dict[str, Any] = {
        "genre": genre,
        "candidates": candidates,
        "exclude_seen": not include_seen,
    }
    if rank_by is not None:
        from hybridrec.ranking import RankingRecommender

        if isinstance(model, RankingRecommender):
            options["rank_by"] = rank_by
        elif rank_by == "relevance":
            raise HybridrecError(f"model {name!r} ranks by predicted rating only; train a ranker")
    if genre is not None:
        _check_genre(model, genre)
    unknown = _unknown(model, "user", [user])
    if unknown and not state.quiet:
        click.echo(f"note: user {user} is not in model {name!r}: answered as a new user", err=True)
    _emit(model.recommend(user, n, **options), fmt)


def _recommend_all_spark(
    state: _State,
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
        _working(state, f"top-{n} for every user on Spark -> {out}"),
    ):
        frame = recommend_all(spark, path, n, exclude_seen=not include_seen, seen=ratings_path)
        rows = write_parquet(frame, out)
    if not state.quiet:
        click.echo(f"wrote {rows} recommendations to {out} (Spark)", err=True)


def _spark_mf_model(state: _State, name: str, what: str) -> Path:
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


def _check_genre(model: Any, genre: str) -> None:
    """``--genre`` must be a genre of the model's movies (the library answers an unknown one
    with no items, as the server does; on the command line that is a typo worth naming)."""
    mf = model if hasattr(model, "genres") else getattr(model, "mf_", None)
    known = mf.genres() if mf is not None else []
    if known and genre not in known:
        close = [g for g in known if g.lower() == genre.lower()]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise HybridrecError(
            f"--genre {genre!r}: no movie of the model has it; {hint}genres: {', '.join(known)}"
        )


def _unknown(model: Any, side: str, ids: Any) -> list[str]:
    """``ids`` (users or items, as given) that ``model`` has not seen, as ``"userId 7"``."""
    owner = model if hasattr(model, f"{side}_vocab_") else getattr(model, "mf_", None)
    vocab = getattr(owner, f"{side}_vocab_", None)
    if vocab is None:
        return []
    values = pd.unique(pd.Series(list(ids), dtype=object).dropna())
    missing = values[vocab.index_of(values) < 0]
    column = "userId" if side == "user" else "movieId"
    return [f"{column} {v}" for v in missing]


def _save_model(state: _State, model: Any, name: str, path: Path, *, note: str = "") -> None:
    """``model.save(path)`` (atomic), then say where it went and whether it replaced a model."""
    replaced = path.is_dir()
    model.save(path)
    if not state.quiet:
        again = " (replacing the model of that name)" if replaced else ""
        click.echo(f"saved model {name!r} to {path}{note}{again}", err=True)


def _explicit_mf(state: _State, mf_name: str, name: str) -> Any:
    """The explicit matrix factorization ``--mf`` names, for a model to be saved as ``name``."""
    from hybridrec.mf import MatrixFactorization

    if mf_name == name:
        raise HybridrecError(
            f"--name {name!r} is also --mf: saving would replace the model it is built from; "
            "choose another name"
        )
    mf = state.load_model(mf_name)
    if type(mf) is not MatrixFactorization:
        kind = describe(mf)
        raise HybridrecError(
            f"--mf {mf_name!r} is {kind} model: give an explicit matrix factorization "
            "(hybridrec train mf)"
        )
    return mf


def _write_batches(batches: Any, target: Path) -> int:
    """Stream record batches to a Parquet file, atomically (temp file, then rename)."""
    import pyarrow.parquet as pq

    from hybridrec._core.files import atomic_file

    rows = 0
    with atomic_file(target) as tmp:
        writer = None
        try:
            for batch in batches:
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema, compression="zstd")
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:
                raise HybridrecError(f"nothing to write to {target}: the model has no users")
        finally:
            if writer is not None:
                writer.close()
    return rows


def _output(state: _State, out: str, suffixes: tuple[str, ...], *inputs: str | None) -> Path:
    """``out`` checked before any work: the right file type, a folder that exists, and
    neither the workspace's own files nor one of the command's ``inputs``."""
    from hybridrec._core.files import check_output

    ws = state.workspace()
    protected = (ws.db_path, ws.db_path.with_name(ws.db_path.name + ".wal"), ws.models_dir)
    return check_output(out, suffixes=suffixes, protected=protected, inputs=inputs)


@main.command(
    help="Predict ratings for (userId, movieId) pairs from a CSV or Parquet file."
    + _examples(
        "hybridrec predict recommender_16 --pairs pairs.csv",
        "hybridrec predict m --pairs p.parquet --out pred.parquet",
    )
)
@click.argument("name")
@click.option(
    "--pairs",
    required=True,
    type=click.Path(dir_okay=False),
    help="CSV/Parquet with userId, movieId.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write predictions here (.csv or .parquet)."
)
@format_option
@click.pass_obj
@_guarded
def predict(state: _State, name: str, pairs: str, out: str | None, fmt: str) -> None:
    from hybridrec.data import read_frame

    if out is not None:
        _output(state, out, (".csv", ".parquet"), pairs)
        if fmt != "table":
            raise HybridrecError("--format applies to printed output; --out takes its extension")
    frame = read_frame(pairs, required=("userId", "movieId"))
    model = state.load_model(name)
    result = model.predict_frame(frame)
    unknown = _unknown(model, "user", frame["userId"]) + _unknown(model, "item", frame["movieId"])
    if unknown and not state.quiet:
        shown = ", ".join(unknown[:5]) + (", …" if len(unknown) > 5 else "")
        click.echo(
            f"note: {len(unknown)} ids of {pairs} are not in model {name!r} ({shown}): "
            "their predictions are the model's fallback for ids it has not seen",
            err=True,
        )
    if out is None:
        _emit(result, fmt)
        return

    def write(tmp: Path, parquet: bool) -> None:
        if parquet:
            result.to_parquet(tmp, index=False)
        else:
            result.to_csv(tmp, index=False)

    _write_atomically(out, write)


@main.command(
    help="Show learned weights in BigQuery ML's ML.WEIGHTS shape, or write them all to a file."
    + _examples(
        "hybridrec weights recommender_16 --user 903",
        "hybridrec weights recommender_16 --item 50 --format json",
        "hybridrec weights recommender_16 --out weights.parquet",
    )
)
@click.argument("name")
@click.option("--user", "users", multiple=True, help="Only this userId (repeatable).")
@click.option("--item", "items", multiple=True, help="Only this movieId (repeatable).")
@click.option(
    "--out",
    help="Write the rows to this .parquet file (factor_weights as a list of structs) or .csv "
    "file instead of printing them.",
)
@format_option
@click.pass_obj
@_guarded
def weights(
    state: _State,
    name: str,
    users: tuple[str, ...],
    items: tuple[str, ...],
    out: str | None,
    fmt: str,
) -> None:
    if out is not None:
        _output(state, out, (".csv", ".parquet"))
    model = state.load_model(name)
    if out is not None:
        table = model.weights_table(users=list(users) or None, items=list(items) or None)
        _write_table_atomically(table, out)
        if not state.quiet:
            click.echo(f"{table.num_rows} rows -> {out}", err=True)
        return
    frame = model.weights(users=list(users) or None, items=list(items) or None)
    if not users and not items and fmt == "table":
        frame = frame.head(20)
        click.echo(f"(first 20 of {len(model.weights())} rows; use --format csv for all)", err=True)
    _emit(frame, fmt, title=f"ML.WEIGHTS: {name}")


def _write_table_atomically(table: Any, out: str) -> None:
    """An Arrow table to ``out``: Parquet, or CSV with nested columns as the JSON that
    ``--format csv`` prints."""
    import pyarrow.parquet as pq

    from hybridrec._core.output import render

    def write(tmp: Path, parquet: bool) -> None:
        if parquet:
            pq.write_table(table, tmp)
        else:
            tmp.write_text(render(table.to_pandas(), "csv") + "\n")

    _write_atomically(out, write)


def _write_atomically(out: str, write: Callable[[Path, bool], None]) -> None:
    """``write(tmp, parquet)`` a file beside ``out`` (Parquet when ``out`` ends in .parquet,
    else CSV), then rename it into place: never a half-written ``out``."""
    from hybridrec._core.files import atomic_file

    target = Path(out)
    with atomic_file(target) as tmp:
        write(tmp, target.suffix.lower() == ".parquet")


@main.command(
    help="Evaluate a model: BigQuery ML's regression metrics, rmse and ranking metrics at k."
    + _examples(
        "hybridrec evaluate recommender_16",
        "hybridrec evaluate recommender_16 --data test.parquet -k 5",
    )
)
@click.argument("name")
@click.option(
    "--data",
    help="CSV/Parquet file or workspace table with userId, movieId, rating "
    "[default: the model's own hold-out].",
)
@click.option("-k", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option(
    "--ranking",
    is_flag=True,
    help="Only the ranking metrics (precision, recall, "
    "NDCG, MAP, hit rate, coverage, novelty at k).",
)
@format_option
@_spark_engine_options(
    "regression metrics of a matrix factorization computed on Spark (no ranking metrics)"
)
@click.pass_obj
@_guarded
def evaluate(
    state: _State,
    name: str,
    data: str | None,
    k: int,
    ranking: bool,
    fmt: str,
    engine: str,
    spark_master: str | None,
    spark_conf: tuple[str, ...],
) -> None:
    if engine == "spark":
        _evaluate_spark(state, name, data, ranking, fmt, spark_master, spark_conf)
        return
    _local_engine_only(engine, spark_master, spark_conf)
    model = state.load_model(name)
    frame = None
    if data is not None:
        if _is_data_file(data):
            frame = _ratings_file(data)
        else:
            frame = state.workspace().sql(f'SELECT userId, movieId, rating FROM "{data}"')
    metrics = model.evaluate(frame, k=k)
    if ranking:
        metrics = {key: value for key, value in metrics.items() if key.endswith(f"@{k}")}
    _emit_mapping(metrics, fmt, title=f"evaluation: {name}")


def _is_data_file(data: str) -> bool:
    """--data is a file, folder or URI (else the name of a workspace table)."""
    return Path(data).exists() or "." in data or "/" in data


def _evaluate_spark(
    state: _State,
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
    if data is not None and not _is_data_file(data):
        table = state.workspace().sql(f'SELECT userId, movieId, rating FROM "{data}"')
    _require_pyspark()
    import pyarrow as pa

    from hybridrec.spark import evaluate_saved_model, session_scope

    with (
        session_scope(master, conf, quiet_logs=state.verbose < 2) as spark,
        _working(state, "evaluating on Spark"),
    ):
        source: Any = data
        if table is not None:
            source = spark.createDataFrame(pa.Table.from_pandas(table, preserve_index=False))
        metrics = evaluate_saved_model(spark, path, source)
    _emit_mapping(metrics, fmt, title=f"evaluation: {name} (Spark)")
    if not state.quiet:
        click.echo(
            "ranking metrics (@k) are not computed with --engine spark: run evaluate on the "
            "local engine for them",
            err=True,
        )


@main.command(
    short_help="Write an HTML report with plots on a model (and models to compare).",
    help="Write a self-contained HTML report on a model (images embedded, no network needed): "
    "training curves, evaluation next to a global-mean baseline and the --compare models (all "
    "on NAME's hold-out, the numbers of `hybridrec evaluate`), calibration, error by user "
    "activity, a map of the item factors, feature importance and a dataset summary."
    + _examples(
        "hybridrec report recommender_16 --out report.html",
        "hybridrec report recommender_16 --compare hybrid_gbm --out report.html",
        "hybridrec compare --format csv > compare.csv",
        "hybridrec report hybrid_gbm --comparison compare.csv",
    ),
)
@click.argument("name")
@click.option(
    "--compare",
    "others",
    multiple=True,
    metavar="NAME",
    help="Another trained model, evaluated on NAME's hold-out (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="report.html",
    show_default=True,
    help="The HTML file to write (atomically).",
)
@click.option("--title", help="Title of the report [default: hybridrec report: NAME].")
@click.option("-k", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option(
    "--comparison",
    type=click.Path(dir_okay=False),
    help="Include a warm / cold-start table saved from `hybridrec compare` (CSV, JSON, Parquet).",
)
@click.pass_obj
@_guarded
def report(
    state: _State,
    name: str,
    others: tuple[str, ...],
    out: str,
    title: str | None,
    k: int,
    comparison: str | None,
) -> None:
    from hybridrec.report import write_report

    names = [name, *others]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HybridrecError(f"model {repeated[0]!r} is named twice")
    _output(state, out, (".html", ".htm"), comparison)
    table = _read_comparison(comparison) if comparison else None
    with _working(state, "loading models and ratings"):
        models = {n: state.load_model(n) for n in names}
        ws = state.workspace()
        try:
            ratings = ws.ratings()
        except HybridrecError as exc:
            logging.getLogger(__name__).warning("no dataset summary: %s", exc)
            ratings = None
    path = write_report(
        models,
        out,
        ratings=ratings,
        title=title,
        k=k,
        comparison=table,
        show_progress=state.show_progress,
    )
    if not state.quiet:
        click.echo(f"wrote the report on {', '.join(names)} to {path}", err=True)
    click.echo(str(path))


def _read_comparison(path: str) -> pd.DataFrame:
    """The table written by ``hybridrec compare --format csv|json`` (or a Parquet file)."""
    if path.lower().endswith(".json"):
        import json

        try:
            return pd.DataFrame(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise HybridrecError(f"{path}: no such file") from None
        except (json.JSONDecodeError, ValueError) as exc:
            raise HybridrecError(f"{path}: not a JSON list of rows: {exc}") from None
    from hybridrec.data import read_frame

    return read_frame(path, required=("scenario", "model", "rmse"))


@main.command(
    help="Run the companion BigQuery ML notebook end to end on MovieLens 100K."
    + _examples("hybridrec demo", "hybridrec --workspace /tmp/demo demo")
)
@click.pass_obj
@_guarded
def demo(state: _State) -> None:
    from hybridrec._demo import run_demo

    run_demo(state.workspace(), echo=click.echo, show_progress=state.show_progress)


class _FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that also refuses nan and inf (nan passes every range comparison)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


@main.command(
    help="Serve a model over HTTP/JSON (OpenAPI spec at /docs and /openapi.json). "
    "SIGTERM or Ctrl-C stops it after the requests in flight."
    + _examples(
        "hybridrec serve recommender_16",
        "hybridrec serve recommender_16 --port 9000 --workers 2 --watch 5",
        "export HYBRIDREC_ADMIN_TOKEN=...; "
        "hybridrec serve recommender_16 --admin-token-env HYBRIDREC_ADMIN_TOKEN",
        "curl 'http://127.0.0.1:8000/recommend?user=903&genre=Comedy&n=5'",
    )
)
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes, each with its own copy of the model.",
)
@click.option(
    "--admin-token-env",
    metavar="VAR",
    help="Enable POST /admin/reload, authorised by the token held in environment variable VAR.",
)
@click.option(
    "--watch",
    type=_FiniteFloatRange(min=0.1),
    metavar="SECONDS",
    help="Reload the model when it is saved again, checking every SECONDS (every worker).",
)
@click.option(
    "--timeout",
    type=_FiniteFloatRange(min=0.01),
    default=10.0,
    show_default=True,
    help="Seconds a request may take before it is answered 503.",
)
@click.option("--max-n", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--max-pairs",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most pairs in one POST /predict (and ratings in one new-user request).",
)
@click.option("--access-log/--no-access-log", default=True, help="One JSON line per request.")
@click.pass_obj
@_guarded
def serve(
    state: _State,
    name: str,
    host: str,
    port: int,
    workers: int,
    admin_token_env: str | None,
    watch: float | None,
    timeout: float,
    max_n: int,
    max_pairs: int,
    access_log: bool,
) -> None:
    import copy
    import json

    try:
        import uvicorn
        import uvicorn.config

        from hybridrec import serve as serving
    except ImportError as exc:
        raise HybridrecError(
            f"serving needs the 'serve' extra ({exc.name} is missing): "
            "pip install 'hybridrec[serve]'"
        ) from None
    from hybridrec import artifacts
    from hybridrec.models import model_dir

    token = None
    if admin_token_env is not None:
        token = os.environ.get(admin_token_env)
        if not token:
            raise HybridrecError(
                f"environment variable {admin_token_env} is not set or empty: "
                "it must hold the admin token"
            )
    path = model_dir(state.models_root(), name)
    options: dict[str, Any] = {
        "name": name,
        "max_n": max_n,
        "max_pairs": max_pairs,
        "timeout": timeout,
        "watch_interval": watch,
    }
    # uvicorn applies this logging configuration in every worker process.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["formatters"]["json_line"] = {"format": "%(message)s"}
    log_config["handlers"]["json_line"] = {
        "class": "logging.StreamHandler",
        "formatter": "json_line",
        "stream": "ext://sys.stdout",
    }
    log_config["loggers"]["hybridrec.serve"] = {
        "handlers": ["default"],
        "level": "WARNING" if state.quiet else "INFO",
        "propagate": False,
    }
    log_config["loggers"]["hybridrec.serve.access"] = {
        "handlers": ["json_line"],
        "level": "INFO" if access_log else "WARNING",
        "propagate": False,
    }
    run_options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config,
        "log_level": "warning" if state.quiet else "info",
        "access_log": False,  # ours is the JSON one
        "server_header": False,
        "timeout_graceful_shutdown": int(timeout) + 5,
    }
    _check_listen(host, port)
    if workers == 1:
        app = serving.create_app(path, admin_token=token, **options)
        if not state.quiet:
            served = app.state.holder.current
            click.echo(f"serving {served.kind} model {name!r}, version {served.version}", err=True)
        uvicorn.run(app, **run_options)
        return
    meta = artifacts.read_meta(path)  # fail here, not in every worker
    if not state.quiet:
        click.echo(f"serving {meta.get('kind')} model {name!r} with {workers} workers", err=True)
    # Workers are new processes: they rebuild the app from this configuration (and read the
    # token from the same environment variable, so it never appears in argv or the config).
    os.environ[serving.CONFIG_ENV] = json.dumps(
        {**options, "model_path": str(path), "admin_token_env": admin_token_env}
    )
    uvicorn.run("hybridrec.serve:app_from_env", factory=True, workers=workers, **run_options)


def _check_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once before starting the server, so a port in use or an unknown host
    is one line naming them (uvicorn would log several and exit with code 3)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:  # socket.gaierror is an OSError too
        raise HybridrecError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


if __name__ == "__main__":  # pragma: no cover
    main()
