"""A ranking recommender: implicit-feedback candidates re-ranked by a learned ranker."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrec import artifacts
from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.contract import RANKING
from hybridrec._core.params import (
    check_fraction,
    check_integer,
    check_number,
    check_seed,
    constructor_params,
)
from hybridrec._core.progress import progress_bar
from hybridrec._core.sparse import Csr, top_n
from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import RETRAIN, read_lightgbm
from hybridrec.data import holdout_mask, ratings_arrays
from hybridrec.evaluate import evaluation_data, ranking_metrics, regression_metrics
from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization, WrapsMatrixFactorization

__all__ = ["RankingRecommender"]

KIND = RANKING.name
FEATURES = (
    "implicit.score",
    "implicit.score_vs_best",
    "implicit.rank",
    "mf.predicted_rating",
    "mf.rank",
    "item.popularity_log",
    "item.mean_rating",
    "user.n_log",
)
RANKER_FILE = "ranker.txt"


class RankingRecommender(WrapsMatrixFactorization):
    """Recommends what a user is likely to watch *and* like.

    1. **Candidates**: the ``n_candidates`` unseen items with the highest score of an implicit
       ALS model (:class:`~hybridrec.mf.ImplicitMatrixFactorization`: who rated what).
    2. **Ranking**: a LightGBM LambdaRank model orders the candidates from the implicit score
       and rank, the explicit MF's predicted rating, the item's popularity and mean rating and
       the user's activity.

    How the ranker is trained without leakage: a random ``validation_fraction`` (20 %) of the
    training ratings is set aside; both MF models are fitted on the rest; each validation user's
    candidates are labelled by the set-aside ratings (2 for 5 stars and more, 1 for 4 to 5,
    0 otherwise) and the ranker learns to put the liked ones first. The MF models are then
    refitted on all training ratings for serving. The ``eval_fraction`` hold-out (the same one
    :class:`~hybridrec.mf.MatrixFactorization` makes with the same seed) is never seen.

    ``recommend(rank_by="predicted_rating")`` gives the notebook's behaviour: the explicit MF's
    ordering. Predicted ratings shown are always the explicit MF's, on the rating scale.
    """

    def __init__(
        self,
        *,
        mf_params: dict[str, Any] | None = None,
        implicit_params: dict[str, Any] | None = None,
        ranker_params: dict[str, Any] | None = None,
        n_candidates: int = 100,
        relevance_threshold: float = 4.0,
        validation_fraction: float = 0.2,
        eval_fraction: float = 0.2,
        seed: int = 42,
        show_progress: bool = False,
    ) -> None:
        self.mf_params = mf_params
        self.implicit_params = implicit_params
        self.ranker_params = ranker_params
        self.n_candidates = n_candidates
        self.relevance_threshold = relevance_threshold
        self.validation_fraction = validation_fraction
        self.eval_fraction = eval_fraction
        self.seed = seed
        self.show_progress = show_progress

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _check_params(self) -> None:
        """One ``ValueError`` naming the first bad hyper-parameter (NaN and inf are bad)."""
        check_integer("n_candidates", self.n_candidates, low=1)
        check_number("relevance_threshold", self.relevance_threshold)
        check_fraction("validation_fraction", self.validation_fraction, allow_zero=False)
        check_fraction("eval_fraction", self.eval_fraction)
        check_seed("seed", self.seed)
        try:
            models = self._base_models()
        except TypeError as exc:  # an unknown name in mf_params / implicit_params
            raise ValueError(f"mf_params or implicit_params: {exc}") from None
        for model in models:
            model._check_params()

    # ------------------------------------------------------------------ fitting
    def _base_models(self) -> tuple[MatrixFactorization, ImplicitMatrixFactorization]:
        common = {"seed": self.seed, "eval_fraction": 0.0}
        mf = MatrixFactorization(**{**(self.mf_params or {}), **common})
        implicit = ImplicitMatrixFactorization(**{**(self.implicit_params or {}), **common})
        return mf, implicit

    def fit(
        self,
        ratings: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
    ) -> RankingRecommender:
        """Fit on ratings (``userId``, ``movieId``, ``rating``); ``items`` gives titles and
        genres (``users`` is accepted for a uniform API and not used)."""
        self._check_params()
        users_ext, items_ext, values = ratings_arrays(ratings)
        held_out = holdout_mask(values.size, self.eval_fraction, self.seed)
        frame = pd.DataFrame({USER_COL: users_ext, ITEM_COL: items_ext, RATING_COL: values})
        train = frame.loc[~held_out].reset_index(drop=True)
        self.eval_set_ = frame.loc[held_out].reset_index(drop=True)
        val = holdout_mask(len(train), self.validation_fraction, [self.seed, 5])
        if val.all() or not val.any():
            raise DataError(
                f"too few ratings for the ranker's validation split: validation_fraction="
                f"{self.validation_fraction} of {len(train)} training ratings leaves "
                f"{int((~val).sum())} to fit on and {int(val.sum())} to label; give more ratings"
            )
        with progress_bar("ranking", 5, show=self.show_progress) as bar:
            fit_part, val_part = train.loc[~val], train.loc[val]
            mf, implicit = self._base_models()
            mf.fit(fit_part, items=items)
            bar.advance(1, "ranking: implicit candidates")
            implicit.fit(fit_part, items=items)
            self._set_state(mf, implicit, fit_part)
            bar.advance(1, "ranking: training the ranker")
            x, labels, groups = self._training_rows(val_part)
            self.ranker_ = _train_ranker(x, labels, groups, self.seed, self.ranker_params)
            bar.advance(1, "ranking: refitting on all training ratings")
            mf, implicit = self._base_models()
            mf.fit(train, items=items)
            implicit.fit(train, items=items)
            self._set_state(mf, implicit, train)
            bar.advance(2)
        self.metrics_ = self.evaluate() if len(self.eval_set_) else {}
        return self

    def _set_state(
        self, mf: MatrixFactorization, implicit: ImplicitMatrixFactorization, train: pd.DataFrame
    ) -> None:
        if not np.array_equal(mf.item_vocab_.ids, implicit.item_vocab_.ids):
            raise ModelError("explicit and implicit models disagree on the catalogue")
        self.mf_, self.implicit_ = mf, implicit
        counts = (
            train.groupby(ITEM_COL)[RATING_COL].agg(["size", "sum"]).reindex(mf.item_vocab_.ids)
        )
        counts = counts.fillna(0.0)
        mean = float(train[RATING_COL].mean())
        self.item_popularity_log_ = np.log1p(counts["size"].to_numpy(float))
        self.item_mean_rating_ = ((counts["sum"] + 5 * mean) / (counts["size"] + 5)).to_numpy(float)
        user_counts = train.groupby(USER_COL).size().reindex(mf.user_vocab_.ids).fillna(0)
        self.user_n_log_ = np.log1p(user_counts.to_numpy(float))

    def _candidates(self, u: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, implicit scores) of the top candidates for known user ``u``."""
        implicit = self.implicit_
        scores = implicit.item_factors_ @ implicit.user_factors_[u]
        scores = np.where(allowed, scores, -np.inf)
        top = top_n(scores.astype(np.float64), self.n_candidates)
        return top, scores[top]

    def _features(self, u: int, items: np.ndarray, implicit_scores: np.ndarray) -> np.ndarray:
        mf = self.mf_
        predicted = mf._predict_indices(
            np.full(items.size, u, dtype=np.int32), items.astype(np.int32)
        )
        # Ranks and ratios are comparable between the models the ranker was trained on (fitted
        # on less data) and the refitted ones it serves with; raw scores drift a little.
        best = float(implicit_scores.max()) if implicit_scores.size else 1.0
        mf_rank = np.empty(items.size)
        mf_rank[np.argsort(-predicted, kind="stable")] = np.arange(items.size)
        return np.column_stack(
            [
                implicit_scores,
                implicit_scores / best if best > 0 else implicit_scores,
                np.arange(items.size, dtype=np.float64),
                predicted,
                mf_rank,
                self.item_popularity_log_[items],
                self.item_mean_rating_[items],
                np.full(items.size, self.user_n_log_[u]),
            ]
        )

    def _training_rows(self, val_part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[int]]:
        mf = self.mf_
        u = mf.user_vocab_.index_of(val_part[USER_COL].to_numpy())
        i = mf.item_vocab_.index_of(val_part[ITEM_COL].to_numpy())
        r = val_part[RATING_COL].to_numpy()
        keep = (u >= 0) & (i >= 0)
        u, i, r = u[keep], i[keep], r[keep]
        xs, ys, groups = [], [], []
        seen = mf.seen_
        for user in np.unique(u):
            liked = dict(zip(i[u == user].tolist(), r[u == user].tolist(), strict=True))
            if not any(v >= self.relevance_threshold for v in liked.values()):
                continue
            allowed = np.ones(len(mf.item_vocab_), dtype=bool)
            allowed[seen.indices[seen.indptr[user] : seen.indptr[user + 1]]] = False
            items, scores = self._candidates(int(user), allowed)
            labels = np.array([_grade(liked.get(int(c)), self.relevance_threshold) for c in items])
            if labels.max() == 0:
                continue
            xs.append(self._features(int(user), items, scores))
            ys.append(labels)
            groups.append(items.size)
        if not xs:
            raise DataError(
                "too few ratings to train the ranker: no validation user liked a candidate"
            )
        return np.vstack(xs), np.concatenate(ys), groups

    # ------------------------------------------------------------------ using
    def _require_fitted(self) -> None:
        if not hasattr(self, "ranker_"):
            raise ModelError("this RankingRecommender is not fitted: call fit() first")

    @property
    def items_meta_(self) -> pd.DataFrame:
        return self.mf_.items_meta_

    def recommend(
        self,
        user: Any,
        n: int = 10,
        *,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
        rank_by: str = "relevance",
    ) -> pd.DataFrame:
        """Top-``n`` items: ``movieId``, [``title``,] ``predicted_rating`` (explicit MF) and,
        when ranked by relevance, ``relevance`` (the ranker's score). An unknown user gets the
        explicit MF's fallback (highest intercepts)."""
        self._require_fitted()
        if rank_by not in ("relevance", "predicted_rating"):
            raise DataError(f"rank_by must be relevance or predicted_rating, got {rank_by!r}")
        mf = self.mf_
        u = mf.user_vocab_.index_one(user)
        if rank_by == "predicted_rating" or u < 0:
            return mf.recommend(
                user, n, genre=genre, candidates=candidates, exclude_seen=exclude_seen
            )
        if n < 1:
            raise DataError(f"n must be at least 1, got {n}")
        allowed = mf._candidate_mask(genre, candidates)
        if exclude_seen:
            # rated in training, or in the evaluation hold-out: the user has seen them all
            for seen in (mf.seen_, self._held_out_seen()):
                allowed[seen.indices[seen.indptr[u] : seen.indptr[u + 1]]] = False
        return self._ranked(u, allowed, n)

    def _held_out_seen(self) -> Csr:
        if getattr(self, "_held_out_csr", None) is None:
            mf = self.mf_
            u = mf.user_vocab_.index_of(self.eval_set_[USER_COL].to_numpy())
            i = mf.item_vocab_.index_of(self.eval_set_[ITEM_COL].to_numpy())
            known = (u >= 0) & (i >= 0)
            self._held_out_csr = Csr.build(
                u[known],
                i[known],
                np.ones(int(known.sum()), np.float32),
                len(mf.user_vocab_),
                sort_cols=True,
            )
        return self._held_out_csr

    def _ranked(self, u: int, allowed: np.ndarray, n: int) -> pd.DataFrame:
        mf = self.mf_
        items, scores = self._candidates(u, allowed)
        x = self._features(u, items, scores)
        relevance = self.ranker_.predict(x) if items.size else np.zeros(0)
        order = np.argsort(-relevance, kind="stable")[:n]
        top = items[order]
        return mf._item_frame(
            top,
            predicted_rating=x[order, FEATURES.index("mf.predicted_rating")],
            relevance=relevance[order],
        )

    def recommend_users(self, item: Any, n: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """Targeting by the explicit MF's predicted rating."""
        self._require_fitted()
        return self.mf_.recommend_users(item, n, exclude_seen=exclude_seen)

    def recommend_new_user(self, ratings: Any, n: int = 10, **kwargs: Any) -> pd.DataFrame:
        """A new user from a few ratings: explicit MF fold-in, ordered by predicted rating."""
        self._require_fitted()
        return self.mf_.recommend_new_user(ratings, n, **kwargs)

    def recommend_all(self, n: int = 10, *, exclude_seen: bool = True) -> Any:
        """Every user's top-``n`` by relevance, as Arrow record batches."""
        import pyarrow as pa

        self._require_fitted()
        ids = self.mf_.user_vocab_.ids
        for start in range(0, ids.size, 1024):
            frames = []
            for user in ids[start : start + 1024]:
                recs = self.recommend(user, n, exclude_seen=exclude_seen)
                frames.append(
                    pd.DataFrame(
                        {
                            USER_COL: user,
                            "rank": np.arange(1, len(recs) + 1, dtype=np.int32),
                            ITEM_COL: recs[ITEM_COL].to_numpy(),
                            "predicted_rating": recs["predicted_rating"].to_numpy(),
                        }
                    )
                )
            yield pa.RecordBatch.from_pandas(
                pd.concat(frames, ignore_index=True), preserve_index=False
            )

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """The explicit MF's predicted ratings."""
        self._require_fitted()
        return self.mf_.predict(users, items)

    def predict_frame(self, pairs: pd.DataFrame) -> pd.DataFrame:
        self._require_fitted()
        return self.mf_.predict_frame(pairs)

    def evaluate(
        self,
        data: pd.DataFrame | None = None,
        *,
        k: int = 10,
        relevance_threshold: float | None = None,
    ) -> dict[str, float]:
        """Rating metrics of the explicit MF and ranking metrics of the ranked lists
        (relevant = held-out rating ≥ threshold; items rated in training excluded)."""
        self._require_fitted()
        threshold = self.relevance_threshold if relevance_threshold is None else relevance_threshold
        data = evaluation_data(self, data)
        users_ext, items_ext, values = ratings_arrays(data)
        metrics = regression_metrics(values, self.predict(users_ext, items_ext))
        mf = self.mf_
        u = mf.user_vocab_.index_of(users_ext)
        i = mf.item_vocab_.index_of(items_ext)
        rel = (values >= threshold) & (u >= 0) & (i >= 0)
        if not rel.any():
            return metrics
        relevant = Csr.build(u[rel], i[rel], values[rel], len(mf.user_vocab_), sort_cols=True)
        eval_users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        top = np.full((eval_users.size, k), -1, dtype=np.int32)
        train = mf._train_csr
        for row, user in enumerate(eval_users):
            allowed = np.ones(len(mf.item_vocab_), dtype=bool)
            allowed[train.indices[train.indptr[user] : train.indptr[user + 1]]] = False
            recs = self._ranked(int(user), allowed, k)
            got = mf.item_vocab_.index_of(recs[ITEM_COL].to_numpy())
            top[row, : got.size] = got
        counts = np.diff(relevant.indptr)[eval_users]
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = np.concatenate(
            [relevant.indices[relevant.indptr[x] : relevant.indptr[x + 1]] for x in eval_users]
        )
        metrics.update(
            ranking_metrics(top, indptr, indices, k, item_popularity=mf._item_popularity())
        )
        return metrics

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        self._require_fitted()
        path = Path(path)
        staging = path.parent / f".{path.name}.parts-{time.time_ns()}"
        try:
            self.mf_.save(staging / "mf")
            self.implicit_.save(staging / "implicit")
            (staging / "ranker").mkdir(parents=True)
            self.ranker_.save_model(str(staging / "ranker" / RANKER_FILE))
            import pyarrow as pa

            tables = {
                "item_stats": pa.table(
                    {
                        ITEM_COL: pa.array(self.mf_.item_vocab_.ids),
                        "popularity_log": self.item_popularity_log_,
                        "mean_rating": self.item_mean_rating_,
                    }
                ),
                "user_stats": pa.table(
                    {USER_COL: pa.array(self.mf_.user_vocab_.ids), "n_log": self.user_n_log_}
                ),
                "eval": pa.Table.from_pandas(self.eval_set_, preserve_index=False),
            }
            meta = {
                "kind": KIND,
                "params": self.get_params(),
                "features": list(FEATURES),
                "metrics": self.metrics_,
                "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            artifacts.write_artifact(
                path,
                meta,
                tables,
                extra_dirs=[staging / "mf", staging / "implicit", staging / "ranker"],
            )
        finally:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, path: str | Path) -> RankingRecommender:
        lgb = _lightgbm()

        meta = artifacts.read_meta(path)
        if meta.get("kind") != KIND:
            raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {KIND} model")
        path = Path(path)
        model = cls(**meta["params"])
        model.mf_ = MatrixFactorization.load(path / "mf")
        model.implicit_ = ImplicitMatrixFactorization.load(path / "implicit")
        ranker_file = path / "ranker" / RANKER_FILE
        if not ranker_file.is_file():
            raise ModelError(f"model at {path} is incomplete: ranker/{RANKER_FILE} is missing")
        model.ranker_ = read_lightgbm(ranker_file, lgb)
        if model.ranker_.num_feature() != len(FEATURES):
            raise ModelError(
                f"{ranker_file}: the ranker uses {model.ranker_.num_feature()} features, "
                f"this hybridrec computes {len(FEATURES)}; {RETRAIN}"
            )
        items = artifacts.read_table(path, "item_stats")
        model.item_popularity_log_ = _column(items, "popularity_log", path / "item_stats.parquet")
        model.item_mean_rating_ = _column(items, "mean_rating", path / "item_stats.parquet")
        users = artifacts.read_table(path, "user_stats")
        model.user_n_log_ = _column(users, "n_log", path / "user_stats.parquet")
        for name, values, vocab in (
            ("item_stats", model.item_popularity_log_, model.mf_.item_vocab_),
            ("user_stats", model.user_n_log_, model.mf_.user_vocab_),
        ):
            if values.shape != (len(vocab),):
                raise ModelError(
                    f"{path / name}.parquet: {values.size} rows but mf/ knows {len(vocab)}; "
                    f"the files do not belong together ({RETRAIN})"
                )
        model.metrics_ = dict(meta.get("metrics", {}))
        model.eval_set_ = artifacts.read_table(path, "eval").to_pandas()
        return model


