"""The BigQuery ML notebook (als_bqml_hybrid, with its companion als_bqml), end to end, on real
MovieLens 100K: the MF model and its queries, then the hybrid dataset and hybrid models."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrec._core.output import render, render_mapping
from hybridrec.hybrid import HybridRecommender, hybrid_dataset_sql, notebook_linear
from hybridrec.mf import MatrixFactorization
from hybridrec.models import model_dir
from hybridrec.ranking import RankingRecommender

DEMO_MODEL = "recommender_16"
DEMO_RANKER = "ranker"
DEMO_HYBRID = "hybrid_gbm"
DEMO_NEW_USER = {"age": 24, "gender": "F", "occupation": "student"}
DEMO_USER = 903
DEMO_ITEM = 50  # Star Wars (1977); the notebook's 96481 is not in MovieLens 100K


def run_demo(workspace: Any, *, echo: Callable[[str], Any], show_progress: bool = False) -> None:
    """Load ml-100k, train a 16-factor model, then show what the notebook shows."""
    started = time.perf_counter()

    def step(title: str, sql: str) -> None:
        _step(echo, title, sql)

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
    echo("   (ordered by the raw score; predictions are clipped to the rating scale)")

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

    _hybrid_steps(workspace, model, echo, show_progress)

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
    echo(f"\ndemo finished in {time.perf_counter() - started:.1f} s; workspace: {workspace.path}")
    # the last line: what to open next
    echo(f"report: {report}" if isinstance(report, Path) else f"no report: {report}")


def _step(echo: Callable[[str], Any], title: str, sql: str) -> None:
    echo(f"\n== {title}\n   BigQuery ML: {sql}")


def _hybrid_steps(
    workspace: Any,
    model: MatrixFactorization,
    echo: Callable[[str], Any],
    show_progress: bool,
) -> None:
    """The notebook's second half: its hybrid dataset and linear model, then the leak-free
    hybrid on real user attributes, compared on the same hold-out, and a brand-new user."""
    _step(
        echo,
        "The hybrid dataset: MF factors + user and movie features + the rating",
        f"CREATE TABLE movielens.hybrid_dataset AS ... ML.WEIGHTS(MODEL {DEMO_MODEL}) ... "
        "(one row per rating and genre)",
    )
    sql = hybrid_dataset_sql(DEMO_MODEL, 16, workspace.genres(), [], encoding="rows")
    preview = workspace.sql(
        f"SELECT movieId, CAST(rating AS INTEGER) AS rating, g AS genre, "
        f"CAST(round(loyalty) AS INTEGER) AS loyalty, postcode, u1, p1 "
        f"FROM ({sql}) WHERE userId = {DEMO_USER} ORDER BY movieId, genre LIMIT 4"
    )
    title = f"hybrid_dataset, 4 rows of user {DEMO_USER} (u2..u16, p2..p16 not shown)"
    echo(render(preview, "table", title=title))

    _step(
        echo,
        "The notebook's hybrid model, exactly",
        "CREATE MODEL recommender_hybrid OPTIONS(model_type='linear_reg') (25-30 minutes)",
    )
    notebook = notebook_linear(workspace, DEMO_MODEL, 16)
    echo(
        f"   linear_reg on {notebook['rows_train']:,} rows x {notebook['features']} features "
        f"in {notebook['seconds']:.1f} s: hold-out RMSE {notebook['rmse_eval']:.4f}, worse than "
        f"the MF's {model.metrics_['rmse']:.4f}\n"
        "   (a linear model over concatenated factors cannot form their dot product)"
    )

    _step(
        echo,
        "Beyond the notebook: a leak-free hybrid on real user attributes",
        "boosted_tree_regressor on MF features fitted out of fold + age, gender, occupation, "
        "zip, genres, year",
    )
    params = model.get_params()
    hybrid = HybridRecommender(
        "boosted",
        mf_params=params,
        eval_fraction=params["eval_fraction"],
        seed=params["seed"],
        show_progress=show_progress,
    ).fit(workspace.ratings(), workspace.users(), workspace.movies(), mf=model)
    hybrid.save(model_dir(workspace.models_dir, DEMO_HYBRID))
    rows = [
        ("notebook's linear_reg (leaky, synthetic users)", notebook["rmse_eval"], None),
        (f"MF {DEMO_MODEL}", model.metrics_["rmse"], model.metrics_["ndcg@10"]),
        (f"leak-free hybrid {DEMO_HYBRID}", hybrid.metrics_["rmse"], hybrid.metrics_["ndcg@10"]),
    ]
    table = pd.DataFrame(rows, columns=["model", "rmse", "ndcg@10"])
    echo(render(table, "table", title="the same 20 % hold-out"))
    top = hybrid.recommend(DEMO_USER, 5, genre="Comedy")
    echo(render(top, "table", title=f"user {DEMO_USER}'s top-5 Comedy, by the hybrid"))
    attributes = ", ".join(f"{k}={v}" for k, v in DEMO_NEW_USER.items())
    echo(
        render(
            hybrid.recommend_new_user(None, 5, attributes=DEMO_NEW_USER),
            "table",
            title=f"a new user with no ratings: {attributes}",
        )
    )
    echo("   the same from the CLI: hybridrec train hybrid --mf recommender_16 --kind boosted")


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
