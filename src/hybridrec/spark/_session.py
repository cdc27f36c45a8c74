"""Starting a SparkSession and giving it a checkpoint directory."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from hybridrec._errors import HybridrecError, first_line

__all__ = ["ensure_checkpoint_dir", "java_available", "session_scope", "spark_session"]

log = logging.getLogger(__name__)

#: Applied unless the caller's ``conf`` sets them: Arrow for driver <-> JVM transfers, and no
#: console progress bars (hybridrec has its own logging).
DEFAULT_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


def _under_spark_submit() -> bool:
    """Whether spark-submit (or pyspark's shell) started this process: it then owns the JVM and
    passes ``--master`` and ``--conf`` through it."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def java_available() -> bool:
    """Whether a ``java`` executable can be found (``$JAVA_HOME/bin/java`` or on ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return True
    return shutil.which("java") is not None


def spark_session(
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    *,
    app_name: str = "hybridrec",
) -> SparkSession:
    """Get or create a SparkSession on ``master`` with ``conf`` (``spark.*`` key/values).

    ``master`` is anything ``spark-submit --master`` takes: ``local[*]``, ``spark://host:7077``,
    ``yarn``, ``k8s://https://host:443``. ``None`` means the master ``spark-submit`` was given
    when running under it, else ``local[*]``. When a session already exists (e.g. in a notebook)
    it is returned as it is, with SQL options from ``conf`` applied; settings fixed at JVM start
    (master, memory) then come from that session.
    """
    if not java_available() and not _under_spark_submit():
        raise HybridrecError(
            "the Spark engine needs Java 17 or 21: install it or set JAVA_HOME "
            "(or use --engine local)"
        )
    builder = SparkSession.builder.appName(app_name)
    if master is None and not _under_spark_submit():
        master = "local[*]"
    if master is not None:
        builder = builder.master(master)
    for key, value in {**DEFAULT_CONF, **dict(conf or {})}.items():
        builder = builder.config(key, str(value))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j/JVM start-up errors have no common base class
        first = first_line(exc)
        raise HybridrecError(
            f"could not start Spark on {master or 'spark-submit'}: {first}"
        ) from exc
    log.info("Spark %s on %s", spark.version, spark.sparkContext.master)
    return spark


@contextmanager
def session_scope(
    master: str | None = None, conf: Mapping[str, str] | None = None, *, quiet_logs: bool = True
) -> Iterator[SparkSession]:
    """A session for one command: an already active session is reused and left running;
    one started here is stopped at the end. ``quiet_logs`` keeps Spark's own log at ERROR."""
    existing = SparkSession.getActiveSession()
    spark = existing or spark_session(master, conf)
    if existing is not None and master and master != existing.sparkContext.master:
        log.warning(
            "a Spark session on %s is already running: using it instead of %s",
            existing.sparkContext.master,
            master,
        )
    if quiet_logs and existing is None:
        spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        if existing is None:
            spark.stop()


_TEMP_CHECKPOINT_DIRS: dict[str, str] = {}


def ensure_checkpoint_dir(spark: SparkSession, checkpoint_dir: str | None) -> str | None:
    """Make sure ALS can checkpoint (its lineage otherwise grows each iteration until the
    stack overflows); returns the directory in use, or ``None`` when there is none.

    An explicit ``checkpoint_dir`` wins; then one already set on the context (e.g. by the
    ``spark.checkpoint.dir`` option); on a ``local`` master a temporary directory removed at
    exit. A cluster needs a directory every executor can reach (HDFS, S3, a shared mount), which
    hybridrec cannot invent: without one, checkpointing is off and a warning says so.
    """
    sc = spark.sparkContext
    if checkpoint_dir:
        sc.setCheckpointDir(checkpoint_dir)
        return checkpoint_dir
    current = sc.getCheckpointDir()
    if current:
        return str(current)
    if str(sc.master).startswith("local"):
        app = sc.applicationId
        if app not in _TEMP_CHECKPOINT_DIRS:
            tmp = tempfile.mkdtemp(prefix="hybridrec-spark-checkpoints-")
            atexit.register(shutil.rmtree, tmp, True)
            _TEMP_CHECKPOINT_DIRS[app] = tmp
        sc.setCheckpointDir(_TEMP_CHECKPOINT_DIRS[app])
        return sc.getCheckpointDir()
    log.warning(
        "no Spark checkpoint directory: ALS runs without checkpoints, which can overflow the "
        "stack after many iterations; set checkpoint_dir (--spark-conf "
        "spark.checkpoint.dir=hdfs://...) to a directory all executors can reach"
    )
    return None
