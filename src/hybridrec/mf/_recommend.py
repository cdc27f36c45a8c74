"""Recommending from a fitted matrix factorization: top-N items for a user (known, or new and
folded in), top-N users for an item, every user's top-N, and the genre and candidate filters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.progress import progress_bar
from hybridrec._core.sparse import Csr, check_n, empty_csr, rows_of, top_n
from hybridrec._errors import DataError
from hybridrec.data import IdVocabulary, new_user_ratings
from hybridrec.mf import _kernels

__all__ = ["Recommending", "check_n", "fold_in_arrays"]


class Recommending:
    """The recommending half of :class:`~hybridrec.mf.MatrixFactorization` (a mixin)."""

    score_column: str
    num_factors: int
    show_progress: bool
    user_vocab_: IdVocabulary
    item_vocab_: IdVocabulary
    user_factors_: np.ndarray
    item_factors_: np.ndarray
    user_bias_: np.ndarray
    item_bias_: np.ndarray
    global_mean_: float
    rating_range_: tuple[float, float]
    seen_: Csr
    items_meta_: pd.DataFrame

    if TYPE_CHECKING:

        def _require_fitted(self) -> None: ...

        def _half_step(
            self,
            csr: Csr,
            other_factors: np.ndarray,
            other_bias: np.ndarray,
            out_factors: np.ndarray,
            out_bias: np.ndarray,
            *,
            item_side: bool,
        ) -> None: ...

    def recommend(
        self,
        user: Any,
        n: int = 10,
        *,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """Top-``n`` items for one user by predicted rating (``movieId``, [``title``,]
        ``predicted_rating``, ``score``: see :meth:`rating_columns`), best first.

        ``genre`` keeps items of that genre; ``candidates`` keeps only the given item ids. Items
        the user rated (in training or in the hold-out) are skipped unless ``exclude_seen`` is
        false. An unknown user gets the items with the highest intercepts (``μ + b_i``).
        """
        self._require_fitted()
        check_n(n)
        u = self.user_vocab_.index_one(user)
        if u < 0:
            return self._recommend_vector(None, 0.0, np.zeros(0, np.int32), n, genre, candidates)
        seen = self.seen_.indices[self.seen_.indptr[u] : self.seen_.indptr[u + 1]]
        return self._recommend_vector(
            self.user_factors_[u],
            float(self.user_bias_[u]),
            seen if exclude_seen else np.zeros(0, np.int32),
            n,
            genre,
            candidates,
        )

    def fold_in(self, ratings: pd.DataFrame | dict[Any, float]) -> tuple[np.ndarray, float]:
        """Factors and intercept for a new user from a few ``(movieId, rating)`` pairs.

        One ALS solve with the item factors held fixed: exactly the user half-step of training,
        so the new user is placed as if they had been in the training data. No retraining.
        """
        self._require_fitted()
        items, values = fold_in_arrays(ratings)
        idx = self.item_vocab_.index_of(items)
        known = idx >= 0
        k = self.num_factors
        factors = np.zeros((1, k), dtype=np.float32)
        bias = np.zeros(1, dtype=np.float64)
        if known.any():
            csr = Csr(
                np.array([0, int(known.sum())], dtype=np.int64),
                idx[known],
                values[known].astype(np.float32),
            )
            self._half_step(
                csr, self.item_factors_, self.item_bias_, factors, bias, item_side=False
            )
        return factors[0], float(bias[0])

    def ignored_items(self, ratings: pd.DataFrame | dict[Any, float]) -> np.ndarray:
        """The movieIds of a new user's ratings that the model does not know: fold-in (and so
        :meth:`recommend_new_user`) ignores them; the server lists them as ``ignored_items``."""
        self._require_fitted()
        items, _ = fold_in_arrays(ratings)
        return items[self.item_vocab_.index_of(items) < 0]

    def recommend_new_user(
        self,
        ratings: pd.DataFrame | dict[Any, float],
        n: int = 10,
        *,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """Top-``n`` items for a user who is not in the model, from their ratings (fold-in)."""
        check_n(n)
        factors, bias = self.fold_in(ratings)
        items, _ = fold_in_arrays(ratings)
        rated = self.item_vocab_.index_of(items)
        rated = rated[rated >= 0] if exclude_seen else np.zeros(0, np.int32)
        return self._recommend_vector(factors, bias, rated, n, genre, candidates)

    def _recommend_vector(
        self,
        factors: np.ndarray | None,
        bias: float,
        exclude: np.ndarray,
        n: int,
        genre: str | None,
        candidates: Sequence[Any] | np.ndarray | None,
    ) -> pd.DataFrame:
        if factors is None:
            factors = np.zeros(self.num_factors, dtype=np.float32)
        top, scores = _kernels.top_n_for_vector(
            self.item_factors_,
            self.item_bias_,
            self.global_mean_ + bias,
            np.ascontiguousarray(factors, dtype=np.float32),
            self.allowed_items(genre, candidates),
            np.ascontiguousarray(exclude, dtype=np.int32),
            n,
        )
        return self.item_frame(top, **self.rating_columns(scores))

    def recommend_users(self, item: Any, n: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """The ``n`` users with the highest predicted rating for ``item`` (``userId``,
        ``predicted_rating``, ``score``): the notebook's targeting query."""
        self._require_fitted()
        check_n(n)
        i = self.item_vocab_.index_one(item)
        if i < 0:
            raise DataError(f"movieId {item} is not in the model: no user can be targeted for it")
        scores = (
            self.global_mean_
            + self.item_bias_[i]
            + self.user_bias_
            + self.user_factors_ @ self.item_factors_[i]
        )
        if exclude_seen:
            seen_users = self.users_who_saw(i)
            scores[seen_users] = -np.inf
        top = top_n(scores, n)
        return pd.DataFrame(
            {USER_COL: self.user_vocab_.ids[top], **self.rating_columns(scores[top])}
        )

    def recommend_all(
        self, n: int = 10, *, exclude_seen: bool = True, block_size: int = 4096
    ) -> Iterator[pa.RecordBatch]:
        """Every user's top-``n``, streamed as Arrow record batches of
        (``userId``, ``rank``, ``movieId``, ``predicted_rating``); never a users × items matrix."""
        self._require_fitted()
        check_n(n)
        excl = self.seen_ if exclude_seen else empty_csr(len(self.user_vocab_))
        for start, top_idx, top_val in self._top_n_blocks(n, excl, block_size):
            rows, ranks = np.nonzero(top_idx >= 0)
            low, high = self.rating_range_
            yield pa.record_batch(
                {
                    USER_COL: pa.array(self.user_vocab_.ids[start + rows]),
                    "rank": pa.array((ranks + 1).astype(np.int32)),
                    ITEM_COL: pa.array(self.item_vocab_.ids[top_idx[rows, ranks]]),
                    self.score_column: pa.array(
                        np.clip(top_val[rows, ranks], low, high).astype(np.float64)
                    ),
                }
            )

    def _top_n_blocks(
        self, n: int, excl: Csr, block_size: int, user_rows: np.ndarray | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Top-``n`` item indices and scores for every user (or the users ``user_rows``), in
        blocks of users: ``(position of the block's first user, indices, scores)``."""
        item_scores_t = np.ascontiguousarray(self.item_factors_.T)
        item_bias = self.item_bias_.astype(np.float32)
        if user_rows is not None:
            excl = rows_of(excl, user_rows)
        n_users = len(self.user_vocab_) if user_rows is None else user_rows.size
        with progress_bar("recommend", n_users, show=self.show_progress) as bar:
            for start in range(0, n_users, block_size):
                stop = min(start + block_size, n_users)
                rows = slice(start, stop) if user_rows is None else user_rows[start:stop]
                # user intercept and μ do not change a user's ranking, so they are added after.
                block = self.user_factors_[rows] @ item_scores_t + item_bias
                top_idx, top_val = _kernels.top_n_rows(block, start, excl.indptr, excl.indices, n)
                offset = (self.global_mean_ + self.user_bias_[rows]).astype(np.float32)
                yield start, top_idx, top_val + offset[:, None]
                bar.advance(stop - start)

    def users_who_saw(self, item: int) -> np.ndarray:
        """The user indices who rated item index ``item`` (training or hold-out)."""
        # The item → users view of the seen pairs is built once, on first use.
        if getattr(self, "_seen_by_item", None) is None:
            seen = self.seen_
            rows = np.repeat(np.arange(len(seen.indptr) - 1, dtype=np.int32), np.diff(seen.indptr))
            self._seen_by_item = Csr.build(
                seen.indices, rows, seen.values, len(self.item_vocab_), sort_cols=False
            )
        by_item = self._seen_by_item
        return by_item.indices[by_item.indptr[item] : by_item.indptr[item + 1]]

    def allowed_items(
        self, genre: str | None, candidates: Sequence[Any] | np.ndarray | None
    ) -> np.ndarray:
        """A boolean mask over the item indices: the items of ``genre`` (None: every genre)
        among the ``candidates`` movieIds (None: the whole catalogue). Models built on this one
        (hybrid, ranking) filter their lists with it. It may be a cached, read-only array:
        ``.copy()`` it to modify it."""
        if candidates is None:
            if genre is not None:
                return self._genre_mask(genre)
            all_items = self.__dict__.get("_all_items")
            if all_items is None or all_items.size != len(self.item_vocab_):
                all_items = self._all_items = np.ones(len(self.item_vocab_), dtype=bool)
                all_items.flags.writeable = False
            return all_items
        idx = self.item_vocab_.index_of(np.asarray(candidates))
        allowed = np.zeros(len(self.item_vocab_), dtype=bool)
        allowed[idx[idx >= 0]] = True
        if genre is not None:
            allowed &= self._genre_mask(genre)
        return allowed

    def genres(self) -> list[str]:
        """The genres of the model's movies, sorted (empty without genre metadata)."""
        self._require_fitted()
        if "genres" not in self.items_meta_.columns:
            return []
        found = {g for gs in self.items_meta_["genres"] if gs is not None for g in list(gs)}
        return sorted(found)

    def _genre_mask(self, genre: str) -> np.ndarray:
        """Items of ``genre`` (cached per genre: serving asks for the same few again and again)."""
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_genre_masks", {})
        if genre not in cache:
            if "genres" not in self.items_meta_.columns:
                raise DataError(
                    "the model has no genre metadata: train it on a workspace with movies"
                )
            mask = (
                self.items_meta_["genres"]
                .map(lambda g: g is not None and genre in list(g))
                .to_numpy(bool)
            )
            mask.flags.writeable = False
            cache[genre] = mask
        return cache[genre]

    def rating_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of a ranked list for the raw model ``scores``: ``predicted_rating``,
        clipped to the rating scale, and ``score``, the unclipped value that orders the list
        (several items clipped to the top of the scale tie on ``predicted_rating`` but not on
        ``score``). Models whose scores are not ratings are never clipped: one column."""
        low, high = self.rating_range_
        if not (np.isfinite(low) and np.isfinite(high)):
            return {self.score_column: scores}
        return {self.score_column: np.clip(scores, low, high), "score": scores}

    def item_frame(self, top: np.ndarray, **scores: np.ndarray) -> pd.DataFrame:
        """A ranked list as a DataFrame: ``movieId``, ``title`` (when the model has titles) and
        the given score columns for the item indices ``top`` (one DataFrame call: serving
        builds one per request)."""
        columns: dict[str, Any] = {ITEM_COL: self.item_vocab_.ids[top]}
        if "title" in self.items_meta_.columns:
            titles = self.__dict__.get("_titles")
            if titles is None:
                titles = self._titles = self.items_meta_["title"].to_numpy(dtype=object)
            columns["title"] = titles[top]
        columns.update(scores)
        return pd.DataFrame(columns)


def fold_in_arrays(ratings: pd.DataFrame | dict[Any, float]) -> tuple[np.ndarray, np.ndarray]:
    """A new user's ``(movieIds, ratings)``: every movieId present and given once, every
    rating a finite number; a :class:`DataError` naming the first bad movieId or row."""
    if isinstance(ratings, dict):
        items = np.asarray(list(ratings.keys()))
        try:
            values = np.asarray(list(ratings.values()), dtype=np.float64)
        except (TypeError, ValueError):
            values = np.asarray([_as_float(v) for v in ratings.values()], dtype=np.float64)
        if items.size and pd.isna(items).any():
            raise DataError("a new-user rating has no movieId")
        bad = ~np.isfinite(values)
        if bad.any():
            key, raw = list(ratings.items())[int(np.flatnonzero(bad)[0])]
            raise DataError(
                f"new-user rating of movieId {key!r} is {raw!r}: ratings must be finite numbers"
            )
    elif isinstance(ratings, pd.DataFrame):
        missing = [c for c in (ITEM_COL, RATING_COL) if c not in ratings.columns]
        if missing:
            raise DataError(f"new-user ratings need columns movieId, rating; missing {missing[0]}")
        labels = ratings.index
        items, values = new_user_ratings(
            ratings, lambda p: f"new-user ratings: row {labels[p]}", scale=False
        )
    else:
        raise DataError(
            f"new-user ratings must be a DataFrame or a {{movieId: rating}} dict, "
            f"got {type(ratings).__name__}"
        )
    if items.size == 0:
        raise DataError("give at least one (movieId, rating) pair for a new user")
    return items, values


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
