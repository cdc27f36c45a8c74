"""Explicit matrix factorization with intercepts, trained by alternating least squares."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec import artifacts
from hybridrec._errors import DataError, ModelError
from hybridrec._params import (
    check_bool,
    check_fraction,
    check_integer,
    check_number,
    check_seed,
    constructor_params,
)
from hybridrec._progress import progress_bar
from hybridrec.data._ratings import (
    check_scalar_ids,
    frame_rows,
    id_values,
    new_user_ratings,
    rating_values,
)
from hybridrec.data._vocab import IdVocabulary
from hybridrec.evaluate import ranking_metrics, regression_metrics
from hybridrec.mf import _kernels

__all__ = ["MatrixFactorization"]

log = logging.getLogger(__name__)

KIND = "matrix_factorization"
#: the most latent factors a model may have (see ``_check_params``)
MAX_NUM_FACTORS = 1024
USER_COL, ITEM_COL, RATING_COL = "userId", "movieId", "rating"


@dataclass(frozen=True)
class _Csr:
    """Rows of a sparse matrix: ``indices[indptr[r]:indptr[r+1]]`` (and ``values``) of row r."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def build(
        cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, *, sort_cols: bool
    ) -> _Csr:
        if sort_cols:
            # Two stable counting sorts (by column, then by row) leave columns sorted in a row.
            _, by_col = _kernels.csr_from_coo(cols, int(cols.max()) + 1 if cols.size else 1)
            rows, cols, values = rows[by_col], cols[by_col], values[by_col]
        indptr, order = _kernels.csr_from_coo(rows, n_rows)
        return cls(indptr, cols[order], values[order])


