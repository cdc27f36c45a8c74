"""Shared fixtures. Layout writers live in ``tests/_fixtures.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures import write_ml20m

from hybridrec.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A workspace loaded from the tiny ml-20m fixture (4 movies, 3 users, 7 ratings)."""
    ws = Workspace(tmp_path / "ws")
    ws.load(write_ml20m(tmp_path / "ml-20m"))
    return ws


@pytest.fixture(scope="session")
def ml100k_source() -> Path:
    """The real MovieLens 100K (zip or RecBole wheel), from the user's cache or fetched once.

    Only for tests marked ``realdata``.
    """
    from hybridrec.data import resolve_source

    return resolve_source("ml-100k")
