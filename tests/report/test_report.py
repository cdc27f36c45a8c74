"""The HTML report written by ``write_report`` (the command is tested in tests/cli).

The report must be valid, self-contained HTML whose images are real PNGs and whose numbers are
those of ``model.evaluate()`` (what ``hybridrec evaluate`` prints), written atomically.
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.html_report import SECTIONS, ReportParser, parse, shown

pytest.importorskip("matplotlib")


from hybridrec._errors import HybridrecError
from hybridrec.data import SynthConfig, generate
from hybridrec.hybrid import HybridRecommender
from hybridrec.mf import MatrixFactorization
from hybridrec.report import BASELINE, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
def written(models, data, tmp_path_factory) -> tuple[Path, ReportParser]:
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
