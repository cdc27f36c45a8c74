"""Explicit matrix factorization with intercepts, trained by alternating least squares."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.contract import MATRIX_FACTORIZATION
from hybridrec._core.params import (
    check_bool,
    check_fraction,
    check_integer,
    check_number,
    check_seed,
    constructor_params,
)
from hybridrec._core.progress import progress_bar
from hybridrec._core.sparse import Csr, rows_of
from hybridrec._errors import DataError, ModelError
from hybridrec.data import (
    IdVocabulary,
    check_scalar_ids,
    fingerprint,
    frame_rows,
    holdout_mask,
    ratings_arrays,
)
from hybridrec.evaluate import (
    evaluation_data,
    ranking_metrics,
    regression_metrics,
    relevant_rows,
)
from hybridrec.mf import _kernels
from hybridrec.mf._memory import check_memory
from hybridrec.mf._persist import load_mf, save_mf
from hybridrec.mf._recommend import Recommending
from hybridrec.mf._weights import weights_table

__all__ = ["MAX_NUM_FACTORS", "MatrixFactorization", "items_metadata"]

log = logging.getLogger(__name__)

#: the most latent factors a model may have (see ``_check_params``)
MAX_NUM_FACTORS = 1024


class MatrixFactorization(Recommending):
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
    kind = MATRIX_FACTORIZATION.name

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
        # Filled by tune_mf (the CLI's --tune) on the model it returns; kept in the metadata.
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
        users_ext, items_ext, values = ratings_arrays(ratings)
        rng = np.random.default_rng(self.seed)
        held_out = holdout_mask(values.shape[0], self.eval_fraction, rng)
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
        check_memory(self._memory_needed(n_users, n_items), self.num_factors, n_users, n_items)

        tu, ti, tv = u_idx[train], i_idx[train], values[train]
        self._set_offsets(tv)
        by_user = Csr.build(tu, ti, tv, n_users, sort_cols=True)
        by_item = Csr.build(ti, tu, tv, n_items, sort_cols=False)
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
        self.items_meta_ = items_metadata(items, self.item_vocab_)
        self.data_fingerprint_ = fingerprint(users_ext, items_ext, values)
        self.metrics_ = self.evaluate() if len(self.eval_set_) else {}
        return self

    def trained_on(self, ratings: pd.DataFrame) -> bool:
        """Whether ``ratings`` are exactly those this model was fitted on (the same data
        fingerprint: the same rows in the same order, hence the same hold-out split)."""
        self._require_fitted()
        users, items, values = ratings_arrays(ratings)
        return bool(fingerprint(users, items, values) == self.data_fingerprint_)

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

    def _sweep(self, by_user: Csr, by_item: Csr) -> None:
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
        by_user: Csr,
        train: tuple[np.ndarray, np.ndarray, np.ndarray],
        held_out: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[float, float]:
        """(training loss, eval loss) logged per iteration: mean squared errors here."""
        loss = self._mse_known(*train)
        eval_loss = self._mse_any(*held_out) if held_out[2].size else float("nan")
        return loss, eval_loss

    def _half_step(
        self,
        csr: Csr,
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
        pred = self.predict_indices(u, i)
        return float(np.mean((v - pred) ** 2))

    def _seen_csr(self, u_idx: np.ndarray, i_idx: np.ndarray) -> Csr:
        known = (u_idx >= 0) & (i_idx >= 0)
        u, i = u_idx[known], i_idx[known]
        return Csr.build(
            u, i, np.ones(u.size, dtype=np.float32), len(self.user_vocab_), sort_cols=True
        )

    # ------------------------------------------------------------------ predicting
    def _require_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise ModelError("this MatrixFactorization is not fitted: call fit() first")

    def predict_indices(self, u: np.ndarray, i: np.ndarray, clip: bool = True) -> np.ndarray:
        """Scores of aligned user and item *indices* (vocabulary positions, not ids), clipped to
        the rating scale unless ``clip`` is False."""
        low, high = self.rating_range_ if clip else (-np.inf, np.inf)
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
        self,
        users: Sequence[Any] | np.ndarray,
        items: Sequence[Any] | np.ndarray,
        *,
        clip: bool = True,
    ) -> np.ndarray:
        """Predicted ratings for aligned sequences of external user and item ids.

        Unknown ids fall back to ``μ`` plus the known intercept; results are clipped to the
        training rating range unless ``clip`` is false (the model's raw scores, which rank
        pairs the clipped values tie: the SQL face's ``ML.PREDICT`` orders by them).
        """
        self._require_fitted()
        users_arr, items_arr = np.asarray(users), np.asarray(items)
        if users_arr.shape != items_arr.shape:
            raise DataError(f"{users_arr.size} users but {items_arr.size} items: pairs must align")
        return self.predict_indices(
            self.user_vocab_.index_of(users_arr), self.item_vocab_.index_of(items_arr), clip
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
        return weights_table(self, users, items)

    def evaluate(
        self, data: pd.DataFrame | None = None, *, k: int = 10, relevance_threshold: float = 4.0
    ) -> dict[str, float]:
        """Regression metrics (BigQuery ML's names + ``rmse``) and ranking metrics at ``k``.

        Defaults to the model's own hold-out. Ranking: for each user with a held-out rating
        ≥ ``relevance_threshold``, rank all items not rated in training.
        """
        self._require_fitted()
        data = evaluation_data(self, data)
        users_ext, items_ext, values = ratings_arrays(data)
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
        found = relevant_rows(u, i, values, threshold, len(self.user_vocab_))
        if found is None:
            return {}
        rel, eval_users = found
        # only the users with something relevant to find are ranked
        top_items = np.full((eval_users.size, k), -1, dtype=np.int32)
        for start, top_idx, _ in self._top_n_blocks(k, self._train_csr, 4096, eval_users):
            top_items[start : start + len(top_idx)] = top_idx
        eval_rel = rows_of(rel, eval_users)
        return ranking_metrics(
            top_items,
            eval_rel.indptr,
            eval_rel.indices,
            k,
            item_popularity=self.item_popularity(),
        )

    def item_popularity(self) -> np.ndarray:
        """Share of training users who rated each item (index order): the popularity that
        ``novelty@k`` reads."""
        train = self._train_csr
        counts = np.bincount(train.indices, minlength=len(self.item_vocab_))
        return counts / max(len(self.user_vocab_), 1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra_meta: dict[str, Any] | None = None) -> None:
        """Write the model as a directory (Parquet tables + ``meta.json``), atomically.

        ``extra_meta`` is merged into ``meta.json`` (e.g. the Spark engine's description)."""
        save_mf(self, path, extra_meta=extra_meta)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model written by :meth:`save` (or by the Spark engine)."""
        return load_mf(cls, path)


# ---------------------------------------------------------------------- helpers
def items_metadata(items: pd.DataFrame | None, vocab: IdVocabulary) -> pd.DataFrame:
    """The ``title`` and ``genres`` of ``items`` (those it has), one row per item of ``vocab``
    in its order (missing items: empty values)."""
    columns = [c for c in ("title", "genres") if items is not None and c in items.columns]
    if items is None or not columns:
        return pd.DataFrame(index=range(len(vocab)))
    meta = items.drop_duplicates(ITEM_COL).set_index(ITEM_COL)[columns]
    return meta.reindex(vocab.ids).reset_index(drop=True)


def _relative_progress(previous_loss: float, loss: float) -> float:
    """How much an iteration reduced the loss, relative to the loss before it (inf on the first
    iteration; 0 once the loss is 0: a perfect fit cannot improve)."""
    if not np.isfinite(previous_loss):
        return float("inf")
    if previous_loss <= 0:
        return 0.0
    return float((previous_loss - loss) / previous_loss)
