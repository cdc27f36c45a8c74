"""The Spark test session and small helpers shared by the Spark tests and the contract suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

SMALL = {"num_factors": 4, "max_iterations": 4, "bias_iterations": 2, "num_blocks": 2}
BIG_ITEM_OFFSET = 10_000_000_000  # movieIds that do not fit Spark's int


def require_spark() -> None:
    """Skip the calling test module (or fixture), with the reason, without PySpark or Java."""
    pytest.importorskip(
        "pyspark", reason="PySpark is not installed (pip install 'hybridrec[spark]')"
    )
    java_home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (java_home and Path(java_home).is_dir())):
        pytest.skip("Java is not installed: Spark cannot start", allow_module_level=True)


def start_session() -> Any:
    """One small local session (starting a JVM costs seconds, so the suite shares it)."""
    from hybridrec.spark import spark_session

    session = spark_session(
        os.environ.get("HYBRIDREC_TEST_SPARK_MASTER", "local[2]"),
        {
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
        },
        app_name="hybridrec-tests",
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def to_spark(spark: Any, frame: pd.DataFrame) -> Any:
    """Through Arrow: PySpark's pandas path warns about pandas 3."""
    return spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))
