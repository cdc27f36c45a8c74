"""Cold start for users the MF has not seen: the new-user ridge's training and the feature rows
of a user described only by a few ratings and/or attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hybridrec.hybrid._features import ITEM_COL, RATING_COL, USER_COL, RatingStats
from hybridrec.hybrid._stacking import NewUserRidge, new_user_matrix

if TYPE_CHECKING:
    from hybridrec.hybrid._model import HybridRecommender


def fit_new_user(
    model: HybridRecommender, train: pd.DataFrame, y: np.ndarray, on_fold: Any = None
) -> NewUserRidge | None:
    """The new-user ridge, trained on simulated new users (see :class:`HybridRecommender`)."""
    t_users, t_items = train[USER_COL].to_numpy(), train[ITEM_COL].to_numpy()
    if np.unique(t_users).size < 2:
        return None
    base, group = new_user_matrix(
        train, model._make_mf, max(model.n_folds, 2), model.seed, on_fold=on_fold
    )
    return NewUserRidge.fit(
        base,
        model.user_encoder_.lookup(t_users),
        model.item_encoder_.lookup(t_items),
        y,
        group,
        base_columns=model.base_.columns,
        user_columns=model.user_encoder_.columns,
        item_columns=model.item_encoder_.columns,
        interact=[
            f"{ITEM_COL}.{col}={c}"
            for col, cats in model.item_encoder_.multi_hot.items()
            for c in cats
        ],
    )


def new_user_inputs(
    model: HybridRecommender, x: np.ndarray
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, list[str]]:
    """The new-user model's arguments (base features, their names, user attributes, item
    attributes, their names) for rows laid out like :meth:`HybridRecommender.features`."""
    x = np.asarray(x, dtype=np.float64)
    n_base, n_user = len(model.base_.columns), len(model.user_encoder_.columns)
    return (
        x[:, :n_base],
        model.base_.columns,
        x[:, n_base : n_base + n_user],
        x[:, n_base + n_user :],
        model.item_encoder_.columns,
    )


def new_user_features(
    model: HybridRecommender,
    ratings: pd.DataFrame | dict[Any, float] | None,
    attributes: dict[str, Any] | None,
    item_ids: np.ndarray,
) -> np.ndarray:
    """The feature rows of ``item_ids`` for a user who is not in the model: MF fold-in from
    ``ratings`` (when given) and the user's ``attributes`` (when given)."""
    mf = model.mf_
    n = item_ids.size
    i = mf.item_vocab_.index_of(item_ids)
    bi = mf.item_bias_[i]
    if ratings is not None and len(as_rating_dict(ratings)):
        factors, bias = mf.fold_in(ratings)
        low, high = mf.rating_range_
        pred = np.clip(mf.global_mean_ + bias + bi + mf.item_factors_[i] @ factors, low, high)
        rated = np.asarray(list(as_rating_dict(ratings).values()), dtype=np.float64)
        stats = (
            RatingStats.fit(pd.DataFrame({USER_COL: 0, ITEM_COL: 0, RATING_COL: rated}), USER_COL)
            .table.to_numpy()[0]
            .copy()
        )
        # the damped mean must shrink toward the training mean, not this user's own mean
        stats[1] = (rated.sum() + 5 * model.base_.user_stats.global_mean) / (rated.size + 5)
        mf_cols = np.column_stack([pred, np.full(n, bias), bi, np.ones(n), np.ones(n)])
        user_beh = np.tile(stats, (n, 1))
    else:
        pred = mf.predict_indices(np.full(n, -1, dtype=np.int32), i)
        mf_cols = np.column_stack([pred, np.zeros(n), bi, np.zeros(n), np.ones(n)])
        user_beh = model.base_.user_stats.unknown(n)
    item_beh = model.base_.item_stats.lookup(item_ids)
    enc = model.user_encoder_
    if attributes:
        row = pd.DataFrame([{**attributes, USER_COL: "__new__"}])
        user_attr = np.tile(
            enc.transform(row).reindex(columns=enc.columns).fillna(0).to_numpy(), (n, 1)
        )
    else:
        user_attr = enc.lookup(np.array(["__new__"] * n, dtype=object))
    item_attr = model.item_encoder_.lookup(item_ids)
    return np.hstack([mf_cols, user_beh, item_beh, user_attr, item_attr]).astype(np.float32)


def as_rating_dict(ratings: pd.DataFrame | dict[Any, float]) -> dict[Any, float]:
    if isinstance(ratings, dict):
        return ratings
    return dict(zip(ratings[ITEM_COL].tolist(), ratings[RATING_COL].tolist(), strict=True))
