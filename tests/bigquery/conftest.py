"""Workspaces for the BigQuery SQL tests: real MovieLens 100K with the notebook's model."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.notebook import NOTEBOOK, SETUP

import hybridrec
from hybridrec.workspace import Workspace


@pytest.fixture(scope="session")
def ml100k_ws(tmp_path_factory: pytest.TempPathFactory, ml100k_source: Path) -> Workspace:
    """MovieLens 100K loaded as dataset ``movielens``, with ``recommender_16`` trained by SQL."""
    ws = Workspace(tmp_path_factory.mktemp("bq") / "ws")
    ws.load(ml100k_source)
    hybridrec.sql(SETUP, ws)
    return ws


@pytest.fixture
def notebook_cells() -> list[tuple[str, str]]:
    if not NOTEBOOK.is_file():
        pytest.skip(f"the reference notebook is not at {NOTEBOOK} (set HYBRIDREC_REFERENCE_DIR)")
    from _support.notebook import notebook_cells as cells

    return cells()
