"""The ranker's candidates and features, computed for a block of users at once.

A user is described by a :class:`UserSignals` row: their implicit-ALS vector, their EASE scores
over the catalogue, their explicit-MF factors and intercept, how many items they rated, their
genre profile and when they rated (first and last). Known users get it from the fitted models;
a new user from their few ratings (fold-in for the two ALS models, the sum of EASE rows for
EASE; they rate now, at the end of the training data). The same code then builds
candidates and features for both, so a new user is ranked exactly as a known one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = (
    "implicit.score",
    "implicit.score_vs_best",
    "implicit.rank",
    "ease.score",
    "ease.score_vs_best",
    "ease.rank",
    "mf.predicted_rating",
    "mf.rank",
    "item.popularity_log",
    "item.mean_rating",
    "item.recent_share",
    "item.age_years",
    "user.genre_affinity",
    "user.n_log",
    "time.item_first_vs_user_last",
    "time.item_first_vs_user_first",
)
PREDICTED = FEATURES.index("mf.predicted_rating")
SECONDS_PER_YEAR = 365.25 * 86400


@dataclass(frozen=True)
class ItemStats:
    """Per-item features (catalogue order) and the item × genre multi-hot matrix."""

    popularity_log: np.ndarray
    mean_rating: np.ndarray
    recent_share: np.ndarray
    age_years: np.ndarray
    first_rated: np.ndarray  # time of the item's first rating (seconds; NaN without timestamps)
    genres: np.ndarray  # (n_items, n_genres) float32, rows sum to 1 (or 0 without genres)


@dataclass(frozen=True)
class UserSignals:
    """What the features need of ``b`` users (row r = one user)."""

    implicit: np.ndarray  # (b, k_implicit) float32
    ease_scores: np.ndarray  # (b, n_items) float32, -inf where EASE has no column
    mf_factors: np.ndarray  # (b, k_mf) float32
    mf_bias: np.ndarray  # (b,) float64
    n_rated: np.ndarray  # (b,)
    genre_profile: np.ndarray  # (b, n_genres): share of the user's items in each genre
    first_rated: np.ndarray  # (b,) time of the user's first rating (seconds; NaN: unknown)
    last_rated: np.ndarray  # (b,) time of the user's last rating


@dataclass(frozen=True)
class Scorers:
    """The fitted models' item-side parameters."""

    implicit_items: np.ndarray  # (n_items, k_implicit)
    mf_items: np.ndarray  # (n_items, k_mf)
    mf_item_bias: np.ndarray
    mf_mean: float
    rating_range: tuple[float, float]


