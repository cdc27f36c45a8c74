"""Batch scoring on Spark of a matrix factorization saved in the local artifact format: every
user's top-n (``recommend --all --engine spark``) and the regression metrics on held-out
ratings (``evaluate --engine spark``).

The model directory is read on the driver (it may come from either engine) and shipped to
Spark: the user rows (id, intercept, factors, seen items) as a DataFrame, the item factors and
intercepts as a broadcast variable. Top-n runs NumPy on the executors (``mapInArrow``: blocks of
users scored against every item, ``argpartition`` for the best n), so executors need NumPy and
PyArrow, not hybridrec. Evaluation is Spark SQL only (no Python on the executors).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec import artifacts
from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.contract import MATRIX_FACTORIZATION
from hybridrec._core.sparse import check_n
from hybridrec._errors import DataError, HybridrecError, ModelError, first_line
from hybridrec.evaluate import REGRESSION_METRICS
from hybridrec.spark._io import read_ratings

__all__ = ["evaluate_saved_model", "recommend_all", "write_parquet"]

KIND = MATRIX_FACTORIZATION.name
SCORE_COL = "predicted_rating"
UIDX, IIDX = "u", "i"

#: Rows of the exact median (Spark's ``percentile``, which holds every distinct value of the
#: absolute error in one task's memory); more rows use ``percentile_approx`` (see docs/spark.md).
EXACT_MEDIAN_LIMIT = 5_000_000
#: ``percentile_approx`` accuracy beyond that: the rank of the value returned is within
#: rows / accuracy of the median's.
MEDIAN_ACCURACY = 100_000
#: Users scored together on an executor: a block × items float32 matrix.
BLOCK_ROWS = 1024


@dataclass
class SavedFactors:
    """The parts of a saved matrix factorization that scoring needs, read on the driver."""

    path: Path
    num_factors: int
    global_mean: float
    rating_range: tuple[float, float]
    users: pa.Table  # userId, u, b_u (float64), p_u (list<float32>)
    items: pa.Table  # movieId, i, b_i (float64), q_i (list<float32>)

    @classmethod
    def read(cls, path: str | Path) -> SavedFactors:
        path = Path(path)
        meta = artifacts.read_meta(path)
        kind = meta.get("kind")
        if kind != KIND:
            hint = {
                "hybrid": "hybrid models run on the local engine (drop --engine spark)",
                "ranking": "ranking models run on the local engine (drop --engine spark)",
            }.get(str(kind), "it runs on the local engine (drop --engine spark)")
            raise ModelError(
                f"model {path.name!r} is a {kind!r} model: the Spark engine scores matrix "
                f"factorization models only; {hint}"
            )
        k = int(meta["params"]["num_factors"])
        low, high = meta["rating_range"]
        tables = {}
        for side, id_col, index_col in (("users", USER_COL, UIDX), ("items", ITEM_COL, IIDX)):
            file = path / f"{side}.parquet"
            if not file.is_file():
                raise ModelError(f"model at {path} is incomplete: {file.name} is missing")
            table = pq.read_table(file, columns=[id_col, "intercept", "factors"])
            factors = table.column("factors").combine_chunks()
            if pa.types.is_fixed_size_list(factors.type):
                flat = factors.flatten()
                offsets = pa.array(np.arange(len(factors) + 1, dtype=np.int32) * k)
                factors = pa.ListArray.from_arrays(offsets, flat.cast(pa.float32()))
            else:
                factors = factors.cast(pa.list_(pa.float32()))
            tables[side] = pa.table(
                {
                    id_col: table.column(id_col),
                    index_col: pa.array(np.arange(table.num_rows, dtype=np.int32)),
                    f"b_{side[0]}": table.column("intercept").cast(pa.float64()),
                    f"{'p' if side == 'users' else 'q'}_{side[0]}": factors,
                }
            )
        return cls(
            path=path,
            num_factors=k,
            global_mean=float(meta["global_mean"]),
            rating_range=(
                -np.inf if low is None else float(low),
                np.inf if high is None else float(high),
            ),
            users=tables["users"],
            items=tables["items"],
        )

    def seen_lists(self) -> pa.Array:
        """Each user's seen item indices (the artifact's ``seen`` pairs), in user order."""
        seen = artifacts.read_table(self.path, "seen")
        rows = np.asarray(seen.column("user_index").to_numpy(), dtype=np.int64)
        cols = np.asarray(seen.column("item_index").to_numpy(), dtype=np.int32)
        if rows.size >= 2**31:
            raise ModelError(f"{rows.size} seen pairs: too many for one Arrow list column")
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=self.users.num_rows)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(cols[order]))


# ---------------------------------------------------------------------- top-n for every user
def recommend_all(
    spark: SparkSession,
    model: str | Path,
    n: int = 10,
    *,
    exclude_seen: bool = True,
    seen: DataFrame | str | None = None,
    block_rows: int = BLOCK_ROWS,
) -> DataFrame:
    """Every user's top-``n`` items of the MF model saved at ``model`` (a directory on the
    driver; trained by either engine), as a lazy Spark DataFrame with the local
    ``recommend_all`` columns: ``userId``, ``rank`` (1-based), ``movieId``,
    ``predicted_rating`` (clipped to the model's rating range), users in the model's order.

    Scores are the local engine's, computed the same way (float32 ``p_u · q_i + b_i``, the best
    ``n`` chosen, then ``μ + b_u`` added). Items the user has seen are skipped unless
    ``exclude_seen`` is false: the model's seen pairs, or, when ``seen`` is given, the
    (userId, movieId) pairs of those ratings (a Spark DataFrame or a path / URI that
    :func:`read_ratings` reads). A user with fewer than ``n`` unseen items gets fewer rows.
    The item factors are broadcast to every executor (4·K bytes per item).
    """
    check_n(n)
    saved = SavedFactors.read(model)
    users = saved.users
    join_seen = exclude_seen and seen is not None
    if exclude_seen and seen is None:
        users = users.append_column("seen", saved.seen_lists())
    frame = spark.createDataFrame(users)
    if join_seen:
        assert seen is not None
        ratings = seen if isinstance(seen, DataFrame) else read_ratings(spark, seen)
        pairs = _indexed(spark, ratings, saved).filter(
            F.col(UIDX).isNotNull() & F.col(IIDX).isNotNull()
        )
        lists = pairs.groupBy(UIDX).agg(F.collect_set(IIDX).alias("seen"))
        # the join shuffles: sort again so the output keeps the model's user order
        frame = frame.join(lists, UIDX, "left").orderBy(UIDX)

    item_ids = saved.items.column(ITEM_COL).combine_chunks()
    item_factors = np.asarray(
        saved.items.column("q_i").combine_chunks().flatten().to_numpy(zero_copy_only=False),
        dtype=np.float32,
    ).reshape(-1, saved.num_factors)
    item_t = np.ascontiguousarray(item_factors.T)
    item_bias = saved.items.column("b_i").to_numpy().astype(np.float32)
    sc = spark.sparkContext
    broadcast = sc.broadcast((item_t, item_bias, item_ids))

    user_type = users.schema.field(USER_COL).type
    out_schema = pa.schema(
        [
            pa.field(USER_COL, user_type),
            pa.field("rank", pa.int32()),
            pa.field(ITEM_COL, item_ids.type),
            pa.field(SCORE_COL, pa.float64()),
        ]
    )
    spark_schema = T.StructType(
        [
            T.StructField(USER_COL, _spark_type(user_type)),
            T.StructField("rank", T.IntegerType()),
            T.StructField(ITEM_COL, _spark_type(item_ids.type)),
            T.StructField(SCORE_COL, T.DoubleType()),
        ]
    )
    low, high = saved.rating_range
    top_n = _top_n_function(
        broadcast,
        saved.global_mean,
        low,
        high,
        n,
        saved.num_factors,
        out_schema,
        block_rows,
        with_seen=exclude_seen,
    )
    columns = [USER_COL, "b_u", "p_u", *(["seen"] if exclude_seen else [])]
    return frame.select(*columns).mapInArrow(top_n, spark_schema)


def _top_n_function(
    broadcast: Any,
    mu: float,
    low: float,
    high: float,
    n: int,
    k: int,
    out_schema: pa.Schema,
    block_rows: int,
    *,
    with_seen: bool,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The executors' function. A closure, so cloudpickle ships it by value: executors need
    NumPy and PyArrow, not hybridrec."""

    def top_n(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        item_t, item_bias, item_ids = broadcast.value
        n_items = item_t.shape[1]
        width = min(n, n_items)
        user_type = out_schema.field(USER_COL).type
        item_type = out_schema.field(ITEM_COL).type
        item_ids = item_ids.cast(item_type)
        for batch in batches:
            for start in range(0, batch.num_rows, block_rows):
                part = batch.slice(start, block_rows)
                m = part.num_rows
                factors_col = part.column(part.schema.get_field_index("p_u"))
                factors = np.asarray(
                    pc.list_flatten(factors_col).to_numpy(zero_copy_only=False), dtype=np.float32
                ).reshape(m, k)
                bias = np.asarray(
                    part.column(part.schema.get_field_index("b_u")).to_numpy(zero_copy_only=False),
                    dtype=np.float64,
                )
                # the user's intercept and μ do not change its ranking: added after, as locally
                scores = factors @ item_t + item_bias
                if with_seen:
                    seen = part.column(part.schema.get_field_index("seen"))
                    rows = np.asarray(pc.list_parent_indices(seen).to_numpy(), dtype=np.int64)
                    cols = np.asarray(pc.list_flatten(seen).to_numpy(), dtype=np.int64)
                    scores[rows, cols] = -np.inf
                if width < n_items:
                    top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
                else:
                    top = np.tile(np.arange(n_items), (m, 1))
                values = np.take_along_axis(scores, top, axis=1)
                # best first; equal scores by item order, as the local engine breaks ties
                order = np.lexsort((top, -values), axis=-1)
                top = np.take_along_axis(top, order, axis=1)
                values = np.take_along_axis(values, order, axis=1)
                rows, ranks = np.nonzero(values > -np.inf)
                offset = (mu + bias).astype(np.float32)
                scored = np.clip(values[rows, ranks] + offset[rows], low, high)
                user_col = part.column(part.schema.get_field_index(USER_COL))
                yield pa.RecordBatch.from_arrays(
                    [
                        user_col.take(pa.array(rows)).cast(user_type),
                        pa.array((ranks + 1).astype(np.int32)),
                        item_ids.take(pa.array(top[rows, ranks])),
                        pa.array(scored.astype(np.float64)),
                    ],
                    schema=out_schema,
                )

    return top_n


# ---------------------------------------------------------------------- evaluation
def evaluate_saved_model(
    spark: SparkSession,
    model: str | Path,
    data: DataFrame | str | None = None,
    *,
    exact_median_limit: int = EXACT_MEDIAN_LIMIT,
) -> dict[str, float]:
    """Regression metrics (BigQuery ML's names + ``rmse``, the keys of the local
    :func:`hybridrec.evaluate.regression_metrics`) of the MF model saved at ``model`` on
    ``data`` (a Spark DataFrame or a path / URI with ``userId``, ``movieId``, ``rating``;
    default: the model's own hold-out, ``eval.parquet``), computed by Spark SQL.

    Predictions are the local model's: ``μ + b_u + b_i + p_u·q_i`` in double precision,
    unknown users / items falling back to ``μ`` plus the known intercepts, clipped to the
    training rating range; ratings are rounded to float32 first, as the local evaluation does.
    The median absolute error is exact (Spark's ``percentile``, NumPy's interpolation) up to
    ``exact_median_limit`` rows, else ``percentile_approx`` (rank within rows / 100,000).
    Ranking metrics are not computed (the local engine's ``evaluate`` has them).
    """
    saved = SavedFactors.read(model)
    if data is None:
        held_out = artifacts.read_table(saved.path, "eval")
        frame = spark.createDataFrame(held_out.select([USER_COL, ITEM_COL, RATING_COL]))
    elif isinstance(data, DataFrame):
        frame = data
    else:
        frame = read_ratings(spark, data)
    missing = [c for c in (USER_COL, ITEM_COL, RATING_COL) if c not in frame.columns]
    if missing:
        raise DataError(f"ratings need columns userId, movieId, rating; missing {missing[0]}")
    # missing ids are bad input; ids that are not the model's are unknown (they fall back)
    frame = frame.select(
        USER_COL,
        ITEM_COL,
        RATING_COL,
        F.col(USER_COL).isNull().alias("no_user"),
        F.col(ITEM_COL).isNull().alias("no_item"),
    )
    scored = _indexed(spark, frame, saved, keep_factors=True)
    mu = F.lit(saved.global_mean)
    base = mu + F.coalesce(F.col("b_u"), F.lit(0.0)) + F.coalesce(F.col("b_i"), F.lit(0.0))
    products = F.zip_with("p_u", "q_i", lambda x, y: x.cast("double") * y.cast("double"))
    raw = F.when(
        F.col("p_u").isNotNull() & F.col("q_i").isNotNull(),
        F.aggregate(products, base, lambda acc, x: acc + x),
    ).otherwise(base)
    low, high = saved.rating_range
    if np.isfinite(low):
        raw = F.greatest(raw, F.lit(low))
    if np.isfinite(high):
        raw = F.least(raw, F.lit(high))
    y = F.col(RATING_COL).cast("float").cast("double")
    scored = scored.select(
        "no_user",
        "no_item",
        y.alias("y"),
        raw.alias("p"),
    ).withColumn("err", F.col("y") - F.col("p"))
    scored = scored.persist()
    try:
        return _metrics(scored, exact_median_limit)
    finally:
        scored.unpersist()


def _metrics(scored: DataFrame, exact_median_limit: int) -> dict[str, float]:
    err, y, p = F.col("err"), F.col("y"), F.col("p")
    log_err = F.log1p(F.greatest(y, F.lit(0.0))) - F.log1p(F.greatest(p, F.lit(0.0)))
    row = scored.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("no_user").cast("int")).alias("no_user"),
        F.sum(F.col("no_item").cast("int")).alias("no_item"),
        F.sum((y.isNull() | F.isnan(y)).cast("int")).alias("bad_rating"),
        F.avg(F.abs(err)).alias("mae"),
        F.avg(err * err).alias("mse"),
        F.avg(log_err * log_err).alias("msle"),
        F.var_pop(y).alias("var_y"),
        F.var_pop(err).alias("var_err"),
    ).first()
    assert row is not None
    if not row["n"]:
        raise DataError("ratings are empty: nothing to evaluate")
    for name in ("no_user", "no_item"):
        if row[name]:
            column = USER_COL if name == "no_user" else ITEM_COL
            raise DataError(f"{column} is missing in {row[name]} rows")
    if row["bad_rating"]:
        raise DataError(f"rating is missing or not a number in {row['bad_rating']} rows")
    n = int(row["n"])
    median = (
        F.percentile(F.abs(err), F.lit(0.5))
        if n <= exact_median_limit
        else F.percentile_approx(F.abs(err), 0.5, MEDIAN_ACCURACY)
    )
    median_row = scored.agg(median.alias("median")).first()
    assert median_row is not None
    mse, var_y, var_err = float(row["mse"]), float(row["var_y"]), float(row["var_err"])
    values = {
        "mean_absolute_error": float(row["mae"]),
        "mean_squared_error": mse,
        "mean_squared_log_error": float(row["msle"]),
        "median_absolute_error": float(median_row["median"]),
        "r2_score": 1.0 - mse / var_y if var_y > 0 else 0.0,
        "explained_variance": 1.0 - var_err / var_y if var_y > 0 else 0.0,
        "rmse": float(np.sqrt(mse)),
    }
    return {key: values[key] for key in REGRESSION_METRICS}


