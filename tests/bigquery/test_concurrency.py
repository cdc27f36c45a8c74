"""Two processes on one workspace: each statement succeeds or is one 'workspace busy' line."""

from __future__ import annotations

import subprocess
import sys

WRITER = (
    "CREATE OR REPLACE TABLE movielens.counter AS SELECT {i} AS i, count(*) AS n "
    "FROM movielens.ratings, UNNEST(GENERATE_ARRAY(1, 20000))"
)


def _spawn(ws, statement: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridrec.cli",
            "--workspace",
            str(ws.path),
            "--quiet",
            "sql",
            "--dialect",
            "bigquery",
            "--format",
            "csv",
            statement,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_writer_and_reader_at_once(workspace) -> None:
    import hybridrec

    hybridrec.sql(WRITER.format(i=0), workspace)
    workspace.close()
    procs = []
    for i in range(1, 4):
        procs.append(_spawn(workspace, WRITER.format(i=i)))
        procs.append(_spawn(workspace, "SELECT i, n FROM movielens.counter"))
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            continue
        assert proc.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "workspace busy" in lines[0], err
    frame = hybridrec.sql("SELECT i, n FROM movielens.counter", workspace)
    assert len(frame) == 1 and frame["n"].iloc[0] == 7 * 20000