def candidates_and_features(
    users: UserSignals,
    scorers: Scorers,
    items: ItemStats,
    allowed: np.ndarray,
    excluded: list[np.ndarray],
    n_candidates: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of every user (the union of the ``n_candidates`` best allowed, unexcluded
    items by implicit ALS and by EASE) and their features.

    Returns ``(candidates, features)``: ``(b, 2·n_candidates)`` item indices, -1 in unused
    slots, and ``(b, 2·n_candidates, len(FEATURES))`` float32 (NaN where not defined).
    """
    implicit = users.implicit @ scorers.implicit_items.T
    ease = users.ease_scores.copy()
    blocked = ~allowed
    implicit[:, blocked] = -np.inf
    ease[:, blocked] = -np.inf
    for r, seen in enumerate(excluded):
        implicit[r, seen] = -np.inf
        ease[r, seen] = -np.inf
    cands = np.concatenate([_top(implicit, n_candidates), _top(ease, n_candidates)], axis=1)
    cands = _unique_rows(cands)
    valid = cands >= 0
    safe = np.where(valid, cands, 0)
    rows = np.arange(cands.shape[0])[:, None]
    i_score = np.where(valid, implicit[rows, safe], -np.inf)
    e_score = np.where(valid, ease[rows, safe], -np.inf)
    predicted = _predicted(users, scorers, safe)
    predicted = np.where(valid, predicted, -np.inf)
    out = np.empty((*cands.shape, len(FEATURES)), dtype=np.float32)
    out[..., 0], out[..., 1], out[..., 2] = _score_features(i_score, valid)
    out[..., 3], out[..., 4], out[..., 5] = _score_features(e_score, valid)
    out[..., 6] = predicted
    out[..., 7] = _ranks(predicted, valid)
    out[..., 8] = items.popularity_log[safe]
    out[..., 9] = items.mean_rating[safe]
    out[..., 10] = items.recent_share[safe]
    out[..., 11] = items.age_years[safe]
    out[..., 12] = np.einsum("bcg,bg->bc", items.genres[safe], users.genre_profile)
    out[..., 13] = np.log1p(users.n_rated)[:, None]
    # an item that first appeared after the user's last rating is one they could not have
    # rated while active (a time gap in years; NaN without timestamps)
    debut = items.first_rated[safe]
    out[..., 14] = (debut - users.last_rated[:, None]) / SECONDS_PER_YEAR
    out[..., 15] = (debut - users.first_rated[:, None]) / SECONDS_PER_YEAR
    return cands, out


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` best finite columns of every row (unordered), -1 where fewer are finite."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    return np.where(np.isfinite(np.take_along_axis(scores, part, axis=1)), part, -1)


def _unique_rows(cands: np.ndarray) -> np.ndarray:
    """Each row's items once (sorted, -1 padding last)."""
    s = np.sort(np.where(cands >= 0, cands, np.iinfo(np.int64).max), axis=1)
    dup = np.zeros_like(s, dtype=bool)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    s = np.where(dup | (s == np.iinfo(np.int64).max), np.iinfo(np.int64).max, s)
    s = np.sort(s, axis=1)
    return np.where(s == np.iinfo(np.int64).max, -1, s)


def _predicted(users: UserSignals, scorers: Scorers, safe: np.ndarray) -> np.ndarray:
    """The explicit MF's clipped predicted rating of every candidate."""
    dot = np.einsum("bck,bk->bc", scorers.mf_items[safe], users.mf_factors, dtype=np.float64)
    raw = scorers.mf_mean + users.mf_bias[:, None] + scorers.mf_item_bias[safe] + dot
    low, high = scorers.rating_range
    return np.clip(raw, low, high)


def _score_features(
    score: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, score ÷ the row's best, rank among the row's candidates). Ratios and ranks
    compare between the models the ranker was trained with (fitted on less data) and the
    refitted ones it serves with; raw scores drift a little. Undefined scores are NaN."""
    finite = np.isfinite(score)
    raw = np.where(finite, score, np.nan)
    best = np.max(np.where(finite, score, -np.inf), axis=1, keepdims=True)
    best = np.where(np.isfinite(best) & (best > 0), best, 1.0)
    return raw, raw / best, _ranks(np.where(finite & valid, score, -np.inf), valid)


def _ranks(score: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """0 for the row's best candidate, 1 for the next…; unscored candidates rank last."""
    order = np.argsort(-score, axis=1, kind="stable")
    ranks = np.empty(score.shape, dtype=np.float32)
    np.put_along_axis(ranks, order, np.arange(score.shape[1], dtype=np.float32)[None, :], axis=1)
    return np.where(valid, ranks, np.nan)


def implicit_fold_in(
    item_factors: np.ndarray,
    gram: np.ndarray,
    rated: np.ndarray,
    values: np.ndarray,
    alpha: float,
    l2_reg: float,
) -> np.ndarray:
    """A new user's implicit-ALS vector: the user half-step of training for one row,
    ``(YᵀY + Σ_rated (c − 1) y yᵀ + λI) x = Σ_rated c y`` with ``c = 1 + α r``."""
    y = item_factors[rated].astype(np.float64)
    c = 1.0 + alpha * values.astype(np.float64)
    a = gram + (y.T * (c - 1.0)) @ y + l2_reg * np.eye(gram.shape[0])
    return np.linalg.solve(a, y.T @ c).astype(np.float32)


def genre_profile(rated_genres: np.ndarray) -> np.ndarray:
    """A user's share of items in each genre, from the genre rows of the items they rated."""
    total = rated_genres.sum()
    return rated_genres.sum(axis=0) / total if total > 0 else np.zeros(rated_genres.shape[1])
