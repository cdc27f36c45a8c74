"""Out-of-fold matrix-factorization features: the leak-free half of the hybrid model.

A regressor trained on features from an MF model that saw the very ratings it is asked to
predict learns to trust those features far too much (the MF fits its training ratings much
better than new ones). So, as in stacking, the features of each training rating come from an
MF fitted on the *other* folds, and the behavioural statistics likewise; at prediction time both
come from the MF fitted on all training ratings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybridrec.hybrid._features import ITEM_COL, USER_COL, RatingStats
from hybridrec.mf import MatrixFactorization

MF_FEATURES = (
    "mf.prediction",
    "mf.user_intercept",
    "mf.item_intercept",
    "mf.known_user",
    "mf.known_item",
)


@dataclass
class BaseFeatures:
    """The rating-derived inputs of the regressor: an MF model and behaviour statistics."""

    mf: MatrixFactorization
    user_stats: RatingStats
    item_stats: RatingStats

    @classmethod
    def fit(cls, ratings: pd.DataFrame, make_mf: Callable[[], MatrixFactorization]) -> BaseFeatures:
        mf = make_mf().fit(ratings)
        return cls.from_mf(mf, ratings)

    @classmethod
    def from_mf(cls, mf: MatrixFactorization, ratings: pd.DataFrame) -> BaseFeatures:
        return cls(mf, RatingStats.fit(ratings, USER_COL), RatingStats.fit(ratings, ITEM_COL))

    @property
    def columns(self) -> list[str]:
        return [*MF_FEATURES, *self.user_stats.columns, *self.item_stats.columns]

    def matrix(
        self,
        users: np.ndarray,
        items: np.ndarray,
        *,
        cold_users: np.ndarray | None = None,
        cold_items: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature rows for (user, item) pairs; rows flagged cold are built as if the user
        (item) were unknown, which teaches the regressor what cold start looks like."""
        mf = self.mf
        u = mf.user_vocab_.index_of(users)
        i = mf.item_vocab_.index_of(items)
        if cold_users is not None:
            u = np.where(cold_users, -1, u)
        if cold_items is not None:
            i = np.where(cold_items, -1, i)
        pred = mf._predict_indices(u, i)
        bu = np.where(u >= 0, mf.user_bias_[np.maximum(u, 0)], 0.0)
        bi = np.where(i >= 0, mf.item_bias_[np.maximum(i, 0)], 0.0)
        user_beh = self.user_stats.lookup(users)
        item_beh = self.item_stats.lookup(items)
        if cold_users is not None and cold_users.any():
            user_beh[cold_users] = self.user_stats.unknown(int(cold_users.sum()))
        if cold_items is not None and cold_items.any():
            item_beh[cold_items] = self.item_stats.unknown(int(cold_items.sum()))
        return np.column_stack(
            [pred, bu, bi, (u >= 0).astype(float), (i >= 0).astype(float), user_beh, item_beh]
        )


def out_of_fold_matrix(
    train: pd.DataFrame,
    make_mf: Callable[[], MatrixFactorization],
    n_folds: int,
    seed: int,
    cold_users: np.ndarray,
    cold_items: np.ndarray,
    on_fold: Callable[[], None] | None = None,
) -> np.ndarray:
    """Base-feature rows for every training rating, each from models fitted without its fold."""
    folds = np.random.default_rng([seed, 1]).permutation(len(train)) % n_folds
    users = train[USER_COL].to_numpy()
    items = train[ITEM_COL].to_numpy()
    out: np.ndarray | None = None
    for fold in range(n_folds):
        inside = folds == fold
        base = BaseFeatures.fit(train.loc[~inside], make_mf)
        block = base.matrix(
            users[inside],
            items[inside],
            cold_users=cold_users[inside],
            cold_items=cold_items[inside],
        )
        if out is None:
            out = np.empty((len(train), block.shape[1]))
        out[inside] = block
        if on_fold is not None:
            on_fold()
    assert out is not None
    return out