# ---------------------------------------------------------------------- helpers
def _indexed(
    spark: SparkSession, ratings: DataFrame, saved: SavedFactors, *, keep_factors: bool = False
) -> DataFrame:
    """``ratings`` with the model's user and item rows joined (null when unknown): the index
    columns ``u``, ``i``, and with ``keep_factors`` the intercepts and factors too."""
    users = spark.createDataFrame(saved.users)
    items = spark.createDataFrame(saved.items)
    if not keep_factors:
        users, items = users.select(USER_COL, UIDX), items.select(ITEM_COL, IIDX)
    ratings = _align_id(ratings, USER_COL, saved.users.schema.field(USER_COL).type)
    ratings = _align_id(ratings, ITEM_COL, saved.items.schema.field(ITEM_COL).type)
    return ratings.join(users, USER_COL, "left").join(F.broadcast(items), ITEM_COL, "left")


def _align_id(frame: DataFrame, column: str, model_type: pa.DataType) -> DataFrame:
    """Cast the data's id column to the model's id type, so ids that cannot be the model's
    become unknown (null) instead of failing Spark's ANSI casts in the join."""
    data_type = dict(frame.dtypes)[column]
    if pa.types.is_string(model_type) or pa.types.is_large_string(model_type):
        if data_type != "string":
            return frame.withColumn(column, F.col(column).cast("string"))
        return frame
    if data_type == "string":
        return frame.withColumn(column, _try_cast(F.col(column), "bigint"))
    return frame


