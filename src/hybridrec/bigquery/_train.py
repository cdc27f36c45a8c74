"""``CREATE [OR REPLACE] MODEL [IF NOT EXISTS] m OPTIONS(…) AS query``.

The query runs in DuckDB and its result reaches the estimators as columns (one Arrow → NumPy /
pandas copy), never row by row; the estimators are the ones the CLI trains
(:class:`~hybridrec.mf.MatrixFactorization`, :class:`~hybridrec.mf.ImplicitMatrixFactorization`,
:class:`~hybridrec.hybrid.FeatureRegressor`), and the model is saved where ``hybridrec`` finds
models, by the atomic artifact writer.

Options follow BigQuery ML (names case-insensitive); ``hybridrec_<param>`` passes any other
constructor parameter of the hybridrec estimator (documented in docs/bigquery-sql.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlglot import exp

from hybridrec.bigquery._options import Options, read_options
from hybridrec.bigquery._script import Statement
from hybridrec.models import model_dir

if TYPE_CHECKING:
    from hybridrec.bigquery._session import Session

__all__ = ["create_model"]

MF_OPTIONS = {
    "model_type",
    "feedback_type",
    "user_col",
    "item_col",
    "rating_col",
    "num_factors",
    "l2_reg",
    "wals_alpha",
    "max_iterations",
    "early_stop",
    "min_rel_progress",
    "data_split_method",
    "data_split_eval_fraction",
    "data_split_col",
    "num_trials",
    "max_parallel_trials",
    "hparam_tuning_algorithm",
    "hparam_tuning_objectives",
    "data_split_test_fraction",
}
REGRESSORS = {"linear_reg": "linear", "boosted_tree_regressor": "boosted", "dnn_regressor": "dnn"}


def create_model(session: Session, st: Statement, tree: exp.Create) -> None:
    target = tree.this
    if not isinstance(target, exp.Table):
        raise st.error("CREATE MODEL needs a model name", tree)
    name = session.names.model_name(target)
    path = model_dir(session.workspace.models_dir, name)
    if path.is_dir():
        if tree.args.get("exists"):
            return
        if not tree.args.get("replace"):
            raise st.error(
                f"model {name} already exists (CREATE OR REPLACE MODEL replaces it)", target
            )
    options = read_options(tree.args.get("properties"), st)
    query = tree.expression
    if query is None:
        raise st.error(
            "CREATE MODEL needs AS query (remote and imported models are not supported)", tree
        )
    model_type = options.text("model_type", None)
    if model_type is None:
        raise st.error("CREATE MODEL needs OPTIONS(model_type = …)", tree)
    model_type = model_type.lower()
    if model_type == "matrix_factorization":
        _train_mf(session, st, options, query, path)
    elif model_type in REGRESSORS:
        _train_regressor(session, st, options, query, path, REGRESSORS[model_type])
    else:
        raise st.error(
            f"unknown model_type {model_type!r} (supported: matrix_factorization, "
            f"{', '.join(REGRESSORS)})",
            options.node("model_type"),
        )


# ---------------------------------------------------------------------- matrix factorization
def _train_mf(
    session: Session, st: Statement, options: Options, query: exp.Expression, path: Any
) -> None:
    from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization, tune_mf

    options.check_known(MF_OPTIONS, "matrix_factorization")
    user_col = options.text("user_col", "user")
    item_col = options.text("item_col", "item")
    rating_col = options.text("rating_col", "rating")
    feedback = options.text("feedback_type", "explicit").lower()
    if feedback not in ("explicit", "implicit"):
        raise st.error(
            f"feedback_type must be 'EXPLICIT' or 'IMPLICIT', got {feedback!r}",
            options.node("feedback_type"),
        )
    estimator = ImplicitMatrixFactorization if feedback == "implicit" else MatrixFactorization
    params = options.hybridrec_params(set(estimator().get_params()) - {"show_progress"})
    ratings = _ratings(session, st, query, user_col, item_col, rating_col)
    space = {}
    for option, param in (
        ("num_factors", "num_factors"),
        ("l2_reg", "l2_reg"),
        ("wals_alpha", "wals_alpha"),
    ):
        value = options.number_or_space(option)
        if callable(value):
            space[param] = value
        elif value is not None:
            params[param] = int(value) if param == "num_factors" else float(value)
    for option in ("max_iterations",):
        if options.has(option):
            params[option] = int(options.number(option))
    if options.has("early_stop"):
        params["early_stop"] = options.boolean("early_stop")
    if options.has("min_rel_progress"):
        params["min_rel_progress"] = float(options.number("min_rel_progress"))
    params["eval_fraction"] = _eval_fraction(st, options, len(ratings))
    if feedback == "implicit":
        if "wals_alpha" in space or options.has("num_trials"):
            raise st.error(
                "num_trials is not supported for implicit feedback", options.node("num_trials")
            )
        _refuse_non_random(st, options)
        model: Any = ImplicitMatrixFactorization(**params)
    else:
        if "wals_alpha" in params:
            raise st.error(
                "wals_alpha applies to feedback_type = 'IMPLICIT' only", options.node("wals_alpha")
            )
        _refuse_non_random(st, options)
        n_trials = int(options.number("num_trials")) if options.has("num_trials") else 0
        if space and n_trials < 2:
            raise st.error(
                "HPARAM_RANGE / HPARAM_CANDIDATES need num_trials > 1",
                options.node("num_trials") or options.node("l2_reg"),
            )
        model = MatrixFactorization(**params)
        if n_trials > 1:  # the tuned copy carries its trials (ML.TRIAL_INFO) through fit
            model = tune_mf(ratings, n_trials, model, space=space)
    movies = _movies_for(session, item_col)
    model.fit(ratings, items=movies)
    columns = {
        "user_col": user_col,
        "item_col": item_col,
        "rating_col": rating_col,
        "model_type": "matrix_factorization",
        "feedback_type": feedback,
    }
    model.save(path, extra_meta={"bigquery": columns})


def _ratings(
    session: Session,
    st: Statement,
    query: exp.Expression,
    user_col: str,
    item_col: str,
    rating_col: str,
) -> pd.DataFrame:
    """The query's user, item and rating columns as hybridrec's ratings frame."""
    from hybridrec.bigquery._ddl import query_arrow

    select = exp.select(
        exp.column(user_col, quoted=True).as_("userId"),
        exp.column(item_col, quoted=True).as_("movieId"),
        exp.column(rating_col, quoted=True).as_("rating"),
    ).from_(exp.Subquery(this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier("q"))))
    with session.connection(write=False) as con:
        table = query_arrow(session, con, st, select)
    rating_type = table.schema.field("rating").type
    import pyarrow as pa

    if not (
        pa.types.is_integer(rating_type)
        or pa.types.is_floating(rating_type)
        or pa.types.is_decimal(rating_type)
    ):
        raise st.error(f"rating_col {rating_col} must be numeric, not {rating_type}")
    frame = table.to_pandas()
    frame["rating"] = frame["rating"].astype(np.float32)
    return frame


def _movies_for(session: Session, item_col: str) -> pd.DataFrame | None:
    """Titles and genres for the model when its items are the workspace's movies."""
    if item_col.lower() != "movieid":
        return None
    try:
        movies: pd.DataFrame = session.workspace.movies()
    except Exception:
        return None
    return movies


