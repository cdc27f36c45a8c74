"""The companion BigQuery ML notebook (als_bqml), end to end, on real MovieLens 100K."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrec._output import render, render_mapping
from hybridrec.mf import MatrixFactorization
from hybridrec.models import model_dir
from hybridrec.ranking import RankingRecommender

DEMO_MODEL = "recommender_16"
DEMO_RANKER = "ranker"
DEMO_USER = 903
DEMO_ITEM = 50  # Star Wars (1977); the notebook's 96481 is not in MovieLens 100K


def run_demo(workspace: Any, *, echo: Callable[[str], Any], show_progress: bool = False) -> None:
    """Load ml-100k, train a 16-factor model, then show what the notebook shows."""
    started = time.perf_counter()

    def step(title: str, sql: str) -> None:
        echo(f"\n== {title}\n   BigQuery ML: {sql}")

    step("Load MovieLens 100K into the workspace", "bq load movielens.ratings / movielens.movies")
    summary = workspace.load("ml-100k", show_progress=show_progress)
    echo(render_mapping(summary.as_dict(), "table"))

    step(
        "Train explicit matrix factorization by ALS",
        f"CREATE MODEL {DEMO_MODEL} OPTIONS(model_type='matrix_factorization', num_factors=16)",
    )
    model = MatrixFactorization(num_factors=16, show_progress=show_progress)
    model.fit(workspace.ratings(), items=workspace.movies())
    model.save(model_dir(workspace.models_dir, DEMO_MODEL))
    echo(render(model.training_info(), "table", title="ML.TRAINING_INFO"))

    step(
        f"Top-5 Comedy for user {DEMO_USER}",
        "ML.PREDICT(... WHERE g = 'Comedy') ORDER BY predicted_rating DESC LIMIT 5",
    )
    echo(render(model.recommend(DEMO_USER, 5, genre="Comedy"), "table"))

    step(
        f"Target movie {DEMO_ITEM} to the 5 most likely users", "ML.PREDICT over all users, LIMIT 5"
    )
    title = _title(workspace, DEMO_ITEM)
    echo(render(model.recommend_users(DEMO_ITEM, 5), "table", title=f"movie {DEMO_ITEM}: {title}"))

    step(
        "Learned weights of one user and one movie", "ML.WEIGHTS(MODEL ...) WHERE feature IN (...)"
    )
    echo(render(model.weights(users=[DEMO_USER], items=[DEMO_ITEM]), "table"))
    echo("   the same table in SQL: hybridrec sql \"SELECT * FROM ml_weights('recommender_16')\"")
    sql_rows = workspace.sql(
        f"SELECT processed_input, feature, intercept FROM ml_weights('{DEMO_MODEL}') "
        f"WHERE (processed_input = 'userId' AND feature = '{DEMO_USER}') "
        "OR processed_input = 'global__intercept__'"
    )
    echo(render(sql_rows, "table"))

    step("Evaluate on the 20 % hold-out", f"ML.EVALUATE(MODEL {DEMO_MODEL})")
    echo(render_mapping(model.evaluate(), "table"))

    step(
        f"Beyond the notebook: a ranking model, and user {DEMO_USER}'s top-5 Comedy again",
        "feedback_type='IMPLICIT' candidates, re-ranked by a learned ranker",
    )
    ranker = RankingRecommender(show_progress=show_progress).fit(
        workspace.ratings(), items=workspace.movies()
    )
    ranker.save(model_dir(workspace.models_dir, DEMO_RANKER))
    echo(
        render(ranker.recommend(DEMO_USER, 5, genre="Comedy"), "table", title="ranked by relevance")
    )
    echo(
        f"   ranking on the hold-out: precision@10 {ranker.metrics_['precision@10']:.3f}, "
        f"NDCG@10 {ranker.metrics_['ndcg@10']:.3f} (the rating model above: "
        f"{model.metrics_['precision@10']:.3f}, {model.metrics_['ndcg@10']:.3f})"
    )

    step("Look at the model: an HTML report with plots", "(the notebook has none)")
    report = _write_report(workspace, model, show_progress)
    echo(f"   report: {report}" if isinstance(report, Path) else f"   no report: {report}")
    echo(f"\ndemo finished in {time.perf_counter() - started:.1f} s; workspace: {workspace.path}")


def _write_report(workspace: Any, model: MatrixFactorization, show_progress: bool) -> Path | str:
    """The report on the demo's model, in the workspace; the reason instead if it cannot be."""
    from hybridrec._errors import HybridrecError
    from hybridrec.report import write_report

    try:
        return write_report(
            {DEMO_MODEL: model},
            Path(workspace.path) / "report.html",
            ratings=workspace.ratings(),
            title=f"hybridrec demo: {DEMO_MODEL} on MovieLens 100K",
            show_progress=show_progress,
        )
    except HybridrecError as exc:  # e.g. matplotlib is not installed
        return str(exc)


def _title(workspace: Any, movie_id: int) -> str:
    movies: pd.DataFrame = workspace.movies()
    match = movies.loc[movies["movieId"] == movie_id, "title"]
    return str(match.iloc[0]) if len(match) else "?"
