"""Commands that bring data in: load (into the workspace), synth (a synthetic dataset), sql."""

from __future__ import annotations

from pathlib import Path

import click

from hybridrec._errors import HybridrecError
from hybridrec.cli._common import (
    State,
    emit,
    emit_mapping,
    examples,
    format_option,
    guarded,
    local_only_engine,
)


@click.command(
    "load",
    help="Load MovieLens (any layout) or RecBole files into the workspace."
    + examples(
        "hybridrec load ml-100k",
        "hybridrec load ./ml-latest-small.zip",
        "hybridrec load ./synth20m",
    ),
)
@click.argument("source")
@click.option(
    "--dataset",
    default="movielens",
    show_default=True,
    help="The BigQuery dataset of the tables in `sql --dialect bigquery` (movielens.ratings).",
)
@format_option
@local_only_engine(
    "load runs on the local engine: the workspace is a local DuckDB file; Spark reads "
    "MovieLens / RecBole layouts, Parquet and CSV directly through --ratings (train mf, "
    "train hybrid, hybrid dataset, recommend --all) or --data (evaluate)"
)
@click.pass_obj
@guarded
def load(state: State, source: str, dataset: str, fmt: str, engine: str) -> None:
    """SOURCE is a dataset name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small,
    ml-latest) or a folder / .zip / .whl holding one of the MovieLens or RecBole layouts."""
    summary = state.workspace().load(source, show_progress=state.show_progress, dataset=dataset)
    emit_mapping(summary.as_dict(), fmt, title="loaded")


@click.command(
    "synth",
    help="Write a synthetic dataset in the ml-20m CSV layout, with its ground truth."
    + examples(
        "hybridrec synth --out ./synth20m",
        "hybridrec synth --out ./small --users 1000 --items 500 --ratings 50000",
    ),
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
@guarded
def synth(
    state: State,
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
    emit_mapping(
        {k: str(v) if isinstance(v, Path) else v for k, v in asdict(summary).items()},
        fmt,
        title="written",
    )


@click.command(
    "sql",
    help="Run SQL against the workspace: DuckDB's read-only SQL (tables ratings, movies, users; "
    "ml_weights('model') gives a model's weights like ML.WEIGHTS), or with --dialect bigquery "
    "BigQuery ML scripts: CREATE MODEL, ML.PREDICT / RECOMMEND / WEIGHTS / EVALUATE, "
    "CREATE TABLE … AS (docs/bigquery-sql.md)."
    + examples(
        'hybridrec sql "SELECT COUNT(*) FROM ratings"',
        "hybridrec sql \"SELECT * FROM ml_weights('recommender_16') WHERE feature = '903'\"",
        "hybridrec sql --dialect bigquery --file notebook.sql",
    ),
)
@click.argument("query", required=False)
@click.option(
    "--dialect",
    type=click.Choice(["duckdb", "bigquery"]),
    default="duckdb",
    show_default=True,
    help="duckdb: read-only DuckDB SQL; bigquery: BigQuery ML statements, writes included.",
)
@click.option("--file", "script", help="Read the SQL (a ';'-separated script) from this file.")
@format_option
@click.pass_obj
@guarded
def sql(state: State, query: str | None, dialect: str, script: str | None, fmt: str) -> None:
    from hybridrec.bigquery import sql as run_sql
    from hybridrec.bigquery import sql_text

    frame = run_sql(sql_text(query, script), state.workspace(), dialect)
    if len(frame.columns):
        emit(frame, fmt)