def _eval_fraction(st: Statement, options: Options, n_rows: int) -> float:
    """BigQuery's DATA_SPLIT_METHOD: AUTO_SPLIT holds out nothing below 500 rows, 20 % up to
    50,000 rows and 10,000 rows above; RANDOM holds out DATA_SPLIT_EVAL_FRACTION (0.2)."""
    method = options.text("data_split_method", "auto_split").lower()
    fraction = (
        options.number("data_split_eval_fraction")
        if options.has("data_split_eval_fraction")
        else None
    )
    if method == "no_split":
        return 0.0
    if method == "random":
        return 0.2 if fraction is None else float(fraction)
    if method == "auto_split":
        if fraction is not None:
            return float(fraction)
        if n_rows < 500:
            return 0.0
        return 0.2 if n_rows <= 50_000 else 10_000 / n_rows
    if method in ("custom", "seq"):
        return 0.2  # refused by _refuse_non_random
    raise st.error(f"unknown data_split_method {method!r}", options.node("data_split_method"))


def _refuse_non_random(st: Statement, options: Options) -> None:
    method = options.text("data_split_method", "auto_split").lower()
    if method in ("custom", "seq") or options.has("data_split_col"):
        raise st.error(
            "data_split_method 'CUSTOM' / 'SEQ' and data_split_col are not supported for "
            "matrix factorization: use 'RANDOM', 'AUTO_SPLIT' or 'NO_SPLIT'",
            options.node("data_split_method") or options.node("data_split_col"),
        )


# ---------------------------------------------------------------------- regressors
def _train_regressor(
    session: Session, st: Statement, options: Options, query: exp.Expression, path: Any, kind: str
) -> None:
    from hybridrec.bigquery._regress import train_regressor

    train_regressor(session, st, options, query, path, kind)
