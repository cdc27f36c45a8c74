"""Hybrid regressors on Spark: the local hybrid's feature vectors built by Spark SQL, a
``pyspark.ml`` regressor trained on them, and the result saved as a local hybrid model.

The per-rating work (joins, feature rows, the regression) runs on Spark; the per-user and
per-item tables (MF factors and intercepts, rating statistics, encoded attributes) live on the
driver, as they do in the local artifact, and are broadcast to the executors.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.regression import GBTRegressor, LinearRegression
from pyspark.ml.stat import Summarizer
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec._core.params import check_fraction, check_integer, check_number, constructor_params
from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import move_into_place
from hybridrec.data import holdout_mask
from hybridrec.data import ratings_arrays as _ratings_arrays
from hybridrec.hybrid import (
    AttributeEncoder,
    BaseFeatures,
    HybridRecommender,
    LinearRegressor,
    RatingStats,
    TreeEnsembleRegressor,
    has_attributes,
)
from hybridrec.mf import MatrixFactorization
from hybridrec.spark._io import (
    EVAL_COL,
    ITEM_COL,
    RATING_COL,
    ROW_COL,
    USER_COL,
    _id_array,
    hash_split,
    read_ratings,
)
from hybridrec.spark._mf import SparkMatrixFactorization
from hybridrec.spark._session import spark_session

__all__ = ["SparkHybridRecommender", "data_fingerprint"]

log = logging.getLogger(__name__)

KINDS = ("linear", "boosted")
COLD_U, COLD_I, VAL_COL, FOLD_COL = "cold_user", "cold_item", "is_val", "fold"
FEATURES = "features"
#: Spark's GBTRegressor settings used unless ``regressor_params`` overrides them.
GBT_DEFAULTS: dict[str, Any] = {
    "maxDepth": 5,
    "maxIter": 100,
    "stepSize": 0.1,
    "subsamplingRate": 1.0,
    "minInstancesPerNode": 50,
    "maxBins": 32,
    "validationTol": 0.001,
}
_GBT_PARAMS = {
    "max_depth": "maxDepth",
    "n_estimators": "maxIter",
    "learning_rate": "stepSize",
    "subsample": "subsamplingRate",
    "min_child_samples": "minInstancesPerNode",
    "max_bins": "maxBins",
    "validation_tol": "validationTol",
}
_LINEAR_PARAMS = ("l2_reg",)


class SparkHybridRecommender:
    """The hybrid recommender (:class:`hybridrec.hybrid.HybridRecommender`) trained on Spark.

    The feature vector of each rating is the local model's (MF prediction, intercepts, known
    flags, user and item rating statistics, encoded user and item attributes), computed by
    Spark SQL from the same per-user and per-item tables, with the same cold-start rows and
    validation rows. Then:

    * ``kind="linear"``: ``pyspark.ml.regression.LinearRegression`` (ridge, exact normal-equation
      solver, standardised features) with ``regParam = l2_reg · σ_y`` — exactly the local
      :class:`~hybridrec.hybrid.LinearRegressor`'s objective with the same ``l2_reg`` (Spark
      also standardises the label). The coefficients are stored as a local linear regressor.
    * ``kind="boosted"``: ``pyspark.ml.regression.GBTRegressor`` (squared loss, early stopping on
      the validation rows). Its trees are exported to a NumPy tree ensemble
      (:class:`~hybridrec.hybrid.TreeEnsembleRegressor`) that predicts exactly what Spark does.

    Either way :meth:`save` writes the local hybrid artifact: ``hybridrec predict``,
    ``recommend``, ``evaluate``, ``explain`` and ``serve`` use it without Spark.

    Leak-free by default, as the local model: the MF and behaviour features of each training
    rating come from a :class:`SparkMatrixFactorization` fitted on the other ``n_folds - 1``
    folds (``n_folds`` extra Spark fits); ``leak_free=False`` uses the one MF, as the notebook.

    With ratings as a pandas frame the hold-out, cold-start, validation and fold assignments
    are the local model's exactly (row order); Spark DataFrames and paths use seeded hashes of
    the (userId, movieId) pair (the hold-out is :func:`hybridrec.spark.hash_split`, the same as
    :class:`SparkMatrixFactorization`'s).

    ``regressor_params``: for ``linear`` ``{"l2_reg": 1e-3}``; for ``boosted`` any of
    ``max_depth`` (5), ``n_estimators`` (100), ``learning_rate`` (0.1), ``subsample`` (1.0),
    ``min_child_samples`` (50), ``max_bins`` (32), ``validation_tol`` (0.001).
    ``mf_params`` are :class:`SparkMatrixFactorization` parameters for the MFs fitted here.
    """

    def __init__(
        self,
        kind: str = "linear",
        *,
        mf_params: dict[str, Any] | None = None,
        regressor_params: dict[str, Any] | None = None,
        leak_free: bool = True,
        n_folds: int = 5,
        cold_fraction: float = 0.05,
        validation_fraction: float = 0.1,
        eval_fraction: float = 0.2,
        seed: int = 42,
    ) -> None:
        self.kind = kind
        self.mf_params = mf_params
        self.regressor_params = regressor_params
        self.leak_free = leak_free
        self.n_folds = n_folds
        self.cold_fraction = cold_fraction
        self.validation_fraction = validation_fraction
        self.eval_fraction = eval_fraction
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _check_params(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"kind must be linear or boosted on Spark (the dnn trains locally), "
                f"got {self.kind!r}"
            )
        check_integer("n_folds", self.n_folds, low=2 if self.leak_free else 1)
        check_number("cold_fraction", self.cold_fraction, low=0, high=0.5)
        check_fraction("validation_fraction", self.validation_fraction)
        check_fraction("eval_fraction", self.eval_fraction)
        known = _LINEAR_PARAMS if self.kind == "linear" else tuple(_GBT_PARAMS)
        unknown = sorted(set(self.regressor_params or {}) - set(known))
        if unknown:
            raise ModelError(
                f"unknown parameter for the Spark {self.kind} regressor: {unknown[0]!r}; "
                f"it takes {', '.join(known)}"
            )

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        ratings: DataFrame | pd.DataFrame | str | Path,
        users: DataFrame | pd.DataFrame | None = None,
        items: DataFrame | pd.DataFrame | None = None,
        *,
        mf: MatrixFactorization | SparkMatrixFactorization | None = None,
        spark: SparkSession | None = None,
    ) -> SparkHybridRecommender:
        """Fit on ratings (``userId``, ``movieId``, ``rating``: a pandas frame, a Spark
        DataFrame or a path / URI) with optional user and item attribute tables (pandas or
        Spark; collected to the driver, one row per user / item).

        ``mf``: a matrix factorization fitted on exactly the training part (local or Spark,
        e.g. the model named by ``hybridrec train hybrid --mf``); without it one is fitted on
        Spark with ``mf_params``.
        """
        self._check_params()
        spark = spark or SparkSession.getActiveSession() or spark_session()
        self.spark_ = spark
        started = time.perf_counter()
        users_pd, items_pd = _driver_frame(users), _driver_frame(items)
        rows, eval_set = self._rows(spark, ratings)
        rows = rows.persist()
        try:
            train = rows.filter(~F.col(EVAL_COL))
            if mf is None:
                mf = self._fit_mf(spark, train, items_pd)
            local_mf = mf.to_local() if isinstance(mf, SparkMatrixFactorization) else mf
            if not hasattr(local_mf, "user_factors_"):
                raise ModelError("the MF passed to SparkHybridRecommender.fit is not fitted")
            user_stats, item_stats = _stats(train, USER_COL), _stats(train, ITEM_COL)
            if user_stats.table.empty:
                raise DataError("no training ratings left after the eval split")
            self.base_ = BaseFeatures(local_mf, user_stats, item_stats)
            if not has_attributes(users_pd, USER_COL):
                users_pd = _notebook_users(user_stats, self.seed)
            self.user_encoder_ = AttributeEncoder.fit(users_pd, USER_COL)
            self.item_encoder_ = AttributeEncoder.fit(items_pd, ITEM_COL)
            self.feature_names_ = [
                *self.base_.columns,
                *self.user_encoder_.columns,
                *self.item_encoder_.columns,
            ]

            if self.leak_free:
                parts = []
                for fold in range(self.n_folds):
                    inside = train.filter(F.col(FOLD_COL) == fold)
                    outside = train.filter(F.col(FOLD_COL) != fold)
                    fold_mf = self._fit_mf(spark, outside, None).to_local()
                    fold_base = BaseFeatures(
                        fold_mf, _stats(outside, USER_COL), _stats(outside, ITEM_COL)
                    )
                    parts.append(_base_columns(spark, inside, fold_base, cold=True))
                based = parts[0]
                for part in parts[1:]:
                    based = based.unionByName(part)
            else:
                based = _base_columns(spark, train, self.base_, cold=True)
            frame = self._assemble(spark, based).persist()
            try:
                self.regressor_, self.spark_model_, self.spark_regressor_ = self._train_regressor(
                    frame
                )
            finally:
                frame.unpersist()
        finally:
            rows.unpersist()
        self.mf_ = local_mf
        self.rating_range_ = local_mf.rating_range_
        self.eval_set_ = eval_set
        self.timings_ = {"fit_ms": round((time.perf_counter() - started) * 1000, 3)}
        self.local_ = self._local_model()
        self.metrics_ = self.local_.metrics_
        return self

    def _fit_mf(
        self, spark: SparkSession, train: DataFrame, items: pd.DataFrame | None
    ) -> SparkMatrixFactorization:
        accepted = set(SparkMatrixFactorization().get_params()) - {"eval_fraction", "seed"}
        params = {k: v for k, v in (self.mf_params or {}).items() if k in accepted}
        model = SparkMatrixFactorization(**params, eval_fraction=0.0, seed=self.seed)
        return model.fit(train.select(USER_COL, ITEM_COL, RATING_COL), items, spark=spark)

    def _rows(
        self, spark: SparkSession, ratings: DataFrame | pd.DataFrame | str | Path
    ) -> tuple[DataFrame, pd.DataFrame]:
        """Ratings with the hold-out, cold-start, validation and fold flags; and the hold-out
        as a pandas frame (the artifact's ``eval`` table)."""
        self._pandas_input = isinstance(ratings, pd.DataFrame)
        if isinstance(ratings, pd.DataFrame):
            return self._rows_from_pandas(spark, ratings)
        frame = ratings if isinstance(ratings, DataFrame) else read_ratings(spark, ratings)
        missing = [c for c in (USER_COL, ITEM_COL, RATING_COL) if c not in frame.columns]
        if missing:
            raise DataError(f"ratings need columns userId, movieId, rating; missing {missing[0]}")
        train = ~F.col(EVAL_COL)
        rows = (
            frame.select(USER_COL, ITEM_COL, F.col(RATING_COL).cast("double").alias(RATING_COL))
            .withColumn(EVAL_COL, hash_split(self.seed, self.eval_fraction))
            .withColumn(COLD_U, train & (_uniform(self.seed, 21) < self.cold_fraction))
            .withColumn(COLD_I, train & (_uniform(self.seed, 22) < self.cold_fraction))
            .withColumn(VAL_COL, train & (_uniform(self.seed, 3) < self.validation_fraction))
            .withColumn(
                FOLD_COL,
                F.pmod(
                    F.xxhash64(F.col(USER_COL), F.col(ITEM_COL), F.lit(self.seed), F.lit(1)),
                    F.lit(max(self.n_folds, 1)),
                ).cast("int"),
            )
        )
        bad = rows.filter(F.col(RATING_COL).isNull()).limit(1).count()
        if bad:
            raise DataError("rating is missing or not a number in some rows")
        eval_set = (
            rows.filter(F.col(EVAL_COL))
            .select(USER_COL, ITEM_COL, RATING_COL)
            .orderBy(USER_COL, ITEM_COL)
            .toArrow()
            .to_pandas()
        )
        return rows, eval_set

    def _rows_from_pandas(
        self, spark: SparkSession, ratings: pd.DataFrame
    ) -> tuple[DataFrame, pd.DataFrame]:
        """The local model's exact draws, in row order (HybridRecommender.fit and
        out_of_fold_matrix)."""
        users, items, values = _ratings_arrays(ratings)
        n = values.shape[0]
        held = holdout_mask(n, self.eval_fraction, self.seed)
        train_rows = np.flatnonzero(~held)
        m = train_rows.size
        cold_rng = np.random.default_rng([self.seed, 2])
        flags = {
            COLD_U: cold_rng.random(m) < self.cold_fraction,
            COLD_I: cold_rng.random(m) < self.cold_fraction,
            VAL_COL: np.random.default_rng([self.seed, 3]).random(m) < self.validation_fraction,
        }
        folds = np.random.default_rng([self.seed, 1]).permutation(m) % max(self.n_folds, 1)
        columns: dict[str, pa.Array] = {
            USER_COL: _id_array(users),
            ITEM_COL: _id_array(items),
            RATING_COL: pa.array(values.astype(np.float64)),
            EVAL_COL: pa.array(held),
        }
        for name, train_values in flags.items():
            full = np.zeros(n, dtype=bool)
            full[train_rows] = train_values
            columns[name] = pa.array(full)
        fold_full = np.zeros(n, dtype=np.int32)
        fold_full[train_rows] = folds
        columns[FOLD_COL] = pa.array(fold_full)
        columns[ROW_COL] = pa.array(np.arange(n, dtype=np.int64))
        eval_set = pd.DataFrame(
            {USER_COL: users[held], ITEM_COL: items[held], RATING_COL: values[held]}
        )
        return spark.createDataFrame(pa.table(columns)), eval_set

    def _assemble(self, spark: SparkSession, based: DataFrame) -> DataFrame:
        """Base feature columns + encoded attributes → ``features`` (float32 values, as the
        local model's feature matrix), ``rating`` and the validation flag."""
        with_side = _attribute_columns(spark, based, self.user_encoder_, "ua")
        with_side = _attribute_columns(spark, with_side, self.item_encoder_, "ia")
        names = [
            *_BASE_NAMES,
            *[f"ua{j}" for j in range(len(self.user_encoder_.columns))],
            *[f"ia{j}" for j in range(len(self.item_encoder_.columns))],
        ]
        if len(names) != len(self.feature_names_):  # pragma: no cover - internal consistency
            raise ModelError("Spark feature columns do not match the feature names")
        as_float = [F.col(c).cast("float").cast("double").alias(c) for c in names]
        selected = with_side.select(*as_float, RATING_COL, VAL_COL)
        return VectorAssembler(inputCols=names, outputCol=FEATURES).transform(selected)

    def _train_regressor(
        self, frame: DataFrame
    ) -> tuple[LinearRegressor | TreeEnsembleRegressor, Any, dict[str, Any]]:
        """The local regressor, the Spark model, and the Spark settings used."""
        params = dict(self.regressor_params or {})
        if self.kind == "linear":
            return _train_linear(frame, float(params.get("l2_reg", 1e-3)), self.feature_names_)
        gbt = {**GBT_DEFAULTS, **{_GBT_PARAMS[k]: v for k, v in params.items()}}
        return _train_gbt(frame, gbt, self.seed, self.validation_fraction > 0, self.feature_names_)

    # ------------------------------------------------------------------ the local model
    def _require_fitted(self) -> None:
        if not hasattr(self, "local_"):
            raise ModelError("this SparkHybridRecommender is not fitted: call fit() first")

    def _local_model(self) -> HybridRecommender:
        model = HybridRecommender(
            self.kind,
            mf_params=self.mf_.get_params(),
            leak_free=self.leak_free,
            n_folds=self.n_folds,
            cold_fraction=self.cold_fraction,
            validation_fraction=self.validation_fraction,
            eval_fraction=self.eval_fraction,
            seed=self.seed,
        )
        if hasattr(model, "new_user_model"):
            # The local model's separate new-user model is not trained on Spark: new users are
            # scored by the main regressor, which learned cold starts from the cold rows.
            model.new_user_model = False
        model.new_user_ = None
        model.base_ = self.base_
        model.user_encoder_ = self.user_encoder_
        model.item_encoder_ = self.item_encoder_
        model.items_meta_ = self.mf_.items_meta_
        model.feature_names_ = list(self.feature_names_)
        model.regressor_ = self.regressor_
        model.rating_range_ = self.rating_range_
        model.tuning_trials_ = []
        model.eval_set_ = self.eval_set_.reset_index(drop=True)
        model.metrics_ = model.evaluate() if len(model.eval_set_) else {}
        return model

    def to_local(self) -> HybridRecommender:
        """The fitted model as a local :class:`HybridRecommender` (no Spark needed to use it)."""
        self._require_fitted()
        return self.local_

    def save(self, path: str | Path) -> None:
        """Write the local hybrid artifact, atomically; ``meta.json`` adds ``engine`` (Spark
        version, master, options, the Spark regressor's settings, timings)."""
        self._require_fitted()
        engine = {
            "name": "spark",
            "spark_version": self.spark_.version,
            "master": self.spark_.sparkContext.master,
            "params": self.get_params(),
            "split": "row-order" if self._pandas_input else "hash",
            "regressor": getattr(self, "spark_regressor_", {}),
            "timings_ms": self.timings_,
        }
        save_with_engine(self.local_, Path(path), engine)

    # ------------------------------------------------------------------ scoring on Spark
    def features_frame(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` (``userId``, ``movieId``) with the model's ``features`` vector, computed by
        Spark from the fitted tables (unknown ids are cold starts, as in the local model)."""
        self._require_fitted()
        spark = pairs.sparkSession
        rows = pairs.withColumn(COLD_U, F.lit(False)).withColumn(COLD_I, F.lit(False))
        if RATING_COL not in rows.columns:
            rows = rows.withColumn(RATING_COL, F.lit(None).cast("double"))
        rows = rows.withColumn(VAL_COL, F.lit(False))
        based = _base_columns(spark, rows, self.base_, cold=False, keep=(USER_COL, ITEM_COL))
        with_side = _attribute_columns(spark, based, self.user_encoder_, "ua")
        with_side = _attribute_columns(spark, with_side, self.item_encoder_, "ia")
        names = [
            *_BASE_NAMES,
            *[f"ua{j}" for j in range(len(self.user_encoder_.columns))],
            *[f"ia{j}" for j in range(len(self.item_encoder_.columns))],
        ]
        cols = [F.col(c).cast("float").cast("double").alias(c) for c in names]
        selected = with_side.select(USER_COL, ITEM_COL, RATING_COL, *cols)
        return VectorAssembler(inputCols=names, outputCol=FEATURES).transform(selected)

    def transform(self, pairs: DataFrame) -> DataFrame:
        """``userId``, ``movieId`` (and ``rating`` when given) with ``predicted_rating``,
        computed by Spark with the Spark-trained regressor, clipped to the rating range."""
        self._require_fitted()
        scored = self.spark_model_.transform(self.features_frame(pairs))
        low, high = self.rating_range_
        clipped = F.least(F.greatest(F.col("prediction"), F.lit(low)), F.lit(high))
        return scored.select(USER_COL, ITEM_COL, RATING_COL, clipped.alias("predicted_rating"))


def data_fingerprint(ratings: DataFrame) -> str:
    """The data fingerprint :class:`SparkMatrixFactorization` records for ratings read by
    Spark (row count and an order-free sum of row hashes), to tell whether an MF was trained
    on exactly these ratings."""
    rating = F.col(RATING_COL).cast("double").alias(RATING_COL)
    row = (
        ratings.select(USER_COL, ITEM_COL, rating)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.xxhash64(USER_COL, ITEM_COL, RATING_COL).cast("decimal(38,0)")).alias("h"),
        )
        .first()
    )
    assert row is not None
    return f"{row['n']}:spark-xxhash64-{int(row['h'] or 0) % (1 << 64)}"


# ---------------------------------------------------------------------- features
# Spark column names of BaseFeatures.columns, in the same order.
_BASE_NAMES = [
    *("mf_pred", "mf_bu", "mf_bi", "mf_ku", "mf_ki"),
    *("u_n", "u_mean", "u_std", "i_n", "i_mean", "i_std"),
]


def _uniform(seed: int, salt: int) -> Column:
    h = F.xxhash64(F.col(USER_COL), F.col(ITEM_COL), F.lit(int(seed)), F.lit(int(salt)))
    return h.bitwiseAND(F.lit((1 << 53) - 1)).cast("double") / float(1 << 53)


def _stats(train: DataFrame, key: str) -> RatingStats:
    """:meth:`RatingStats.fit` by one Spark aggregation (one row per id to the driver)."""
    rating = F.col(RATING_COL)
    table = (
        train.groupBy(key)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(rating).alias("s"),
            F.stddev_samp(rating).alias("sd"),
        )
        .toArrow()
        .to_pandas()
        .sort_values(key, kind="stable")
    )
    n = table["n"].to_numpy(np.float64)
    total = float(n.sum())
    global_mean = float(table["s"].sum() / total) if total else 0.0
    stats = pd.DataFrame(
        {
            "n_log": np.log1p(n),
            "mean": (table["s"].to_numpy(np.float64) + 5 * global_mean) / (n + 5),
            "std": pd.to_numeric(table["sd"]).fillna(0.0).to_numpy(np.float64),
        },
        index=pd.Index(table[key].to_numpy(), name=key),
    )
    return RatingStats(key, stats, global_mean)


def _notebook_users(user_stats: RatingStats, seed: int) -> pd.DataFrame:
    """:func:`notebook_user_attributes` from per-user counts (the same draws, same order)."""
    ids = user_stats.table.index.to_numpy()
    counts = np.rint(np.expm1(user_stats.table["n_log"].to_numpy()))
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            USER_COL: ids,
            "loyalty": rng.random(len(ids)) * counts,
            "postcode": [str(u)[:2] for u in ids],
        }
    )


def _entity_table(spark: SparkSession, base: BaseFeatures, side: str) -> tuple[DataFrame, float]:
    """Per-user (``side="u"``) or per-item table: known flag, intercept, factors, statistics."""
    mf = base.mf
    if side == "u":
        key, vocab, bias, factors, stats = (
            USER_COL,
            mf.user_vocab_,
            mf.user_bias_,
            mf.user_factors_,
            base.user_stats,
        )
    else:
        key, vocab, bias, factors, stats = (
            ITEM_COL,
            mf.item_vocab_,
            mf.item_bias_,
            mf.item_factors_,
            base.item_stats,
        )
    ids = np.asarray(vocab.ids)
    k = factors.shape[1]
    flat = pa.array(np.ascontiguousarray(factors, dtype=np.float32).reshape(-1))
    offsets = pa.array(np.arange(0, (len(ids) + 1) * k, k, dtype=np.int32))
    mf_part = pd.DataFrame({key: ids, f"{side}_k": 1.0, f"{side}_b": bias})
    stats_part = stats.table.rename(
        columns={"n_log": f"{side}_n", "mean": f"{side}_mean", "std": f"{side}_std"}
    ).reset_index()
    merged = mf_part.merge(stats_part, on=key, how="outer", sort=True)
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
    where = position.reindex(merged[key].to_numpy()).to_numpy()
    table = pa.Table.from_pandas(merged, preserve_index=False)
    table = table.set_column(0, key, _id_array(merged[key].to_numpy()))
    all_factors = pa.ListArray.from_arrays(offsets, flat)
    known = ~np.isnan(where)
    index = pa.array(np.where(known, where, 0).astype(np.int64), mask=~known)
    table = table.append_column(f"{side}_f", all_factors.take(index))  # null where unknown
    return spark.createDataFrame(table), stats.global_mean


def _base_columns(
    spark: SparkSession,
    rows: DataFrame,
    base: BaseFeatures,
    *,
    cold: bool,
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """:meth:`BaseFeatures.matrix` by Spark: the MF and behaviour columns of ``rows``; with
    ``cold`` the rows flagged cold are built as if their user (item) were unknown."""
    users, user_mean = _entity_table(spark, base, "u")
    items, item_mean = _entity_table(spark, base, "i")
    joined = rows.join(F.broadcast(users), USER_COL, "left").join(
        F.broadcast(items), ITEM_COL, "left"
    )
    cold_u = F.col(COLD_U) if cold else F.lit(False)
    cold_i = F.col(COLD_I) if cold else F.lit(False)
    known_u = F.col("u_k").isNotNull() & F.col("u_f").isNotNull() & ~cold_u
    known_i = F.col("i_k").isNotNull() & F.col("i_f").isNotNull() & ~cold_i
    bu = F.when(known_u, F.col("u_b")).otherwise(F.lit(0.0))
    bi = F.when(known_i, F.col("i_b")).otherwise(F.lit(0.0))
    dot = F.when(
        known_u & known_i,
        F.aggregate(
            F.zip_with("u_f", "i_f", lambda a, b: a.cast("double") * b.cast("double")),
            F.lit(0.0),
            lambda acc, x: acc + x,
        ),
    ).otherwise(F.lit(0.0))
    mf = base.mf
    low, high = mf.rating_range_
    pred = F.least(F.greatest(F.lit(mf.global_mean_) + bu + bi + dot, F.lit(low)), F.lit(high))

    def stat(side: str, name: str, default: float, is_cold: Column) -> Column:
        value = F.col(f"{side}_{name}")
        return F.when(is_cold | value.isNull(), F.lit(default)).otherwise(value)

    return joined.select(
        *keep,
        pred.alias("mf_pred"),
        bu.alias("mf_bu"),
        bi.alias("mf_bi"),
        known_u.cast("double").alias("mf_ku"),
        known_i.cast("double").alias("mf_ki"),
        stat("u", "n", 0.0, cold_u).alias("u_n"),
        stat("u", "mean", user_mean, cold_u).alias("u_mean"),
        stat("u", "std", 0.0, cold_u).alias("u_std"),
        stat("i", "n", 0.0, cold_i).alias("i_n"),
        stat("i", "mean", item_mean, cold_i).alias("i_mean"),
        stat("i", "std", 0.0, cold_i).alias("i_std"),
        *[c for c in (USER_COL, ITEM_COL) if c not in keep],
        RATING_COL,
        VAL_COL,
    )


def _attribute_columns(
    spark: SparkSession, frame: DataFrame, encoder: AttributeEncoder, prefix: str
) -> DataFrame:
    """Join the encoded attributes (``prefix0..``); unknown ids get the encoder's defaults
    (training means for numeric columns, 0 for one-hot columns), as ``lookup`` does."""
    columns = encoder.columns
    if not columns:
        return frame
    assert encoder.table is not None
    key = encoder.key
    names = [f"{prefix}{j}" for j in range(len(columns))]
    table = encoder.table.reindex(columns=columns)
    pairs = zip(names, columns, strict=True)
    arrays = {n: pa.array(table[c].to_numpy(np.float64)) for n, c in pairs}
    arrow = pa.table({key: _id_array(table.index.to_numpy()), **arrays})
    means = {f"{key}.{c}": m for c, m in encoder.means.items()}
    joined = frame.join(F.broadcast(spark.createDataFrame(arrow)), key, "left")
    filled = [
        F.coalesce(F.col(n), F.lit(float(means.get(c, 0.0)))).alias(n)
        for n, c in zip(names, columns, strict=True)
    ]
    others = [F.col(c) for c in frame.columns]
    return joined.select(*others, *filled)


def _driver_frame(frame: DataFrame | pd.DataFrame | None) -> pd.DataFrame | None:
    if frame is None or isinstance(frame, pd.DataFrame):
        return frame
    result: pd.DataFrame = frame.toArrow().to_pandas()
    return result


# ---------------------------------------------------------------------- regressors
def _train_linear(
    frame: DataFrame, l2_reg: float, feature_names: list[str]
) -> tuple[LinearRegressor, Any, dict[str, Any]]:
    """Ridge by Spark's normal-equation solver, as the local :class:`LinearRegressor`: Spark
    standardises the label too, so ``regParam = l2_reg · σ_y`` gives the same objective."""
    check_number("l2_reg", l2_reg, low=0)
    fit_rows = frame.filter(~F.col(VAL_COL))
    row = fit_rows.select(
        Summarizer.metrics("mean", "variance", "count").summary(F.col(FEATURES)).alias("s"),
        F.avg(RATING_COL).alias("y_mean"),
        F.stddev_pop(RATING_COL).alias("y_sd"),
    ).first()
    if row is None or row["y_mean"] is None:
        raise DataError("no training rows for the linear regressor")
    n = int(row["s"]["count"])
    mean = np.asarray(row["s"]["mean"].toArray(), dtype=np.float64)
    # Summarizer's variance is the sample variance; the local model keeps the population one.
    variance = np.asarray(row["s"]["variance"].toArray(), dtype=np.float64) * (n - 1) / max(n, 1)
    y_sd = float(row["y_sd"] or 0.0)
    regression = LinearRegression(
        featuresCol=FEATURES,
        labelCol=RATING_COL,
        regParam=l2_reg * y_sd,
        elasticNetParam=0.0,
        standardization=True,
        fitIntercept=True,
        solver="normal",
    )
    model = regression.fit(fit_rows)
    coef = np.asarray(model.coefficients.toArray(), dtype=np.float64)
    regressor = LinearRegressor.from_coefficients(
        coef,
        float(model.intercept),
        mean=mean,
        scale=np.sqrt(np.clip(variance, 0.0, None)),
        y_mean=float(row["y_mean"]),
        n_samples=n,
        feature_names=feature_names,
        l2_reg=l2_reg,
    )
    settings = {"class": "pyspark.ml.regression.LinearRegression", "regParam": l2_reg * y_sd}
    settings.update({"solver": "normal", "standardization": True, "elasticNetParam": 0.0})
    return regressor, model, settings


def _train_gbt(
    frame: DataFrame,
    params: dict[str, Any],
    seed: int,
    validate: bool,
    feature_names: list[str],
) -> tuple[TreeEnsembleRegressor, Any, dict[str, Any]]:
    options = dict(params)
    if validate:
        options["validationIndicatorCol"] = VAL_COL
    else:
        options.pop("validationTol", None)
    try:
        gbt = GBTRegressor(
            featuresCol=FEATURES,
            labelCol=RATING_COL,
            lossType="squared",
            featureSubsetStrategy="all",
            seed=seed,
            **options,
        )
    except TypeError as exc:  # pragma: no cover - guarded by _check_params
        raise ModelError(f"bad GBT parameter: {exc}") from None
    model = gbt.fit(frame)
    sample = frame.select(FEATURES).limit(50_000).toArrow()
    regressor = _export_trees(model, feature_names, sample)
    settings = {"class": "pyspark.ml.regression.GBTRegressor", **options}
    settings["n_trees"] = len(model.treeWeights)
    return regressor, model, settings


# ---------------------------------------------------------------------- GBT export
_SPLIT = re.compile(r"^If \(feature (\d+) <= (\S+)\)$")
_ELSE = re.compile(r"^Else \(feature (\d+) > (\S+)\)$")
_LEAF = re.compile(r"^Predict: (\S+)$")


def _parse_tree(lines: Iterator[str]) -> dict[str, list[Any]]:
    """One tree of Spark's ``toDebugString`` → flat node arrays (node 0 is the root)."""
    nodes: dict[str, list[Any]] = {"feature": [], "threshold": [], "left": [], "right": []}
    nodes["value"] = []

    def add() -> int:
        for column, default in (
            ("feature", -1),
            ("threshold", 0.0),
            ("left", -1),
            ("right", -1),
            ("value", 0.0),
        ):
            nodes[column].append(default)
        return len(nodes["feature"]) - 1

    def parse() -> int:
        line = next(lines).strip()
        here = add()
        leaf = _LEAF.match(line)
        if leaf:
            nodes["value"][here] = float(leaf.group(1))
            return here
        split = _SPLIT.match(line)
        if not split:
            raise ModelError(f"cannot export Spark's GBT: unexpected tree line {line!r}")
        nodes["feature"][here] = int(split.group(1))
        nodes["threshold"][here] = float(split.group(2))
        nodes["left"][here] = parse()
        other = next(lines).strip()
        if not _ELSE.match(other):
            raise ModelError(f"cannot export Spark's GBT: unexpected tree line {other!r}")
        nodes["right"][here] = parse()
        return here

    parse()
    return nodes


def _export_trees(model: Any, feature_names: list[str], sample: pa.Table) -> TreeEnsembleRegressor:
    """Spark's GBT as a NumPy :class:`TreeEnsembleRegressor`: trees parsed from
    ``toDebugString`` (thresholds print as exact doubles), weights from ``treeWeights``,
    internal node values as the cover-weighted means of their leaves over a training sample
    (they only matter for ``contributions``)."""
    lines = [line for line in model.toDebugString.splitlines()[1:] if line.strip()]
    trees: list[dict[str, list[Any]]] = []
    it = iter(lines)
    for line in it:
        if not line.strip().startswith("Tree "):
            raise ModelError(f"cannot export Spark's GBT: unexpected line {line.strip()!r}")
        trees.append(_parse_tree(it))
    weights = np.asarray(model.treeWeights, dtype=np.float64)
    if len(trees) != weights.size:
        raise ModelError(f"cannot export Spark's GBT: {len(trees)} trees, {weights.size} weights")
    x = _sample_matrix(sample, len(feature_names))
    columns: dict[str, list[np.ndarray]] = {
        c: [] for c in ("feature", "threshold", "left", "right", "value")
    }
    offsets = [0]
    for tree in trees:
        arrays = {c: np.asarray(v) for c, v in tree.items()}
        arrays["value"] = _internal_values(arrays, x)
        for c in columns:
            columns[c].append(arrays[c])
        offsets.append(offsets[-1] + arrays["feature"].size)
    return TreeEnsembleRegressor.from_arrays(
        **{c: np.concatenate(v) for c, v in columns.items()},
        offsets=np.asarray(offsets),
        weights=weights,
        importance=np.asarray(model.featureImportances.toArray(), dtype=np.float64),
        feature_names=feature_names,
        source="pyspark.ml.regression.GBTRegressor",
    )


def _sample_matrix(sample: pa.Table, d: int) -> np.ndarray:
    if sample.num_rows == 0:
        return np.zeros((0, d))
    vectors = sample.column(0).to_pylist()
    rows = []
    for v in vectors:  # VectorUDT as a struct: type 1 dense (values), type 0 sparse
        dense = np.zeros(d)
        if v["type"] == 1:
            dense[:] = v["values"]
        else:
            dense[np.asarray(v["indices"], dtype=np.int64)] = v["values"]
        rows.append(dense)
    return np.vstack(rows)


def _internal_values(tree: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    feature, threshold = tree["feature"], tree["threshold"]
    left, right, value = tree["left"], tree["right"], tree["value"].astype(np.float64)
    count = np.zeros(feature.size)
    node = np.zeros(x.shape[0], dtype=np.int64)
    np.add.at(count, node, 1.0)
    for _ in range(feature.size):
        inner = feature[node] >= 0
        if not inner.any():
            break
        rows = np.flatnonzero(inner)
        here = node[rows]
        node[rows] = np.where(x[rows, feature[here]] <= threshold[here], left[here], right[here])
        np.add.at(count, node[rows], 1.0)
    # Children come after their parent (pre-order), so a reverse pass sees them first.
    for n in range(feature.size - 1, -1, -1):
        if feature[n] >= 0:
            lc, rc = count[left[n]], count[right[n]]
            total = lc + rc
            if total > 0:
                value[n] = (lc * value[left[n]] + rc * value[right[n]]) / total
            else:
                value[n] = 0.5 * (value[left[n]] + value[right[n]])
    return value


# ---------------------------------------------------------------------- saving
def save_with_engine(model: Any, path: Path, engine: dict[str, Any]) -> None:
    """``model.save`` into a staging folder, ``engine`` added to its ``meta.json``, then
    renamed into place (replacing an old model), so a crash never leaves half a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.spark-{uuid.uuid4().hex[:8]}"
    try:
        model.save(staging)
        meta_file = staging / "meta.json"
        meta = json.loads(meta_file.read_text())
        meta["engine"] = engine
        meta_file.write_text(json.dumps(meta, indent=2, default=str))
        move_into_place(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
