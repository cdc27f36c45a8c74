"""A ranking recommender: implicit-ALS and EASE candidates re-ranked by a learned ranker."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
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
from hybridrec.data import holdout_mask, ratings_arrays
from hybridrec.evaluate import (
    evaluation_data,
    ranking_metrics,
    regression_metrics,
    relevant_rows,
)
from hybridrec.mf import (
    ImplicitMatrixFactorization,
    MatrixFactorization,
    WrapsMatrixFactorization,
    fold_in_arrays,
)
from hybridrec.ranking import _features, _stats
from hybridrec.ranking._ease import EASE
from hybridrec.ranking._features import FEATURES, PREDICTED, Scorers, UserSignals
from hybridrec.ranking._persist import load_ranking, save_ranking
from hybridrec.ranking._ranker import grade, train_ranker

__all__ = ["RankingRecommender"]

#: EASE's λ in the ranker is this share of the λ EASE alone chooses on validation: the ranker
#: has popularity features and a second candidate source, so it gains from a less shrunk EASE.
#: Ranker P@10 / NDCG@10 (MovieLens 100K, mean of 4 splits) at 1, ½, ¼ and ⅛ of the chosen
#: λ = 800: 0.2885 / 0.404, 0.289 / 0.404, 0.2905 / 0.4055, 0.2907 / 0.406; on the
#: latest-small-shaped synthetic set (chosen λ 3200, seeds 42 and 1) at 1, ¼ and 1/16 of it:
#: 0.198 / 0.249, 0.200 / 0.251, 0.197 / 0.248 (with this default the mean is 0.198 / 0.248:
#: on seed 42 the first fold's search chose 16 × the λ); on synth2m neutral (0.148 / 0.202)
EASE_L2_SCALE = 0.25
#: users whose candidates are scored at once (a block is users × items float32, twice)
BLOCK = 256


class RankingRecommender(WrapsMatrixFactorization):
    """Recommends what a user is likely to watch *and* like.

    1. **Candidates**: the union of the ``n_candidates`` best unseen items of an implicit ALS
       model (:class:`~hybridrec.mf.ImplicitMatrixFactorization`: who rated what) and of an
       :class:`~hybridrec.ranking.EASE` model (an item-item closed form on the same signal).
    2. **Ranking**: a LightGBM ranking model (XE-NDCG) orders the candidates from each model's
       score, score relative to the user's best and rank, the explicit MF's predicted rating
       and rank, the item's popularity, mean rating, recent share of ratings and age, the
       user's affinity to the item's genres, the user's activity, and when the item first
       appeared relative to the user's first and last rating (``FEATURES``).

    How the ranker is trained without leakage: a random ``validation_fraction`` (10 %) of the
    training ratings is set aside; the three base models are fitted on the rest; the candidates
    of the validation users are labelled by the set-aside ratings (1 for a rating of at least
    ``relevance_threshold``, else 0). This is repeated on the other disjoint folds (up to
    ``1 / validation_fraction`` of them) until ``max_ranker_users`` users are labelled, so a
    small dataset lends every rating to the ranker once and a large one needs one fold. The
    ranker learns to put the liked candidates first. The base models are then refitted on all
    training ratings for serving (EASE with the λ of the first fold: a quarter of what EASE
    alone chooses on validation, :data:`EASE_L2_SCALE`). The ``eval_fraction`` hold-out
    (the one :class:`~hybridrec.mf.MatrixFactorization` makes with the same seed) is never
    seen.

    A new user with a few ratings is ranked the same way: folded into both ALS models (one
    least-squares solve each) and scored by EASE from the items they rated.
    ``recommend(rank_by="predicted_rating")`` gives the notebook's behaviour: the explicit MF's
    ordering. Predicted ratings shown are always the explicit MF's, on the rating scale.
    """

    def __init__(
        self,
        *,
        mf_params: dict[str, Any] | None = None,
        implicit_params: dict[str, Any] | None = None,
        ease_params: dict[str, Any] | None = None,
        ranker_params: dict[str, Any] | None = None,
        n_candidates: int = 100,
        max_ranker_users: int = 20_000,
        relevance_threshold: float = 4.0,
        validation_fraction: float = 0.1,
        eval_fraction: float = 0.2,
        seed: int = 42,
        show_progress: bool = False,
    ) -> None:
        self.mf_params = mf_params
        self.implicit_params = implicit_params
        self.ease_params = ease_params
        self.ranker_params = ranker_params
        self.n_candidates = n_candidates
        self.max_ranker_users = max_ranker_users
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
        check_integer("max_ranker_users", self.max_ranker_users, low=1)
        check_number("relevance_threshold", self.relevance_threshold)
        check_fraction("validation_fraction", self.validation_fraction, allow_zero=False)
        check_fraction("eval_fraction", self.eval_fraction)
        check_seed("seed", self.seed)
        try:
            models = self._base_models()
        except TypeError as exc:  # an unknown name in mf_params / implicit_params / ease_params
            raise ValueError(f"mf_params, implicit_params or ease_params: {exc}") from None
        for model in models:
            model._check_params()

    # ------------------------------------------------------------------ fitting
    def _base_models(
        self, ease_l2: float | None = None
    ) -> tuple[MatrixFactorization, ImplicitMatrixFactorization, EASE]:
        common = {"seed": self.seed, "eval_fraction": 0.0}
        mf = MatrixFactorization(**{**(self.mf_params or {}), **common})
        implicit = ImplicitMatrixFactorization(**{**(self.implicit_params or {}), **common})
        ease_options: dict[str, Any] = {
            "max_items": 10_000,
            "l2_reg_scale": EASE_L2_SCALE,
            **(self.ease_params or {}),
            **common,
        }
        if ease_l2 is not None:
            ease_options["l2_reg"] = ease_l2
        ease = EASE(**{"relevance_threshold": self.relevance_threshold, **ease_options})
        return mf, implicit, ease

    def fit(
        self,
        ratings: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
    ) -> RankingRecommender:
        """Fit on ratings (``userId``, ``movieId``, ``rating`` [, ``timestamp``]); ``items``
        gives titles and genres (``users`` is accepted for a uniform API and not used)."""
        self._check_params()
        users_ext, items_ext, values = ratings_arrays(ratings)
        held_out = holdout_mask(values.size, self.eval_fraction, self.seed)
        frame = pd.DataFrame({USER_COL: users_ext, ITEM_COL: items_ext, RATING_COL: values})
        if "timestamp" in ratings.columns:
            frame["timestamp"] = pd.to_numeric(ratings["timestamp"], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        train = frame.loc[~held_out].reset_index(drop=True)
        self.eval_set_ = frame.loc[held_out, [USER_COL, ITEM_COL, RATING_COL]].reset_index(
            drop=True
        )
        folds = self._ranker_folds(train)
        with progress_bar("ranking", len(folds) + 3, show=self.show_progress) as bar:
            xs, ys, groups = [], [], []
            ease_l2 = None  # EASE chooses λ on the first fold; the others and serving reuse it
            for number, (val, budget) in enumerate(folds, start=1):
                bar.advance(0, f"ranking: base models of validation fold {number}/{len(folds)}")
                self._fit_base(train.loc[~val], items, ease_l2)
                ease_l2 = self.ease_.l2_reg_
                x, labels, sizes = self._training_rows(train.loc[val], budget, number)
                xs.append(x)
                ys.append(labels)
                groups += sizes
                bar.advance(1)
            if not groups:
                raise DataError(
                    "too few ratings to train the ranker: no validation user liked a candidate"
                )
            bar.advance(0, "ranking: training the ranker")
            self.ranker_ = train_ranker(
                np.vstack(xs), np.concatenate(ys), groups, self.seed, self.ranker_params
            )
            bar.advance(1, "ranking: refitting on all training ratings")
            self._fit_base(train, items, ease_l2)
            bar.advance(1, "ranking: evaluating")
            self.metrics_ = self.evaluate(max_users=20_000) if len(self.eval_set_) else {}
            bar.advance(1)
        return self

    def _ranker_folds(self, train: pd.DataFrame) -> list[tuple[np.ndarray, int]]:
        """The validation folds the ranker learns from, with each fold's budget of users.

        The training ratings are cut at random into ``1 / validation_fraction`` disjoint
        folds (10 at 10 %). Each fold in turn is set aside, the base models are fitted on the
        rest, and the fold's users label their candidates. Folds are added until
        ``max_ranker_users`` labelled users are reached: a large dataset stops after one
        fold, a small one learns from every rating once. On MovieLens 100K (mean of 4 splits)
        one 20 % fold gave P@10 0.282 and NDCG@10 0.395, five 20 % folds 0.286 / 0.401, ten
        10 % folds 0.289 / 0.404 and twenty 5 % folds no more (0.289 / 0.403) at twice the
        cost.
        """
        position = np.random.default_rng([self.seed, 5]).random(len(train))
        n_folds = max(int(np.floor(1.0 / self.validation_fraction + 1e-9)), 1)
        liked = train[RATING_COL].to_numpy() >= self.relevance_threshold
        users = train[USER_COL].to_numpy()
        folds: list[tuple[np.ndarray, int]] = []
        budget = self.max_ranker_users
        for number in range(n_folds):
            low = number * self.validation_fraction
            val = (position >= low) & (position < low + self.validation_fraction)
            empty = val.all() or not val.any()
            if empty and folds:
                continue  # a tiny dataset: the folds that did get ratings are enough
            if empty:
                raise DataError(
                    f"too few ratings for the ranker's validation split: validation_fraction="
                    f"{self.validation_fraction} of {len(train)} training ratings leaves "
                    f"{int((~val).sum())} to fit on and {int(val.sum())} to label; give more "
                    "ratings"
                )
            folds.append((val, budget))
            budget -= np.unique(users[val & liked]).size
            if budget <= 0:
                break
        return folds

    def _fit_base(
        self,
        ratings: pd.DataFrame,
        items: pd.DataFrame | None,
        ease_l2: float | None = None,
    ) -> None:
        """Fit the base models (EASE with λ ``ease_l2``; None: EASE chooses it)."""
        mf, implicit, ease = self._base_models(ease_l2)
        basic = ratings[[USER_COL, ITEM_COL, RATING_COL]]
        mf.fit(basic, items=items)
        implicit.fit(basic, items=items)
        ease.fit(basic, items=items)
        for other in (implicit, ease):
            if not np.array_equal(mf.item_vocab_.ids, other.item_vocab_.ids):
                raise ModelError("the base models disagree on the catalogue")
        self.mf_, self.implicit_, self.ease_ = mf, implicit, ease
        self.item_stats_ = _stats.item_stats(ratings, mf.item_vocab_, mf.items_meta_)
        self.user_n_ = np.diff(mf._train_csr.indptr).astype(np.float64)
        self.user_first_, self.user_last_ = _stats.user_activity(ratings, mf.user_vocab_)
        self._clear_caches()

    def _clear_caches(self) -> None:
        for name in ("_held_out_csr", "_scorers_cache", "_implicit_gram", "_profiles"):
            self.__dict__.pop(name, None)

    def _training_rows(
        self, val_part: pd.DataFrame, max_users: int, fold: int
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Features, labels and group sizes of the candidates of (at most ``max_users``)
        users of validation fold ``fold``."""
        mf = self.mf_
        u = mf.user_vocab_.index_of(val_part[USER_COL].to_numpy())
        i = mf.item_vocab_.index_of(val_part[ITEM_COL].to_numpy())
        r = val_part[RATING_COL].to_numpy()
        keep = (u >= 0) & (i >= 0)
        labelled = Csr.build(u[keep], i[keep], r[keep], len(mf.user_vocab_), sort_cols=True)
        liked = keep & (r >= self.relevance_threshold)
        users = np.unique(u[liked]).astype(np.int32)
        if users.size > max_users:
            rng = np.random.default_rng([self.seed, 7, fold])
            users = np.sort(rng.choice(users, max_users, replace=False))
        xs, ys, groups = [], [], []
        for start in range(0, users.size, BLOCK):
            block = users[start : start + BLOCK]
            cands, x = self._block(block, self._all_items(), mf._train_csr)
            for row, user in enumerate(block):
                valid = cands[row] >= 0
                items_row = cands[row][valid]
                lo, hi = labelled.indptr[user], labelled.indptr[user + 1]
                rated = dict(
                    zip(labelled.indices[lo:hi].tolist(), labelled.values[lo:hi], strict=True)
                )
                labels = np.array(
                    [grade(rated.get(int(c)), self.relevance_threshold) for c in items_row]
                )
                if labels.size and labels.max() > 0:
                    xs.append(x[row][valid])
                    ys.append(labels)
                    groups.append(int(valid.sum()))
        if not xs:
            return np.zeros((0, len(FEATURES)), np.float32), np.zeros(0), []
        return np.vstack(xs), np.concatenate(ys), groups

    # ------------------------------------------------------------------ user signals
    def _scorers(self) -> Scorers:
        scorers = self.__dict__.get("_scorers_cache")
        if scorers is None:
            mf = self.mf_
            scorers = self._scorers_cache = Scorers(
                implicit_items=self.implicit_.item_factors_,
                mf_items=mf.item_factors_,
                mf_item_bias=mf.item_bias_,
                mf_mean=mf.global_mean_,
                rating_range=mf.rating_range_,
            )
        return scorers

    def _known_signals(self, users: np.ndarray) -> UserSignals:
        mf = self.mf_
        return UserSignals(
            implicit=self.implicit_.user_factors_[users],
            ease_scores=self.ease_.scores_of_users(users),
            mf_factors=mf.user_factors_[users],
            mf_bias=mf.user_bias_[users],
            n_rated=self.user_n_[users],
            genre_profile=self._genre_profiles()[users],
            first_rated=self.user_first_[users],
            last_rated=self.user_last_[users],
        )

    def _genre_profiles(self) -> np.ndarray:
        profiles = self.__dict__.get("_profiles")
        if profiles is None:
            profiles = self._profiles = _stats.genre_profiles(
                self.mf_._train_csr, self.item_stats_.genres
            )
        return profiles

    def _new_user_signals(self, rated: np.ndarray, values: np.ndarray) -> UserSignals:
        """A new user who rated the (known) item indices ``rated`` with ``values``."""
        implicit = self.implicit_
        gram = self.__dict__.get("_implicit_gram")
        if gram is None:
            y = implicit.item_factors_.astype(np.float64)
            gram = self._implicit_gram = y.T @ y
        vector = _features.implicit_fold_in(
            implicit.item_factors_,
            gram,
            rated,
            values,
            float(implicit.wals_alpha),
            float(implicit.l2_reg),
        )
        now = np.array([self._data_end()])  # a new user rates now: at the end of the data
        ids = self.mf_.item_vocab_.ids[rated]
        mf_factors, mf_bias = self.mf_.fold_in(
            dict(zip(ids.tolist(), values.tolist(), strict=True))
        )
        return UserSignals(
            implicit=vector[None, :],
            ease_scores=self.ease_.scores_of_items(rated)[None, :],
            mf_factors=mf_factors[None, :],
            mf_bias=np.array([mf_bias]),
            n_rated=np.array([float(rated.size)]),
            genre_profile=_features.genre_profile(self.item_stats_.genres[rated])[None, :],
            first_rated=now,
            last_rated=now,
        )

    def _data_end(self) -> float:
        """The time of the last training rating (NaN without timestamps)."""
        last = self.user_last_
        return float(np.nanmax(last)) if np.isfinite(last).any() else float("nan")

    def _block(
        self, users: np.ndarray, allowed: np.ndarray, *excluded: Csr
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates and features of known users ``users``, skipping the rows of ``excluded``."""
        excl = [
            np.concatenate([c.indices[c.indptr[u] : c.indptr[u + 1]] for c in excluded])
            for u in users
        ]
        return _features.candidates_and_features(
            self._known_signals(users),
            self._scorers(),
            self.item_stats_,
            allowed,
            excl,
            self.n_candidates,
        )

    def _all_items(self) -> np.ndarray:
        return np.ones(len(self.mf_.item_vocab_), dtype=bool)

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
        check_n(n)
        allowed = mf.allowed_items(genre, candidates)
        # rated in training, or in the evaluation hold-out: the user has seen them all
        excluded = (mf.seen_, self._held_out_seen()) if exclude_seen else ()
        cands, x = self._block(np.array([u], dtype=np.int32), allowed, *excluded)
        return self._ranked(cands[0], x[0], n)

    def recommend_new_user(
        self,
        ratings: pd.DataFrame | dict[Any, float],
        n: int = 10,
        *,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """A new user from a few ``(movieId, rating)`` pairs, ranked like a known user: folded
        into both ALS models, scored by EASE, candidates re-ranked by the ranker. Without any
        movie the model knows: the explicit MF's fallback."""
        self._require_fitted()
        mf = self.mf_
        ids, values = fold_in_arrays(ratings)
        rated = mf.item_vocab_.index_of(ids)
        known = rated >= 0
        if not known.any():
            return mf.recommend_new_user(
                ratings, n, genre=genre, candidates=candidates, exclude_seen=exclude_seen
            )
        check_n(n)
        signals = self._new_user_signals(rated[known], values[known])
        excluded = [rated[known] if exclude_seen else np.zeros(0, np.int64)]
        cands, x = _features.candidates_and_features(
            signals,
            self._scorers(),
            self.item_stats_,
            mf.allowed_items(genre, candidates),
            excluded,
            self.n_candidates,
        )
        return self._ranked(cands[0], x[0], n)

    def ignored_items(self, ratings: pd.DataFrame | dict[Any, float]) -> np.ndarray:
        """The movieIds of a new user's ratings that the model does not know."""
        self._require_fitted()
        return self.mf_.ignored_items(ratings)

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

    def _relevance(self, cands: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(valid candidates, their relevance) of one user's row."""
        valid = cands >= 0
        items, rows = cands[valid], x[valid]
        relevance = self.ranker_.predict(rows) if items.size else np.zeros(0)
        return items, np.asarray(relevance, dtype=np.float64)

    def _ranked(self, cands: np.ndarray, x: np.ndarray, n: int) -> pd.DataFrame:
        items, relevance = self._relevance(cands, x)
        order = np.argsort(-relevance, kind="stable")[:n]
        valid_rows = x[cands >= 0]
        return self.mf_.item_frame(
            items[order],
            predicted_rating=valid_rows[order, PREDICTED].astype(np.float64),
            relevance=relevance[order],
        )

    def recommend_users(self, item: Any, n: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """Targeting by the explicit MF's predicted rating."""
        self._require_fitted()
        return self.mf_.recommend_users(item, n, exclude_seen=exclude_seen)

    def recommend_all(self, n: int = 10, *, exclude_seen: bool = True) -> Iterator[Any]:
        """Every user's top-``n`` by relevance, as Arrow record batches."""
        import pyarrow as pa

        self._require_fitted()
        mf = self.mf_
        excluded = (mf.seen_, self._held_out_seen()) if exclude_seen else ()
        n_users = len(mf.user_vocab_)
        for start in range(0, n_users, BLOCK * 4):
            frames = []
            for sub in range(start, min(start + BLOCK * 4, n_users), BLOCK):
                block = np.arange(sub, min(sub + BLOCK, n_users), dtype=np.int32)
                cands, x = self._block(block, self._all_items(), *excluded)
                for row, u in enumerate(block):
                    recs = self._ranked(cands[row], x[row], n)
                    frames.append(
                        pd.DataFrame(
                            {
                                USER_COL: mf.user_vocab_.ids[u],
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
        max_users: int | None = None,
    ) -> dict[str, float]:
        """Rating metrics of the explicit MF and ranking metrics of the ranked lists
        (relevant = held-out rating ≥ threshold; items rated in training excluded). With
        ``max_users``, the ranking metrics are over a seeded sample of that many users."""
        self._require_fitted()
        threshold = self.relevance_threshold if relevance_threshold is None else relevance_threshold
        data = evaluation_data(self, data)
        users_ext, items_ext, values = ratings_arrays(data)
        metrics = regression_metrics(values, self.predict(users_ext, items_ext))
        mf = self.mf_
        u = mf.user_vocab_.index_of(users_ext)
        i = mf.item_vocab_.index_of(items_ext)
        found = relevant_rows(u, i, values, threshold, len(mf.user_vocab_))
        if found is None:
            return metrics
        relevant, eval_users = found
        eval_users = eval_users.astype(np.int32)
        if max_users is not None and eval_users.size > max_users:
            rng = np.random.default_rng([self.seed, 9])
            eval_users = np.sort(rng.choice(eval_users, max_users, replace=False))
        top = np.full((eval_users.size, k), -1, dtype=np.int64)
        for start in range(0, eval_users.size, BLOCK):
            block = eval_users[start : start + BLOCK]
            cands, x = self._block(block, self._all_items(), mf._train_csr)
            for row in range(block.size):
                items, relevance = self._relevance(cands[row], x[row])
                best = items[np.argsort(-relevance, kind="stable")[:k]]
                top[start + row, : best.size] = best
        eval_rel = rows_of(relevant, eval_users)
        metrics.update(
            ranking_metrics(
                top, eval_rel.indptr, eval_rel.indices, k, item_popularity=mf.item_popularity()
            )
        )
        return metrics

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> None:
        self._require_fitted()
        save_ranking(self, path)

    @classmethod
    def load(cls, path: Any) -> RankingRecommender:
        model = load_ranking(cls, path)
        model._clear_caches()
        return model
