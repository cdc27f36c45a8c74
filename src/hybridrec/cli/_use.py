"""Commands that use a trained model: recommend, predict, weights, and the notebook's hybrid
dataset (hybrid dataset, hybrid notebook). Their ``--engine spark`` branches are in
:mod:`hybridrec.cli._spark`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from hybridrec._errors import HybridrecError
from hybridrec.cli import _spark
from hybridrec.cli._common import (
    State,
    emit,
    emit_mapping,
    examples,
    explicit_mf_meta,
    format_option,
    guarded,
    output_path,
    working,
)


@click.group("hybrid", help="The hybrid dataset of the reference notebook.")
def hybrid() -> None:
    pass


@hybrid.command(
    "dataset",
    help="Build the notebook's hybrid_dataset (user factors u1..uK, product factors p1..pK, "
    "user features, genres, rating) by SQL in the workspace."
    + examples(
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
@_spark.engine_options(
    "build it with Spark SQL, written by Spark to --out (a Parquet folder or URI)"
)
@click.pass_obj
@guarded
def hybrid_dataset(
    state: State,
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
    from hybridrec.hybrid import hybrid_dataset_sql

    _spark.local_engine_only(engine, spark_master, spark_conf, **{"--ratings": ratings_path})
    if engine == "spark":
        _spark.hybrid_dataset(
            state, mf_name, encoding, out, table, seed, ratings_path, spark_master, spark_conf
        )
        return
    if (out is None) == (table is None):
        raise HybridrecError("give exactly one of --out FILE.parquet or --table NAME")
    if out is not None:
        output_path(state, out, (".parquet",))
    ws = state.workspace()
    meta = explicit_mf_meta(ws, mf_name)
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
    with working(state, f"building the hybrid dataset -> {out or table}"):
        rows = ws.export_parquet(query, out) if out else ws.create_table(str(table), query)
    if not state.quiet:
        click.echo(f"hybrid dataset: {rows} rows -> {out or table}", err=True)


@hybrid.command(
    "notebook",
    help="Reproduce the notebook's recommender_hybrid exactly: its rows-encoded SQL dataset "
    "with synthetic loyalty/postcode, and a linear regression on it (streamed, one pass), "
    "trained on the MF's training ratings and scored on its hold-out."
    + examples("hybridrec hybrid notebook --mf recommender_16"),
)
@click.option("--mf", "mf_name", required=True, help="Trained MF model whose weights are used.")
@click.option(
    "--seed", type=int, default=42, show_default=True, help="Seed of the synthetic loyalty."
)
@format_option
@click.pass_obj
@guarded
def hybrid_notebook(state: State, mf_name: str, seed: int, fmt: str) -> None:
    from hybridrec.hybrid import notebook_linear

    ws = state.workspace()
    meta = explicit_mf_meta(ws, mf_name)
    result = notebook_linear(ws, mf_name, int(meta["params"]["num_factors"]), seed=seed)
    emit_mapping(result, fmt, title=f"notebook-style linear hybrid on {mf_name}")


@click.command(
    "recommend",
    help="Recommend items to a user, users for an item, or top-N for every user."
    + examples(
        "hybridrec recommend recommender_16 --user 903 --genre Comedy -n 5",
        'hybridrec recommend recommender_16 --user 903 --where "year >= 1990"',
        "hybridrec recommend recommender_16 --item 50 -n 5",
        "hybridrec recommend recommender_16 --all -n 10 --out top10.parquet",
    ),
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
@_spark.engine_options("top-N for every user (--all) of a matrix factorization, on Spark")
@click.pass_obj
@guarded
def recommend(
    state: State,
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
        _spark.recommend_all(
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
    _spark.local_engine_only(engine, spark_master, spark_conf)
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
    target = output_path(state, out, (".parquet",)) if out is not None else None
    model = state.load_model(name)
    if target is not None:
        rows = _write_batches(model.recommend_all(n, exclude_seen=not include_seen), target)
        if not state.quiet:
            click.echo(f"wrote {rows} recommendations to {out}", err=True)
        return
    if item is not None:
        emit(model.recommend_users(item, n, exclude_seen=not include_seen), fmt)
        return
    candidates = state.workspace().item_ids_where(predicate) if predicate else None
    if ratings_file is not None:
        rated = _new_user_file(state, model, name, ratings_file)
        recs = model.recommend_new_user(rated, n, genre=genre, candidates=candidates)
        emit(recs, fmt)
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
    emit(model.recommend(user, n, **options), fmt)


def _check_genre(model: Any, genre: str) -> None:
    """``--genre`` must be a genre of the model's movies (the library answers an unknown one
    with no items; on the command line, as in the server, that is a typo worth naming)."""
    from hybridrec._core.contract import model_genres, unknown_genre

    problem = unknown_genre("--genre", genre, model_genres(model))
    if problem:
        raise HybridrecError(problem)


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


def _new_user_file(state: State, model: Any, name: str, path: str) -> pd.DataFrame:
    """A new user's ratings file (recommend --ratings), checked like :func:`ratings_file`
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


@click.command(
    "predict",
    help="Predict ratings for (userId, movieId) pairs from a CSV or Parquet file."
    + examples(
        "hybridrec predict recommender_16 --pairs pairs.csv",
        "hybridrec predict m --pairs p.parquet --out pred.parquet",
    ),
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
@guarded
def predict(state: State, name: str, pairs: str, out: str | None, fmt: str) -> None:
    from hybridrec.data import read_frame

    if out is not None:
        output_path(state, out, (".csv", ".parquet"), pairs)
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
        emit(result, fmt)
        return

    def write(tmp: Path, parquet: bool) -> None:
        if parquet:
            result.to_parquet(tmp, index=False)
        else:
            result.to_csv(tmp, index=False)

    _write_atomically(out, write)


@click.command(
    "weights",
    help="Show learned weights in BigQuery ML's ML.WEIGHTS shape, or write them all to a file."
    + examples(
        "hybridrec weights recommender_16 --user 903",
        "hybridrec weights recommender_16 --item 50 --format json",
        "hybridrec weights recommender_16 --out weights.parquet",
    ),
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
@guarded
def weights(
    state: State,
    name: str,
    users: tuple[str, ...],
    items: tuple[str, ...],
    out: str | None,
    fmt: str,
) -> None:
    if out is not None:
        output_path(state, out, (".csv", ".parquet"))
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
    emit(frame, fmt, title=f"ML.WEIGHTS: {name}")


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
