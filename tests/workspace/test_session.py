"""The workspace session: read-only SQL, queries, paths, and readers across reloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _support.data import (
    write_ml1m,
    write_ml20m,
)

from hybridrec import HybridrecError, NotFoundError
from hybridrec.workspace import LoadSummary, Workspace


def _load(tmp_path: Path, writer: Callable[..., Path], **kwargs: str) -> LoadSummary:
    folder = writer(tmp_path / "data", **kwargs)
    return Workspace(tmp_path / "ws").load(folder)


def test_missing_workspace_message(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "none")
    with pytest.raises(NotFoundError) as err:
        ws.ratings()
    assert str(err.value) == (
        f"no workspace at {tmp_path / 'none'}: run `hybridrec load SOURCE` first"
    )
    assert not ws.path.exists()


def test_default_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDREC_WORKSPACE", str(tmp_path / "envws"))
    assert Workspace().path == tmp_path / "envws"
    monkeypatch.delenv("HYBRIDREC_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    ws = Workspace()
    assert ws.path == tmp_path / "hybridrec-workspace"
    assert ws.models_dir == tmp_path / "hybridrec-workspace" / "models"


def test_summary_as_dict(tmp_path: Path) -> None:
    summary = _load(tmp_path, write_ml20m)
    d = summary.as_dict()
    assert set(d) == {
        "source",
        "layout",
        "n_ratings",
        "n_users",
        "n_movies",
        "n_duplicates_dropped",
        "n_tags",
        "seconds",
    }
    assert d["n_ratings"] == 7 and d["seconds"] >= 0
    json.dumps(d)


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO ratings VALUES (9, 9, 1.0, 1)",
        "DELETE FROM ratings",
        "DROP TABLE movies",
        "CREATE TABLE x AS SELECT 1",
        "UPDATE ratings SET rating = 0",
        "COPY ratings TO '/tmp/hybridrec-should-not-exist.csv'",
        "ATTACH ':memory:' AS other",
        "SET threads = 1",
        "SELECT 1; DROP TABLE movies",
    ],
)
def test_sql_is_read_only(workspace: Workspace, query: str) -> None:
    with pytest.raises(HybridrecError) as err:
        workspace.sql(query)
    assert "\n" not in str(err.value)
    assert len(workspace.ratings()) == 7
    assert workspace.tables() == ["movies", "ratings", "tags", "users"]


def test_sql_reads_with_parameters(workspace: Workspace) -> None:
    df = workspace.sql("SELECT count(*) AS n FROM ratings WHERE userId = ?", [1])
    assert df["n"].tolist() == [3]
    table = workspace.sql_arrow("SELECT movieId FROM movies ORDER BY movieId")
    assert table.column("movieId").to_pylist() == [1, 2, 3, 4]


def test_sql_errors_are_one_line(workspace: Workspace) -> None:
    with pytest.raises(HybridrecError) as err:
        workspace.sql("SELEC 1")
    assert str(err.value).startswith("SQL error: Parser Error") and "\n" not in str(err.value)
    with pytest.raises(NotFoundError, match="SQL error: Catalog Error") as err2:
        workspace.sql("SELECT * FROM no_such_table")
    assert "\n" not in str(err2.value)


def test_item_ids_where(workspace: Workspace) -> None:
    ids = workspace.item_ids_where("list_contains(genres, 'Comedy')")
    assert isinstance(ids, np.ndarray)
    assert ids.tolist() == [1, 2]
    assert workspace.item_ids_where("year = 1995 AND len(genres) > 0").tolist() == [1, 3]
    assert workspace.item_ids_where("false").tolist() == []
    with pytest.raises(HybridrecError, match="SQL error"):
        workspace.item_ids_where("no_such_column = 1")
    with pytest.raises(HybridrecError, match="one SQL statement"):
        workspace.item_ids_where("true); DROP TABLE movies; SELECT (1")
    assert len(workspace.movies()) == 4


def test_readers_follow_a_reload_and_threads_share_the_connection(tmp_path: Path) -> None:
    a = Workspace(tmp_path / "ws")
    a.load(write_ml20m(tmp_path / "one"))
    b = Workspace(tmp_path / "ws")
    assert len(b.ratings()) == 7
    a.load(write_ml1m(tmp_path / "two", ratings="1::1::4::1\n"))
    assert len(b.ratings()) == 1 and "tags" not in b.tables()

    def count(_: int) -> int:
        return int(b.sql("SELECT count(*) AS n FROM movies")["n"][0])

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(count, range(40))) == {4}
    b.close()
    assert len(a.movies()) == 4
