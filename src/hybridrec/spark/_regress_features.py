"""The hybrid's feature rows on Spark: the local model's feature columns (MF prediction,
intercepts, known flags, rating statistics, encoded attributes) built by Spark SQL from
per-user and per-item tables broadcast from the driver."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.hybrid import AttributeEncoder, BaseFeatures, RatingStats
from hybridrec.spark._io import ITEM_COL, RATING_COL, USER_COL, _id_array

COLD_U, COLD_I, VAL_COL, FOLD_COL = "cold_user", "cold_item", "is_val", "fold"
FEATURES = "features"

# Spark column names of BaseFeatures.columns, in the same order.
BASE_NAMES = [
    *("mf_pred", "mf_bu", "mf_bi", "mf_ku", "mf_ki"),
    *("u_n", "u_mean", "u_std", "i_n", "i_mean", "i_std"),
]


def uniform(seed: int, salt: int) -> Column:
    """A seeded draw in [0, 1) per row from a hash of (userId, movieId, seed, salt)."""
    h = F.xxhash64(F.col(USER_COL), F.col(ITEM_COL), F.lit(int(seed)), F.lit(int(salt)))
    return h.bitwiseAND(F.lit((1 << 53) - 1)).cast("double") / float(1 << 53)


def rating_stats(train: DataFrame, key: str) -> RatingStats:
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


def notebook_users(user_stats: RatingStats, seed: int) -> pd.DataFrame:
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


def base_columns(
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


def attribute_columns(
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


def driver_frame(frame: DataFrame | pd.DataFrame | None) -> pd.DataFrame | None:
    if frame is None or isinstance(frame, pd.DataFrame):
        return frame
    result: pd.DataFrame = frame.toArrow().to_pandas()
    return result
