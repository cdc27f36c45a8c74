"""The Spark engine: the same matrix factorization on Apache Spark, saved in the local format.

This package is the only place that imports PySpark (``pip install 'hybridrec[spark]'``); nothing
else in hybridrec imports it, so the local engine works without Java or Spark. A model trained
here is written in the local artifact format and is served by :class:`hybridrec.MatrixFactorization`
(``hybridrec recommend``, ``hybridrec serve``) without Spark.
"""

from __future__ import annotations

try:
    import pyspark  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Spark engine needs PySpark: pip install 'hybridrec[spark]' (and Java 17 or 21)"
    ) from exc

from hybridrec.spark._batch import evaluate_saved_model, recommend_all, write_parquet
from hybridrec.spark._hybrid import hybrid_dataset
from hybridrec.spark._io import hash_split, ratings_frame, read_ratings
from hybridrec.spark._mf import SparkMatrixFactorization
from hybridrec.spark._regress import SparkHybridRecommender, data_fingerprint
from hybridrec.spark._reuse import reusable_mf
from hybridrec.spark._session import java_available, session_scope, spark_session

__all__ = [
    "SparkHybridRecommender",
    "SparkMatrixFactorization",
    "data_fingerprint",
    "evaluate_saved_model",
    "hash_split",
    "hybrid_dataset",
    "java_available",
    "ratings_frame",
    "read_ratings",
    "recommend_all",
    "reusable_mf",
    "session_scope",
    "spark_session",
    "write_parquet",
]
