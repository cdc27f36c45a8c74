"""``hybridrec report`` from the CLI, and the polish around it (help examples, 80-column tables)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import pytest
from _support.html_report import SECTIONS, parse, shown
from click.testing import CliRunner

pytest.importorskip("matplotlib")


from _support.cli import run

from hybridrec._core.output import PIPE_TABLE_WIDTH, table_width
from hybridrec.cli import main


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-report")
    ws, source = root / "ws", root / "synth"
    for args in (
        ("synth", "--out", str(source), "--users", "150", "--items", "80", "--ratings", "6000"),
        ("load", str(source)),
        ("train", "mf", "--name", "m", "--num-factors", "4"),
        ("train", "mf", "--name", "m2", "--num-factors", "2"),
    ):
        code, _, err = run(ws, *args)
        assert code == 0, err
    return ws


def test_cli_report_matches_cli_evaluate(workspace, tmp_path):
    out = tmp_path / "report.html"
    code, stdout, stderr = run(workspace, "report", "m", "--compare", "m2", "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip() == str(out) and stderr == ""
    parsed = parse(out)
    assert parsed.errors == [] and set(parsed.sections) >= SECTIONS
    for name in ("m", "m2"):  # same seed, so m2's own hold-out is m's: plain `evaluate`
        code, stdout, _ = run(workspace, "evaluate", name, "--format", "json")
        assert code == 0
        for metric, value in json.loads(stdout).items():
            assert parsed.cells[(name, metric)] == shown(math.nan if value is None else value)


def test_cli_report_without_quiet_prints_no_progress_when_piped(workspace, tmp_path):
    out = tmp_path / "r.html"
    code, stdout, stderr = run(workspace, "report", "m", "--out", str(out), quiet=False)
    assert code == 0
    assert stdout == f"{out}\n"
    assert stderr == f"wrote the report on m to {out}\n"  # a summary line, no progress bar


def test_cli_report_with_a_comparison_file(workspace, tmp_path):
    csv = tmp_path / "compare.csv"
    csv.write_text("scenario,model,rmse,ndcg@10\nwarm,global mean,1.1,\nwarm,MF,0.9,0.1\n")
    out = tmp_path / "r.html"
    code, _, stderr = run(workspace, "report", "m", "--comparison", str(csv), "--out", str(out))
    assert code == 0, stderr
    assert "cold-start" in parse(out).sections


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report", "nope"), "no model named 'nope'"),
        (("report", "m", "--compare", "m"), "named twice"),
        (("report", "m", "--comparison", "missing.csv"), "no such file"),
    ],
)
def test_cli_report_bad_input_exits_2(workspace, tmp_path, args, message):
    code, _, stderr = run(workspace, *args, "--out", str(tmp_path / "r.html"))
    assert code == 2 and message in stderr and stderr.startswith("error: ")
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------------- CLI polish
def test_help_documents_examples_and_exit_codes():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for text in ("Exit codes:", "0    success", "1    internal error", "2    bad input"):
        assert text in result.stdout
    assert "report" in result.stdout

    def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        found = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += commands(command, (*path, name))
            else:
                found.append((*path, name))
        return found

    every = commands(main)
    assert ("report",) in every and ("train", "hybrid") in every
    for command in every:
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Example" in result.stdout, command


def test_tables_fit_80_columns_when_piped(workspace, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert table_width() == PIPE_TABLE_WIDTH == 80
    for args in (("info", "m"), ("sql", "SELECT * FROM movies LIMIT 5"), ("models",)):
        code, stdout, stderr = run(workspace, *args)
        assert code == 0, stderr
        widest = max(len(line) for line in stdout.splitlines())
        assert widest <= 80, (args, widest)
    monkeypatch.setenv("COLUMNS", "300")
    assert table_width() == 100
    monkeypatch.setenv("COLUMNS", "40")
    assert table_width() == 80  # a pipe never gets a table narrower than 80