class MatrixFactorization:
    """Explicit-feedback matrix factorization with a global mean and per-user/item intercepts.

    The model predicts ``r̂_ui = μ + b_u + b_i + p_u·q_i`` and minimises, by alternating least
    squares (ALS), the regularised squared error over the training ratings::

        Σ (r_ui − r̂_ui)²  +  Σ_u (λ_u n_u^α_u |p_u|² + λ_b n_u^β b_u²)
                           +  Σ_i (λ_i n_i^α_i |q_i|² + λ_b n_i^β b_i²)

    where ``μ`` is the training mean and ``n_u`` / ``n_i`` the number of training ratings of a
    user / item. ``λ_u = l2_reg``, ``λ_i = l2_reg_item`` (default: ``l2_reg``),
    ``α_u = reg_exponent``, ``α_i = item_reg_exponent`` (default: ``reg_exponent``),
    ``λ_b = l2_reg_bias``, ``β = reg_bias_exponent``. An exponent of 1 is the "weighted-λ"
    regularisation of Zhou et al. (Spark's ALS); 0 is plain L2 as in BigQuery ML, and for the
    intercepts it is the "damping" of LensKit's bias model.
    Each half-step solves one small ridge regression per user (then per item) on the augmented
    vectors ``[q_i, 1]``, so intercepts and factors are fitted jointly and exactly.

    Users or items unseen in training fall back to ``μ`` plus the intercept that is known (as
    BigQuery ML does); predictions are clipped to the rating range seen in training.

    Parameters follow BigQuery ML's ``matrix_factorization`` options where one exists.
    Defaults were chosen by measurement on MovieLens 100K (see ``benchmarks/tuning_mf.py``).
    """

    #: the name of the score column in outputs (BigQuery ML's ``predicted_<rating_col>``)
    score_column = "predicted_rating"
    kind = KIND

    def __init__(
        self,
        num_factors: int = 64,
        l2_reg: float = 0.12,
        l2_reg_item: float | None = 0.7,
        l2_reg_bias: float = 1.0,
        reg_exponent: float = 1.0,
        item_reg_exponent: float | None = 0.6,
        reg_bias_exponent: float = 0.0,
        max_iterations: int = 20,
        early_stop: bool = True,
        min_rel_progress: float = 0.01,
        eval_fraction: float = 0.2,
        seed: int = 42,
        init_scale: float = 0.1,
        show_progress: bool = False,
    ) -> None:
        self.num_factors = num_factors
        self.l2_reg = l2_reg
        self.l2_reg_item = l2_reg_item
        self.l2_reg_bias = l2_reg_bias
        self.reg_exponent = reg_exponent
        self.item_reg_exponent = item_reg_exponent
        self.reg_bias_exponent = reg_bias_exponent
        self.max_iterations = max_iterations
        self.early_stop = early_stop
        self.min_rel_progress = min_rel_progress
        self.eval_fraction = eval_fraction
        self.seed = seed
        # Filled by tune_mf (the CLI's --tune); kept in the artifact's metadata.
        self.tuning_trials_: list[dict[str, Any]] = []
        self.init_scale = init_scale
        self.show_progress = show_progress

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _check_params(self) -> None:
        """One ``ValueError`` naming the first bad hyper-parameter (NaN and inf are bad)."""
        check_integer("num_factors", self.num_factors, low=1)
        if self.num_factors > MAX_NUM_FACTORS:
            raise ValueError(
                f"num_factors must be at most {MAX_NUM_FACTORS}, got {self.num_factors}: ALS "
                "solves a (num_factors+1)-square system per user and item, so memory grows "
                "with its square and time with its cube"
            )
        check_number("l2_reg", self.l2_reg, low=0)
        check_number("l2_reg_item", self.l2_reg_item, low=0, optional=True)
        check_number("l2_reg_bias", self.l2_reg_bias, low=0)
        check_number("reg_exponent", self.reg_exponent)
        check_number("item_reg_exponent", self.item_reg_exponent, optional=True)
        check_number("reg_bias_exponent", self.reg_bias_exponent)
        check_integer("max_iterations", self.max_iterations, low=1)
        check_bool("early_stop", self.early_stop)
        check_number("min_rel_progress", self.min_rel_progress, low=0)
        check_fraction("eval_fraction", self.eval_fraction)
        check_seed("seed", self.seed)
        check_number("init_scale", self.init_scale, low=0)

    # ------------------------------------------------------------------ fitting
    def fit(self, ratings: pd.DataFrame, items: pd.DataFrame | None = None) -> MatrixFactorization:
        """Fit on a ratings frame (``userId``, ``movieId``, ``rating``).

        ``items`` (``movieId``, ``title``, ``genres``) is optional metadata kept with the model so
        that recommendations carry titles and can be filtered by genre. A seeded random
        ``eval_fraction`` of the ratings is held out; it is reported as ``eval_loss`` per
        iteration and is what :meth:`evaluate` uses by default.
        """
        self._check_params()
        users_ext, items_ext, values = _ratings_arrays(ratings)
        rng = np.random.default_rng(self.seed)
        held_out = np.asarray(rng.random(values.shape[0]) < self.eval_fraction)
        train = ~held_out
        if not train.any():
            raise DataError(
                f"no training ratings left after holding out eval_fraction={self.eval_fraction} "
                f"of {values.size} ratings: give more ratings or a smaller eval_fraction"
            )

        self.user_vocab_ = IdVocabulary(users_ext[train])
        self.item_vocab_ = IdVocabulary(items_ext[train])
        u_idx = self.user_vocab_.index_of(users_ext)
        i_idx = self.item_vocab_.index_of(items_ext)
        n_users, n_items = len(self.user_vocab_), len(self.item_vocab_)
        _check_memory(self._memory_needed(n_users, n_items), self.num_factors, n_users, n_items)

        tu, ti, tv = u_idx[train], i_idx[train], values[train]
        self._set_offsets(tv)
        by_user = _Csr.build(tu, ti, tv, n_users, sort_cols=True)
        by_item = _Csr.build(ti, tu, tv, n_items, sort_cols=False)
        self._train_csr = by_user

        k = self.num_factors
        scale = self.init_scale / np.sqrt(k)
        self.user_factors_ = np.zeros((n_users, k), dtype=np.float32)
        self.item_factors_ = (rng.standard_normal((n_items, k)) * scale).astype(np.float32)
        self.user_bias_ = np.zeros(n_users, dtype=np.float64)
        self.item_bias_ = np.zeros(n_items, dtype=np.float64)

        eu, ei, ev = u_idx[held_out], i_idx[held_out], values[held_out]
        self.eval_set_ = pd.DataFrame(
            {
                USER_COL: users_ext[held_out],
                ITEM_COL: items_ext[held_out],
                RATING_COL: ev.astype(np.float64),
            }
        )
        self.training_log_: list[dict[str, float]] = []
        previous_loss = np.inf
        with progress_bar("ALS", self.max_iterations, show=self.show_progress) as bar:
            for iteration in range(self.max_iterations):
                start = time.perf_counter()
                self._sweep(by_user, by_item)
                duration_ms = (time.perf_counter() - start) * 1000
                loss, eval_loss = self._losses(by_user, (tu, ti, tv), (eu, ei, ev))
                self.training_log_.append(
                    {
                        "iteration": iteration,
                        "loss": loss,
                        "eval_loss": eval_loss,
                        "duration_ms": round(duration_ms, 3),
                    }
                )
                log.info(
                    "iteration %d: loss %.5f eval_loss %.5f (%.0f ms)",
                    iteration,
                    loss,
                    eval_loss,
                    duration_ms,
                )
                bar.advance(1, description=f"ALS loss {loss:.4f}")
                rel_progress = _relative_progress(previous_loss, loss)
                previous_loss = loss
                if self.early_stop and rel_progress < self.min_rel_progress:
                    break

        self.seen_ = self._seen_csr(u_idx, i_idx)
        self.items_meta_ = _items_metadata(items, self.item_vocab_)
        self.data_fingerprint_ = _fingerprint(users_ext, items_ext, values)
        self.metrics_ = self.evaluate() if len(self.eval_set_) else {}
        return self

    def _memory_needed(self, n_users: int, n_items: int) -> int:
        """Bytes training needs beyond the ratings: the float32 factor matrices and, per
        thread, the float64 normal equations of one (num_factors + 1)-unknown solve."""
        d = self.num_factors + 1
        factors = (n_users + n_items) * self.num_factors * 4
        per_thread = (d + 64) ** 2 * 8 + 256 * (d + 64) * 4
        return factors + numba.get_num_threads() * per_thread

    def _set_offsets(self, train_values: np.ndarray) -> None:
        """μ (the training mean) and the range predictions are clipped to."""
        self.global_mean_ = float(train_values.mean(dtype=np.float64))
        self.rating_range_ = (float(train_values.min()), float(train_values.max()))

    def _sweep(self, by_user: _Csr, by_item: _Csr) -> None:
        """One ALS iteration: all users given the items, then all items given the users."""
        self._half_step(
            by_user,
            self.item_factors_,
            self.item_bias_,
            self.user_factors_,
            self.user_bias_,
            item_side=False,
        )
        self._half_step(
            by_item,
            self.user_factors_,
            self.user_bias_,
            self.item_factors_,
            self.item_bias_,
            item_side=True,
        )

    def _losses(
        self,
        by_user: _Csr,
        train: tuple[np.ndarray, np.ndarray, np.ndarray],
        held_out: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[float, float]:
        """(training loss, eval loss) logged per iteration: mean squared errors here."""
        loss = self._mse_known(*train)
        eval_loss = self._mse_any(*held_out) if held_out[2].size else float("nan")
        return loss, eval_loss

    def _half_step(
        self,
        csr: _Csr,
        other_factors: np.ndarray,
        other_bias: np.ndarray,
        out_factors: np.ndarray,
        out_bias: np.ndarray,
        *,
        item_side: bool,
    ) -> None:
        reg, exponent = self.l2_reg, self.reg_exponent
        if item_side:
            reg = self.l2_reg if self.l2_reg_item is None else self.l2_reg_item
            exponent = (
                self.reg_exponent if self.item_reg_exponent is None else self.item_reg_exponent
            )
        _kernels.solve_side(
            csr.indptr,
            csr.indices,
            csr.values,
            other_factors,
            other_bias,
            self.global_mean_,
            float(reg),
            float(self.l2_reg_bias),
            float(exponent),
            float(self.reg_bias_exponent),
            out_factors,
            out_bias,
        )

    def _mse_known(self, u: np.ndarray, i: np.ndarray, v: np.ndarray) -> float:
        sse = _kernels.squared_error_sum(
            u,
            i,
            v,
            self.user_factors_,
            self.user_bias_,
            self.item_factors_,
            self.item_bias_,
            self.global_mean_,
        )
        return float(sse / v.size)

    def _mse_any(self, u: np.ndarray, i: np.ndarray, v: np.ndarray) -> float:
        pred = self._predict_indices(u, i)
        return float(np.mean((v - pred) ** 2))

    def _seen_csr(self, u_idx: np.ndarray, i_idx: np.ndarray) -> _Csr:
        known = (u_idx >= 0) & (i_idx >= 0)
        u, i = u_idx[known], i_idx[known]
        return _Csr.build(
            u, i, np.ones(u.size, dtype=np.float32), len(self.user_vocab_), sort_cols=True
        )

    # ------------------------------------------------------------------ predicting
    def _require_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise ModelError("this MatrixFactorization is not fitted: call fit() first")

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        low, high = self.rating_range_
        return _kernels.predict_pairs(
            np.ascontiguousarray(u, dtype=np.int32),
            np.ascontiguousarray(i, dtype=np.int32),
            self.user_factors_,
            self.user_bias_,
            self.item_factors_,
            self.item_bias_,
            self.global_mean_,
            low,
            high,
        )

    def predict(
        self, users: Sequence[Any] | np.ndarray, items: Sequence[Any] | np.ndarray
    ) -> np.ndarray:
        """Predicted ratings for aligned sequences of external user and item ids.

        Unknown ids fall back to ``μ`` plus the known intercept; results are clipped to the
        training rating range.
        """
        self._require_fitted()
        users_arr, items_arr = np.asarray(users), np.asarray(items)
        if users_arr.shape != items_arr.shape:
            raise DataError(f"{users_arr.size} users but {items_arr.size} items: pairs must align")
        return self._predict_indices(
            self.user_vocab_.index_of(users_arr), self.item_vocab_.index_of(items_arr)
        )

    def predict_frame(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """``pairs`` (``userId``, ``movieId``) with a ``predicted_rating`` column added."""
        missing = [c for c in (USER_COL, ITEM_COL) if c not in pairs.columns]
        if missing:
            raise DataError(f"pairs need columns userId and movieId; missing {', '.join(missing)}")
        for column in (USER_COL, ITEM_COL):
            check_scalar_ids(pairs[column], column, frame_rows(pairs))
        out = pairs.copy()
        out[self.score_column] = self.predict(
            pairs[USER_COL].to_numpy(), pairs[ITEM_COL].to_numpy()
        )
        return out

    # ------------------------------------------------------------------ recommending
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
        ``predicted_rating``), best first.

        ``genre`` keeps items of that genre; ``candidates`` keeps only the given item ids. Items
        the user rated (in training or in the hold-out) are skipped unless ``exclude_seen`` is
        false. An unknown user gets the items with the highest intercepts (``μ + b_i``).
        """
        self._require_fitted()
        _check_n(n)
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
        items, values = _fold_in_arrays(ratings)
        idx = self.item_vocab_.index_of(items)
        known = idx >= 0
        k = self.num_factors
        factors = np.zeros((1, k), dtype=np.float32)
        bias = np.zeros(1, dtype=np.float64)
        if known.any():
            csr = _Csr(
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
        items, _ = _fold_in_arrays(ratings)
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
        _check_n(n)
        factors, bias = self.fold_in(ratings)
        items, _ = _fold_in_arrays(ratings)
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
            self._allowed_items(genre, candidates),
            np.ascontiguousarray(exclude, dtype=np.int32),
            n,
        )
        low, high = self.rating_range_
        return self._item_frame(top, **{self.score_column: np.clip(scores, low, high)})

    def recommend_users(self, item: Any, n: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """The ``n`` users with the highest predicted rating for ``item`` (``userId``,
        ``predicted_rating``): the notebook's targeting query."""
        self._require_fitted()
        _check_n(n)
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
            seen_users = self._users_who_saw(i)
            scores[seen_users] = -np.inf
        top = _top_n(scores, n)
        low, high = self.rating_range_
        return pd.DataFrame(
            {
                USER_COL: self.user_vocab_.ids[top],
                self.score_column: np.clip(scores[top], low, high),
            }
        )

    def recommend_all(
        self, n: int = 10, *, exclude_seen: bool = True, block_size: int = 4096
    ) -> Iterator[pa.RecordBatch]:
        """Every user's top-``n``, streamed as Arrow record batches of
        (``userId``, ``rank``, ``movieId``, ``predicted_rating``); never a users × items matrix."""
        self._require_fitted()
        _check_n(n)
        excl = self.seen_ if exclude_seen else _empty_csr(len(self.user_vocab_))
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
        self, n: int, excl: _Csr, block_size: int, user_rows: np.ndarray | None = None
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Top-``n`` item indices and scores for every user (or the users ``user_rows``), in
        blocks of users: ``(position of the block's first user, indices, scores)``."""
        item_scores_t = np.ascontiguousarray(self.item_factors_.T)
        item_bias = self.item_bias_.astype(np.float32)
        if user_rows is not None:
            excl = _rows_of(excl, user_rows)
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

    def _users_who_saw(self, item: int) -> np.ndarray:
        # The item → users view of the seen pairs is built once, on first use.
        if getattr(self, "_seen_by_item", None) is None:
            seen = self.seen_
            rows = np.repeat(np.arange(len(seen.indptr) - 1, dtype=np.int32), np.diff(seen.indptr))
            self._seen_by_item = _Csr.build(
                seen.indices, rows, seen.values, len(self.item_vocab_), sort_cols=False
            )
        by_item = self._seen_by_item
        return by_item.indices[by_item.indptr[item] : by_item.indptr[item + 1]]

    def _candidate_mask(
        self, genre: str | None, candidates: Sequence[Any] | np.ndarray | None
    ) -> np.ndarray:
        """Items that may be recommended (a fresh mask the caller may modify)."""
        return self._allowed_items(genre, candidates).copy()

    def _allowed_items(
        self, genre: str | None, candidates: Sequence[Any] | np.ndarray | None
    ) -> np.ndarray:
        """Items that may be recommended; may be a cached mask: read it, never modify it."""
        if candidates is None:
            if genre is not None:
                return self._genre_mask(genre)
            all_items = self.__dict__.get("_all_items")
            if all_items is None or all_items.size != len(self.item_vocab_):
                all_items = self._all_items = np.ones(len(self.item_vocab_), dtype=bool)
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
            cache[genre] = (
                self.items_meta_["genres"]
                .map(lambda g: g is not None and genre in list(g))
                .to_numpy(bool)
            )
        return cache[genre]

    def _item_frame(self, top: np.ndarray, **scores: np.ndarray) -> pd.DataFrame:
        """``movieId``, ``title`` (when the model has titles) and the given score columns for the
        item indices ``top``: one DataFrame call (serving builds one per request)."""
        columns: dict[str, Any] = {ITEM_COL: self.item_vocab_.ids[top]}
        if "title" in self.items_meta_.columns:
            titles = self.__dict__.get("_titles")
            if titles is None:
                titles = self._titles = self.items_meta_["title"].to_numpy(dtype=object)
            columns["title"] = titles[top]
        columns.update(scores)
        return pd.DataFrame(columns)

    # ------------------------------------------------------------------ inspecting
    def training_info(self) -> pd.DataFrame:
        """Per-iteration log like ``ML.TRAINING_INFO``: iteration, loss, eval_loss, duration_ms."""
        self._require_fitted()
        return pd.DataFrame(
            self.training_log_, columns=["iteration", "loss", "eval_loss", "duration_ms"]
        )

    def weights(
        self, users: Sequence[Any] | None = None, items: Sequence[Any] | None = None
    ) -> pd.DataFrame:
        """Learned weights in ``ML.WEIGHTS`` shape: ``processed_input``, ``feature``,
        ``factor_weights`` (list of ``{factor, weight}``), ``intercept``; plus the
        ``global__intercept__`` row. With ``users``/``items``: only those rows, no global row."""
        return self.weights_table(users, items).to_pandas()

    def weights_table(
        self, users: Sequence[Any] | None = None, items: Sequence[Any] | None = None
    ) -> pa.Table:
        """:meth:`weights` as an Arrow table (no per-row Python objects: for export)."""
        self._require_fitted()
        parts: list[pa.Table] = []
        selective = users is not None or items is not None
        for name, vocab, factors, bias, wanted in (
            (USER_COL, self.user_vocab_, self.user_factors_, self.user_bias_, users),
            (ITEM_COL, self.item_vocab_, self.item_factors_, self.item_bias_, items),
        ):
            if selective and wanted is None:
                continue
            rows = np.arange(len(vocab)) if wanted is None else _known_rows(vocab, wanted, name)
            parts.append(_weights_table(name, vocab.ids[rows], factors[rows], bias[rows]))
        if not selective:
            parts.append(
                _weights_table(
                    "global__intercept__", None, np.zeros((1, 0)), np.array([self.global_mean_])
                )
            )
        return pa.concat_tables(parts)

    def evaluate(
        self, data: pd.DataFrame | None = None, *, k: int = 10, relevance_threshold: float = 4.0
    ) -> dict[str, float]:
        """Regression metrics (BigQuery ML's names + ``rmse``) and ranking metrics at ``k``.

        Defaults to the model's own hold-out. Ranking: for each user with a held-out rating
        ≥ ``relevance_threshold``, rank all items not rated in training.
        """
        self._require_fitted()
        data = evaluation_data(self, data)
        users_ext, items_ext, values = _ratings_arrays(data)
        pred = self.predict(users_ext, items_ext)
        metrics = regression_metrics(values, pred)
        metrics.update(self._ranking(users_ext, items_ext, values, k, relevance_threshold))
        return metrics

    def _ranking(
        self,
        users_ext: np.ndarray,
        items_ext: np.ndarray,
        values: np.ndarray,
        k: int,
        threshold: float,
    ) -> dict[str, float]:
        u = self.user_vocab_.index_of(users_ext)
        i = self.item_vocab_.index_of(items_ext)
        relevant = (values >= threshold) & (u >= 0) & (i >= 0)
        if not relevant.any():
            return {}
        rel = _Csr.build(
            u[relevant], i[relevant], values[relevant], len(self.user_vocab_), sort_cols=True
        )
        eval_users = np.flatnonzero(np.diff(rel.indptr) > 0)
        # only the users with something relevant to find are ranked
        top_items = np.full((eval_users.size, k), -1, dtype=np.int32)
        for start, top_idx, _ in self._top_n_blocks(k, self._train_csr, 4096, eval_users):
            top_items[start : start + len(top_idx)] = top_idx
        eval_rel = _rows_of(rel, eval_users)
        return ranking_metrics(
            top_items,
            eval_rel.indptr,
            eval_rel.indices,
            k,
            item_popularity=self._item_popularity(),
        )

    def _item_popularity(self) -> np.ndarray:
        """Share of training users who rated each item."""
        train = self._train_csr
        counts = np.bincount(train.indices, minlength=len(self.item_vocab_))
        return counts / max(len(self.user_vocab_), 1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra_meta: dict[str, Any] | None = None) -> None:
        """Write the model as a directory (Parquet tables + ``meta.json``), atomically.

        ``extra_meta`` is merged into ``meta.json`` (e.g. the Spark engine's description)."""
        self._require_fitted()
        k = self.num_factors
        users = pa.table(
            {
                USER_COL: pa.array(self.user_vocab_.ids),
                "intercept": pa.array(self.user_bias_),
                "factors": _fixed_list(self.user_factors_, k),
            }
        )
        items_cols: dict[str, Any] = {
            ITEM_COL: pa.array(self.item_vocab_.ids),
            "intercept": pa.array(self.item_bias_),
            "factors": _fixed_list(self.item_factors_, k),
        }
        for col in self.items_meta_.columns:
            items_cols[col] = pa.array(self.items_meta_[col].tolist())
        seen_rows = np.repeat(
            np.arange(len(self.seen_.indptr) - 1, dtype=np.int32), np.diff(self.seen_.indptr)
        )
        train_rows = np.repeat(
            np.arange(len(self._train_csr.indptr) - 1, dtype=np.int32),
            np.diff(self._train_csr.indptr),
        )
        meta = {
            "kind": self.kind,
            "params": self.get_params(),
            "global_mean": self.global_mean_,
            "rating_range": [x if np.isfinite(x) else None for x in self.rating_range_],
            "n_users": len(self.user_vocab_),
            "n_items": len(self.item_vocab_),
            "n_train_ratings": int(self._train_csr.indices.size),
            "n_eval_ratings": len(self.eval_set_),
            "training_log": self.training_log_,
            "data_fingerprint": self.data_fingerprint_,
            "metrics": self.metrics_,
            "tuning_trials": self.tuning_trials_,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra_meta or {}),
        }
        artifacts.write_artifact(
            path,
            meta,
            {
                "users": users,
                "items": pa.table(items_cols),
                "seen": pa.table(
                    {"user_index": seen_rows, "item_index": self.seen_.indices.astype(np.int32)}
                ),
                "train": pa.table(
                    {
                        "user_index": train_rows,
                        "item_index": self._train_csr.indices.astype(np.int32),
                    }
                ),
                "eval": pa.Table.from_pandas(self.eval_set_, preserve_index=False),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model written by :meth:`save` (or by the Spark engine)."""
        meta = artifacts.read_meta(path)
        if meta.get("kind") != cls.kind:
            raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {cls.kind}")
        params = meta["params"]
        model = cls(**params)
        users = artifacts.read_table(path, "users")
        items = artifacts.read_table(path, "items")
        model.user_vocab_ = IdVocabulary.from_sorted(users[USER_COL].to_numpy())
        model.item_vocab_ = IdVocabulary.from_sorted(items[ITEM_COL].to_numpy())
        k = int(params["num_factors"])
        for name, table in (("users", users), ("items", items)):
            artifacts.check_list_width(path, name, table, "factors", k)
        model.user_factors_ = _unfixed_list(users["factors"], k)
        model.item_factors_ = _unfixed_list(items["factors"], k)
        model.user_bias_ = users["intercept"].to_numpy().astype(np.float64)
        model.item_bias_ = items["intercept"].to_numpy().astype(np.float64)
        model.global_mean_ = float(meta["global_mean"])
        low, high = meta["rating_range"]
        model.rating_range_ = (
            -np.inf if low is None else float(low),
            np.inf if high is None else float(high),
        )
        model.training_log_ = list(meta["training_log"])
        model.data_fingerprint_ = meta["data_fingerprint"]
        model.metrics_ = dict(meta.get("metrics", {}))
        model.tuning_trials_ = list(meta.get("tuning_trials", []))
        meta_cols = [c for c in items.column_names if c not in (ITEM_COL, "intercept", "factors")]
        model.items_meta_ = (
            items.select(meta_cols).to_pandas()
            if meta_cols
            else pd.DataFrame(index=range(items.num_rows))
        )
        n_users = len(model.user_vocab_)
        model.seen_ = _csr_from_table(artifacts.read_table(path, "seen"), n_users)
        model._train_csr = _csr_from_table(artifacts.read_table(path, "train"), n_users)
        model.eval_set_ = artifacts.read_table(path, "eval").to_pandas()
        return model


# ---------------------------------------------------------------------- helpers
def _ratings_arrays(ratings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _fold_in_arrays(ratings: pd.DataFrame | dict[Any, float]) -> tuple[np.ndarray, np.ndarray]:
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


def _items_metadata(items: pd.DataFrame | None, vocab: IdVocabulary) -> pd.DataFrame:
    columns = [c for c in ("title", "genres") if items is not None and c in items.columns]
    if items is None or not columns:
        return pd.DataFrame(index=range(len(vocab)))
    meta = items.drop_duplicates(ITEM_COL).set_index(ITEM_COL)[columns]
    return meta.reindex(vocab.ids).reset_index(drop=True)


def _fingerprint(users: np.ndarray, items: np.ndarray, values: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for arr in (users, items, values):
        digest.update(
            np.ascontiguousarray(arr).tobytes()
            if arr.dtype != object
            else str(arr.tolist()).encode()
        )
    return f"{values.size}:{digest.hexdigest()}"


def _available_memory() -> int | None:
    """Bytes of memory this process may still use (MemAvailable, capped by a cgroup v2
    limit), or None when the system does not say."""
    available: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit.isdigit():
            free = int(limit) - int((cgroup / "memory.current").read_text().strip())
            available = free if available is None else min(available, free)
    except (OSError, ValueError):
        pass
    return available


def _check_memory(needed: int, num_factors: int, n_users: int, n_items: int) -> None:
    """Refuse to start training that cannot fit in memory (before allocating anything)."""
    available = _available_memory()
    if available is not None and needed > available:
        raise DataError(
            f"training with num_factors={num_factors} on {n_users} users and {n_items} items "
            f"needs about {_size(needed)} of memory (factor matrices plus one "
            f"(num_factors+1)-square system per thread) but only {_size(available)} is "
            "available: lower num_factors"
        )


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _relative_progress(previous_loss: float, loss: float) -> float:
    """How much an iteration reduced the loss, relative to the loss before it (inf on the first
    iteration; 0 once the loss is 0: a perfect fit cannot improve)."""
    if not np.isfinite(previous_loss):
        return float("inf")
    if previous_loss <= 0:
        return 0.0
    return float((previous_loss - loss) / previous_loss)


def _check_n(n: int) -> None:
    if n < 1:
        raise DataError(f"n must be at least 1, got {n}")


def _top_n(scores: np.ndarray, n: int) -> np.ndarray:
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size <= n:
        return finite[np.argsort(-scores[finite], kind="stable")]
    part = finite[np.argpartition(-scores[finite], n - 1)[:n]]
    return part[np.argsort(-scores[part], kind="stable")]


def _rows_of(csr: _Csr, rows: np.ndarray) -> _Csr:
    """The CSR of the given rows only, in that order."""
    starts, ends = csr.indptr[rows], csr.indptr[rows + 1]
    counts = ends - starts
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # positions of the kept entries: each row's start, then consecutive
    positions = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
    return _Csr(indptr, csr.indices[positions], csr.values[positions])


def _empty_csr(n_rows: int) -> _Csr:
    return _Csr(
        np.zeros(n_rows + 1, dtype=np.int64),
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.float32),
    )


def _csr_from_table(table: pa.Table, n_rows: int) -> _Csr:
    rows = table["user_index"].to_numpy()
    cols = table["item_index"].to_numpy()
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.add.at(indptr, rows.astype(np.int64) + 1, 1)
    return _Csr(np.cumsum(indptr), cols, np.ones(cols.size, dtype=np.float32))


def _known_rows(vocab: IdVocabulary, wanted: Sequence[Any], name: str) -> np.ndarray:
    idx = vocab.index_of(np.asarray(list(wanted)))
    if (idx < 0).any():
        unknown = np.asarray(list(wanted))[idx < 0][0]
        raise DataError(f"{name} {unknown} is not in the model")
    return idx


def _weights_table(
    processed_input: str, ids: np.ndarray | None, factors: np.ndarray, bias: np.ndarray
) -> pa.Table:
    n, k = factors.shape
    factor_numbers = np.tile(np.arange(1, k + 1, dtype=np.int64), n)
    structs = pa.StructArray.from_arrays(
        [pa.array(factor_numbers), pa.array(factors.astype(np.float64).ravel())],
        names=["factor", "weight"],
    )
    offsets = (
        pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
        if k
        else pa.array(np.zeros(n + 1, dtype=np.int32))
    )
    feature = (
        pa.array([None] * n, type=pa.string()) if ids is None else pa.array([str(x) for x in ids])
    )
    return pa.table(
        {
            "processed_input": pa.array([processed_input] * n),
            "feature": feature,
            "factor_weights": pa.ListArray.from_arrays(offsets, structs),
            "intercept": pa.array(bias.astype(np.float64)),
        }
    )


def _fixed_list(factors: np.ndarray, k: int) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(factors, dtype=np.float32).ravel())
    return pa.ListArray.from_arrays(
        pa.array(np.arange(0, factors.shape[0] * k + 1, k, dtype=np.int32)), flat
    )


def _unfixed_list(column: pa.ChunkedArray, k: int) -> np.ndarray:
    flat = (
        pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
        if column.num_chunks
        else pa.array([], pa.float32())
    )
    return np.ascontiguousarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(
        -1, k
    )
