"""Running the CLI in tests, and what a bad-input answer must look like."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hybridrec.cli import main


def run(ws: Path, *args: str, quiet: bool = True) -> tuple[int, str, str]:
    """``hybridrec --workspace WS [--quiet] ARGS``: exit code, stdout, stderr."""
    flags = ["--workspace", str(ws), *(["--quiet"] if quiet else [])]
    result = CliRunner().invoke(main, [*flags, *args])
    return result.exit_code, result.stdout, result.stderr


def error_line(code: int, err: str, *fragments: str) -> str:
    """The single ``error: …`` line of a refused command (exit code 2, no traceback, not an
    internal error), after checking it holds every one of ``fragments``."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]
