"""``ML.EXPLAIN_PREDICT``, ``ML.GLOBAL_EXPLAIN`` and ``ML.FEATURE_INFO`` of the regressors.

Attributions are the regressor's own (exact Shapley values of a linear model, LightGBM's
TreeSHAP for boosted trees, DeepLIFT for the DNN), summed per input column, so that a one-hot
string or an expanded array counts as the one feature it is in the query, as in BigQuery ML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hybridrec.bigquery._dialect import MLCall
from hybridrec.bigquery._script import Statement

if TYPE_CHECKING:
    from hybridrec.bigquery._models import SqlModel

__all__ = ["explain_predict", "feature_info", "global_explain"]


def _regressor(model: SqlModel, st: Statement, call: MLCall) -> None:
    if not model.is_regressor:
        raise st.error(
            f"ML.{call.function} needs a linear_reg, boosted_tree_regressor or dnn_regressor "
            f"model (model {model.name} is a {model.kind})",
            call,
        )


def explain_predict(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    """``predicted_<label>``, ``top_feature_attributions`` (``{feature, attribution}``, the
    ``top_k_features`` largest in absolute value, default 5), ``baseline_prediction_value``,
    ``prediction_value``, ``approximation_error``, then the input columns."""
    _regressor(model, st, call)
    if data is None:
        raise st.error("ML.EXPLAIN_PREDICT needs input: (query) or TABLE t", call)
    top_k = int(params.get("top_k_features", 5))
    try:
        names, contrib = model.model.contributions_table(data)
        prediction = model.model.predict_table(data)
    except Exception as exc:
        raise st.error(f"ML.EXPLAIN_PREDICT: {exc}", call) from None
    features, baseline = contrib[:, :-1], contrib[:, -1]
    order = np.argsort(-np.abs(features), axis=1, kind="stable")[:, :top_k]
    n, k = order.shape
    attributions = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
        pa.StructArray.from_arrays(
            [
                pa.array(np.asarray(names, dtype=object)[order.ravel()], pa.string()),
                pa.array(np.take_along_axis(features, order, axis=1).ravel(), pa.float64()),
            ],
            names=["feature", "attribution"],
        ),
    )
    approximation = np.abs(features.sum(axis=1) + baseline - prediction)
    columns = {
        model.predicted_col: pa.array(prediction, pa.float64()),
        "top_feature_attributions": attributions,
        "baseline_prediction_value": pa.array(baseline, pa.float64()),
        "prediction_value": pa.array(prediction, pa.float64()),
        "approximation_error": pa.array(approximation, pa.float64()),
    }
    rest = data.drop_columns([c for c in data.column_names if c in columns])
    return pa.Table.from_arrays(
        [*columns.values(), *rest.columns], names=[*columns, *rest.column_names]
    )


def global_explain(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    """``feature``, ``attribution``: the regressor's global importance per input column,
    largest first (BigQuery asks for ``enable_global_explain``; hybridrec always has it)."""
    _regressor(model, st, call)
    importance = model.model.global_importance()
    ranked = sorted(importance.items(), key=lambda kv: -kv[1])
    return pa.table(
        {
            "feature": pa.array([k for k, _ in ranked], pa.string()),
            "attribution": pa.array([v for _, v in ranked], pa.float64()),
        }
    )


def feature_info(
    model: SqlModel, data: pa.Table | None, params: dict[str, Any], st: Statement, call: MLCall
) -> pa.Table:
    """``input, min, max, mean, median, stddev, category_count, null_count, dimension`` of
    each input column, from the training data."""
    _regressor(model, st, call)
    rows = list(model.meta.get("feature_info") or [])
    schema = pa.schema(
        [
            ("input", pa.string()),
            ("min", pa.float64()),
            ("max", pa.float64()),
            ("mean", pa.float64()),
            ("median", pa.float64()),
            ("stddev", pa.float64()),
            ("category_count", pa.int64()),
            ("null_count", pa.int64()),
            ("dimension", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
