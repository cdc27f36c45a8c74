"""Ratings into Spark: Parquet / CSV paths (any URI Spark reads), MovieLens and RecBole layouts,
pandas frames, and the seeded hold-out split."""

from __future__ import annotations

import atexit
import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._errors import DataError, first_line
from hybridrec.data import ARCHIVE_SUFFIXES, TextFile, open_layout

__all__ = ["hash_split", "ratings_frame", "read_ratings"]

log = logging.getLogger(__name__)

EVAL_COL = "is_eval"
ROW_COL = "row_number"

_SPARK_TYPES: dict[str, T.DataType] = {
    "BIGINT": T.LongType(),
    "INTEGER": T.IntegerType(),
    "FLOAT": T.FloatType(),
    "DOUBLE": T.DoubleType(),
    "VARCHAR": T.StringType(),
}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")

# Archives are extracted once and kept until the process exits: Spark reads lazily, so the
# files must outlive the call that found them.
_EXTRACTED = contextlib.ExitStack()
atexit.register(_EXTRACTED.close)


def read_ratings(spark: SparkSession, source: str | Path) -> DataFrame:
    """Ratings (``userId``, ``movieId``, ``rating`` and any other columns) as a Spark DataFrame.

    ``source`` is a Parquet file or folder, or a CSV file with a header row (``ratings.csv``),
    as a local path or any URI Spark understands (``hdfs://``, ``s3a://``, ``gs://``, ...). A
    local folder or ``.zip`` / ``.whl`` holding a MovieLens or RecBole layout (``u.data``,
    ``ratings.dat``, ``ratings.csv``, ``*.inter``) is read with that layout's delimiter, columns
    and names; archives are extracted to a temporary folder kept until the process exits, so
    they suit ``local`` masters only.
    """
    text = str(source)
    lower = text.lower()
    local = Path(text) if "://" not in text else None
    if lower.endswith(_PARQUET_SUFFIXES):
        frame = _read_parquet(spark, text)
    elif lower.endswith(_CSV_SUFFIXES):
        sep = "\t" if ".tsv" in lower else ","
        frame = spark.read.csv(text, header=True, inferSchema=True, sep=sep)
    elif local is not None and (local.suffix.lower() in ARCHIVE_SUFFIXES or _is_layout(local)):
        frame = _read_layout(spark, local)
    else:
        frame = _read_parquet(spark, text)
    return _check_columns(frame, text)


def _read_parquet(spark: SparkSession, path: str) -> DataFrame:
    try:
        return spark.read.parquet(path)
    except Exception as exc:  # AnalysisException: path missing, not Parquet, ...
        first = first_line(exc)
        raise DataError(f"{path}: cannot read ratings: {first}") from None


def _is_layout(path: Path) -> bool:
    """A local folder without Parquet files: treated as a MovieLens / RecBole layout."""
    return path.is_dir() and not any(path.rglob("*.parquet"))


def _read_layout(spark: SparkSession, path: Path) -> DataFrame:
    if path.is_dir():
        with open_layout(path) as plan:
            pass  # a folder's plan points at the files themselves; nothing to keep open
    else:
        plan = _EXTRACTED.enter_context(open_layout(path))
    log.info("%s: %s layout, ratings from %s", path, plan.layout, plan.ratings.display)
    frame = _read_text(spark, plan.ratings)
    if plan.id_type == "auto":
        frame = _typed_ids(frame)
    return frame


def _read_text(spark: SparkSession, f: TextFile) -> DataFrame:
    schema = T.StructType(
        [T.StructField(name, _SPARK_TYPES.get(kind, T.StringType())) for name, kind in f.columns]
    )
    return spark.read.csv(
        str(f.path),
        schema=schema,
        sep=f.delimiter,
        header=f.header_lines > 0,
        encoding=f.encoding,
        quote=f.quote,  # "" turns quoting off, as the ::, tab and | files need
        mode="FAILFAST",
    )


def _typed_ids(frame: DataFrame) -> DataFrame:
    """RecBole ids are tokens: integers when every one of them parses as one (as the workspace
    decides), strings otherwise."""
    checks = [
        F.sum(F.when(F.col(c).cast("bigint").isNull(), 1).otherwise(0)).alias(c)
        for c in (USER_COL, ITEM_COL)
    ]
    row = frame.agg(*checks).first()
    for c in (USER_COL, ITEM_COL):
        if row is not None and not row[c]:
            frame = frame.withColumn(c, F.col(c).cast("bigint"))
    return frame


def _check_columns(frame: DataFrame, where: str) -> DataFrame:
    missing = [c for c in (USER_COL, ITEM_COL, RATING_COL) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: ratings need columns userId, movieId, rating; missing {', '.join(missing)} "
            f"(columns found: {', '.join(frame.columns)})"
        )
    return frame


def hash_split(seed: int, eval_fraction: float) -> Column:
    """A seeded hold-out flag that depends only on the (userId, movieId) pair and the seed.

    Unlike the local model's row-order split it does not need the rows in a known order, so it
    gives the same answer however the data is partitioned or whichever cluster reads it.
    """
    h = F.xxhash64(F.col(USER_COL), F.col(ITEM_COL), F.lit(int(seed)))
    uniform = h.bitwiseAND(F.lit((1 << 53) - 1)).cast("double") / float(1 << 53)
    return uniform < F.lit(float(eval_fraction))


def ratings_frame(
    spark: SparkSession, ratings: pd.DataFrame, *, eval_fraction: float, seed: int
) -> tuple[DataFrame, str]:
    """A pandas ratings frame as a Spark DataFrame with the local model's exact hold-out.

    Returns the frame (``userId``, ``movieId``, ``rating``, ``is_eval``, ``row_number``) and the
    data fingerprint the local model would compute, so a Spark-trained model is recognised as
    trained on the same data (``hybridrec train hybrid`` then reuses it).
    """
    from hybridrec.data import fingerprint, holdout_mask, ratings_arrays

    users, items, values = ratings_arrays(ratings)
    # The local model's split: the first draw of default_rng(seed), one per row, in row order.
    held_out = holdout_mask(values.shape[0], eval_fraction, seed)
    table = pa.table(
        {
            USER_COL: _id_array(users),
            ITEM_COL: _id_array(items),
            RATING_COL: pa.array(values, pa.float32()),
            EVAL_COL: pa.array(held_out),
            ROW_COL: pa.array(np.arange(values.shape[0], dtype=np.int64)),
        }
    )
    return spark.createDataFrame(table), fingerprint(users, items, values)


def _id_array(ids: np.ndarray) -> pa.Array:
    if ids.dtype.kind in "iu":
        return pa.array(ids.astype(np.int64))
    if ids.dtype.kind == "O" and all(isinstance(x, (int, np.integer)) for x in ids[:1000]):
        try:
            return pa.array(ids.astype(np.int64))
        except (TypeError, ValueError, OverflowError):
            pass
    return pa.array([str(x) for x in ids], pa.string())


def collect_ids(frame: DataFrame, column: str) -> np.ndarray:
    """The distinct values of ``column``, collected through Arrow (ints or strings)."""
    table = frame.select(column).distinct().toArrow()
    values: Any = table.column(0).to_numpy(zero_copy_only=False)
    return np.asarray(values)
