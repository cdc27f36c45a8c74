"""Data and models shared by the Spark tests (the session itself is in tests/conftest.py).

Session-scoped: fitting on Spark costs seconds, and the tests only read these (or add models
under new names to ``synth_ws``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _support.spark import BIG_ITEM_OFFSET, SMALL, to_spark
from click.testing import CliRunner

from hybridrec.cli import main
from hybridrec.data import SynthConfig, generate
from hybridrec.mf import MatrixFactorization


@pytest.fixture(scope="session")
def synth() -> pd.DataFrame:
    """200 users x 100 items, known low-rank structure."""
    data = generate(SynthConfig(n_users=200, n_items=100, n_ratings=5000, n_factors=3, seed=5))
    return data.ratings[["userId", "movieId", "rating"]]


@pytest.fixture(scope="session")
def odd_ids(synth) -> pd.DataFrame:
    """The same ratings with string userIds and movieIds beyond int32."""
    return pd.DataFrame(
        {
            "userId": "user-" + synth["userId"].astype(str),
            "movieId": synth["movieId"].astype(np.int64) + BIG_ITEM_OFFSET,
            "rating": synth["rating"],
        }
    )


@pytest.fixture(scope="session")
def odd_model(spark, odd_ids):
    """Fitted on a Spark DataFrame (so the hold-out is the hash split)."""
    from hybridrec.spark import SparkMatrixFactorization

    frame = to_spark(spark, odd_ids)
    return SparkMatrixFactorization(**SMALL, seed=3).fit(frame, spark=spark)


@pytest.fixture(scope="session")
def synth_ws(tmp_path_factory):
    """A workspace on synthetic data with a small local MF named ``mf``."""
    from hybridrec.data import write_synthetic
    from hybridrec.workspace import Workspace

    root = tmp_path_factory.mktemp("hybrid")
    config = SynthConfig(n_users=200, n_items=100, n_ratings=5000, n_factors=3, seed=5)
    write_synthetic(root / "synth", config)
    ws = Workspace(root / "ws")
    ws.load(root / "synth")
    mf = MatrixFactorization(num_factors=4, max_iterations=4).fit(ws.ratings(), items=ws.movies())
    mf.save(ws.models_dir / "mf")
    return ws, mf


@pytest.fixture(scope="session")
def ml100k_models(spark, ml100k_source, tmp_path_factory):
    """MovieLens 100K in a workspace, the Spark MF trained by the CLI, the local default MF."""
    from hybridrec.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ml100k") / "ws")
    ws.load(ml100k_source)
    result = CliRunner().invoke(
        main,
        ["-q", "-w", str(ws.path), "train", "mf", "--name", "spark_mf", "--engine", "spark"],
    )
    assert result.exit_code == 0, result.output
    on_spark = MatrixFactorization.load(ws.models_dir / "spark_mf")
    local = MatrixFactorization().fit(ws.ratings(), items=ws.movies())
    return ws, on_spark, local
