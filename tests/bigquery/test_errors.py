"""Every bad statement is one line naming statement, line and column: CLI (exit 2) and magic."""

from __future__ import annotations

import re

import pytest
from _support.cli import error_line, run

import hybridrec

MF = (
    "CREATE MODEL movielens.m OPTIONS(model_type='matrix_factorization', user_col='userId', "
    "item_col='movieId', rating_col='rating', num_factors=2) AS SELECT * FROM movielens.ratings"
)
LIN = (
    "CREATE MODEL movielens.lin OPTIONS(model_type='linear_reg', input_label_cols=['{label}'])"
    " AS SELECT rating, movieId * 1.0 AS x FROM movielens.ratings"
)

NEW_MF = MF.replace("movielens.m ", "movielens.m2 ")
NEW_LIN = LIN.replace("movielens.lin ", "movielens.lin2 ")

BAD = [
    ("SELECT FROM WHERE", "syntax error"),
    ("SELECT * FROM movielens.nope", "unknown table"),
    ("SELECT nope FROM movielens.ratings", "unknown column nope"),
    ("SELECT * FROM ML.PREDICT(MODEL movielens.nope, (SELECT 1))", "unknown model nope"),
    (NEW_MF.replace("num_factors=2", "num_factor=2"), "unknown option num_factor"),
    (NEW_MF.replace("'matrix_factorization'", "'kmeans'"), "unknown model_type 'kmeans'"),
    (NEW_LIN.format(label="nope"), "no column nope"),
    (
        NEW_MF.replace("rating_col='rating'", "rating_col='title'").replace(
            "FROM movielens.ratings", "FROM movielens.ratings JOIN movielens.movies USING (movieId)"
        ),
        "must be numeric",
    ),
    (
        "CREATE TEMP FUNCTION f(x FLOAT64) RETURNS FLOAT64 LANGUAGE js AS 'return x'",
        "JavaScript UDFs are not supported",
    ),
    ("SELECT * FROM ML.PREDICT(MODEL movielens.m, (SELECT 1 AS userId))", "no column movieId"),
    ("SELECT * FROM ML.PREDICT(MODEL movielens.lin, (SELECT 1 AS y))", "no column x"),
    (
        "SELECT * FROM ML.CONFUSION_MATRIX(MODEL movielens.m)",
        "ML.CONFUSION_MATRIX is not supported",
    ),
    ("SELECT * FROM ML.GLOBAL_EXPLAIN(MODEL movielens.m)", "needs a linear_reg"),
    ("SELECT * FROM ML.TRIAL_INFO(MODEL movielens.m)", "num_trials"),
    ("DROP MODEL movielens.gone", "unknown model gone"),
    ("DECLARE x INT64", "DECLARE"),
    (
        "LOAD DATA INTO movielens.t FROM FILES(format='CSV', uris=['gs://b/f.csv'])",
        "only local files",
    ),
    ("SELECT @missing", "unknown query parameter @missing"),
    ("SELECT * FROM unknown_dataset.t", "unknown"),
    (NEW_MF.replace("num_factors=2", "num_factors=2, data_split_method='SEQ'"), "'SEQ'"),
    (NEW_MF.replace("num_factors=2", "num_factors=2, hybridrec_nope=1"), "hybridrec_nope"),
    (NEW_MF.replace("num_factors=2", "num_factors=2, max_iterations=0"), "max_iterations"),
]


@pytest.fixture
def trained(workspace):
    hybridrec.sql(MF + ";\n" + LIN.format(label="rating"), workspace)
    return workspace


def test_at_least_fifteen_kinds() -> None:
    assert len({fragment for _, fragment in BAD}) >= 15


@pytest.mark.parametrize(("statement", "fragment"), BAD)
def test_cli_one_line_with_position(trained, statement: str, fragment: str) -> None:
    script = "SELECT 1;\n" + statement
    code, _, err = run(trained.path, "sql", "--dialect", "bigquery", script)
    line = error_line(code, err, fragment)
    assert re.match(r"error: statement 2, line \d+, col \d+: ", line), line


def test_create_model_on_existing_name(trained) -> None:
    code, _, err = run(trained.path, "sql", "--dialect", "bigquery", MF)
    line = error_line(code, err, "already exists")
    assert line.startswith("error: statement 1, line 1, col 24: "), line


def test_syntax_error_points_at_the_token(trained) -> None:
    code, _, err = run(
        trained.path, "sql", "--dialect", "bigquery", "SELECT 1;\nSELECT\n  a FROM WHERE"
    )
    assert error_line(code, err).startswith("error: statement 2, line 3, col 10: syntax error")


@pytest.mark.parametrize(("statement", "fragment"), BAD[:8])
def test_magic_one_line(trained, statement: str, fragment: str, capsys) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "hybridrec")
    shell.run_line_magic("hybridrec_workspace", str(trained.path))
    capsys.readouterr()
    result = shell.run_cell_magic("bigquery", "--project x", statement)
    err = capsys.readouterr().err.strip().splitlines()
    assert result is None and len(err) == 1, err
    assert err[0].startswith("error: statement 1, line ") and fragment in err[0], err
