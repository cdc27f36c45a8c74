"""Evaluation metrics: BigQuery ML's regression metric names, RMSE, and top-k ranking metrics.

Regression metrics follow ``ML.EVALUATE`` for regression and explicit matrix factorization:
``mean_absolute_error``, ``mean_squared_error``, ``mean_squared_log_error``,
``median_absolute_error``, ``r2_score``, ``explained_variance``; we add ``rmse``.

Ranking metrics use binary relevance: an item is relevant to a user when its held-out rating is
at least a threshold (4 by default). Items the user rated in training are excluded from the
ranked list before scoring (the caller does that), and only users with at least one relevant
held-out item are averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from hybridrec._core.sparse import Csr
from hybridrec._errors import ModelError

__all__ = [
    "RANKING_METRICS",
    "REGRESSION_METRICS",
    "evaluation_data",
    "ranking_metrics",
    "regression_metrics",
    "relevant_rows",
]

REGRESSION_METRICS = (
    "mean_absolute_error",
    "mean_squared_error",
    "mean_squared_log_error",
    "median_absolute_error",
    "r2_score",
    "explained_variance",
    "rmse",
)
RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Rating-prediction metrics with BigQuery ML's names (plus ``rmse``)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"y_true has shape {y.shape} but y_pred has {p.shape}")
    if y.size == 0:
        raise ValueError("cannot evaluate on an empty set")
    err = y - p
    mse = float(np.mean(err**2))
    var_y = float(np.var(y))
    # log1p needs values > -1; ratings are non-negative, clip predictions like BigQuery does.
    log_err = np.log1p(np.clip(y, 0, None)) - np.log1p(np.clip(p, 0, None))
    return {
        "mean_absolute_error": float(np.mean(np.abs(err))),
        "mean_squared_error": mse,
        "mean_squared_log_error": float(np.mean(log_err**2)),
        "median_absolute_error": float(np.median(np.abs(err))),
        "r2_score": 1.0 - mse / var_y if var_y > 0 else 0.0,
        "explained_variance": 1.0 - float(np.var(err)) / var_y if var_y > 0 else 0.0,
        "rmse": float(np.sqrt(mse)),
    }


def ranking_metrics(
    top_items: np.ndarray,
    relevant_indptr: np.ndarray,
    relevant_indices: np.ndarray,
    k: int = 10,
    *,
    item_popularity: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean precision, recall, NDCG, MAP and hit rate at ``k`` over users with relevant items.

    ``top_items[u]`` is user ``u``'s ranked list (item indices, best first, -1 for empty slots);
    the relevant items of user ``u`` are the CSR row ``u`` of
    (``relevant_indptr``, ``relevant_indices``).
    Keys are suffixed with ``@k``. With ``item_popularity`` (per catalogue item, the share of
    training users who rated it) two list-level metrics are added: ``coverage@k``, the share of
    the catalogue that appears in some list, and ``novelty@k``, the mean self-information
    ``-log2(share of users who rated the item)`` of recommended items (higher = less obvious).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    top = np.ascontiguousarray(np.asarray(top_items)[:, :k], dtype=np.int64)
    sums_array, counted = _ranking_sums(
        top,
        np.asarray(relevant_indptr, dtype=np.int64),
        np.asarray(relevant_indices, dtype=np.int64),
        k,
    )
    sums = dict(zip(RANKING_METRICS, sums_array.tolist(), strict=True))
    if counted == 0:
        out = {f"{name}@{k}": float("nan") for name in RANKING_METRICS}
    else:
        out = {f"{name}@{k}": float(value / counted) for name, value in sums.items()}
    if item_popularity is not None:
        out.update(_catalogue_metrics(top, np.asarray(item_popularity, dtype=np.float64), k))
    return out


@njit(cache=True)
def _ranking_sums(
    top: np.ndarray, indptr: np.ndarray, indices: np.ndarray, k: int
) -> tuple[np.ndarray, int]:
    """Per-user precision, recall, NDCG, MAP and hit rate at ``k``, summed over the users with
    relevant items (in RANKING_METRICS order), and how many such users there are."""
    sums = np.zeros(5)
    counted = 0
    width = top.shape[1]
    for u in range(top.shape[0]):
        start, end = indptr[u], indptr[u + 1]
        n_rel = end - start
        if n_rel == 0:
            continue
        counted += 1
        n_hits = 0
        dcg = 0.0
        ap = 0.0
        for j in range(width):
            item = top[u, j]
            if item < 0:
                continue
            for e in range(start, end):
                if indices[e] == item:
                    n_hits += 1
                    dcg += 1.0 / np.log2(j + 2.0)
                    ap += n_hits / (j + 1.0)
                    break
        ideal = 0.0
        for j in range(min(n_rel, k)):
            ideal += 1.0 / np.log2(j + 2.0)
        sums[0] += n_hits / k
        sums[1] += n_hits / n_rel
        sums[2] += dcg / ideal
        if n_hits:
            sums[3] += ap / min(n_rel, k)
            sums[4] += 1.0
    return sums, counted


def _catalogue_metrics(top: np.ndarray, popularity: np.ndarray, k: int) -> dict[str, float]:
    shown = top[top >= 0]
    if shown.size == 0 or popularity.size == 0:
        return {f"coverage@{k}": 0.0, f"novelty@{k}": float("nan")}
    share = np.clip(popularity[shown], 1e-9, 1.0)
    return {
        f"coverage@{k}": float(np.unique(shown).size / popularity.size),
        f"novelty@{k}": float(np.mean(-np.log2(share))),
    }


def relevant_rows(
    users: np.ndarray, items: np.ndarray, values: np.ndarray, threshold: float, n_users: int
) -> tuple[Csr, np.ndarray] | None:
    """The relevant held-out items of aligned user and item *indices* (rating ≥ ``threshold``,
    user and item known to the model) as CSR rows by user index, and the users who have any
    (sorted): what a model ranks and :func:`ranking_metrics` scores. None when nothing is
    relevant."""
    relevant = (values >= threshold) & (users >= 0) & (items >= 0)
    if not relevant.any():
        return None
    rows = Csr.build(users[relevant], items[relevant], values[relevant], n_users, sort_cols=True)
    return rows, np.flatnonzero(np.diff(rows.indptr) > 0)


def evaluation_data(model: Any, data: pd.DataFrame | None) -> pd.DataFrame:
    """``data``, else the model's own hold-out; a :class:`ModelError` when it has none."""
    if data is not None:
        return data
    if len(model.eval_set_) == 0:
        fraction = model.get_params().get("eval_fraction")
        why = (
            f"eval_fraction={fraction} held out none of its few ratings"
            if fraction
            else "it was trained with eval_fraction=0"
        )
        raise ModelError(
            f"the model has no hold-out ratings to evaluate on ({why}): evaluate it on other "
            "ratings (hybridrec evaluate NAME --data FILE, or evaluate(data))"
        )
    return model.eval_set_
