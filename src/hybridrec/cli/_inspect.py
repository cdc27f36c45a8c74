"""Commands that look at models: info, models, evaluate, explain, compare and report. The
``--engine spark`` branch of evaluate is in :mod:`hybridrec.cli._spark`."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import pandas as pd

from hybridrec._errors import HybridrecError
from hybridrec.cli import _spark
from hybridrec.cli._common import (
    State,
    emit,
    emit_mapping,
    examples,
    format_option,
    guarded,
    is_data_file,
    output_path,
    ratings_file,
    working,
)


@click.command(
    "explain",
    help="Explain one prediction of a hybrid model (feature contributions, like "
    "ML.EXPLAIN_PREDICT), or show global feature importance."
    + examples(
        "hybridrec explain hybrid_gbm --user 903 --item 50", "hybridrec explain hybrid_gbm --global"
    ),
)
@click.argument("name")
@click.option("--user", help="userId of the prediction to explain.")
@click.option("--item", help="movieId of the prediction to explain.")
@click.option("--global", "global_", is_flag=True, help="Global feature importance instead.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@format_option
@click.pass_obj
@guarded
def explain(
    state: State, name: str, user: str | None, item: str | None, global_: bool, top: int, fmt: str
) -> None:
    from hybridrec._core.contract import describe

    model = state.load_model(name)
    if not hasattr(model, "explain"):
        raise HybridrecError(
            f"model {name!r} is {describe(model)} model: explain needs a hybrid model"
        )
    if global_ and (user is not None or item is not None):
        raise HybridrecError("--global explains the whole model: not with --user or --item")
    if global_:
        emit(model.feature_importance().head(top), fmt, title=f"feature importance: {name}")
        return
    if user is None or item is None:
        raise HybridrecError("give --user and --item (or --global)")
    prediction = float(model.predict([user], [item])[0])
    emit(
        model.explain(user, item, top),
        fmt,
        title=f"{name}: user {user}, item {item} → {prediction:.3f}",
    )


@click.command(
    "compare",
    help="Compare baselines, MF and hybrid models on warm, cold-user and cold-item test sets "
    "(trains them all on the workspace's ratings)."
    + examples("hybridrec compare", "hybridrec compare --kinds linear,boosted --format json"),
)
@click.option(
    "--kinds", default="linear,boosted,dnn", show_default=True, help="Hybrid kinds to include."
)
@click.option("--num-factors", type=click.IntRange(min=1), default=None, help="MF factors.")
@click.option("-k", "k", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@format_option
@click.pass_obj
@guarded
def compare(state: State, kinds: str, num_factors: int | None, k: int, seed: int, fmt: str) -> None:
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
    emit(table, fmt, title="model comparison")


# ---------------------------------------------------------------------- using a model
@click.command(
    "info",
    help="Show a model's options, training log (like ML.TRAINING_INFO) and metrics."
    + examples("hybridrec info recommender_16"),
)
@click.argument("name")
@format_option
@click.pass_obj
@guarded
def info(state: State, name: str, fmt: str) -> None:
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
    emit_mapping(summary, fmt, title=f"model {name}")
    emit(pd.DataFrame(meta.get("training_log", [])), fmt, title="training info")
    if meta.get("metrics"):
        emit_mapping(meta["metrics"], fmt, title="evaluation on the hold-out")


@click.command(
    "models",
    help="List the models in the workspace." + examples("hybridrec models"),
)
@format_option
@click.pass_obj
@guarded
def models_(state: State, fmt: str) -> None:
    from hybridrec.models import list_models

    ws = state.workspace()
    if not ws.path.is_dir():
        what = "is a file, not a workspace folder" if ws.path.exists() else "does not exist"
        raise HybridrecError(f"workspace {ws.path} {what} (hybridrec load SOURCE creates one)")
    emit(
        pd.DataFrame(list_models(ws.models_dir), columns=["name", "kind", "trained_at", "rmse"]),
        fmt,
    )


@click.command(
    "evaluate",
    help="Evaluate a model: BigQuery ML's regression metrics, rmse and ranking metrics at k."
    + examples(
        "hybridrec evaluate recommender_16",
        "hybridrec evaluate recommender_16 --data test.parquet -k 5",
    ),
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
@_spark.engine_options(
    "regression metrics of a matrix factorization computed on Spark (no ranking metrics)"
)
@click.pass_obj
@guarded
def evaluate(
    state: State,
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
        _spark.evaluate(state, name, data, ranking, fmt, spark_master, spark_conf)
        return
    _spark.local_engine_only(engine, spark_master, spark_conf)
    model = state.load_model(name)
    frame = None
    if data is not None:
        if is_data_file(data):
            frame = ratings_file(data)
        else:
            frame = state.workspace().sql(f'SELECT userId, movieId, rating FROM "{data}"')
    metrics = model.evaluate(frame, k=k)
    if ranking:
        metrics = {key: value for key, value in metrics.items() if key.endswith(f"@{k}")}
    emit_mapping(metrics, fmt, title=f"evaluation: {name}")


@click.command(
    "report",
    short_help="Write an HTML report with plots on a model (and models to compare).",
    help="Write a self-contained HTML report on a model (images embedded, no network needed): "
    "training curves, evaluation next to a global-mean baseline and the --compare models (all "
    "on NAME's hold-out, the numbers of `hybridrec evaluate`), calibration, error by user "
    "activity, a map of the item factors, feature importance and a dataset summary."
    + examples(
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
@guarded
def report(
    state: State,
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
    output_path(state, out, (".html", ".htm"), comparison)
    table = _read_comparison(comparison) if comparison else None
    with working(state, "loading models and ratings"):
        models = {n: state.load_model(n) for n in names}
        ws = state.workspace()
        try:
            ratings = ws.ratings()
        except HybridrecError as exc:
            logging.getLogger(__package__).warning("no dataset summary: %s", exc)
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
