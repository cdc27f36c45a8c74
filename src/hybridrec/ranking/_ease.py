"""EASE: an item-item linear model in closed form (Steck 2019, "Embarrassingly Shallow
Autoencoders for Sparse Data")."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrec import artifacts
from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.contract import EASE_KIND
from hybridrec._core.params import (
    check_fraction,
    check_integer,
    check_number,
    check_seed,
    constructor_params,
)
from hybridrec._core.progress import progress_bar
from hybridrec._core.sparse import Csr, check_n, rows_of
from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import RETRAIN
from hybridrec.data import IdVocabulary, holdout_mask, ratings_arrays
from hybridrec.evaluate import evaluation_data, ranking_metrics, relevant_rows
from hybridrec.mf import available_memory, fold_in_arrays, items_metadata
from hybridrec.ranking import _ease_files, _ease_kernels

__all__ = ["EASE"]

log = logging.getLogger(__name__)

KIND = EASE_KIND.name
WEIGHTS_FILE = "weights.npy"
#: the λ tried when ``l2_reg`` is None (geometric, 2× apart)
L2_GRID = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
L2_DEFAULT = 400.0
L2_MAX = 1e6
#: validation users scored per λ when choosing it; evaluation users in fit (a seeded sample)
TUNE_USERS, EVAL_USERS = 5000, 20_000
#: users scored per block in evaluation (a block is users × items float32)
BLOCK = 1024


class EASE:
    """EASE: every item's score is a learned linear combination of the items the user rated.

    With ``X`` the binary user × item matrix of training ratings (1 = rated), the weights are
    ``B = argmin |X − XB|² + λ|B|²`` subject to ``diag(B) = 0``, in closed form::

        P = (XᵀX + λI)⁻¹,    B = I − P·diag(1/diag(P))     (so B_ij = −P_ij / P_jj, B_ii = 0)

    and user ``u`` scores item ``j`` by ``(x_u B)_j``. A new user is scored the same way from
    the items they rated: no fold-in, no retraining.

    ``l2_reg=None`` chooses λ from :data:`L2_GRID` (doubled beyond it while the largest is
    best) by NDCG@10 on a validation split of the
    training ratings (``validation_fraction``; relevant = rating ≥ ``relevance_threshold``;
    at most :data:`TUNE_USERS` validation users), then fits with ``l2_reg_scale`` × that λ
    (1 by default; a re-ranker that sees popularity by other means wants a less shrunk EASE:
    :class:`~hybridrec.ranking.RankingRecommender` uses 0.25);
    on catalogues larger than ``tune_items`` the search uses the ``tune_items`` most rated
    items (one inversion per λ costs O(n³)). ``max_items`` keeps only the most rated items (the
    others are never recommended); memory is one ``n × n`` float32 matrix (4 n² bytes: 2.9 GB at
    27k items) and time is dominated by two O(n³) LAPACK calls.

    The ``eval_fraction`` hold-out is drawn as :class:`~hybridrec.mf.MatrixFactorization` draws
    it with the same seed, so metrics compare. Unknown users get the most rated items.
    """

    kind = KIND
    score_column = "score"
    unknown_user_fallback = "popularity"

    def __init__(
        self,
        l2_reg: float | None = None,
        l2_reg_scale: float = 1.0,
        max_items: int | None = None,
        tune_items: int = 5000,
        validation_fraction: float = 0.2,
        relevance_threshold: float = 4.0,
        eval_fraction: float = 0.2,
        seed: int = 42,
        show_progress: bool = False,
    ) -> None:
        self.l2_reg = l2_reg
        self.l2_reg_scale = l2_reg_scale
        self.max_items = max_items
        self.tune_items = tune_items
        self.validation_fraction = validation_fraction
        self.relevance_threshold = relevance_threshold
        self.eval_fraction = eval_fraction
        self.seed = seed
        self.show_progress = show_progress

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _check_params(self) -> None:
        check_number("l2_reg", self.l2_reg, low=0, optional=True)
        if self.l2_reg is not None and self.l2_reg <= 0:
            raise ValueError(f"l2_reg must be above 0 (or None to choose it), got {self.l2_reg}")
        check_number("l2_reg_scale", self.l2_reg_scale, low=0, low_open=True)
        if self.max_items is not None:
            check_integer("max_items", self.max_items, low=1)
        check_integer("tune_items", self.tune_items, low=1)
        check_fraction("validation_fraction", self.validation_fraction, allow_zero=False)
        check_number("relevance_threshold", self.relevance_threshold)
        check_fraction("eval_fraction", self.eval_fraction)
        check_seed("seed", self.seed)

    # ------------------------------------------------------------------ fitting
    def fit(self, ratings: pd.DataFrame, items: pd.DataFrame | None = None) -> EASE:
        """Fit on ratings (``userId``, ``movieId``, ``rating``); ``items`` gives titles and
        genres. Any rating counts as an interaction; the value is used only to choose λ."""
        self._check_params()
        users_ext, items_ext, values = ratings_arrays(ratings)
        held_out = holdout_mask(values.size, self.eval_fraction, self.seed)
        train = ~held_out
        if not train.any():
            raise DataError(f"no training ratings left after eval_fraction={self.eval_fraction}")
        self.user_vocab_ = IdVocabulary(users_ext[train])
        self.item_vocab_ = IdVocabulary(items_ext[train])
        u = self.user_vocab_.index_of(users_ext)
        i = self.item_vocab_.index_of(items_ext)
        tu, ti, tv = u[train], i[train], values[train]
        self.item_counts_ = np.bincount(ti, minlength=len(self.item_vocab_)).astype(np.int64)
        self.columns_ = _most_rated(self.item_counts_, self.max_items)
        self._check_memory(self.columns_.size)
        start = time.perf_counter()
        with progress_bar("EASE", 2, show=self.show_progress) as bar:
            self.tuning_trials_ = [] if self.l2_reg is not None else self._tune(tu, ti, tv)
            self.l2_reg_ = (
                float(self.l2_reg)
                if self.l2_reg is not None
                else self._best_l2() * float(self.l2_reg_scale)
            )
            bar.advance(1, f"EASE: weights, l2_reg={self.l2_reg_:g}")
            self._train_csr = Csr.build(
                tu, ti, np.ones(tu.size, np.float32), len(self.user_vocab_), sort_cols=True
            )
            self.weights_ = self._weights(self._train_csr, self.columns_, self.l2_reg_)
            bar.advance(1)
        self.fit_seconds_ = time.perf_counter() - start
        known = (u >= 0) & (i >= 0)
        self.seen_ = Csr.build(
            u[known],
            i[known],
            np.ones(int(known.sum()), np.float32),
            len(self.user_vocab_),
            sort_cols=True,
        )
        self.eval_set_ = pd.DataFrame(
            {
                USER_COL: users_ext[held_out],
                ITEM_COL: items_ext[held_out],
                RATING_COL: values[held_out].astype(np.float64),
            }
        )
        self.items_meta_ = items_metadata(items, self.item_vocab_)
        self.metrics_ = self.evaluate(max_users=EVAL_USERS) if len(self.eval_set_) else {}
        return self

    def _check_memory(self, n_columns: int) -> None:
        # one n² float32 matrix; inverting by blocks (above LAPACK_MAX_ORDER) adds about 1.25×
        needed = 4 * n_columns**2
        if n_columns > _ease_kernels.LAPACK_MAX_ORDER:
            needed = int(needed * 2.25)
        available = available_memory()
        if available is not None and needed > 0.9 * available:
            raise DataError(
                f"EASE on {n_columns} items needs about {needed / 2**30:.1f} GiB (one "
                f"{n_columns}² float32 matrix) but only {available / 2**30:.1f} GiB is available: "
                "set max_items"
            )

    def _weights(self, csr: Csr, columns: np.ndarray, l2_reg: float) -> np.ndarray:
        """B over the items ``columns`` (item indices) from the binary rows of ``csr``."""
        position = _positions(columns, len(self.item_vocab_))
        mapped = position[csr.indices]
        keep = mapped >= 0
        rows = np.repeat(np.arange(csr.indptr.size - 1), np.diff(csr.indptr))
        indptr = np.zeros(csr.indptr.size, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=csr.indptr.size - 1), out=indptr[1:])
        # columns are in index order, so the mapped items stay sorted within each row
        return _ease_kernels.ease_weights(indptr, mapped[keep], columns.size, l2_reg)

    def _tune(self, tu: np.ndarray, ti: np.ndarray, tv: np.ndarray) -> list[dict[str, float]]:
        """NDCG@10 of every λ of :data:`L2_GRID` on a validation split of the training
        ratings, over the ``tune_items`` most rated items."""
        val = holdout_mask(tu.size, self.validation_fraction, [self.seed, 5])
        n_users = len(self.user_vocab_)
        fit = Csr.build(
            tu[~val], ti[~val], np.ones(int((~val).sum()), np.float32), n_users, sort_cols=True
        )
        liked = val & (tv >= self.relevance_threshold)
        relevant = Csr.build(tu[liked], ti[liked], tv[liked], n_users, sort_cols=True)
        users = _sample(np.flatnonzero(np.diff(relevant.indptr) > 0), TUNE_USERS, self.seed)
        counts = np.bincount(ti[~val], minlength=len(self.item_vocab_))
        columns = _most_rated(counts, min(self.tune_items, self.columns_.size))
        trials: list[dict[str, float]] = []
        grid = list(L2_GRID) if users.size else []
        while grid:
            l2_reg = grid.pop(0)
            weights = self._weights(fit, columns, l2_reg)
            top = _top_k_blocks(weights, columns, fit, users, 10, len(self.item_vocab_))
            rel = rows_of(relevant, users)
            ndcg = ranking_metrics(top, rel.indptr, rel.indices, 10)["ndcg@10"]
            trials.append({"l2_reg": l2_reg, "ndcg@10": float(ndcg)})
            log.info("EASE l2_reg=%g: validation ndcg@10 %.4f", l2_reg, ndcg)
            # λ grows with the data (the Gram diagonal holds rating counts): while the largest
            # λ tried is the best, try twice as much (at most L2_MAX)
            if not grid and self._best_l2(trials) == l2_reg and l2_reg * 2 <= L2_MAX:
                grid.append(l2_reg * 2)
        return trials

    def _best_l2(self, trials: list[dict[str, float]] | None = None) -> float:
        """The tried λ with the best validation NDCG (:data:`L2_DEFAULT` when no validation
        user liked anything: too few ratings to tell)."""
        tried = self.tuning_trials_ if trials is None else trials
        scored = [t for t in tried if np.isfinite(t["ndcg@10"])]
        return max(scored, key=lambda t: t["ndcg@10"])["l2_reg"] if scored else L2_DEFAULT

    # ------------------------------------------------------------------ scoring
    def _require_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise ModelError("this EASE is not fitted: call fit() first")

    def scores_of_items(self, rated: np.ndarray) -> np.ndarray:
        """Scores of every item (index order; -inf where B has no column) for a user who rated
        the item indices ``rated``."""
        position = self._positions()
        rows = position[rated]
        rows = rows[rows >= 0]
        full = np.full(len(self.item_vocab_), -np.inf, dtype=np.float32)
        full[self.columns_] = self.weights_[rows].sum(axis=0, dtype=np.float32)
        return full

    def scores_of_users(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` scores of known user indices (-inf where B has no
        column)."""
        train = self._train_csr
        # the training items as columns of B, mapped once (per call it cost 40 ms at 20M)
        mapped = self.__dict__.get("_mapped_train")
        if mapped is None:
            mapped = self._mapped_train = self._positions()[train.indices]
        block = _ease_kernels.score_rows(
            train.indptr, mapped, self.weights_, np.ascontiguousarray(users, dtype=np.int32)
        )
        if self.columns_.size == len(self.item_vocab_):
            return block
        full = np.full((block.shape[0], len(self.item_vocab_)), -np.inf, dtype=np.float32)
        full[:, self.columns_] = block
        return full

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """EASE scores ``(x_u B)_i`` of aligned external user and item ids (not ratings: a
        ranking score); an unknown user, or an item B does not cover, scores 0."""
        self._require_fitted()
        users_arr, items_arr = np.asarray(users), np.asarray(items)
        if users_arr.shape != items_arr.shape:
            raise DataError(f"{users_arr.size} users but {items_arr.size} items: pairs must align")
        u = self.user_vocab_.index_of(users_arr.ravel())
        i = self.item_vocab_.index_of(items_arr.ravel())
        out = np.zeros(u.size, dtype=np.float64)
        known = (u >= 0) & (i >= 0)
        for user in np.unique(u[known]):
            rows = known & (u == user)
            scores = self.scores_of_users(np.array([user]))[0]
            out[rows] = np.where(np.isfinite(scores[i[rows]]), scores[i[rows]], 0.0)
        return out.reshape(users_arr.shape)

    def user_scores(self, u: int) -> np.ndarray:
        """:meth:`scores_of_items` for known user index ``u`` (its training items)."""
        train = self._train_csr
        return self.scores_of_items(train.indices[train.indptr[u] : train.indptr[u + 1]])

    def _positions(self) -> np.ndarray:
        position = self.__dict__.get("_position")
        if position is None:
            position = self._position = _positions(self.columns_, len(self.item_vocab_))
        return position

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
        """Top-``n`` items (``movieId``, [``title``,] ``score``), best first; items the user
        rated (training or hold-out) are skipped unless ``exclude_seen`` is false. An unknown
        user gets the most rated items (``score`` = their training rating count)."""
        self._require_fitted()
        check_n(n)
        u = self.user_vocab_.index_one(user)
        if u < 0:
            return self._top(self.item_counts_.astype(np.float32), n, genre, candidates, None)
        seen = self.seen_.indices[self.seen_.indptr[u] : self.seen_.indptr[u + 1]]
        return self._top(self.user_scores(u), n, genre, candidates, seen if exclude_seen else None)

    def recommend_new_user(
        self,
        ratings: pd.DataFrame | dict[Any, float],
        n: int = 10,
        *,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """Top-``n`` items for a user who is not in the model, from the items they rated."""
        self._require_fitted()
        check_n(n)
        items, _ = fold_in_arrays(ratings)
        rated = self.item_vocab_.index_of(items)
        rated = rated[rated >= 0]
        if rated.size == 0:
            return self._top(self.item_counts_.astype(np.float32), n, genre, candidates, None)
        scores = self.scores_of_items(rated)
        return self._top(scores, n, genre, candidates, rated if exclude_seen else None)

    def recommend_users(self, item: Any, n: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """The ``n`` users who score ``item`` highest (``userId``, ``score``)."""
        self._require_fitted()
        check_n(n)
        i = self.item_vocab_.index_one(item)
        column = int(self._positions()[i]) if i >= 0 else -1
        if column < 0:
            raise DataError(f"movieId {item} is not in the model: no user can be targeted for it")
        train = self._train_csr
        rows = self._positions()[train.indices]
        gathered = np.where(rows >= 0, self.weights_[np.maximum(rows, 0), column], 0.0)
        scores = np.add.reduceat(np.r_[gathered, 0.0], train.indptr[:-1])
        scores[np.diff(train.indptr) == 0] = 0.0
        if exclude_seen:
            by_item = self.seen_.indices == i
            owners = np.repeat(np.arange(len(self.user_vocab_)), np.diff(self.seen_.indptr))
            scores[owners[by_item]] = -np.inf
        finite = np.flatnonzero(np.isfinite(scores))
        top = finite[np.argsort(-scores[finite], kind="stable")[:n]]
        return pd.DataFrame({USER_COL: self.user_vocab_.ids[top], self.score_column: scores[top]})

    def recommend_all(self, n: int = 10, *, exclude_seen: bool = True) -> Iterator[Any]:
        """Every user's top-``n`` (``userId``, ``rank``, ``movieId``, ``score``), as Arrow
        record batches."""
        import pyarrow as pa

        self._require_fitted()
        check_n(n)
        users = np.arange(len(self.user_vocab_), dtype=np.int32)
        for start in range(0, users.size, BLOCK):
            block = users[start : start + BLOCK]
            frames = [
                self.recommend(self.user_vocab_.ids[u], n, exclude_seen=exclude_seen).assign(
                    **{USER_COL: self.user_vocab_.ids[u]}
                )
                for u in block
            ]
            frame = pd.concat(frames, ignore_index=True)
            frame["rank"] = frame.groupby(USER_COL).cumcount().astype(np.int32) + 1
            yield pa.RecordBatch.from_pandas(
                frame[[USER_COL, "rank", ITEM_COL, self.score_column]], preserve_index=False
            )

    def ignored_items(self, ratings: pd.DataFrame | dict[Any, float]) -> np.ndarray:
        """The movieIds of a new user's ratings that the model does not know."""
        self._require_fitted()
        items, _ = fold_in_arrays(ratings)
        return items[self.item_vocab_.index_of(items) < 0]

    def _top(
        self,
        scores: np.ndarray,
        n: int,
        genre: str | None,
        candidates: Sequence[Any] | np.ndarray | None,
        exclude: np.ndarray | None,
    ) -> pd.DataFrame:
        scores = np.where(self._allowed(genre, candidates), scores, -np.inf)
        if exclude is not None:
            scores[exclude] = -np.inf
        finite = np.flatnonzero(np.isfinite(scores))
        if finite.size > n:
            finite = finite[np.argpartition(-scores[finite], n - 1)[:n]]
        top = finite[np.lexsort((finite, -scores[finite]))]  # ties: lower index first
        columns: dict[str, Any] = {ITEM_COL: self.item_vocab_.ids[top]}
        if "title" in self.items_meta_.columns:
            columns["title"] = self.items_meta_["title"].to_numpy(dtype=object)[top]
        columns[self.score_column] = scores[top].astype(np.float64)
        return pd.DataFrame(columns)

    def _allowed(
        self, genre: str | None, candidates: Sequence[Any] | np.ndarray | None
    ) -> np.ndarray:
        allowed = np.ones(len(self.item_vocab_), dtype=bool)
        if candidates is not None:
            idx = self.item_vocab_.index_of(np.asarray(candidates))
            allowed[:] = False
            allowed[idx[idx >= 0]] = True
        if genre is not None:
            if "genres" not in self.items_meta_.columns:
                raise DataError(
                    "the model has no genre metadata: train it on a workspace with movies"
                )
            allowed &= (
                self.items_meta_["genres"]
                .map(lambda g: g is not None and genre in list(g))
                .to_numpy(bool)
            )
        return allowed

    def genres(self) -> list[str]:
        """The genres of the model's movies, sorted (empty without genre metadata)."""
        self._require_fitted()
        if "genres" not in self.items_meta_.columns:
            return []
        return sorted({g for gs in self.items_meta_["genres"] if gs is not None for g in gs})

    # ------------------------------------------------------------------ evaluating
    def evaluate(
        self,
        data: pd.DataFrame | None = None,
        *,
        k: int = 10,
        relevance_threshold: float | None = None,
        max_users: int | None = None,
    ) -> dict[str, float]:
        """Ranking metrics at ``k`` (relevant = rating ≥ threshold; training items excluded)
        on ``data`` or the model's hold-out; with ``max_users``, over a seeded sample of that
        many users."""
        self._require_fitted()
        threshold = self.relevance_threshold if relevance_threshold is None else relevance_threshold
        users_ext, items_ext, values = ratings_arrays(evaluation_data(self, data))
        u = self.user_vocab_.index_of(users_ext)
        i = self.item_vocab_.index_of(items_ext)
        found = relevant_rows(u, i, values, threshold, len(self.user_vocab_))
        if found is None:
            return {}
        relevant, users = found
        users = _sample(users, max_users, self.seed) if max_users else users.astype(np.int32)
        top = _top_k_blocks(
            self.weights_, self.columns_, self._train_csr, users, k, len(self.item_vocab_)
        )
        eval_rel = rows_of(relevant, users)
        popularity = self.item_counts_ / max(len(self.user_vocab_), 1)
        return ranking_metrics(
            top, eval_rel.indptr, eval_rel.indices, k, item_popularity=popularity
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """A model directory: ``meta.json``, Parquet tables and the weights as a raw ``.npy``
        (float32, no pickle; memory-mapped on load)."""
        import shutil

        import pyarrow as pa

        self._require_fitted()
        path = Path(path)
        staging = path.parent / f".{path.name}.parts-{time.time_ns()}" / "matrix"
        try:
            staging.mkdir(parents=True)
            np.save(staging / WEIGHTS_FILE, self.weights_, allow_pickle=False)
            items_cols: dict[str, Any] = {
                ITEM_COL: pa.array(self.item_vocab_.ids),
                "n_ratings": pa.array(self.item_counts_),
            }
            for col in self.items_meta_.columns:
                items_cols[col] = pa.array(self.items_meta_[col].tolist())
            meta = {
                "kind": KIND,
                "params": self.get_params(),
                "l2_reg": self.l2_reg_,
                "n_users": len(self.user_vocab_),
                "n_items": len(self.item_vocab_),
                "tuning_trials": self.tuning_trials_,
                "fit_seconds": round(self.fit_seconds_, 3),
                "metrics": self.metrics_,
                "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            tables = {
                "users": pa.table({USER_COL: pa.array(self.user_vocab_.ids)}),
                "items": pa.table(items_cols),
                "columns": pa.table({"item_index": pa.array(self.columns_.astype(np.int32))}),
                "seen": _ease_files.csr_table(self.seen_),
                "train": _ease_files.csr_table(self._train_csr),
                "eval": pa.Table.from_pandas(self.eval_set_, preserve_index=False),
            }
            artifacts.write_artifact(path, meta, tables, extra_dirs=[staging])
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)

    @classmethod
    def load(cls, path: str | Path) -> EASE:
        meta = artifacts.read_meta(path)
        if meta.get("kind") != KIND:
            raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {KIND} model")
        path = Path(path)
        model = cls(**meta["params"])
        model.l2_reg_ = float(meta["l2_reg"])
        model.tuning_trials_ = list(meta.get("tuning_trials", []))
        model.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
        model.metrics_ = dict(meta.get("metrics", {}))
        users = artifacts.read_table(path, "users")
        items = artifacts.read_table(path, "items")
        model.user_vocab_ = IdVocabulary.from_sorted(users[USER_COL].to_numpy())
        model.item_vocab_ = IdVocabulary.from_sorted(items[ITEM_COL].to_numpy())
        model.item_counts_ = items["n_ratings"].to_numpy().astype(np.int64)
        meta_cols = [c for c in items.column_names if c not in (ITEM_COL, "n_ratings")]
        model.items_meta_ = (
            items.select(meta_cols).to_pandas()
            if meta_cols
            else pd.DataFrame(index=range(items.num_rows))
        )
        model.columns_ = artifacts.read_table(path, "columns")["item_index"].to_numpy()
        n_users, n_items = len(model.user_vocab_), len(model.item_vocab_)
        model.seen_ = _ease_files.csr_from(
            artifacts.read_table(path, "seen"), n_users, n_items, path
        )
        model._train_csr = _ease_files.csr_from(
            artifacts.read_table(path, "train"), n_users, n_items, path
        )
        model.eval_set_ = artifacts.read_table(path, "eval").to_pandas()
        model.weights_ = _ease_files.read_weights(
            path / "matrix" / WEIGHTS_FILE, model.columns_.size
        )
        if model.columns_.size and (model.columns_.min() < 0 or model.columns_.max() >= n_items):
            raise ModelError(f"{path / 'columns.parquet'}: item indices out of range; {RETRAIN}")
        return model


# ---------------------------------------------------------------------- helpers
def _most_rated(counts: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices of the ``limit`` most rated items (all when None), in index order."""
    if limit is None or limit >= counts.size:
        return np.arange(counts.size, dtype=np.int64)
    return np.sort(np.argsort(-counts, kind="stable")[:limit])


def _sample(users: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` of ``users`` (a seeded sample, in order), as int32."""
    if users.size > limit:
        users = np.sort(np.random.default_rng([seed, 9]).choice(users, limit, replace=False))
    return users.astype(np.int32)


def _positions(columns: np.ndarray, n_items: int) -> np.ndarray:
    """Item index → column of B (-1 for items B does not cover)."""
    position = np.full(n_items, -1, dtype=np.int32)
    position[columns] = np.arange(columns.size, dtype=np.int32)
    return position


def _top_k_blocks(
    weights: np.ndarray, columns: np.ndarray, train: Csr, users: np.ndarray, k: int, n_items: int
) -> np.ndarray:
    """Top-``k`` item indices (of the full catalogue) of ``users``, training items skipped."""
    mapped = _positions(columns, n_items)[train.indices]
    top = np.full((users.size, k), -1, dtype=np.int64)
    for start in range(0, users.size, BLOCK):
        rows = users[start : start + BLOCK]
        block = _ease_kernels.score_rows(train.indptr, mapped, weights, rows)
        for r, u in enumerate(rows):
            seen = mapped[train.indptr[u] : train.indptr[u + 1]]
            block[r, seen[seen >= 0]] = -np.inf
        kk = min(k, columns.size)
        part = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        ok = np.isfinite(np.take_along_axis(block, best, axis=1))
        top[start : start + rows.size, :kk] = np.where(ok, columns[best], -1)
    return top
