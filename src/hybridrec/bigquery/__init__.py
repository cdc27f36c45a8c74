"""BigQuery ML's SQL on a workspace: the SQL face of hybridrec (docs/bigquery-sql.md).

``sql(query)`` runs a script of BigQuery statements (``;``-separated) on the workspace:
plain SQL is translated by sqlglot and run by DuckDB, ``CREATE MODEL`` trains hybridrec's
estimators, and ``ML.*`` table functions answer from saved models. The only package of
hybridrec that imports sqlglot; the Jupyter magic (:mod:`hybridrec.bigquery.magic`) is the only
module that imports IPython.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hybridrec._errors import HybridrecError, NotFoundError

__all__ = ["DIALECTS", "Session", "SqlError", "sql", "sql_text"]

DIALECTS = ("bigquery", "duckdb")


def sql(
    query: str,
    workspace: Any = None,
    dialect: str = "bigquery",
    *,
    params: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``query`` on ``workspace`` (a :class:`~hybridrec.Workspace`, a folder, or None for
    ``$HYBRIDREC_WORKSPACE`` / ``./hybridrec-workspace``); return the last statement's rows
    (an empty DataFrame when it returns none).

    ``dialect="bigquery"`` takes BigQuery scripts, writes included; ``"duckdb"`` is the
    workspace's read-only DuckDB SQL (:meth:`Workspace.sql`). ``params`` fill ``@name``
    query parameters."""
    from hybridrec.workspace import Workspace

    ws = (
        workspace
        if isinstance(workspace, Workspace)
        else Workspace(None if workspace is None else Path(workspace))
    )
    if dialect == "duckdb":
        if params:
            raise HybridrecError("params apply to dialect='bigquery' only")
        frame: pd.DataFrame = ws.sql(query)
        return frame
    if dialect != "bigquery":
        raise HybridrecError(f"unknown SQL dialect {dialect!r}: use one of {', '.join(DIALECTS)}")
    if not ws.exists():
        raise NotFoundError(f"no workspace at {ws.path}: run `hybridrec load SOURCE` first")
    result = _session_class()(ws, params=params).run(query)
    return result if result is not None else pd.DataFrame()


def sql_text(query: str | None, script: str | Path | None) -> str:
    """The SQL of the command line: the QUERY argument or the ``--file`` script (not both)."""
    if (query is None) == (script is None):
        raise HybridrecError("give the SQL as an argument or with --file, not both or neither")
    if script is None:
        return str(query)
    try:
        return Path(script).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HybridrecError(
            f"cannot read {script}: {getattr(exc, 'strerror', None) or exc}"
        ) from None


def _session_class() -> Any:
    try:
        from hybridrec.bigquery._session import Session
    except ImportError as exc:
        if "sqlglot" not in str(exc):
            raise
        raise HybridrecError("BigQuery SQL needs sqlglot: pip install 'hybridrec[sql]'") from None
    return Session


def __getattr__(name: str) -> Any:
    if name == "Session":
        return _session_class()
    if name == "SqlError":
        from hybridrec.bigquery._script import SqlError

        return SqlError
    raise AttributeError(f"module 'hybridrec.bigquery' has no attribute {name!r}")
