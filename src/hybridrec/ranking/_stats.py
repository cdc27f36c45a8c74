"""Per-item and per-user statistics the ranker's features read (from the training ratings)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hybridrec.ranking._features import SECONDS_PER_YEAR, ItemStats

#: a rating is "recent" when it is in the last RECENT share of the training period
RECENT = 0.1
#: prior weight (in ratings) of the global mean in an item's shrunk mean rating
PRIOR = 5.0


def item_stats(ratings: pd.DataFrame, vocab: Any, items_meta: pd.DataFrame) -> ItemStats:
    """Popularity (log of the rating count), mean rating shrunk towards the global mean, share
    of the item's ratings in the last :data:`RECENT` of the period, years since its first
    rating and the time of that rating (NaN without timestamps), and the genre matrix, in the
    order of ``vocab``."""
    index = vocab.index_of(ratings["movieId"].to_numpy())
    known = index >= 0
    index = index[known]
    values = ratings["rating"].to_numpy(np.float64)[known]
    n = len(vocab)
    counts = np.bincount(index, minlength=n).astype(np.float64)
    sums = np.bincount(index, weights=values, minlength=n)
    mean = float(values.mean()) if values.size else 0.0
    recent = np.full(n, np.nan)
    age = np.full(n, np.nan)
    first_rated = np.full(n, np.nan)
    stamps = _timestamps(ratings)[known]
    finite = np.isfinite(stamps)
    if finite.any():
        last, first = float(stamps[finite].max()), float(stamps[finite].min())
        cut = last - RECENT * (last - first)
        is_recent = finite & (stamps >= cut)
        timed = np.bincount(index[finite], minlength=n).astype(np.float64)
        recent = np.bincount(index[is_recent], minlength=n) / np.maximum(timed, 1.0)
        first_rated = _extreme(index[finite], stamps[finite], n, np.minimum)
        age = (last - first_rated) / SECONDS_PER_YEAR
    return ItemStats(
        popularity_log=np.log1p(counts),
        mean_rating=(sums + PRIOR * mean) / (counts + PRIOR),
        recent_share=recent,
        age_years=age,
        first_rated=first_rated,
        genres=genre_matrix(items_meta, n),
    )


def user_activity(ratings: pd.DataFrame, vocab: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every user's first and last rating time (seconds, ``vocab`` order; NaN without
    timestamps)."""
    index = vocab.index_of(ratings["userId"].to_numpy())
    stamps = _timestamps(ratings)
    keep = (index >= 0) & np.isfinite(stamps)
    n = len(vocab)
    return (
        _extreme(index[keep], stamps[keep], n, np.minimum),
        _extreme(index[keep], stamps[keep], n, np.maximum),
    )


def _timestamps(ratings: pd.DataFrame) -> np.ndarray:
    """The ratings' timestamps as float64 seconds (all NaN without a timestamp column)."""
    if "timestamp" not in ratings.columns:
        return np.full(len(ratings), np.nan)
    return ratings["timestamp"].to_numpy(np.float64)


def _extreme(index: np.ndarray, stamps: np.ndarray, n: int, ufunc: Any) -> np.ndarray:
    """The ``ufunc`` (``np.minimum`` / ``np.maximum``) of each row's stamps; NaN for none."""
    start = np.inf if ufunc is np.minimum else -np.inf
    out = np.full(n, start)
    ufunc.at(out, index, stamps)
    return np.where(np.isfinite(out), out, np.nan)


def genre_matrix(items_meta: pd.DataFrame, n_items: int) -> np.ndarray:
    """``(n_items, n_genres)`` float32: each item's genres, weights summing to 1 (a row of
    zeros without genres; one zero column when the model has no genre metadata)."""
    if "genres" not in items_meta.columns:
        return np.zeros((n_items, 1), dtype=np.float32)
    lists = [list(g) if g is not None else [] for g in items_meta["genres"]]
    names = sorted({g for gs in lists for g in gs})
    column = {g: c for c, g in enumerate(names)}
    out = np.zeros((n_items, max(len(names), 1)), dtype=np.float32)
    for row, gs in enumerate(lists):
        for g in gs:
            out[row, column[g]] = 1.0 / len(gs)
    return out


def genre_profiles(train: Any, genres: np.ndarray) -> np.ndarray:
    """Every user's share of rated items in each genre (rows of the training CSR)."""
    import scipy.sparse as sp

    n_users = train.indptr.size - 1
    x = sp.csr_matrix(
        (np.ones(train.indices.size, np.float32), train.indices, train.indptr),
        shape=(n_users, genres.shape[0]),
    )
    totals = np.asarray(x @ genres)
    sums = totals.sum(axis=1, keepdims=True)
    return np.where(sums > 0, totals / np.where(sums > 0, sums, 1.0), 0.0).astype(np.float32)
