"""Seeded synthetic MovieLens with a known low-rank truth, written in the ml-20m CSV layout.

The generative model
--------------------
Users ``u = 1..U`` and movies ``i = 1..I`` (ids are contiguous, like ``userId``/``movieId`` in
ml-20m). With ``k = n_factors`` and ``s = (interaction_sd² / k)^(1/4)``::

    p_u, q_i ~ N(0, s² I_k)          so that sd(p_u·q_i) = interaction_sd
    b_u ~ N(0, user_bias_sd²)        b_i ~ N(0, item_bias_sd²)
    r*_ui = μ + b_u + b_i + p_u·q_i                      (noise-free truth, ``true_ratings``)
    r_ui  = clip(⌊2 (r*_ui + ε_ui) + ½⌋ / 2, 0.5, 5.0),  ε_ui ~ N(0, noise²)

so observed ratings are half stars 0.5..5.0 (rounded half up, then clipped).

Who rates what
--------------
* **User activity**: every user gets ``m = min(min_user_ratings, ⌊N/U⌋, I)`` ratings plus a share
  of the remaining ``N - U·m`` proportional to ``a_u ~ LogNormal(0, activity_sigma²)``, capped at
  ``min(I, max(⌈max_user_share·I⌉, ⌈N/U⌉))`` (water-filling) and rounded by largest remainders,
  so the counts sum to exactly ``N``.
* **Item popularity** is Zipf–Mandelbrot over a random ranking ``ρ_i`` (a permutation of
  ``1..I``): ``w_i ∝ (ρ_i + popularity_offset)^(-popularity_exponent)``.
* Each user's ``n_u`` movies are drawn **without replacement** with probabilities ``∝ w_i``
  (successive sampling on a Fenwick tree of the weights quantised to integers ``≥ 1``), so there
  are no duplicate ``(user, movie)`` pairs and exactly ``N`` rows.
* With ``cover_items`` (and ``N ≥ I``) every movie is rated at least once, like ml-20m's 26,744
  rated movies: each never-drawn movie replaces one uniformly chosen rating of a movie that has
  more than one (the user count is unchanged).

Genres and titles
-----------------
Each of the 19 ml-20m genres ``g`` has a random unit direction ``d_g`` in factor space. A movie gets
``n_i = 1 + Poisson(genres_per_item - 1)`` genres, the top ``n_i`` of the scores::

    log π_g + genre_strength · z_ig + Gumbel_ig,     z_ig = (q_i·d_g) / s ~ N(0, 1)

(``π_g`` = the genre's share of ml-20m movies), i.e. a Plackett–Luce draw with weights
``π_g exp(genre_strength · z_ig)``: genres are correlated with the item factors. Titles are
``Synthetic Movie <id> (<year>)`` with ``year = max(1902, 2015 - ⌊Exp(mean 15)⌋)``.

Timestamps: user ``u`` starts at ``t0_u`` uniform in ``[first_timestamp, last_timestamp]`` and rates
over a span ``min(Exp(mean 180 days), last_timestamp - t0_u)``; each rating gets a uniform time in
that span.

Randomness: one ``numpy.random.SeedSequence(seed)`` is split into independent streams (truth,
movie metadata, activity, pairs, noise, timestamps), so e.g. changing ``noise`` keeps the truth and
the sampled pairs. Same config, same numpy/pyarrow versions → byte-identical files.

Files written by :func:`write_synthetic` (``out_dir``)::

    ratings.csv            userId,movieId,rating,timestamp   (sorted by userId, movieId)
    movies.csv             movieId,title,genres               (genres '|'-joined)
    truth/truth.json       config, μ, noise, counts, rating histogram, file list
    truth/users.parquet    userId int32, bias float32, factors list<float32>
    truth/items.parquet    movieId int32, bias float32, factors list<float32>, popularity float64
    truth/genres.parquet   genre string, direction list<float32>, prior float64
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hybridrec._core.files import atomic_file
from hybridrec._core.progress import Progress, progress_bar
from hybridrec._errors import DataError, HybridrecError, NotFoundError

__all__ = [
    "GENRES",
    "SynthConfig",
    "SynthConfigError",
    "SynthSummary",
    "SyntheticData",
    "SyntheticTruth",
    "generate",
    "load_truth",
    "true_ratings",
    "write_synthetic",
]

logger = logging.getLogger(__name__)

# Approximate number of ml-20m movies per genre: Drama and Comedy are common, Film-Noir and IMAX
# rare. Only the proportions matter (they are the genre priors π_g).
_ML20M_GENRE_MOVIES: dict[str, int] = {
    "Action": 3520,
    "Adventure": 2329,
    "Animation": 1027,
    "Children": 1139,
    "Comedy": 8374,
    "Crime": 2939,
    "Documentary": 2471,
    "Drama": 13344,
    "Fantasy": 1412,
    "Film-Noir": 330,
    "Horror": 2611,
    "IMAX": 196,
    "Musical": 1036,
    "Mystery": 1514,
    "Romance": 4127,
    "Sci-Fi": 1743,
    "Thriller": 4178,
    "War": 1194,
    "Western": 676,
}

#: The 19 genre names of ml-20m (without ``(no genres listed)``), in alphabetical order.
GENRES: tuple[str, ...] = tuple(_ML20M_GENRE_MOVIES)
_GENRE_COUNTS = np.array(list(_ML20M_GENRE_MOVIES.values()), dtype=np.float64)

_RATING_TEXT = ("0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0")
_RATINGS_HEADER = b"userId,movieId,rating,timestamp\n"
_MOVIES_HEADER = b"movieId,title,genres\n"
_TRUTH_FORMAT = "hybridrec-synthetic-truth"
_TRUTH_VERSION = 1
_CHUNK_ROWS = 1 << 21
_SPAN_MEAN_SECONDS = 180.0 * 86_400.0
_STREAMS = ("truth", "movies", "activity", "pairs", "noise", "timestamps")


class SynthConfigError(HybridrecError, ValueError):
    """An impossible or invalid :class:`SynthConfig` (a ``ValueError``; the CLI exits with 2)."""


@dataclass(frozen=True)
class SynthConfig:
    """Size, seed and shape of a synthetic MovieLens (the model is in the module docstring).

    The defaults give ml-20m's size (138,493 users, 26,744 movies, 20,000,263 ratings) and
    MovieLens-like marginals: observed ratings mean ≈ 3.50, sd ≈ 1.00 (ml-20m: 3.53, 1.05);
    20..9,361 ratings per user, median 66, mean 144 (ml-20m: 20..9,254, 68, 144); the most
    rated movie has 58 % of the users (ml-20m: 49 %), the top 10 % of movies hold 90 % of the
    ratings. Variances before rounding: b_u 0.45² + b_i 0.55² + p·q 0.65² + ε 0.5², so ``r*``
    explains ≈ 75 % of the rating variance and ``p_u·q_i`` ≈ 45 % of ``r*``'s. The true ``r*``
    has RMSE ≈ 0.49 against the ratings; the true biases alone ≈ 0.78: MF beats biases clearly.

    Raises :class:`SynthConfigError` (a ``ValueError``) for impossible configs: ``n_ratings <
    n_users`` (every user rates at least once) or ``n_ratings > n_users * n_items`` (no duplicate
    pairs), non-positive sizes, negative scales.
    """

    n_users: int = 138_493
    n_items: int = 26_744
    n_ratings: int = 20_000_263
    n_factors: int = 8
    noise: float = 0.5
    seed: int = 42
    mu: float = 3.57
    user_bias_sd: float = 0.45
    item_bias_sd: float = 0.55
    interaction_sd: float = 0.65
    popularity_exponent: float = 2.0
    popularity_offset: float = 100.0
    activity_sigma: float = 1.4
    min_user_ratings: int = 20
    max_user_share: float = 0.35
    cover_items: bool = True
    genres_per_item: float = 2.0
    genre_strength: float = 1.5
    first_timestamp: int = 789_652_009  # 1995-01-09, the first ml-20m rating
    last_timestamp: int = 1_427_784_002  # 2015-03-31, the last ml-20m rating

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_ratings", "n_factors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise SynthConfigError(f"SynthConfig.{name} must be a positive int, got {value!r}")
        if self.n_ratings < self.n_users:
            raise SynthConfigError(
                f"n_ratings={self.n_ratings} < n_users={self.n_users}: "
                "every user needs at least one rating"
            )
        if self.n_ratings > self.n_users * self.n_items:
            raise SynthConfigError(
                f"n_ratings={self.n_ratings} > n_users*n_items={self.n_users * self.n_items}: "
                "impossible without duplicate (user, movie) pairs"
            )
        if not 0 <= int(self.seed) < 2**63:
            raise SynthConfigError(
                f"SynthConfig.seed must be a non-negative int, got {self.seed!r}"
            )
        for name in (
            "noise",
            "user_bias_sd",
            "item_bias_sd",
            "interaction_sd",
            "popularity_exponent",
            "popularity_offset",
            "activity_sigma",
            "genre_strength",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SynthConfigError(f"SynthConfig.{name} must be finite and >= 0, got {value!r}")
        if not math.isfinite(self.mu):
            raise SynthConfigError(f"SynthConfig.mu must be finite, got {self.mu!r}")
        if not 0.0 < self.max_user_share <= 1.0:
            raise SynthConfigError(
                f"SynthConfig.max_user_share must be in (0, 1], got {self.max_user_share!r}"
            )
        if self.min_user_ratings < 1:
            raise SynthConfigError(
                f"SynthConfig.min_user_ratings must be >= 1, got {self.min_user_ratings}"
            )
        if not 1.0 <= self.genres_per_item <= len(GENRES):
            raise SynthConfigError(
                f"SynthConfig.genres_per_item must be in [1, {len(GENRES)}], "
                f"got {self.genres_per_item!r}"
            )
        if not 0 <= self.first_timestamp <= self.last_timestamp:
            raise SynthConfigError("SynthConfig needs 0 <= first_timestamp <= last_timestamp")

    @property
    def factor_sd(self) -> float:
        """Sd ``s`` of each entry of ``p_u`` and ``q_i``: ``(interaction_sd² / k)^(1/4)``."""
        return float((self.interaction_sd**2 / self.n_factors) ** 0.25)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Rebuild a config; unknown keys (from a newer writer) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The parameters that generated the data (row ``j`` of each array is ``user_ids[j]`` etc.)."""

    config: SynthConfig
    mu: float
    user_ids: np.ndarray  # int32, sorted
    user_bias: np.ndarray  # float32 (n_users,)
    user_factors: np.ndarray  # float32 (n_users, k)
    item_ids: np.ndarray  # int32, sorted
    item_bias: np.ndarray  # float32 (n_items,)
    item_factors: np.ndarray  # float32 (n_items, k)
    item_popularity: np.ndarray  # float64 sampling weights w_i, summing to 1
    genre_directions: np.ndarray  # float32 (len(genres), k), unit rows
    genres: tuple[str, ...] = GENRES

    @property
    def noise(self) -> float:
        return float(self.config.noise)


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """An in-memory synthetic dataset: the two ml-20m tables and the truth behind them.

    ``ratings``: userId int32, movieId int32, rating float32, timestamp int64 (sorted by userId,
    movieId). ``movies``: movieId int32, title str, genres str (``|``-joined).
    """

    ratings: pd.DataFrame
    movies: pd.DataFrame
    truth: SyntheticTruth


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_synthetic` wrote."""

    out_dir: Path
    ratings_path: Path
    movies_path: Path
    truth_dir: Path
    n_users: int
    n_items: int
    n_ratings: int
    ratings_mean: float
    ratings_sd: float
    seconds: float


@dataclass(eq=False)
class _Sample:
    truth: SyntheticTruth
    counts: np.ndarray  # int64 ratings per user
    user_index: np.ndarray  # int32 per rating, non-decreasing
    item_index: np.ndarray  # int32 per rating, increasing within a user
    code: np.ndarray  # int8 per rating, rating = code / 2
    timestamp: np.ndarray  # int64 per rating
    titles: list[str]
    genre_strings: list[str]

    def rating_histogram(self) -> np.ndarray:
        return np.bincount(self.code, minlength=11)[1:]


# --------------------------------------------------------------------------------------------
# numba kernels


@nb.njit(cache=True, nogil=True)
def _fenwick(weights):  # type: ignore[no-untyped-def]
    """A Fenwick (binary indexed) tree over int64 weights, 1-based."""
    n = weights.size
    tree = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        tree[i] += weights[i - 1]
        j = i + (i & -i)
        if j <= n:
            tree[j] += tree[i]
    return tree


@nb.njit(cache=True, nogil=True)
def _sample_users(rng, counts, starts, u_lo, u_hi, weights, tree, out):  # type: ignore[no-untyped-def]
    """Draw each user's movies without replacement, probabilities ∝ weights, sorted per user.

    Successive sampling on a Fenwick tree: draw x uniform in [0, remaining mass), find the movie
    whose cumulative range holds it, remove its weight; restore the weights after the user.
    Integer weights keep removal and restoration exact, so the tree never drifts.
    """
    n_items = weights.size
    top = 1
    while top * 2 <= n_items:
        top *= 2
    full = tree[0]
    for u in range(u_lo, u_hi):
        n = counts[u]
        pos0 = starts[u]
        total = full
        for j in range(n):
            x = rng.integers(0, total)
            pos = 0
            step = top
            while step > 0:
                nxt = pos + step
                if nxt <= n_items and tree[nxt] <= x:
                    pos = nxt
                    x -= tree[nxt]
                step >>= 1
            out[pos0 + j] = pos
            w = weights[pos]
            total -= w
            i = pos + 1
            while i <= n_items:
                tree[i] -= w
                i += i & -i
        for j in range(n):
            pos = out[pos0 + j]
            w = weights[pos]
            i = pos + 1
            while i <= n_items:
                tree[i] += w
                i += i & -i
        out[pos0 : pos0 + n].sort()


@nb.njit(cache=True, nogil=True)
def _cover_items(rng, user_index, starts, counts, items, n_items):  # type: ignore[no-untyped-def]
    """Give every never-drawn movie one rating taken from a movie rated more than once."""
    n = items.size
    item_count = np.zeros(n_items, dtype=np.int64)
    for j in range(n):
        item_count[items[j]] += 1
    touched = np.zeros(counts.size, dtype=np.bool_)
    moved = 0
    for t in range(n_items):
        if item_count[t] > 0:
            continue
        donor = -1
        for _ in range(64):
            c = rng.integers(0, n)
            if item_count[items[c]] > 1:
                donor = c
                break
        if donor < 0:
            for c in range(n):
                if item_count[items[c]] > 1:
                    donor = c
                    break
        if donor < 0:
            break
        # Nobody has rated t yet, so the donor's user cannot already have it: no duplicates.
        item_count[items[donor]] -= 1
        items[donor] = t
        item_count[t] = 1
        touched[user_index[donor]] = True
        moved += 1
    for u in range(counts.size):
        if touched[u]:
            items[starts[u] : starts[u] + counts[u]].sort()
    return moved


@nb.njit(cache=True, nogil=True)
def _true_kernel(users, items, mu, bu, bi, p, q, out):  # type: ignore[no-untyped-def]
    k = p.shape[1]
    for j in range(users.size):
        u = users[j]
        i = items[j]
        dot = 0.0
        for f in range(k):
            dot += np.float64(p[u, f]) * np.float64(q[i, f])
        out[j] = mu + np.float64(bu[u]) + np.float64(bi[i]) + dot


@nb.njit(cache=True, nogil=True)
def _rate_kernel(rng, users, items, mu, bu, bi, p, q, noise, out):  # type: ignore[no-untyped-def]
    """Half-star codes 1..10: clip(floor(2 (r* + ε) + 1/2), 1, 10)."""
    k = p.shape[1]
    for j in range(users.size):
        u = users[j]
        i = items[j]
        dot = 0.0
        for f in range(k):
            dot += np.float64(p[u, f]) * np.float64(q[i, f])
        r = mu + np.float64(bu[u]) + np.float64(bi[i]) + dot
        c = np.floor(2.0 * (r + noise * rng.standard_normal()) + 0.5)
        if c < 1.0:
            c = 1.0
        elif c > 10.0:
            c = 10.0
        out[j] = np.int8(c)


@nb.njit(cache=True, nogil=True)
def _timestamp_kernel(rng, counts, starts, t0, span, out):  # type: ignore[no-untyped-def]
    for u in range(counts.size):
        for j in range(starts[u], starts[u] + counts[u]):
            out[j] = t0[u] + np.int64(rng.random() * span[u])


# --------------------------------------------------------------------------------------------
# simulation


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(_STREAMS, children, strict=True)}


def _make_truth(config: SynthConfig, rng: np.random.Generator) -> SyntheticTruth:
    n_u, n_i, k = config.n_users, config.n_items, config.n_factors
    s = config.factor_sd
    user_factors = (rng.standard_normal((n_u, k)) * s).astype(np.float32)
    item_factors = (rng.standard_normal((n_i, k)) * s).astype(np.float32)
    user_bias = (rng.standard_normal(n_u) * config.user_bias_sd).astype(np.float32)
    item_bias = (rng.standard_normal(n_i) * config.item_bias_sd).astype(np.float32)
    rank = rng.permutation(n_i).astype(np.float64) + 1.0
    popularity = (rank + config.popularity_offset) ** (-config.popularity_exponent)
    popularity /= popularity.sum()
    directions = rng.standard_normal((len(GENRES), k))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return SyntheticTruth(
        config=config,
        mu=float(config.mu),
        user_ids=np.arange(1, n_u + 1, dtype=np.int32),
        user_bias=user_bias,
        user_factors=user_factors,
        item_ids=np.arange(1, n_i + 1, dtype=np.int32),
        item_bias=item_bias,
        item_factors=item_factors,
        item_popularity=popularity,
        genre_directions=directions.astype(np.float32),
    )


def _movie_metadata(truth: SyntheticTruth, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    config = truth.config
    n_i, n_g = config.n_items, len(GENRES)
    z = truth.item_factors.astype(np.float64) @ truth.genre_directions.astype(np.float64).T
    z /= config.factor_sd if config.factor_sd > 0 else 1.0
    prior = np.log(_GENRE_COUNTS / _GENRE_COUNTS.sum())
    scores = prior + config.genre_strength * z + rng.gumbel(size=(n_i, n_g))
    n_genres = np.minimum(1 + rng.poisson(config.genres_per_item - 1.0, size=n_i), n_g)
    order = np.argsort(-scores, axis=1, kind="stable")
    years = np.maximum(1902, 2015 - np.floor(rng.exponential(15.0, size=n_i))).astype(np.int64)
    genre_strings = [
        "|".join(GENRES[g] for g in sorted(order[i, : n_genres[i]].tolist())) for i in range(n_i)
    ]
    titles = [
        f"Synthetic Movie {mid} ({year})"
        for mid, year in zip(truth.item_ids.tolist(), years.tolist(), strict=True)
    ]
    return titles, genre_strings


def _user_counts(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: ``m`` each plus a lognormal share of the rest, capped, summing to N."""
    # The cap is max_user_share·I (ml-20m's heaviest user rated 35 % of the movies), raised to
    # ⌈N/U⌉ when the data is too dense for it.
    n_u, n_i, n = config.n_users, config.n_items, config.n_ratings
    m = min(config.min_user_ratings, n // n_u, n_i)
    extra_total = n - n_u * m
    most = max(math.ceil(config.max_user_share * n_i), -(-n // n_u))
    cap = min(n_i, most) - m
    activity = rng.lognormal(0.0, config.activity_sigma, size=n_u)
    share = np.zeros(n_u, dtype=np.float64)
    free = np.ones(n_u, dtype=bool)
    remaining = float(extra_total)
    while free.any():  # water-filling: users over the cap get the cap, the rest share the rest
        share[free] = remaining * activity[free] / activity[free].sum()
        over = free & (share > cap)
        if not over.any():
            break
        share[over] = cap
        free &= ~over
        remaining = float(extra_total - cap * int((~free).sum()))
    extra = np.minimum(np.floor(share), cap).astype(np.int64)
    frac = share - extra
    missing = extra_total - int(extra.sum())
    if missing > 0:  # largest remainders first, among users with room
        frac_room = np.where(extra < cap, frac, -np.inf)
        extra[np.argsort(-frac_room, kind="stable")[:missing]] += 1
    elif missing < 0:  # only from float rounding; take back from the smallest remainders
        frac_have = np.where(extra > 0, frac, np.inf)
        extra[np.argsort(frac_have, kind="stable")[:-missing]] -= 1
    counts = m + extra
    assert int(counts.sum()) == n and counts.min() >= 1 and counts.max() <= n_i
    return counts


def _simulate(config: SynthConfig, progress: Progress | None = None) -> _Sample:
    t_start = time.perf_counter()
    streams = _streams(config.seed)
    truth = _make_truth(config, streams["truth"])
    titles, genre_strings = _movie_metadata(truth, streams["movies"])
    counts = _user_counts(config, streams["activity"])
    starts = np.zeros(config.n_users, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    n = config.n_ratings
    user_index = np.repeat(np.arange(config.n_users, dtype=np.int32), counts)

    # Pairs, in blocks of users so the bar moves; the generator state carries across calls.
    rng = streams["pairs"]
    items = np.empty(n, dtype=np.int32)
    # Integer weights (each >= 1, summing to <= 2^62 + I) so the Fenwick tree stays exact.
    weights = np.maximum(1, np.floor(truth.item_popularity * 2.0**62)).astype(np.int64)
    tree = _fenwick(weights)
    tree[0] = int(weights.sum())
    cuts = np.searchsorted(starts, np.arange(_CHUNK_ROWS, n, _CHUNK_ROWS))
    bounds = np.unique(np.concatenate([[0], cuts, [config.n_users]])).tolist()
    for lo, hi in itertools.pairwise(bounds):
        _sample_users(rng, counts, starts, lo, hi, weights, tree, items)
        if progress is not None:
            progress.advance(int(counts[lo:hi].sum()), description="synthetic: sampling pairs")
    if config.cover_items and n >= config.n_items:
        moved = _cover_items(rng, user_index, starts, counts, items, config.n_items)
        logger.debug("cover_items moved %d ratings to unrated movies", moved)
    t_pairs = time.perf_counter()

    code = np.empty(n, dtype=np.int8)
    rng = streams["noise"]
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        _rate_kernel(
            rng,
            user_index[lo:hi],
            items[lo:hi],
            truth.mu,
            truth.user_bias,
            truth.item_bias,
            truth.user_factors,
            truth.item_factors,
            float(config.noise),
            code[lo:hi],
        )
        if progress is not None:
            progress.advance(hi - lo, description="synthetic: rating")

    rng = streams["timestamps"]
    t0 = rng.integers(
        config.first_timestamp, config.last_timestamp, size=config.n_users, endpoint=True
    )
    span = np.minimum(
        rng.exponential(_SPAN_MEAN_SECONDS, size=config.n_users),
        (config.last_timestamp - t0).astype(np.float64),
    )
    timestamp = np.empty(n, dtype=np.int64)
    _timestamp_kernel(rng, counts, starts, t0.astype(np.int64), span, timestamp)
    logger.info(
        "simulated %d ratings (%d users, %d movies): pairs %.1f s, total %.1f s",
        n,
        config.n_users,
        config.n_items,
        t_pairs - t_start,
        time.perf_counter() - t_start,
    )
    return _Sample(truth, counts, user_index, items, code, timestamp, titles, genre_strings)


def _mean_sd(histogram: np.ndarray) -> tuple[float, float]:
    values = np.arange(1, 11, dtype=np.float64) / 2.0
    total = float(histogram.sum())
    mean = float((histogram * values).sum() / total)
    var = float((histogram * (values - mean) ** 2).sum() / total)
    return mean, math.sqrt(var)


# --------------------------------------------------------------------------------------------
# public API


def generate(config: SynthConfig) -> SyntheticData:
    """Simulate a dataset in memory (for tests and small sizes; see the module docstring)."""
    sample = _simulate(config)
    ratings = pd.DataFrame(
        {
            "userId": sample.user_index + np.int32(1),
            "movieId": sample.item_index + np.int32(1),
            "rating": sample.code.astype(np.float32) / np.float32(2),
            "timestamp": sample.timestamp,
        }
    )
    movies = pd.DataFrame(
        {
            "movieId": sample.truth.item_ids.copy(),
            "title": sample.titles,
            "genres": sample.genre_strings,
        }
    )
    return SyntheticData(ratings=ratings, movies=movies, truth=sample.truth)


def true_ratings(
    truth: SyntheticTruth, user_ids: Any, item_ids: Any, *, clip: bool = False
) -> np.ndarray:
    """Noise-free ``r* = μ + b_u + b_i + p_u·q_i`` (float64) for external ``userId``/``movieId``.

    ``user_ids`` and ``item_ids`` broadcast against each other (one user against many movies
    works). ``clip=True`` clips to the rating scale [0.5, 5]. Unknown ids raise ``KeyError``.
    """
    users, items = np.broadcast_arrays(np.asarray(user_ids), np.asarray(item_ids))
    u = _lookup(truth.user_ids, users.ravel(), "userId")
    i = _lookup(truth.item_ids, items.ravel(), "movieId")
    out = np.empty(u.size, dtype=np.float64)
    _true_kernel(
        u,
        i,
        float(truth.mu),
        truth.user_bias,
        truth.item_bias,
        truth.user_factors,
        truth.item_factors,
        out,
    )
    if clip:
        np.clip(out, 0.5, 5.0, out=out)
    return out.reshape(users.shape)


def _lookup(known: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    if ids.size and ids.dtype.kind not in "iu":
        raise KeyError(f"{what}s must be integers, got dtype {ids.dtype}")
    pos = np.searchsorted(known, ids)
    pos_c = np.minimum(pos, known.size - 1)
    ok = (pos < known.size) & (known[pos_c] == ids)
    if not ok.all():
        bad = np.unique(ids[~ok])[:5].tolist()
        raise KeyError(f"unknown {what} {bad} (not in the synthetic truth)")
    return pos_c.astype(np.int64)


def write_synthetic(
    out_dir: str | Path, config: SynthConfig, *, show_progress: bool = False
) -> SynthSummary:
    """Simulate and write ``ratings.csv``, ``movies.csv`` and ``truth/`` (ml-20m layout).

    Each file is written under a temporary name and renamed into place. Existing files of the
    same names are replaced.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    n = config.n_ratings
    with progress_bar("synthetic", total=3 * n, show=show_progress) as bar:
        sample = _simulate(config, bar)
        ratings_path = out / "ratings.csv"
        with atomic_file(ratings_path) as tmp:
            _write_ratings_csv(tmp, sample, bar)
        movies_path = out / "movies.csv"
        with atomic_file(movies_path) as tmp:
            _write_movies_csv(tmp, sample)
        mean, sd = _mean_sd(sample.rating_histogram())
        _write_truth(truth_dir, sample, mean, sd)
    seconds = time.perf_counter() - started
    logger.info("wrote %d synthetic ratings to %s in %.1f s", n, out, seconds)
    return SynthSummary(
        out_dir=out,
        ratings_path=ratings_path,
        movies_path=movies_path,
        truth_dir=truth_dir,
        n_users=config.n_users,
        n_items=config.n_items,
        n_ratings=n,
        ratings_mean=mean,
        ratings_sd=sd,
        seconds=seconds,
    )


def load_truth(path: str | Path) -> SyntheticTruth:
    """Read the truth written by :func:`write_synthetic` (``path`` = out_dir or its ``truth/``)."""
    root = Path(path)
    if not (root / "truth.json").is_file() and (root / "truth" / "truth.json").is_file():
        root = root / "truth"
    meta_path = root / "truth.json"
    if not meta_path.is_file():
        raise NotFoundError(f"no synthetic truth at {path} (missing truth.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != _TRUTH_FORMAT or meta.get("version") != _TRUTH_VERSION:
        raise DataError(
            f"{meta_path}: not a {_TRUTH_FORMAT} v{_TRUTH_VERSION} file "
            f"(format={meta.get('format')!r}, version={meta.get('version')!r})"
        )
    config = SynthConfig.from_dict(meta["config"])
    k = config.n_factors
    users = pq.read_table(root / "users.parquet")
    items = pq.read_table(root / "items.parquet")
    genres = pq.read_table(root / "genres.parquet")
    return SyntheticTruth(
        config=config,
        mu=float(meta["mu"]),
        user_ids=users.column("userId").to_numpy().astype(np.int32),
        user_bias=users.column("bias").to_numpy().astype(np.float32),
        user_factors=_unlist(users.column("factors"), k),
        item_ids=items.column("movieId").to_numpy().astype(np.int32),
        item_bias=items.column("bias").to_numpy().astype(np.float32),
        item_factors=_unlist(items.column("factors"), k),
        item_popularity=items.column("popularity").to_numpy().astype(np.float64),
        genre_directions=_unlist(genres.column("direction"), k),
        genres=tuple(str(g) for g in genres.column("genre").to_pylist()),
    )


# --------------------------------------------------------------------------------------------
# writers


def _write_ratings_csv(path: Path, sample: _Sample, progress: Progress) -> None:
    schema = pa.schema(
        [
            ("userId", pa.int32()),
            ("movieId", pa.int32()),
            ("rating", pa.dictionary(pa.int8(), pa.string())),
            ("timestamp", pa.int64()),
        ]
    )
    text = pa.array(_RATING_TEXT, type=pa.string())
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    n = sample.code.size
    with open(path, "wb") as sink:
        sink.write(_RATINGS_HEADER)
        with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
            for lo in range(0, n, _CHUNK_ROWS):
                hi = min(n, lo + _CHUNK_ROWS)
                batch = pa.record_batch(
                    [
                        pa.array(sample.user_index[lo:hi] + np.int32(1), type=pa.int32()),
                        pa.array(sample.item_index[lo:hi] + np.int32(1), type=pa.int32()),
                        pa.DictionaryArray.from_arrays(
                            pa.array(sample.code[lo:hi] - np.int8(1), type=pa.int8()), text
                        ),
                        pa.array(sample.timestamp[lo:hi], type=pa.int64()),
                    ],
                    schema=schema,
                )
                writer.write_batch(batch)
                progress.advance(hi - lo, description="synthetic: writing ratings.csv")


def _write_movies_csv(path: Path, sample: _Sample) -> None:
    table = pa.table(
        {
            "movieId": pa.array(sample.truth.item_ids, type=pa.int32()),
            "title": pa.array(sample.titles, type=pa.string()),
            "genres": pa.array(sample.genre_strings, type=pa.string()),
        }
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as sink:
        sink.write(_MOVIES_HEADER)
        pacsv.write_csv(table, sink, write_options=options)


def _list_column(matrix: np.ndarray) -> pa.ListArray:
    rows, k = matrix.shape
    offsets = pa.array(np.arange(0, rows * k + 1, k, dtype=np.int32), type=pa.int32())
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel(), type=pa.float32())
    return pa.ListArray.from_arrays(offsets, values)


def _unlist(column: pa.ChunkedArray, k: int) -> np.ndarray:
    flat = pc.list_flatten(column).to_numpy()
    return np.ascontiguousarray(flat.astype(np.float32).reshape(-1, k))


def _write_truth(truth_dir: Path, sample: _Sample, mean: float, sd: float) -> None:
    truth = sample.truth
    config = truth.config
    tables = {
        "users.parquet": pa.table(
            {
                "userId": pa.array(truth.user_ids, type=pa.int32()),
                "bias": pa.array(truth.user_bias, type=pa.float32()),
                "factors": _list_column(truth.user_factors),
            }
        ),
        "items.parquet": pa.table(
            {
                "movieId": pa.array(truth.item_ids, type=pa.int32()),
                "bias": pa.array(truth.item_bias, type=pa.float32()),
                "factors": _list_column(truth.item_factors),
                "popularity": pa.array(truth.item_popularity, type=pa.float64()),
            }
        ),
        "genres.parquet": pa.table(
            {
                "genre": pa.array(list(truth.genres), type=pa.string()),
                "direction": _list_column(truth.genre_directions),
                "prior": pa.array(_GENRE_COUNTS / _GENRE_COUNTS.sum(), type=pa.float64()),
            }
        ),
    }
    for name, table in tables.items():
        with atomic_file(truth_dir / name) as tmp:
            pq.write_table(table, tmp)
    histogram = sample.rating_histogram()
    item_counts = np.bincount(sample.item_index, minlength=config.n_items)
    meta = {
        "format": _TRUTH_FORMAT,
        "version": _TRUTH_VERSION,
        "model": "r = clip(floor(2*(mu + b_u + b_i + p_u.q_i + eps) + 0.5)/2, 0.5, 5), "
        "eps ~ N(0, noise^2)",
        "config": config.to_dict(),
        "mu": truth.mu,
        "noise": float(config.noise),
        "factor_sd": config.factor_sd,
        "n_users": config.n_users,
        "n_items": config.n_items,
        "n_ratings": config.n_ratings,
        "n_rated_items": int((item_counts > 0).sum()),
        "ratings_mean": mean,
        "ratings_sd": sd,
        "rating_counts": dict(zip(_RATING_TEXT, histogram.tolist(), strict=True)),
        "user_ratings": {"min": int(sample.counts.min()), "max": int(sample.counts.max())},
        "item_ratings": {"min": int(item_counts.min()), "max": int(item_counts.max())},
        "genres": list(truth.genres),
        "files": ["users.parquet", "items.parquet", "genres.parquet"],
    }
    with atomic_file(truth_dir / "truth.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
