"""The train commands: train mf (explicit or implicit, optionally tuned), train hybrid,
train ranker and train ease. Their ``--engine spark`` branches are in
:mod:`hybridrec.cli._spark`."""

from __future__ import annotations

from typing import Any

import click

from hybridrec._errors import HybridrecError
from hybridrec.cli import _spark
from hybridrec.cli._common import (
    State,
    emit,
    emit_mapping,
    examples,
    explicit_mf,
    format_option,
    guarded,
    ratings_file,
    save_model,
    working,
)


@click.group("train", help="Train a model on the workspace's ratings.")
def train() -> None:
    pass


@train.command(
    "mf",
    help="Train explicit matrix factorization by ALS (BigQuery ML's matrix_factorization)."
    + examples("hybridrec train mf --name recommender_16 --num-factors 16 --l2-reg 0.2"),
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
@guarded
def train_mf(
    state: State,
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
    from hybridrec.mf import (
        ImplicitMatrixFactorization,
        MatrixFactorization,
        tune_mf,
        tuned_params,
    )
    from hybridrec.models import model_dir

    params = {k: v for k, v in options.items() if v is not None}
    ws = state.workspace()
    path = model_dir(ws.models_dir, name)
    if engine == "spark":
        extra = {"tune": tune, "feedback_type": feedback_type, "wals_alpha": wals_alpha}
        _spark.train_mf(
            state, name, path, fmt, params, extra, ratings_path, spark_master, spark_conf
        )
        return
    if spark_master or spark_conf:
        raise HybridrecError("--spark-master and --spark-conf apply to --engine spark only")
    with working(state, "reading ratings"):
        ratings = ws.ratings() if ratings_path is None else ratings_file(ratings_path)
    movies = ws.movies() if ws.exists() else None
    if feedback_type == "implicit":
        explicit_only = sorted({"l2_reg_bias"} & set(params)) + (["--tune"] if tune else [])
        if explicit_only:
            raise HybridrecError(f"{', '.join(explicit_only)} do not apply to implicit feedback")
        if wals_alpha is not None:
            params["wals_alpha"] = wals_alpha
        implicit = ImplicitMatrixFactorization(**params, show_progress=state.show_progress)
        implicit.fit(ratings, items=movies)
        save_model(state, implicit, name, path)
        emit(implicit.training_info(), fmt, title=f"training info: {name}")
        return
    if wals_alpha is not None:
        raise HybridrecError("--wals-alpha applies to --feedback-type implicit only")
    model = MatrixFactorization(**params, show_progress=state.show_progress)
    if tune:
        model = tune_mf(ratings, tune, model)
        if not state.quiet:
            click.echo(f"best of {tune} trials: {tuned_params(model)}", err=True)
    model.fit(ratings, items=movies)
    save_model(state, model, name, path)
    emit(model.training_info(), fmt, title=f"training info: {name}")


@train.command(
    "hybrid",
    help="Train a hybrid model: MF factors + user/item features → a regressor (leak-free by "
    "default: out-of-fold MF features)."
    + examples(
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
@_spark.engine_options(
    "train on Apache Spark with pyspark.ml LinearRegression (linear) or GBTRegressor (boosted)"
)
@format_option
@click.pass_obj
@guarded
def train_hybrid(
    state: State,
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
    from hybridrec.hybrid import HybridRecommender, reusable_mf
    from hybridrec.models import model_dir

    _spark.local_engine_only(engine, spark_master, spark_conf, **{"--ratings": ratings_path})
    if engine == "spark" and max_train_rows is not None:
        raise HybridrecError("--max-train-rows applies to the local engine (Spark trains on all)")
    if engine == "spark":
        _spark.train_hybrid(
            state, name, mf_name, kind, folds, notebook_style, cold_fraction, tune,
            ratings_path, spark_master, spark_conf, fmt,
        )  # fmt: skip
        return
    ws = state.workspace()
    mf = explicit_mf(state, mf_name, name)
    with working(state, "reading ratings"):
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
    model.fit(ratings, ws.users(), ws.movies(), mf=reusable_mf(mf, ratings))
    save_model(state, model, name, model_dir(ws.models_dir, name))
    emit_mapping(model.metrics_, fmt, title=f"evaluation on the hold-out: {name}")


@train.command(
    "ranker",
    help="Train a ranking recommender: implicit-ALS and EASE candidates re-ranked by a learned "
    "ranker (LightGBM learning-to-rank over both scores, MF predicted rating, popularity, "
    "recency, genre affinity). It becomes the default order of `recommend` for this model."
    + examples("hybridrec train ranker --name ranker --mf recommender_16"),
)
@click.option("--name", required=True, help="Name of the ranking model to save.")
@click.option("--mf", "mf_name", default=None, help="Reuse this MF model's options and split.")
@click.option(
    "--candidates",
    type=click.IntRange(min=1, max=10_000),
    default=None,
    help="Candidates per user from each of implicit ALS and EASE [default: 100].",
)
@format_option
@click.pass_obj
@guarded
def train_ranker(
    state: State, name: str, mf_name: str | None, candidates: int | None, fmt: str
) -> None:
    from hybridrec.models import model_dir
    from hybridrec.ranking import RankingRecommender

    ws = state.workspace()
    options: dict[str, Any] = {}
    if mf_name is not None:
        params = explicit_mf(state, mf_name, name).get_params()
        options = {
            "mf_params": params,
            "eval_fraction": params["eval_fraction"],
            "seed": params["seed"],
        }
    if candidates is not None:
        options["n_candidates"] = candidates
    model = RankingRecommender(**options, show_progress=state.show_progress)
    model.fit(ws.ratings(), items=ws.movies())
    save_model(state, model, name, model_dir(ws.models_dir, name))
    emit_mapping(model.metrics_, fmt, title=f"evaluation on the hold-out: {name}")


@train.command(
    "ease",
    help="Train EASE (Steck 2019): an item-item linear model in closed form on who rated what, "
    "a strong ranking baseline; l2_reg is chosen on a validation split unless given. Memory: "
    "one items x items float32 matrix (2.9 GB at 27k items)."
    + examples("hybridrec train ease --name ease", "hybridrec train ease --name e --l2-reg 500"),
)
@click.option("--name", required=True, help="Name of the model to save.")
@click.option("--l2-reg", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option(
    "--max-items",
    type=click.IntRange(min=1),
    default=None,
    help="Keep only the most rated items (the others are never recommended).",
)
@click.option("--eval-fraction", type=click.FloatRange(min=0, max=1, max_open=True), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--ratings", "ratings_path", default=None, help="Train on this Parquet/CSV file.")
@format_option
@click.pass_obj
@guarded
def train_ease(state: State, name: str, ratings_path: str | None, fmt: str, **options: Any) -> None:
    from hybridrec.models import model_dir
    from hybridrec.ranking import EASE

    ws = state.workspace()
    params = {k: v for k, v in options.items() if v is not None}
    with working(state, "reading ratings"):
        ratings = ws.ratings() if ratings_path is None else ratings_file(ratings_path)
    model = EASE(**params, show_progress=state.show_progress)
    model.fit(ratings, items=ws.movies() if ws.exists() else None)
    save_model(state, model, name, model_dir(ws.models_dir, name))
    emit_mapping(
        {"l2_reg": model.l2_reg_, **model.metrics_},
        fmt,
        title=f"evaluation on the hold-out: {name}",
    )
