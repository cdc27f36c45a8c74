"""The workspace's ML.WEIGHTS macro and derived tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybridrec import HybridrecError, NotFoundError
from hybridrec.workspace import Workspace


def _write_model(models: Path, name: str, *, fixed: bool = False) -> None:
    folder = models / name
    folder.mkdir(parents=True)
    # the MF model writes fixed-size lists (DuckDB ARRAY); plain lists must work too
    factors = pa.list_(pa.float32(), 2) if fixed else pa.list_(pa.float32())
    pq.write_table(
        pa.table(
            {
                "userId": pa.array([1, 2], pa.int64()),
                "intercept": pa.array([0.25, -0.5]),
                "factors": pa.array([[1.0, 2.0], [3.0, 4.0]], factors),
            }
        ),
        folder / "users.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "movieId": pa.array([10], pa.int64()),
                "intercept": pa.array([0.125]),
                "factors": pa.array([[0.5, -1.5]], factors),
                "n_ratings": pa.array([7]),
            }
        ),
        folder / "items.parquet",
    )
    (folder / "meta.json").write_text(json.dumps({"format_version": 1, "global_mean": 3.5}))


@pytest.mark.parametrize("fixed", [False, True])
def test_ml_weights_shape(workspace: Workspace, fixed: bool) -> None:
    _write_model(workspace.models_dir, "tiny", fixed=fixed)
    df = workspace.sql("SELECT * FROM ml_weights('tiny')")
    assert list(df.columns) == ["processed_input", "feature", "factor_weights", "intercept"]
    types = workspace.sql("DESCRIBE SELECT * FROM ml_weights('tiny')")
    assert types["column_type"].tolist() == [
        "VARCHAR",
        "VARCHAR",
        "STRUCT(factor INTEGER, weight DOUBLE)[]",
        "DOUBLE",
    ]
    assert df["feature"].isna().tolist() == [False, False, False, True]
    rows = {
        (r.processed_input, r.feature if r.processed_input[0] != "g" else None): r
        for r in df.itertuples(index=False)
    }
    assert set(rows) == {
        ("userId", "1"),
        ("userId", "2"),
        ("movieId", "10"),
        ("global__intercept__", None),
    }
    assert list(rows[("userId", "2")].factor_weights) == [
        {"factor": 1, "weight": 3.0},
        {"factor": 2, "weight": 4.0},
    ]
    assert rows[("movieId", "10")].intercept == 0.125
    glob = rows[("global__intercept__", None)]
    assert glob.intercept == 3.5 and len(glob.factor_weights) == 0
    # BigQuery-style use: unnest the factors of one item
    w = workspace.sql(
        "SELECT fw.factor, fw.weight FROM ml_weights('tiny'), UNNEST(factor_weights) AS t(fw) "
        "WHERE processed_input = 'movieId' ORDER BY fw.factor"
    )
    assert w.values.tolist() == [[1, 0.5], [2, -1.5]]


def test_ml_weights_unknown_model(workspace: Workspace) -> None:
    with pytest.raises(NotFoundError) as err:
        workspace.sql("SELECT * FROM ml_weights('nope')")
    assert str(err.value) == f"no model 'nope' in {workspace.models_dir}"


def test_derived_tables(workspace: Workspace) -> None:
    n = workspace.create_table(
        "per_user", "SELECT userId, avg(rating) AS mean FROM ratings GROUP BY 1"
    )
    assert n == 3
    assert workspace.write_table("extra", pd.DataFrame({"a": [1, 2]})) == 2
    assert {"per_user", "extra"} <= set(workspace.tables())
    assert workspace.sql("SELECT sum(a) AS s FROM extra")["s"][0] == 3
    workspace.drop_table("extra")
    assert "extra" not in workspace.tables()
    for bad in ("ratings", "bad name", "x; DROP"):
        with pytest.raises(HybridrecError):
            workspace.create_table(bad, "SELECT 1")
    with pytest.raises(HybridrecError, match="read-only"):
        workspace.create_table("t", "DELETE FROM ratings")
