"""The reference notebook's ``hybrid_dataset``, built by Spark SQL.

The same table as :func:`hybridrec.hybrid.hybrid_dataset_sql` builds in DuckDB: the ratings
joined with the MF's user factors (``u1..uK``) and product factors (``p1..pK``), the user's
attributes and the movie's genres — ``multi-hot`` (a 0/1 ``genre_<name>`` column per genre, one
row per rating) or ``rows`` (``explode``: one row per rating and genre, as the notebook).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec import artifacts
from hybridrec._errors import DataError, ModelError

__all__ = ["hybrid_dataset"]

ENCODINGS = ("multi-hot", "rows")


def hybrid_dataset(
    spark: SparkSession,
    model: str | Path,
    ratings: DataFrame,
    movies: DataFrame,
    users: DataFrame | None = None,
    *,
    encoding: str = "multi-hot",
    genres: Sequence[str] | None = None,
    seed: int = 42,
) -> DataFrame:
    """The hybrid dataset of the MF model saved at ``model`` (a local path or any URI Spark
    reads; the model may come from either engine), as a lazy Spark DataFrame.

    ``ratings`` (``userId``, ``movieId``, ``rating``), ``movies`` (``movieId``, ``title``,
    ``genres`` as an array or ``|``-joined text, optional ``year``) and ``users`` (``userId``
    and attribute columns) are Spark DataFrames. Without user attributes the notebook's
    synthetic ``loyalty`` (a seeded hash of the id, in [0, 1), times the user's rating count) and
    ``postcode`` (first two characters of the id) are computed; the hash is Spark's
    ``xxhash64``, so ``loyalty`` differs from the DuckDB build's (same distribution).
    ``genres`` fixes the multi-hot columns (default: every genre in ``movies``, sorted).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    for name, frame, needed in (
        ("ratings", ratings, ("userId", "movieId", "rating")),
        ("movies", movies, ("movieId", "title", "genres")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"{name} need columns {', '.join(needed)}; missing {missing[0]}")
    root = str(model).rstrip("/")
    user_weights = _model_table(spark, root, "users")
    item_weights = _model_table(spark, root, "items")
    k = _num_factors(root, user_weights)

    if dict(movies.dtypes)["genres"] == "string":
        movies = movies.withColumn(
            "genres",
            F.when(F.col("genres") == "", F.array().cast("array<string>")).otherwise(
                F.split("genres", r"\|")
            ),
        )
    if "year" not in movies.columns:
        movies = movies.withColumn("year", F.lit(None).cast("int"))
    user_columns = [c for c in (users.columns if users is not None else []) if c != "userId"]
    if encoding == "multi-hot" and genres is None:
        rows = movies.select(F.explode("genres").alias("g")).distinct().orderBy("g").collect()
        genres = [str(r["g"]) for r in rows]

    token = uuid.uuid4().hex[:8]
    views = {name: f"hybridrec_{name}_{token}" for name in ("r", "m", "u", "uw", "iw")}
    ratings.createOrReplaceTempView(views["r"])
    movies.createOrReplaceTempView(views["m"])
    user_weights.createOrReplaceTempView(views["uw"])
    item_weights.createOrReplaceTempView(views["iw"])
    if user_columns:
        assert users is not None
        users.createOrReplaceTempView(views["u"])
        users_cte = f"SELECT userId, {', '.join(map(_q, user_columns))} FROM {views['u']}"
        user_select = ", ".join(f"u.{_q(c)}" for c in user_columns)
    else:
        users_cte = (
            "SELECT userId, "
            f"pmod(xxhash64(userId, {int(seed)}), 1000000) / 1000000D * COUNT(rating) AS loyalty, "
            "substring(CAST(userId AS STRING), 1, 2) AS postcode "
            f"FROM {views['r']} GROUP BY userId"
        )
        user_select = "u.loyalty, u.postcode"
    if encoding == "rows":
        genre_select = "p.g"
        movie_rows = f"SELECT m.*, g FROM {views['m']} m LATERAL VIEW explode(m.genres) e AS g"
    else:
        genre_select = ", ".join(
            f"CAST(array_contains(p.genres, {_lit(g)}) AS TINYINT) AS {_q('genre_' + g)}"
            for g in genres or []
        )
        movie_rows = f"SELECT m.* FROM {views['m']} m"
    # Factor columns by position, generated for any K: no UDF per width as in the notebook.
    u_cols = ", ".join(f"CAST(u.uf[{j}] AS DOUBLE) AS u{j + 1}" for j in range(k))
    p_cols = ", ".join(f"CAST(p.pf[{j}] AS DOUBLE) AS p{j + 1}" for j in range(k))
    selected = ", ".join(
        part
        for part in (
            "r.userId, r.movieId, p.title, p.year",
            genre_select,
            user_select,
            u_cols,
            p_cols,
            "r.rating",
        )
        if part
    )
    query = f"""
WITH userFeatures AS (
    SELECT u.*, w.factors AS uf FROM ({users_cte}) u
    JOIN {views["uw"]} w ON w.userId = u.userId
),
productFeatures AS (
    SELECT p.*, w.factors AS pf FROM ({movie_rows}) p
    JOIN {views["iw"]} w ON w.movieId = p.movieId
)
SELECT {selected}
FROM {views["r"]} r
JOIN userFeatures u ON u.userId = r.userId
JOIN productFeatures p ON p.movieId = r.movieId
"""
    try:
        return spark.sql(query)
    finally:
        # The returned DataFrame holds its analysed plan; the names are no longer needed.
        for view in views.values():
            spark.catalog.dropTempView(view)


def _model_table(spark: SparkSession, root: str, name: str) -> DataFrame:
    """A model table: a local one is read on the driver and shipped to Spark (so executors
    on a cluster need not see the driver's disk); a URI is read by Spark itself."""
    if "://" in root and not root.startswith("file://"):
        return spark.read.parquet(f"{root}/{name}.parquet")
    path = Path(root.removeprefix("file://")) / f"{name}.parquet"
    if not path.is_file():
        raise ModelError(f"{root} is not a saved model ({path.name} is missing)")
    table = pq.read_table(path)
    field = table.schema.field("factors")
    if pa.types.is_fixed_size_list(field.type):
        at = table.schema.get_field_index("factors")
        as_list = table.column("factors").cast(pa.list_(field.type.value_type))
        table = table.set_column(at, "factors", as_list)
    return spark.createDataFrame(table)


def _num_factors(root: str, user_weights: DataFrame) -> int:
    if "://" not in root or root.startswith("file://"):
        meta = artifacts.read_meta(root.removeprefix("file://"))
        if meta.get("kind") != "matrix_factorization":
            raise ModelError(f"{root} is a {meta.get('kind')!r}, not a matrix factorization")
        return int(meta["params"]["num_factors"])
    row = user_weights.select(F.size("factors").alias("k")).first()
    if row is None:
        raise ModelError(f"{root}: the model has no users")
    return int(row["k"])


def _lit(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
