"""hybridrec: hybrid recommendation on rating data, on one laptop or on Spark.

The public classes are imported on first use, so ``import hybridrec`` stays light (DuckDB,
Numba and the regressors' libraries load only when needed).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from hybridrec._errors import DataError, HybridrecError, ModelError, NotFoundError

if TYPE_CHECKING:
    from hybridrec.hybrid import HybridRecommender
    from hybridrec.mf import MatrixFactorization
    from hybridrec.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "HybridRecommender",
    "HybridrecError",
    "MatrixFactorization",
    "ModelError",
    "NotFoundError",
    "Workspace",
    "__version__",
    "load_ipython_extension",
    "sql",
]

_LAZY = {
    "HybridRecommender": "hybridrec.hybrid",
    "MatrixFactorization": "hybridrec.mf",
    "Workspace": "hybridrec.workspace",
}


def sql(query: str, workspace: Any = None, dialect: str = "bigquery", **kwargs: Any) -> Any:
    """Run BigQuery (or DuckDB) SQL on a workspace: see :func:`hybridrec.bigquery.sql`."""
    return import_module("hybridrec.bigquery").sql(query, workspace, dialect, **kwargs)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hybridrec``: the ``%%bigquery`` cell magic (hybridrec.bigquery.magic)."""
    import_module("hybridrec.bigquery.magic").load_ipython_extension(ipython)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hybridrec' has no attribute {name!r}")