def _try_cast(column: Column, kind: str) -> Column:
    return column.try_cast(kind)


def _spark_type(arrow_type: pa.DataType) -> T.DataType:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    if pa.types.is_int32(arrow_type) or pa.types.is_int16(arrow_type):
        return T.IntegerType()
    if pa.types.is_integer(arrow_type):
        return T.LongType()
    raise ModelError(f"ids of type {arrow_type} are not supported by the Spark engine")


def write_parquet(frame: DataFrame, out: str) -> int:
    """Write ``frame`` as a Parquet folder at ``out`` (a path or any URI Spark writes) and
    return its row count. Spark writes to a hidden sibling folder, which then replaces
    ``out`` (Hadoop ``FileSystem`` rename): a failed job leaves ``out`` as it was."""
    spark = frame.sparkSession
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    try:
        target = hadoop_path(out)
        fs = target.getFileSystem(conf)
        target = fs.makeQualified(target)
    except Exception as exc:  # bad URI / unknown scheme
        raise HybridrecError(f"cannot write {out}: {first_line(exc)}") from None
    tmp = hadoop_path(target.getParent(), f".{target.getName()}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        try:
            frame.write.mode("errorifexists").parquet(tmp.toString())
        except Exception as exc:  # Spark's write errors: path not writable, bad scheme...
            raise HybridrecError(f"cannot write {out}: {first_line(exc)}") from None
        if fs.exists(target):
            fs.delete(target, True)
        if not fs.rename(tmp, target):
            raise HybridrecError(f"cannot write {out}: renaming {tmp.toString()} failed")
    finally:
        if fs.exists(tmp):
            fs.delete(tmp, True)
    return int(spark.read.parquet(target.toString()).count())
