"""The workspace: one DuckDB file with ``ratings``, ``movies``, ``users`` (and ``tags``), plus a
``models/`` folder. The only package in hybridrec that imports duckdb: the session
(:class:`Workspace`, ``_session``), its SQL macros (``_macros``) and the MovieLens loader
(``_loader``).
"""

from hybridrec.workspace._session import (
    CORE_TABLES,
    DB_FILE,
    DEFAULT_DATASET,
    LoadSummary,
    Workspace,
)

__all__ = ["CORE_TABLES", "DB_FILE", "DEFAULT_DATASET", "LoadSummary", "Workspace"]
