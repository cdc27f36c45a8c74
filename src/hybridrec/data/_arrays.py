"""A ratings frame as the arrays the models train on, and the fingerprint a model keeps of them."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._errors import DataError
from hybridrec.data._ratings import frame_rows, id_values, rating_values

__all__ = ["fingerprint", "ratings_arrays"]


def ratings_arrays(ratings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, ratings as float32)`` of a ratings frame; a :class:`DataError` naming
    the row (index label) of the first missing or non-scalar id or missing, non-numeric or
    non-finite rating (see :mod:`hybridrec.data._ratings`)."""
    if not isinstance(ratings, pd.DataFrame):
        raise DataError(f"ratings must be a DataFrame, got {type(ratings).__name__}")
    missing = [c for c in (USER_COL, ITEM_COL, RATING_COL) if c not in ratings.columns]
    if missing:
        raise DataError(
            f"ratings need columns userId, movieId, rating; missing {', '.join(missing)}"
        )
    if len(ratings) == 0:
        raise DataError("ratings are empty")
    where = frame_rows(ratings)
    values = rating_values(ratings[RATING_COL], where, scale=False)
    users = id_values(ratings[USER_COL], USER_COL, where)
    items = id_values(ratings[ITEM_COL], ITEM_COL, where)
    return users, items, values.astype(np.float32)


def fingerprint(users: np.ndarray, items: np.ndarray, values: np.ndarray) -> str:
    """``"<number of ratings>:<BLAKE2b digest>"`` of the training arrays: saved with a model so
    that two models can be told apart as trained on the same ratings or not."""
    digest = hashlib.blake2b(digest_size=16)
    for arr in (users, items, values):
        digest.update(
            np.ascontiguousarray(arr).tobytes()
            if arr.dtype != object
            else str(arr.tolist()).encode()
        )
    return f"{values.size}:{digest.hexdigest()}"