def _column(table: Any, name: str, file: Path) -> np.ndarray:
    """Numeric column ``name`` of a loaded stats table, as float64."""
    if name not in table.column_names:
        raise ModelError(f"{file}: no {name!r} column; {RETRAIN}")
    values = table[name].to_numpy()
    if values.dtype.kind not in "fiu":
        raise ModelError(f"{file}: {name!r} holds {values.dtype}, not numbers; {RETRAIN}")
    return np.asarray(values, dtype=np.float64)


def _grade(rating: float | None, threshold: float) -> int:
    if rating is None or rating < threshold:
        return 0
    return 2 if rating >= 5 else 1


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise ModelError(
            'the ranking model needs LightGBM: pip install "hybridrec[hybrid]"'
        ) from None
    return lightgbm


def _train_ranker(
    x: np.ndarray, labels: np.ndarray, groups: list[int], seed: int, params: dict[str, Any] | None
) -> Any:
    lgb = _lightgbm()

    settings = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "ndcg_eval_at": [10],
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 200,
        "feature_fraction": 1.0,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
        **(params or {}),
    }
    rounds = int(settings.pop("num_boost_round", 100))
    data = lgb.Dataset(
        x, label=labels, group=groups, feature_name=[f.replace(".", "_") for f in FEATURES]
    )
    return lgb.train(settings, data, num_boost_round=rounds)
