"""The hybrid recommender: MF features + side features → a regressor that predicts ratings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec._core.params import (
    check_bool,
    check_fraction,
    check_integer,
    check_seed,
    constructor_params,
)
from hybridrec._core.progress import progress_bar
from hybridrec._core.sparse import check_n
from hybridrec._core.sparse import top_n as _top_n
from hybridrec._core.tuning import random_search
from hybridrec._errors import DataError, ModelError
from hybridrec.data import holdout_mask
from hybridrec.data import ratings_arrays as _ratings_arrays
from hybridrec.evaluate import evaluation_data, regression_metrics
from hybridrec.hybrid._cold_start import (
    as_rating_dict,
    fit_new_user,
    new_user_features,
    new_user_inputs,
)
from hybridrec.hybrid._evaluation import ranking_metrics_of
from hybridrec.hybrid._features import (
    ITEM_COL,
    RATING_COL,
    USER_COL,
    AttributeEncoder,
    check_attribute_table,
    has_attributes,
    notebook_user_attributes,
)
from hybridrec.hybrid._held_out import drop_held_out, seen_items, seen_users
from hybridrec.hybrid._persistence import load_hybrid, save_hybrid
from hybridrec.hybrid._stacking import BaseFeatures, NewUserRidge, out_of_fold_matrix
from hybridrec.hybrid.regressors import make_regressor, search_space
from hybridrec.mf import MatrixFactorization, WrapsMatrixFactorization

__all__ = ["HybridRecommender"]

log = logging.getLogger(__name__)

# Chosen on MovieLens 100K (benchmarks/hybrid_ml100k.py): smaller, slower-learning trees with
# larger leaves than LightGBM's defaults overfit the stacked MF feature less.
DEFAULT_REGRESSOR_PARAMS: dict[str, dict[str, Any]] = {
    "boosted": {
        "num_leaves": 31,
        "learning_rate": 0.05,
        "min_child_samples": 50,
        "n_estimators": 2000,
        "early_stopping_rounds": 100,
    },
}
_MF_FIT_ONLY = ("eval_fraction", "show_progress")  # MF parameters that leave the factors as is


class HybridRecommender(WrapsMatrixFactorization):
    """Predicts ratings with a regressor over matrix-factorization and side features.

    For a user ``u`` and item ``i`` the feature vector is::

        x_ui = [ r̂_MF(u, i), b_u, b_i, known(u), known(i),          # the MF model
                 log n_u, mean_u, sd_u, log n_i, mean_i, sd_i,       # behaviour (training only)
                 user attributes (age, gender, occupation, …),       # or the notebook's
                 item attributes (genres multi-hot, year, …) ]       #   loyalty / postcode

    and ``r̂_ui = g(x_ui)`` with ``g`` a ridge regression (``kind="linear"``), gradient-boosted
    trees (``"boosted"``) or a multi-layer perceptron (``"dnn"``), clipped to the rating range.

    Leak-free by default (``leak_free=True``): the MF and behaviour features of each training
    rating come from models fitted on the other ``n_folds - 1`` folds of the training ratings
    (stacking), while predictions use the MF fitted on all training ratings. With
    ``leak_free=False`` the features come from that one MF, as in the reference notebook.

    Cold start: a random ``cold_fraction`` of training rows is built as if its user (or item)
    were unknown, so the regressor learns to predict from attributes alone. Unknown users and
    items at prediction time get exactly those features; a new user with a few ratings is placed
    by MF fold-in (:meth:`recommend_new_user`).

    New users with attributes (``new_user_model=True``, the default, when a real user table is
    given): a user unknown to the MF but present in the user table, or a new user described
    only by ``attributes``, is predicted by a dedicated ridge regression
    (:class:`~hybridrec.hybrid._stacking.NewUserRidge`) over the item's rating statistics and
    attributes, the user's attributes and user attribute × genre interactions. It is trained on
    simulated new users: the training users are split into ``n_folds`` groups and each group's
    ratings get features from an MF and item statistics fitted without any of that group's
    ratings (so they look exactly like real cold starts); the penalty is chosen by
    cross-validation over the groups. Known users are never routed to it, so warm predictions
    are those of the main regressor. Users without attributes keep the main regressor's cold
    rows.

    Bad or missing side data (see :class:`~hybridrec.hybrid._features.AttributeEncoder`): a
    missing number becomes the training mean, a missing or unseen category (a new occupation, a
    new genre) encodes as all zeros, missing genres as no genre, and an id absent from the
    attribute tables as all of these; predictions stay finite. The attribute tables are stored
    with the model, so users or movies added to the workspace after training are cold starts.
    Errors (:class:`~hybridrec.DataError` / :class:`~hybridrec.ModelError`, one line): an
    attribute table without its id column or sharing no id with the ratings; an ``mf`` that is
    not a fitted explicit MF, or whose factor width (or other hyper-parameters) differ from
    ``mf_params``; a saved model whose ``mf/`` or regressor does not match its metadata (e.g.
    a different number of factors).

    Scale: with ``max_train_rows`` the regressor is trained on a seeded uniform sample of at most
    that many training ratings (the MFs, out-of-fold ones included, and the behaviour
    statistics still use every training rating; only the rows the regressor sees are sampled).

    A seeded ``eval_fraction`` of the ratings is held out exactly as
    :class:`~hybridrec.mf.MatrixFactorization` holds it out with the same ``seed``, so the two
    models' metrics compare directly.
    """

    def __init__(
        self,
        kind: str = "boosted",
        *,
        mf_params: dict[str, Any] | None = None,
        regressor_params: dict[str, Any] | None = None,
        leak_free: bool = True,
        n_folds: int = 5,
        cold_fraction: float = 0.05,
        validation_fraction: float = 0.1,
        tune: int = 0,
        eval_fraction: float = 0.2,
        seed: int = 42,
        show_progress: bool = False,
        new_user_model: bool = True,
        max_train_rows: int | None = None,
    ) -> None:
        self.kind = kind
        self.mf_params = mf_params
        self.regressor_params = regressor_params
        self.leak_free = leak_free
        self.n_folds = n_folds
        self.cold_fraction = cold_fraction
        self.validation_fraction = validation_fraction
        self.tune = tune
        self.eval_fraction = eval_fraction
        self.seed = seed
        self.show_progress = show_progress
        self.new_user_model = new_user_model
        self.max_train_rows = max_train_rows

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _check_params(self) -> None:
        """One ``ValueError`` naming the first bad hyper-parameter (NaN and inf are bad)."""
        if self.kind not in ("linear", "boosted", "dnn"):
            raise ValueError(f"kind must be linear, boosted or dnn, got {self.kind!r}")
        check_bool("leak_free", self.leak_free)
        check_integer("n_folds", self.n_folds, low=2 if self.leak_free else 1)
        check_fraction("cold_fraction", self.cold_fraction)
        check_fraction("validation_fraction", self.validation_fraction, allow_zero=False)
        check_integer("tune", self.tune, low=0)
        check_fraction("eval_fraction", self.eval_fraction)
        check_seed("seed", self.seed)
        check_bool("new_user_model", self.new_user_model)
        if self.max_train_rows is not None:
            check_integer("max_train_rows", self.max_train_rows, low=100)

    # ------------------------------------------------------------------ fitting
    def _make_mf(self) -> MatrixFactorization:
        params = getattr(self, "mf_params_", None)
        if params is None:
            params = self.mf_params or {}
        params = {k: v for k, v in params.items() if k not in _MF_FIT_ONLY}
        params.setdefault("seed", self.seed)
        return MatrixFactorization(**params, eval_fraction=0.0)

    def _check_mf(self, mf: Any) -> dict[str, Any] | None:
        """A given MF must be fitted and shaped like the out-of-fold MFs (``mf_params``): the
        regressor learns from out-of-fold features and predicts from this MF's. Returns the
        out-of-fold MFs' parameters when they must be taken from ``mf``."""
        if not isinstance(mf, MatrixFactorization):
            raise ModelError(
                f"mf must be a fitted MatrixFactorization (explicit ratings), "
                f"got {type(mf).__name__}"
            )
        mf._require_fitted()
        if self.mf_params is None:
            # documented fallback: the out-of-fold MFs copy the given MF's hyper-parameters
            return mf.get_params()
        wanted = self._make_mf().get_params()
        width, asked = mf.user_factors_.shape[1], wanted["num_factors"]
        if width != asked:
            raise DataError(
                f"mismatched factor widths: the given MF has {width} factors but mf_params "
                f"asks for {asked}; pass the MF's own parameters (mf.get_params()) or refit it"
            )
        differ = [
            k
            for k, v in mf.get_params().items()
            if k not in (*_MF_FIT_ONLY, "seed") and wanted.get(k, v) != v
        ]
        if differ:
            raise DataError(
                f"the given MF was fitted with other hyper-parameters than mf_params "
                f"({', '.join(f'{k}={mf.get_params()[k]!r} vs {wanted[k]!r}' for k in differ)})"
            )
        return None

    def fit(
        self,
        ratings: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        *,
        mf: MatrixFactorization | None = None,
    ) -> HybridRecommender:
        """Fit on ratings (``userId``, ``movieId``, ``rating``) with optional user and item
        attribute tables. ``mf``: an MF already fitted on exactly the training part (e.g. the
        model named by ``hybridrec train hybrid --mf``), reused for prediction-time features;
        the out-of-fold MFs use ``mf_params``, which must then describe the same model (when
        ``mf_params`` is None they copy ``mf``'s hyper-parameters)."""
        self._check_params()
        self.mf_params_: dict[str, Any] | None = None  # the out-of-fold MFs' when not mf_params
        if mf is not None:
            self.mf_params_ = self._check_mf(mf)
        check_attribute_table(users, USER_COL, "users", ratings)
        check_attribute_table(items, ITEM_COL, "items", ratings)
        users_ext, items_ext, values = _ratings_arrays(ratings)
        rng = np.random.default_rng(self.seed)
        held_out = holdout_mask(values.shape[0], self.eval_fraction, rng)
        frame = pd.DataFrame({USER_COL: users_ext, ITEM_COL: items_ext, RATING_COL: values})
        train = frame.loc[~held_out].reset_index(drop=True)
        self.eval_set_ = frame.loc[held_out].reset_index(drop=True)
        if len(train) == 0:
            raise DataError(
                f"no training ratings left after holding out eval_fraction={self.eval_fraction} "
                f"of {len(frame)} ratings: give more ratings or a smaller eval_fraction"
            )

        rows = self._regressor_rows(len(train))
        in_val = np.random.default_rng([self.seed, 3]).random(len(train)) < self.validation_fraction
        val = in_val[rows]
        if val.all() or not val.any():
            raise DataError(
                f"too few ratings for the regressor's validation split: "
                f"validation_fraction={self.validation_fraction} of {int(rows.sum())} "
                f"training ratings leaves {int((~val).sum())} to train on and "
                f"{int(val.sum())} to validate on; give more ratings"
            )
        real_users = has_attributes(users, USER_COL)
        with_new_user = self.new_user_model and real_users
        steps = 2 + (self.n_folds if self.leak_free else 0) + (self.n_folds if with_new_user else 0)
        with progress_bar(f"hybrid {self.kind}", steps, show=self.show_progress) as bar:
            if mf is None:
                mf = self._make_mf().fit(train, items=items)
            self.base_ = BaseFeatures.from_mf(mf, train)
            bar.advance(1, "hybrid: side features")
            if not has_attributes(users, USER_COL):
                users = notebook_user_attributes(train, self.seed)
            self.user_encoder_ = AttributeEncoder.fit(users, USER_COL)
            self.item_encoder_ = AttributeEncoder.fit(items, ITEM_COL)
            self.items_meta_ = mf.items_meta_

            cold_rng = np.random.default_rng([self.seed, 2])
            cold_users = cold_rng.random(len(train)) < self.cold_fraction
            cold_items = cold_rng.random(len(train)) < self.cold_fraction
            t_users, t_items = train[USER_COL].to_numpy(), train[ITEM_COL].to_numpy()
            if self.leak_free:
                base = out_of_fold_matrix(
                    train,
                    self._make_mf,
                    self.n_folds,
                    self.seed,
                    cold_users,
                    cold_items,
                    on_fold=lambda: bar.advance(1, "hybrid: out-of-fold MF"),
                    rows=rows,
                )
            else:
                base = self.base_.matrix(
                    t_users[rows],
                    t_items[rows],
                    cold_users=cold_users[rows],
                    cold_items=cold_items[rows],
                )
            x = np.hstack([base, self._side(t_users[rows], t_items[rows])]).astype(np.float32)
            y = train[RATING_COL].to_numpy(np.float64)[rows]
            self.feature_names_ = [
                *self.base_.columns,
                *self.user_encoder_.columns,
                *self.item_encoder_.columns,
            ]

            bar.advance(0, f"hybrid: training {self.kind}")
            self.tuning_trials_: list[dict[str, Any]] = []
            params = {
                **DEFAULT_REGRESSOR_PARAMS.get(self.kind, {}),
                **(self.regressor_params or {}),
            }
            if self.tune:
                best, self.tuning_trials_ = random_search(
                    self.tune,
                    search_space(self.kind),
                    lambda trial: self._validation_rmse(x, y, val, {**params, **trial}),
                    seed=self.seed,
                    first={},
                )
                params.update(best)
            self.regressor_ = make_regressor(self.kind, **params)
            self.regressor_.fit(
                x[~val], y[~val], X_val=x[val], y_val=y[val], feature_names=self.feature_names_
            )
            bar.advance(1)
            self.new_user_: NewUserRidge | None = None
            if with_new_user and self.user_encoder_.columns:
                bar.advance(0, "hybrid: new-user model")
                self.new_user_ = fit_new_user(
                    self,
                    train,
                    train[RATING_COL].to_numpy(np.float64),
                    lambda: bar.advance(1, "hybrid: new-user model"),
                )
        self.rating_range_ = mf.rating_range_
        self.metrics_ = self.evaluate() if len(self.eval_set_) else {}
        return self

    def _regressor_rows(self, n_train: int) -> np.ndarray:
        """Which training rows the regressor is trained on: all, or a seeded sample of
        ``max_train_rows`` (as a boolean mask, so the rows keep their order)."""
        rows = np.ones(n_train, dtype=bool)
        if self.max_train_rows is not None and n_train > self.max_train_rows:
            rows[:] = False
            chosen = np.random.default_rng([self.seed, 6]).choice(
                n_train, self.max_train_rows, replace=False
            )
            rows[chosen] = True
        return rows

    def _validation_rmse(
        self, x: np.ndarray, y: np.ndarray, val: np.ndarray, params: dict[str, Any]
    ) -> float:
        regressor = make_regressor(self.kind, **params)
        regressor.fit(
            x[~val], y[~val], X_val=x[val], y_val=y[val], feature_names=self.feature_names_
        )
        return float(np.sqrt(np.mean((self._clip_to(y, regressor.predict(x[val])) - y[val]) ** 2)))

    @staticmethod
    def _clip_to(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return np.clip(pred, float(y.min()), float(y.max()))

    def _side(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.hstack([self.user_encoder_.lookup(users), self.item_encoder_.lookup(items)])

    # ------------------------------------------------------------------ predicting
    def _require_fitted(self) -> None:
        if not hasattr(self, "regressor_"):
            raise ModelError("this HybridRecommender is not fitted: call fit() first")

    @property
    def mf_(self) -> MatrixFactorization:  # type: ignore[override]
        return self.base_.mf

    def features(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The regressor's input rows for (user, item) pairs (columns: ``feature_names_``)."""
        users, items = np.asarray(users), np.asarray(items)
        return np.hstack([self.base_.matrix(users, items), self._side(users, items)]).astype(
            np.float32
        )

    def predict(
        self, users: Sequence[Any] | np.ndarray, items: Sequence[Any] | np.ndarray
    ) -> np.ndarray:
        """Predicted ratings for aligned user and item ids; unknown ids are cold starts."""
        self._require_fitted()
        users_arr, items_arr = _coerce_ids(self.mf_, users, items)
        return self._clip(self._scores(users_arr, items_arr))

    def _scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Unclipped scores: the new-user model for users unknown to the MF with attributes in
        the user table, the main regressor otherwise."""
        return self._route(self.features(users, items), self._new_user_mask(users))

    def _new_user_mask(self, users: np.ndarray) -> np.ndarray:
        table = self.user_encoder_.table
        if getattr(self, "new_user_", None) is None or table is None or len(users) == 0:
            return np.zeros(len(users), dtype=bool)
        unknown = self.mf_.user_vocab_.index_of(users) < 0
        if not unknown.any():
            return unknown
        return unknown & pd.Series(users, dtype=object).isin(table.index).to_numpy()

    def _route(self, x: np.ndarray, new_user: np.ndarray) -> np.ndarray:
        scores = np.empty(len(x), dtype=np.float64)
        main = ~new_user
        if main.any():
            scores[main] = self.regressor_.predict(x[main])
        if new_user.any():
            scores[new_user] = self._new_user_scores(x[new_user])
        return scores

    def _new_user_scores(self, x: np.ndarray) -> np.ndarray:
        """The new-user model on rows laid out like :meth:`features`."""
        assert self.new_user_ is not None
        return self.new_user_.predict(*new_user_inputs(self, x))

    def predict_frame(self, pairs: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in (USER_COL, ITEM_COL) if c not in pairs.columns]
        if missing:
            raise DataError(f"pairs need columns userId and movieId; missing {', '.join(missing)}")
        out = pairs.copy()
        out["predicted_rating"] = self.predict(
            pairs[USER_COL].to_numpy(), pairs[ITEM_COL].to_numpy()
        )
        return out

    def _clip(self, values: np.ndarray) -> np.ndarray:
        low, high = self.rating_range_
        return np.clip(np.asarray(values, dtype=np.float64), low, high)

    def _rating_columns(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """``predicted_rating`` (clipped) and ``score`` (unclipped: what orders the list)."""
        raw = np.asarray(scores, dtype=np.float64)
        return {"predicted_rating": self._clip(raw), "score": raw}

    def recommend(
        self,
        user: Any,
        n: int = 10,
        *,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """Top-``n`` items for a user by the hybrid's predicted rating (``movieId``, [``title``,]
        ``predicted_rating``, ``score``: the unclipped prediction that orders them). An unknown
        user is a cold start: the new-user model when the user table has the user's attributes,
        else the main regressor's cold rows."""
        self._require_fitted()
        mf = self.mf_
        allowed = mf.allowed_items(genre, candidates).copy()
        u = mf.user_vocab_.index_one(user)
        if exclude_seen and u >= 0:
            allowed[seen_items(self, u)] = False
        items = np.flatnonzero(allowed)
        user_ids = np.full(items.size, user if u < 0 else mf.user_vocab_.ids[u], dtype=object)
        if u >= 0:
            user_ids = user_ids.astype(mf.user_vocab_.ids.dtype)
        scores = self._scores(user_ids, mf.item_vocab_.ids[items])
        return self._top_frame(items, scores, n)

    def recommend_new_user(
        self,
        ratings: pd.DataFrame | dict[Any, float] | None = None,
        n: int = 10,
        *,
        attributes: dict[str, Any] | None = None,
        genre: str | None = None,
        candidates: Sequence[Any] | np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """Top-``n`` items for a user who is not in the model: MF fold-in from a few ratings
        (optional) and the user's attributes (optional, e.g. ``{"age": 30, "gender": "F"}``).
        With attributes and no ratings the scores come from the new-user model (when fitted);
        with ratings, from the main regressor over the folded-in user."""
        self._require_fitted()
        mf = self.mf_
        allowed = mf.allowed_items(genre, candidates).copy()
        items = np.flatnonzero(allowed)
        x = new_user_features(self, ratings, attributes, mf.item_vocab_.ids[items])
        if ratings is not None and exclude_seen:
            rated = mf.item_vocab_.index_of(np.asarray(list(as_rating_dict(ratings))))
            keep = ~np.isin(items, rated[rated >= 0])
            items, x = items[keep], x[keep]
        no_ratings = ratings is None or not len(as_rating_dict(ratings))
        use_new_user = bool(attributes) and no_ratings and self.new_user_ is not None
        return self._top_frame(items, self._route(x, np.full(len(x), use_new_user)), n)

    def _top_frame(self, items: np.ndarray, scores: np.ndarray, n: int) -> pd.DataFrame:
        check_n(n)
        order = _top_n(np.asarray(scores, dtype=np.float64), n)
        top = items[order]
        return self.mf_.item_frame(top, **self._rating_columns(scores[order]))

    def recommend_users(self, item: Any, n: int = 10, *, exclude_seen: bool = True) -> pd.DataFrame:
        """The ``n`` users with the highest predicted rating for ``item``."""
        self._require_fitted()
        mf = self.mf_
        i = mf.item_vocab_.index_one(item)
        if i < 0:
            raise DataError(f"movieId {item} is not in the model: no user can be targeted for it")
        users = np.arange(len(mf.user_vocab_))
        if exclude_seen:
            users = np.setdiff1d(users, seen_users(self, i))
        item_ids = np.full(users.size, mf.item_vocab_.ids[i])
        scores = self.regressor_.predict(self.features(mf.user_vocab_.ids[users], item_ids))
        order = _top_n(np.asarray(scores, dtype=np.float64), n)
        return pd.DataFrame(
            {USER_COL: mf.user_vocab_.ids[users[order]], **self._rating_columns(scores[order])}
        )

    def recommend_all(
        self, n: int = 10, *, exclude_seen: bool = True, candidates_per_user: int = 200
    ) -> Any:
        """Every user's top-``n``: the MF's top ``candidates_per_user`` items re-ranked by the
        hybrid (scoring every user × item pair with a regressor does not scale)."""
        self._require_fitted()
        mf = self.mf_
        for batch in mf.recommend_all(candidates_per_user, exclude_seen=exclude_seen):
            frame = batch.to_pandas()
            frame = drop_held_out(self, frame) if exclude_seen else frame
            frame["predicted_rating"] = self.predict(
                frame[USER_COL].to_numpy(), frame[ITEM_COL].to_numpy()
            )
            frame = frame.sort_values(
                [USER_COL, "predicted_rating"], ascending=[True, False], kind="stable"
            )
            frame["rank"] = frame.groupby(USER_COL).cumcount().astype(np.int32) + 1
            frame = frame[frame["rank"] <= n][[USER_COL, "rank", ITEM_COL, "predicted_rating"]]
            yield pa.RecordBatch.from_pandas(frame, preserve_index=False)

    # ------------------------------------------------------------------ inspecting
    def explain(self, user: Any, item: Any, top: int = 10) -> pd.DataFrame:
        """Feature contributions to one prediction (like ``ML.EXPLAIN_PREDICT``): ``feature``,
        ``value``, ``contribution``, largest magnitude first, plus the ``baseline`` row. For an
        unknown user with attributes, the new-user model's terms (it makes the prediction)."""
        self._require_fitted()
        users_arr, items_arr = _coerce_ids(self.mf_, [user], [item])
        x = self.features(users_arr, items_arr)
        if self._new_user_mask(users_arr).any():
            # an unknown user with attributes: the new-user model's terms
            assert self.new_user_ is not None
            names, values, contrib = self.new_user_.contributions(*new_user_inputs(self, x))
        else:
            names, values = self.feature_names_, x[0].astype(np.float64)
            contrib = self.regressor_.contributions(x)[0]
        frame = pd.DataFrame({"feature": names, "value": values, "contribution": contrib[:-1]})
        frame = frame.reindex(frame["contribution"].abs().sort_values(ascending=False).index).head(
            top
        )
        baseline = pd.DataFrame(
            {"feature": ["baseline"], "value": [np.nan], "contribution": [contrib[-1]]}
        )
        return pd.concat([baseline, frame], ignore_index=True)

    def feature_importance(self) -> pd.DataFrame:
        self._require_fitted()
        imp = self.regressor_.feature_importance()
        frame = pd.DataFrame({"feature": list(imp), "importance": list(imp.values())})
        return frame.sort_values("importance", ascending=False, ignore_index=True)

    def evaluate(
        self, data: pd.DataFrame | None = None, *, k: int = 10, relevance_threshold: float = 4.0
    ) -> dict[str, float]:
        """Same metrics as :meth:`MatrixFactorization.evaluate`; ranking scores every item a
        user did not rate in training. The regressor scores users × items pairs one by one, so
        when that would exceed :data:`RANKING_PAIRS` pairs the ranking metrics are computed for
        a seeded sample of the users with relevant hold-out items (at least
        :data:`RANKING_MIN_USERS`; all of them on MovieLens 100K)."""
        self._require_fitted()
        data = evaluation_data(self, data)
        users_ext, items_ext, values = _ratings_arrays(data)
        metrics = regression_metrics(values, self.predict(users_ext, items_ext))
        metrics.update(
            ranking_metrics_of(self, users_ext, items_ext, values, k, relevance_threshold)
        )
        return metrics

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the model directory: ``meta.json``, side-feature tables, the MF (``mf/``) and
        the regressor's own files (``regressor/``), atomically."""
        save_hybrid(self, path)

    @classmethod
    def load(cls, path: str | Path) -> HybridRecommender:
        return load_hybrid(cls, path)


def _coerce_ids(mf: MatrixFactorization, users: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
    """Align id types with the training vocabularies (e.g. '903' from a URL → 903)."""
    users_arr, items_arr = np.asarray(users), np.asarray(items)
    if users_arr.shape != items_arr.shape:
        raise DataError(f"{users_arr.size} users but {items_arr.size} items: pairs must align")
    return _coerce(users_arr, mf.user_vocab_.ids), _coerce(items_arr, mf.item_vocab_.ids)


def _coerce(ids: np.ndarray, vocab_ids: np.ndarray) -> np.ndarray:
    if vocab_ids.dtype.kind in "iu" and ids.dtype.kind in "OUS":
        numeric = pd.to_numeric(pd.Series(ids), errors="coerce")
        if numeric.notna().all() and (numeric % 1 == 0).all():
            return numeric.to_numpy().astype(np.int64)
        return ids.astype(object)
    return ids
