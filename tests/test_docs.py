"""The documents stay true: every command of the README's tour and of docs/tutorial.md runs on
real MovieLens 100K (``scripts/check_docs.py --run-only``). The outputs they show are checked
by running the script without ``--run-only``: they are exact for the pinned-down dependency
versions they were made with, and a newer LightGBM or PyTorch may move a 4th decimal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

for extra in ("lightgbm", "matplotlib", "torch", "fastapi", "uvicorn"):
    pytest.importorskip(extra)  # the tutorial's install line: hybridrec[demo,hybrid,serve]

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_docs.py"


def test_every_documented_command_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--run-only", "--keep", str(tmp_path / "tutorial")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = done.stdout.splitlines()[-1]
    assert "failed" not in summary and " ok" in summary, summary
