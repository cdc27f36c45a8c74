"""The ``ML.*`` table functions: each computes an Arrow table from a saved model.

Column names and meanings follow BigQuery ML's documentation; every computation is one
vectorised call of the model's own API (``predict``, ``weights_table``, ``evaluate``,
``training_info``), never a Python call per row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from hybridrec.bigquery import _explain
from hybridrec.bigquery._dialect import MLCall
from hybridrec.bigquery._models import SqlModel, open_model
from hybridrec.bigquery._script import Statement

if TYPE_CHECKING:
    from hybridrec.bigquery._session import Session

__all__ = ["MLCall", "ml_table"]

#: ML.RECOMMEND without input, or for a list of users (items), beyond this many pairs is refused.
MAX_RECOMMEND_PAIRS = 200_000_000


def ml_table(session: Session, con: Any, st: Statement, call: MLCall) -> pa.Table:
    """The result of ``call`` (its input query run on ``con``)."""
    function = call.function
    handler = _HANDLERS.get(function)
    if handler is None:
        raise st.error(f"ML.{function} is not supported", call)
    model_node = call.args["model"]
    name = session.names.model_name(model_node)
    try:
        model = open_model(session.workspace.models_dir, name, session.model_cache)
    except Exception as exc:
        from hybridrec._errors import HybridrecError

        if isinstance(exc, HybridrecError):
            raise st.error(str(exc), model_node) from None
        raise
    data = None
    input_node = call.args.get("input")
    if input_node is not None:
        from hybridrec.bigquery._ddl import query_arrow

        query = (
            input_node.this
            if isinstance(input_node, exp.Subquery)
            else exp.select("*").from_(input_node.copy())
        )
        data = query_arrow(session, con, st, query)
    params = _struct_params(call.args.get("params"), st)
    return handler(model, data, params, st, call)


def _struct_params(node: exp.Expression | None, st: Statement) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, exp.Struct):
        raise st.error("expected STRUCT(value AS name, …) as the last argument", node)
    out: dict[str, Any] = {}
    for item in node.expressions:
        if isinstance(item, exp.Alias | exp.PropertyEQ):
            key = item.alias if isinstance(item, exp.Alias) else item.this.name
            out[key.lower()] = _value(item.this if isinstance(item, exp.Alias) else item.expression)
        else:
            raise st.error("STRUCT arguments need names: STRUCT(0.5 AS threshold)", item)
    return out


def _value(node: exp.Expression) -> Any:
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        return node.name if node.is_string else float(node.name)
    if isinstance(node, exp.Neg):
        return -float(node.this.name)
    if isinstance(node, exp.Array):
        return [_value(e) for e in node.expressions]
    return node.sql()


def _require(model: SqlModel, ok: bool, what: str, st: Statement, call: MLCall) -> None:
    if not ok:
        raise st.error(f"ML.{call.function} {what} (model {model.name} is a {model.kind})", call)


def _column(data: pa.Table, name: str, role: str, st: Statement, call: MLCall) -> np.ndarray:
    found = {c.lower(): c for c in data.column_names}
    if name.lower() not in found:
        raise st.error(
            f"ML.{call.function}: the input has no column {name} (the model's {role}; "
            f"input columns: {', '.join(data.column_names)})",
            call,
        )
    return np.asarray(data.column(found[name.lower()]).to_numpy(zero_copy_only=False))


# ---------------------------------------------------------------------- PREDICT, RECOMMEND
def _predict(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    if data is None:
        raise st.error("ML.PREDICT needs input: ML.PREDICT(MODEL m, (query)) or TABLE t", call)
    if model.is_regressor:
        try:
            scores = model.model.predict_table(data)
        except Exception as exc:
            raise st.error(f"ML.PREDICT: {exc}", call) from None
    else:
        users = _column(data, model.user_col, "user_col", st, call)
        items = _column(data, model.item_col, "item_col", st, call)
        scores = model.scores(users, items)
    return _with_first(data, model.predicted_col, scores)


def _with_first(data: pa.Table, name: str, values: np.ndarray) -> pa.Table:
    rest = data.drop_columns([c for c in data.column_names if c == name])
    return pa.Table.from_arrays(
        [pa.array(values, pa.float64()), *rest.columns], names=[name, *rest.column_names]
    )


def _recommend(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    _require(model, model.is_mf, "needs a matrix factorization model", st, call)
    mf = model.model
    all_users, all_items = mf.user_vocab_.ids, mf.item_vocab_.ids
    if data is not None:
        names = {c.lower() for c in data.column_names}
        has_user, has_item = model.user_col.lower() in names, model.item_col.lower() in names
        if has_user and has_item:
            return _predict(model, data, params, st, call)
        if not has_user and not has_item:
            raise st.error(
                f"ML.RECOMMEND: the input needs column {model.user_col} or {model.item_col}", call
            )
        if data.num_columns != 1:
            raise st.error(
                "ML.RECOMMEND: an input of users (or items) must have that one column only", call
            )
        if has_user:
            all_users = pd.unique(_column(data, model.user_col, "user_col", st, call))
        else:
            all_items = pd.unique(_column(data, model.item_col, "item_col", st, call))
    pairs = len(all_users) * len(all_items)
    if pairs > MAX_RECOMMEND_PAIRS:
        raise st.error(
            f"ML.RECOMMEND would return {pairs:,} rows ({len(all_users):,} users × "
            f"{len(all_items):,} items): give it a query of users, or use "
            "`hybridrec recommend MODEL --all -n N --out FILE` for every user's top N",
            call,
        )
    users = np.repeat(np.asarray(all_users), len(all_items))
    items = np.tile(np.asarray(all_items), len(all_users))
    return pa.table(
        {
            model.user_col: pa.array(users),
            model.item_col: pa.array(items),
            model.predicted_col: pa.array(model.scores(users, items), pa.float64()),
        }
    )


# ---------------------------------------------------------------------- WEIGHTS, EVALUATE, INFO
def _weights(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    if model.is_regressor:
        try:
            return model.model.weights_table()
        except Exception as exc:
            raise st.error(f"ML.WEIGHTS: {exc}", call) from None
    _require(model, model.is_mf, "needs a matrix factorization or linear_reg model", st, call)
    table = model.model.weights_table()
    renamed = pa.compute.replace_substring_regex(
        table.column("processed_input"), "^userId$", model.user_col
    )
    renamed = pa.compute.replace_substring_regex(renamed, "^movieId$", model.item_col)
    return table.set_column(0, "processed_input", renamed)


def _evaluate(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    try:
        if model.is_regressor:
            metrics = model.model.evaluate_table(data)
        elif data is None:
            metrics = model.model.evaluate()
        else:
            frame = pd.DataFrame(
                {
                    "userId": _column(data, model.user_col, "user_col", st, call),
                    "movieId": _column(data, model.item_col, "item_col", st, call),
                    "rating": _column(data, model.rating_col, "rating_col", st, call),
                }
            )
            metrics = model.model.evaluate(frame)
    except Exception as exc:
        from hybridrec._errors import HybridrecError

        if isinstance(exc, HybridrecError | ValueError):
            raise st.error(f"ML.EVALUATE: {exc}", call) from None
        raise
    return pa.table({k: pa.array([float(v)], pa.float64()) for k, v in metrics.items()})


def _training_info(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    _require(model, hasattr(model.model, "training_info"), "has no training log", st, call)
    info = model.model.training_info()
    n = len(info)
    return pa.table(
        {
            "training_run": pa.array(np.zeros(n, np.int64)),
            "iteration": pa.array(info["iteration"].to_numpy(np.int64)),
            "loss": pa.array(info["loss"].to_numpy(np.float64)),
            "eval_loss": pa.array(info["eval_loss"].to_numpy(np.float64)),
            "learning_rate": pa.nulls(n, pa.float64()),
            "duration_ms": pa.array(
                np.rint(info["duration_ms"].to_numpy(np.float64)).astype(np.int64)
            ),
        }
    )


def _trial_info(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    trials = list(getattr(model.model, "tuning_trials_", []) or [])
    _require(model, bool(trials), "needs a model trained with num_trials > 1", st, call)
    best = min(range(len(trials)), key=lambda t: trials[t]["rmse"])
    return pa.table(
        {
            "trial_id": pa.array([int(t["trial"]) + 1 for t in trials], pa.int64()),
            "hyperparameters": pa.array([dict(t["params"]) for t in trials]),
            "hparam_tuning_evaluation_metrics": pa.array(
                [{"mean_squared_error": float(t["rmse"]) ** 2} for t in trials]
            ),
            "training_loss": pa.nulls(len(trials), pa.float64()),
            "eval_loss": pa.array([float(t["rmse"]) ** 2 for t in trials], pa.float64()),
            "status": pa.array(["SUCCEEDED"] * len(trials)),
            "error_message": pa.nulls(len(trials), pa.string()),
            "is_optimal": pa.array([i == best for i in range(len(trials))]),
        }
    )


_HANDLERS = {
    "PREDICT": _predict,
    "RECOMMEND": _recommend,
    "WEIGHTS": _weights,
    "EVALUATE": _evaluate,
    "TRAINING_INFO": _training_info,
    "TRIAL_INFO": _trial_info,
    "EXPLAIN_PREDICT": _explain.explain_predict,
    "GLOBAL_EXPLAIN": _explain.global_explain,
    "FEATURE_INFO": _explain.feature_info,
}
