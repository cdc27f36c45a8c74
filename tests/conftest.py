"""Fixtures shared across the test folders; helpers live in the ``_support`` package.

pytest imports test modules with ``--import-mode=importlib`` (pyproject), so two folders may
hold files of the same name and no test module can import another; ``tests/`` is on
``sys.path`` for ``_support`` only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _support.cli import run
from _support.data import write_ml20m

from hybridrec.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A workspace loaded from the tiny ml-20m fixture (4 movies, 3 users, 7 ratings)."""
    ws = Workspace(tmp_path / "ws")
    ws.load(write_ml20m(tmp_path / "ml-20m"))
    return ws


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace (path) with synthetic data and one trained model named ``m``, built by the
    CLI; per module, since the modules that use it add models of their own."""
    root = tmp_path_factory.mktemp("cli")
    ws = root / "ws"
    data = root / "synth"
    code, out, err = run(
        ws, "synth", "--out", str(data), "--users", "150", "--items", "80", "--ratings", "6000"
    )
    assert code == 0, err
    code, out, err = run(ws, "load", str(data), "--format", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_ratings"] == 6000
    code, out, err = run(ws, "train", "mf", "--name", "m", "--num-factors", "4", "--format", "json")
    assert code == 0, err
    log = json.loads(out)
    assert log[0]["iteration"] == 0 and {"loss", "eval_loss", "duration_ms"} <= set(log[0])
    return ws


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole run; skips, with the reason, without PySpark/Java."""
    from _support.spark import require_spark, start_session

    require_spark()
    session = start_session()
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ml100k_source() -> Path:
    """The real MovieLens 100K (zip or RecBole wheel), from the user's cache or fetched once.

    Only for tests marked ``realdata``.
    """
    from hybridrec.data import resolve_source

    return resolve_source("ml-100k")
