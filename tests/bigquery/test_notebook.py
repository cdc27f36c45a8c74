"""Every %%bigquery cell of the reference notebook, as written, through `sql --file` and Jupyter."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _support.cli import run
from _support.notebook import SETUP

import hybridrec
from hybridrec.models import load_model

pytestmark = pytest.mark.realdata


def test_notebook_runs_through_sql_file(notebook_cells, ml100k_ws, tmp_path: Path) -> None:
    script = tmp_path / "notebook.sql"
    script.write_text(";\n".join([SETUP, *(sql for _, sql in notebook_cells)]) + ";\n")
    code, out, err = run(ml100k_ws.path, "sql", "--dialect", "bigquery", "--file", str(script))
    assert code == 0, err
    # the last cell is CREATE MODEL recommender_hybrid: a normal hybridrec model
    model = load_model(ml100k_ws.models_dir, "recommender_hybrid")
    assert model.kind == "feature_regressor" and model.label == "rating"
    code, out, _ = run(ml100k_ws.path, "models", "--format", "csv")
    assert "recommender_hybrid" in out and "recommender_16" in out


def test_notebook_cells_answer_like_bigquery(notebook_cells, ml100k_ws) -> None:
    results = [hybridrec.sql(sql, ml100k_ws) for _, sql in notebook_cells]
    top = results[0]
    assert list(top.columns) == ["predicted_rating", "movieId", "title", "userId"]
    assert len(top) == 5 and top["predicted_rating"].is_monotonic_decreasing
    assert len(results[1]) == 0  # 100K has neither movie 96481 nor user 54192: empty, no error
    assert list(results[3].columns) == ["userId", "loyalty", "postcode", "user_factors"]
    assert len(results[3]["user_factors"][0]) == 16
    assert "g" in results[4].columns and "genres" not in results[4].columns
    assert list(results[8].columns) == [f"u{k}" for k in range(1, 17)]
    assert results[8].iloc[0].tolist() == [float(k) for k in range(16)]
    row = hybridrec.sql("SELECT * FROM movielens.hybrid_dataset LIMIT 1", ml100k_ws)
    assert {"title", "g", "product_factors", "loyalty", "postcode", "rating"} <= set(row.columns)


def test_notebook_runs_in_jupyter(notebook_cells, ml100k_ws) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    setup = (
        'PROJECT = "qwiklabs-gcp-00-000000000000"\n%load_ext hybridrec\n'
        f"%hybridrec_workspace {ml100k_ws.path}"
    )
    cells = [nbformat.v4.new_code_cell(setup)]
    cells += [
        nbformat.v4.new_code_cell(f"%%bigquery {args}\n{sql}") for args, sql in notebook_cells
    ]
    cells.append(
        nbformat.v4.new_code_cell("%%bigquery top --project $PROJECT\n" + notebook_cells[0][1])
    )
    cells.append(nbformat.v4.new_code_cell("print(len(top), list(top.columns)[0])"))
    nb = nbformat.v4.new_notebook(cells=cells)
    env_path = os.pathsep.join(sys.path)
    os.environ["PYTHONPATH"] = env_path
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            if output.get("name") == "stderr":
                assert "error:" not in output["text"], output["text"]
    assert nb.cells[-1].outputs[0]["text"].strip() == "5 predicted_rating"
