"""The HTML report (``hybridrec report``) and the CLI polish around it.

The report must be valid, self-contained HTML whose images are real PNGs and whose numbers are
those of ``model.evaluate()`` (what ``hybridrec evaluate`` prints), written atomically.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from html.parser import HTMLParser
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from _cli import run

from hybridrec._core.output import PIPE_TABLE_WIDTH, table_width
from hybridrec._errors import HybridrecError
from hybridrec.cli import main
from hybridrec.data import SynthConfig, generate
from hybridrec.hybrid import HybridRecommender
from hybridrec.mf import MatrixFactorization
from hybridrec.report import BASELINE, write_report

SECTIONS = {"dataset", "evaluation", "training", "calibration", "activity", "item-map"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- parsing the report
class _Report(HTMLParser):
    """Checks that every element is closed in order; collects sections, images and metrics."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.doctype = False
        self._cell: tuple[str, str] | None = None
        self._text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(attr.get("id", ""))
        if tag == "img":
            self.images.append(attr)
        if tag == "td" and "data-metric" in attr:
            self._cell = (attr["data-model"], attr["data-metric"])
            self._text = []
        self._in_title = tag == "title"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "td" and self._cell is not None:
            self.cells[self._cell] = "".join(self._text).strip()
            self._cell = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)
        if self._in_title:
            self.title += data


def parse(path: Path) -> _Report:
    parser = _Report()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def shown(value: float) -> str:
    """A metric as the report and ``hybridrec evaluate`` print it."""
    return "—" if value is None or math.isnan(value) else f"{value:.4f}"


def png_size(uri: str) -> tuple[int, int, int]:
    """(bytes, width, height) of a ``data:image/png;base64`` URI; asserts it is a PNG."""
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    data = base64.b64decode(uri[len(prefix) :], validate=True)
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND"
    return len(data), width, height


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    synthetic = generate(SynthConfig(n_users=200, n_items=100, n_ratings=8000))
    movies = synthetic.movies.assign(genres=synthetic.movies["genres"].str.split("|"))
    return synthetic.ratings, movies


@pytest.fixture(scope="module")
def models(data) -> dict[str, object]:
    ratings, movies = data
    mf = MatrixFactorization(num_factors=4).fit(ratings, items=movies)
    hybrid = HybridRecommender("linear", mf_params=mf.get_params(), n_folds=2)
    hybrid.fit(ratings, None, movies, mf=mf)
    return {"mf": mf, "hyb": hybrid}


@pytest.fixture(scope="module")
def written(models, data, tmp_path_factory) -> tuple[Path, _Report]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert write_report(models, path, ratings=data[0], title="tiny <report>") == path
    return path, parse(path)


# ---------------------------------------------------------------------- the HTML
def test_report_is_valid_self_contained_html(written):
    path, parsed = written
    assert parsed.doctype
    assert parsed.errors == [] and parsed.stack == []
    assert parsed.title == "tiny <report>"  # escaped in the file, intact once parsed
    assert set(parsed.sections) == SECTIONS | {"importance"}
    text = path.read_text(encoding="utf-8")
    for external in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert external not in text, external


def test_every_image_is_a_real_png(written):
    _, parsed = written
    # dataset, evaluation, training, calibration, activity, item map, one importance chart
    assert len(parsed.images) == 7
    for image in parsed.images:
        size, width, height = png_size(image["src"])
        assert size > 2048 and width >= 400 and height >= 150, image.get("alt")
        assert image.get("alt")


def test_numbers_are_those_of_evaluate(written, models):
    _, parsed = written
    mf, hybrid = models["mf"], models["hyb"]
    for name, model in (("mf", mf), ("hyb", hybrid)):
        expected = model.evaluate(k=10)
        assert {"rmse", "ndcg@10", "r2_score"} <= set(expected)
        for metric, value in expected.items():
            assert parsed.cells[(name, metric)] == shown(value), (name, metric)
    # the baseline: the training mean, scored on the same hold-out
    held = mf.eval_set_["rating"].to_numpy(np.float64)
    rmse = float(np.sqrt(np.mean((held - mf.global_mean_) ** 2)))
    assert parsed.cells[(BASELINE, "rmse")] == shown(rmse)
    assert parsed.cells[(BASELINE, "ndcg@10")] == "—"


def test_compare_adds_a_model_on_the_first_models_hold_out(models, data, tmp_path):
    ratings, movies = data
    mf = models["mf"]
    other = MatrixFactorization(num_factors=2, seed=7).fit(ratings, items=movies)
    path = write_report({"mf": mf, "other": other}, tmp_path / "r.html")
    parsed = parse(path)
    assert {m for m, _ in parsed.cells} == {"mf", "other", BASELINE}
    assert "importance" in parsed.sections  # a note that there is no hybrid, no chart
    assert len(parsed.images) == 6
    on_first = other.evaluate(mf.eval_set_, k=10)
    for metric, value in on_first.items():
        assert parsed.cells[("other", metric)] == shown(value)
    text = path.read_text(encoding="utf-8")
    assert "trained on a different split" in text  # its numbers are flagged as optimistic
    assert "dataset" in parsed.sections  # summary from the model alone (no ratings given)


def test_comparison_table_adds_a_cold_start_section(models, tmp_path):
    table = pd.DataFrame(
        {
            "scenario": ["warm", "warm", "cold-user", "cold-user"],
            "model": [BASELINE, "MF", BASELINE, "MF"],
            "rmse": [1.11, 0.91, 1.09, 0.96],
            "ndcg@10": [np.nan, 0.09, np.nan, 0.19],
        }
    )
    parsed = parse(write_report({"mf": models["mf"]}, tmp_path / "r.html", comparison=table))
    assert "cold-start" in parsed.sections and parsed.errors == []
    with pytest.raises(HybridrecError, match="scenario, model, rmse"):
        write_report({"mf": models["mf"]}, tmp_path / "x.html", comparison=table[["model"]])


# ---------------------------------------------------------------------- atomic writing
def test_written_atomically(models, tmp_path, monkeypatch):
    path = tmp_path / "report.html"
    path.write_text("previous report")
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        assert Path(src).read_text(encoding="utf-8").rstrip().endswith("</html>")
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_report({"mf": models["mf"]}, path)
    [(src, dst)] = renames
    assert dst == path and src.parent == path.parent and src != path
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]

    # A failure while writing leaves the previous report whole and no temporary file behind.
    path.write_text("previous report")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(HybridrecError, match=r"cannot write .*report\.html: disk full"):
        write_report({"mf": models["mf"]}, path)
    assert path.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_bad_inputs_are_clear_errors(models, tmp_path):
    with pytest.raises(HybridrecError, match="at least one model"):
        write_report({}, tmp_path / "r.html")
    with pytest.raises(HybridrecError, match="is a folder"):
        write_report({"mf": models["mf"]}, tmp_path)


# ---------------------------------------------------------------------- the command
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
