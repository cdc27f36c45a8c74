"""Hybrid regressors on Spark: the local hybrid's feature vectors built by Spark SQL, a
``pyspark.ml`` regressor trained on them, and the result saved as a local hybrid model.

The per-rating work (joins, feature rows, the regression) runs on Spark; the per-user and
per-item tables (MF factors and intercepts, rating statistics, encoded attributes) live on the
driver, as they do in the local artifact, and are broadcast to the executors.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import DataFrame, SparkSession
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
from hybridrec.spark._regress_features import (
    BASE_NAMES,
    COLD_I,
    COLD_U,
    FEATURES,
    FOLD_COL,
    VAL_COL,
    attribute_columns,
    base_columns,
    driver_frame,
    notebook_users,
    rating_stats,
    uniform,
)
from hybridrec.spark._regress_train import (
    GBT_DEFAULTS,
    GBT_PARAMS,
    LINEAR_PARAMS,
    train_gbt,
    train_linear,
)
from hybridrec.spark._session import spark_session

__all__ = ["SparkHybridRecommender", "data_fingerprint"]

log = logging.getLogger(__name__)

KINDS = ("linear", "boosted")


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
        known = LINEAR_PARAMS if self.kind == "linear" else tuple(GBT_PARAMS)
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
        users_pd, items_pd = driver_frame(users), driver_frame(items)
        rows, eval_set = self._rows(spark, ratings)
        rows = rows.persist()
        try:
            train = rows.filter(~F.col(EVAL_COL))
            if mf is None:
                mf = self._fit_mf(spark, train, items_pd)
            local_mf = mf.to_local() if isinstance(mf, SparkMatrixFactorization) else mf
            if not hasattr(local_mf, "user_factors_"):
                raise ModelError("the MF passed to SparkHybridRecommender.fit is not fitted")
            user_stats, item_stats = rating_stats(train, USER_COL), rating_stats(train, ITEM_COL)
            if user_stats.table.empty:
                raise DataError("no training ratings left after the eval split")
            self.base_ = BaseFeatures(local_mf, user_stats, item_stats)
            if not has_attributes(users_pd, USER_COL):
                users_pd = notebook_users(user_stats, self.seed)
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
                        fold_mf, rating_stats(outside, USER_COL), rating_stats(outside, ITEM_COL)
                    )
                    parts.append(base_columns(spark, inside, fold_base, cold=True))
                based = parts[0]
                for part in parts[1:]:
                    based = based.unionByName(part)
            else:
                based = base_columns(spark, train, self.base_, cold=True)
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
            .withColumn(COLD_U, train & (uniform(self.seed, 21) < self.cold_fraction))
            .withColumn(COLD_I, train & (uniform(self.seed, 22) < self.cold_fraction))
            .withColumn(VAL_COL, train & (uniform(self.seed, 3) < self.validation_fraction))
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
        with_side = attribute_columns(spark, based, self.user_encoder_, "ua")
        with_side = attribute_columns(spark, with_side, self.item_encoder_, "ia")
        names = [
            *BASE_NAMES,
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
            return train_linear(frame, float(params.get("l2_reg", 1e-3)), self.feature_names_)
        gbt = {**GBT_DEFAULTS, **{GBT_PARAMS[k]: v for k, v in params.items()}}
        return train_gbt(frame, gbt, self.seed, self.validation_fraction > 0, self.feature_names_)

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
        based = base_columns(spark, rows, self.base_, cold=False, keep=(USER_COL, ITEM_COL))
        with_side = attribute_columns(spark, based, self.user_encoder_, "ua")
        with_side = attribute_columns(spark, with_side, self.item_encoder_, "ia")
        names = [
            *BASE_NAMES,
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
