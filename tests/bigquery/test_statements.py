"""Plain statements, names, UDFs and CREATE MODEL on the tiny fixture workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

import hybridrec
from hybridrec.models import load_model

MF = (
    "CREATE MODEL {name} OPTIONS(model_type='matrix_factorization', user_col='user_id', "
    "item_col='item_id', rating_col='stars', num_factors=2, l2_reg=0.1) AS "
    "SELECT userId AS user_id, movieId AS item_id, rating AS stars FROM movielens.ratings"
)


def test_names_datasets_and_backticks(workspace) -> None:
    plain = hybridrec.sql("SELECT count(*) AS n FROM ratings", workspace)
    for name in ("movielens.ratings", "`movielens.ratings`", "`my-project.movielens.ratings`"):
        frame = hybridrec.sql(f"SELECT count(*) AS n FROM {name}", workspace)
        assert frame["n"].iloc[0] == plain["n"].iloc[0]
    hybridrec.sql(
        "CREATE SCHEMA scratch; CREATE TABLE scratch.t AS SELECT 1 AS a; "
        "INSERT INTO scratch.t (a) VALUES (2); CREATE VIEW scratch.v AS SELECT sum(a) AS s "
        "FROM scratch.t",
        workspace,
    )
    assert hybridrec.sql("SELECT s FROM scratch.v", workspace)["s"].iloc[0] == 3
    hybridrec.sql("DROP VIEW scratch.v; DROP TABLE scratch.t", workspace)
    assert "t" not in workspace.tables()


def test_udf_with_struct_return_expands(workspace) -> None:
    hybridrec.sql(
        "CREATE OR REPLACE FUNCTION movielens.pair(x ARRAY<FLOAT64>) RETURNS "
        "STRUCT<first FLOAT64, second FLOAT64> AS (STRUCT(x[OFFSET(0)], x[OFFSET(1)]))",
        workspace,
    )
    frame = hybridrec.sql("SELECT movielens.pair(u).* FROM (SELECT [1.5, 2.5] AS u)", workspace)
    assert list(frame.columns) == ["first", "second"]
    assert frame.iloc[0].tolist() == [1.5, 2.5]
    temp = hybridrec.sql(
        "CREATE TEMP FUNCTION twice(x FLOAT64) AS (2 * x); SELECT twice(21) AS y", workspace
    )
    assert temp["y"].iloc[0] == 42
    hybridrec.sql("DROP FUNCTION movielens.pair", workspace)


def test_bigquery_constructs(workspace) -> None:
    frame = hybridrec.sql(
        "SELECT SUBSTR('12345', 0, 2) AS s, SPLIT('a|b', '|')[OFFSET(1)] AS b, "
        "CONCAT('x', CAST(3 AS STRING)) AS c, 2 NOT IN UNNEST([1, 3]) AS n, "
        "STRUCT(1 AS one).one AS o",
        workspace,
    )
    assert frame.iloc[0].tolist() == ["12", "b", "x3", True, 1]
    star = hybridrec.sql(
        "SELECT * EXCEPT (timestamp) REPLACE (0 AS rating) FROM ratings LIMIT 1", workspace
    )
    assert "timestamp" not in star.columns and star["rating"].iloc[0] == 0


def test_create_model_any_column_names_and_three_forms(workspace) -> None:
    hybridrec.sql(MF.format(name="movielens.m"), workspace)
    model = load_model(workspace.models_dir, "m")
    assert model.num_factors == 2
    hybridrec.sql(
        MF.format(name="IF NOT EXISTS movielens.m").replace("num_factors=2", "num_factors=3"),
        workspace,
    )
    assert load_model(workspace.models_dir, "m").num_factors == 2  # kept
    hybridrec.sql(
        "CREATE OR REPLACE"
        + MF.format(name="movielens.m")[6:].replace("num_factors=2", "num_factors=3"),
        workspace,
    )
    assert load_model(workspace.models_dir, "m").num_factors == 3
    pred = hybridrec.sql(
        "SELECT * FROM ML.PREDICT(MODEL movielens.m, (SELECT 1 AS user_id, 1 AS item_id))",
        workspace,
    )
    assert list(pred.columns) == ["predicted_stars", "user_id", "item_id"]
    weights = hybridrec.sql(
        "SELECT DISTINCT processed_input FROM ML.WEIGHTS(MODEL movielens.m) ORDER BY 1", workspace
    )
    assert weights["processed_input"].tolist() == ["global__intercept__", "item_id", "user_id"]
    hybridrec.sql("DROP MODEL movielens.m", workspace)
    assert not (workspace.models_dir / "m").exists()


def test_regressor_one_hot_and_arrays(workspace) -> None:
    hybridrec.sql(
        "CREATE TABLE movielens.train AS SELECT rating, CAST(userId AS STRING) AS who, "
        "[CAST(movieId AS FLOAT64), 1.0] AS arr, movieId * 1.0 AS x FROM movielens.ratings; "
        "CREATE MODEL movielens.lin OPTIONS(model_type='linear_reg', input_label_cols=['rating']) "
        "AS SELECT * FROM movielens.train",
        workspace,
    )
    info = hybridrec.sql("SELECT * FROM ML.FEATURE_INFO(MODEL movielens.lin)", workspace)
    assert info["input"].tolist() == ["who", "arr", "x"]
    assert info["dimension"].tolist()[1] == 2
    pred = hybridrec.sql(
        "SELECT * FROM ML.PREDICT(MODEL movielens.lin, TABLE movielens.train)", workspace
    )
    assert pred.columns[0] == "predicted_rating" and len(pred) == 7
    explained = hybridrec.sql(
        "SELECT * FROM ML.EXPLAIN_PREDICT(MODEL movielens.lin, TABLE movielens.train)", workspace
    )
    row = explained.iloc[0]
    assert row["approximation_error"] < 1e-6
    weights = hybridrec.sql("SELECT * FROM ML.WEIGHTS(MODEL movielens.lin)", workspace)
    assert weights["processed_input"].tolist()[-1] == "__INTERCEPT__"


def test_load_data_from_files(workspace, tmp_path: Path) -> None:
    csv = tmp_path / "extra.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    hybridrec.sql(
        f"LOAD DATA OVERWRITE movielens.extra FROM FILES(format='CSV', uris=['{csv}'], "
        "skip_leading_rows=1)",
        workspace,
    )
    hybridrec.sql(
        f"LOAD DATA INTO movielens.extra FROM FILES(format='CSV', uris=['{csv}'], "
        "skip_leading_rows=1)",
        workspace,
    )
    assert hybridrec.sql("SELECT count(*) AS n FROM extra", workspace)["n"].iloc[0] == 4


def test_failing_statement_keeps_earlier_effects_and_writes_nothing(workspace) -> None:
    with pytest.raises(hybridrec.HybridrecError, match="statement 2"):
        hybridrec.sql(
            "CREATE TABLE movielens.kept AS SELECT 1 AS a;\n"
            "CREATE TABLE movielens.lost AS SELECT nope FROM movielens.ratings",
            workspace,
        )
    tables = workspace.tables()
    assert "kept" in tables and "lost" not in tables


def test_query_params(workspace) -> None:
    frame = hybridrec.sql("SELECT @x + 1 AS y", workspace, params={"x": 41})
    assert frame["y"].iloc[0] == 42


def test_magic_destination_variable_and_params(workspace, capsys) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "hybridrec")
    shell.run_line_magic("hybridrec_workspace", str(workspace.path))
    result = shell.run_cell_magic(
        "bigquery",
        "frame --project demo --params '{\"n\": 2}' --use_legacy_sql",
        "SELECT userId FROM movielens.ratings ORDER BY userId LIMIT @n",
    )
    assert result is None and len(shell.user_ns["frame"]) == 2
    assert "--use_legacy_sql has no meaning locally" in capsys.readouterr().err
    shown = shell.run_cell_magic("bigquery", "--max_results 1", "SELECT 1 AS a UNION ALL SELECT 2")
    assert len(shown) == 1


def test_create_if_not_exists_and_views(workspace) -> None:
    hybridrec.sql(
        "CREATE TABLE IF NOT EXISTS movielens.t AS SELECT 1 AS a; "
        "CREATE TABLE IF NOT EXISTS movielens.t AS SELECT 2 AS a; "
        "CREATE OR REPLACE VIEW movielens.v AS SELECT a + 1 AS b FROM movielens.t",
        workspace,
    )
    assert hybridrec.sql("SELECT b FROM movielens.v", workspace)["b"].tolist() == [2]
    with pytest.raises(hybridrec.HybridrecError, match="already exists"):
        hybridrec.sql("CREATE TABLE movielens.t AS SELECT 3 AS a", workspace)


@pytest.mark.parametrize(
    "command",
    [
        ["recommend", "lin", "--user", "1"],
        ["report", "lin", "--out", "r.html"],
        ["explain", "lin", "--global"],
    ],
)
def test_cli_commands_on_a_sql_regressor_are_one_line(workspace, command, tmp_path) -> None:
    from _support.cli import error_line, run

    hybridrec.sql(
        "CREATE MODEL movielens.lin OPTIONS(model_type='linear_reg', input_label_cols=['rating'])"
        " AS SELECT rating, movieId * 1.0 AS x FROM movielens.ratings",
        workspace,
    )
    command = [str(tmp_path / c) if c.endswith(".html") else c for c in command]
    code, _, err = run(workspace.path, *command)
    error_line(code, err, "ML.PREDICT")


def test_ml_functions_nest_and_join(workspace) -> None:
    hybridrec.sql(
        "CREATE MODEL movielens.m OPTIONS(model_type='matrix_factorization', user_col='userId', "
        "item_col='movieId', rating_col='rating', num_factors=2) AS SELECT * FROM ratings",
        workspace,
    )
    frame = hybridrec.sql(
        "WITH w AS (SELECT * FROM ML.WEIGHTS(MODEL movielens.m)) "
        "SELECT p.userId, p.predicted_rating, w.intercept FROM ML.PREDICT(MODEL movielens.m, "
        "(SELECT CAST(feature AS INT64) AS userId, 1 AS movieId FROM ML.WEIGHTS(MODEL "
        "movielens.m) WHERE processed_input = 'userId')) p JOIN w "
        "ON w.processed_input = 'userId' AND w.feature = CAST(p.userId AS STRING) ORDER BY 1",
        workspace,
    )
    assert frame["userId"].tolist() == [1, 2, 3] and frame["intercept"].notna().all()


def test_google_mf_tutorial_flow(workspace) -> None:
    """The shape of BigQuery's own matrix factorization tutorial: its own dataset, its column
    names, ML.RECOMMEND into a table, then ARRAY_AGG(… ORDER BY … LIMIT n) per user."""
    top = hybridrec.sql(
        """
        CREATE SCHEMA IF NOT EXISTS bqml_tutorial;
        CREATE OR REPLACE TABLE `bqml_tutorial.ratings` AS
          SELECT userId AS user_id, movieId AS item_id, rating FROM movielens.ratings;
        CREATE OR REPLACE MODEL `bqml_tutorial.my_explicit_mf_model`
          OPTIONS (model_type='matrix_factorization', user_col='user_id', item_col='item_id',
                   l2_reg=9.83, num_factors=3) AS
          SELECT user_id, item_id, rating FROM `bqml_tutorial.ratings`;
        CREATE OR REPLACE TABLE `bqml_tutorial.recommend` AS
          SELECT * FROM ML.RECOMMEND(MODEL `bqml_tutorial.my_explicit_mf_model`);
        SELECT user_id,
          ARRAY_AGG(STRUCT(item_id, predicted_rating) ORDER BY predicted_rating DESC LIMIT 2)
            AS top2
        FROM `bqml_tutorial.recommend` GROUP BY user_id ORDER BY user_id
        """,
        workspace,
    )
    assert top["user_id"].tolist() == [1, 2, 3]
    assert all(len(items) == 2 for items in top["top2"])
    assert (workspace.models_dir / "bqml_tutorial.my_explicit_mf_model").is_dir()


def test_load_dataset_option_names_the_dataset(tmp_path) -> None:
    from _support.cli import error_line, run
    from _support.data import write_ml20m

    ws = tmp_path / "ws"
    code, _, err = run(ws, "load", str(write_ml20m(tmp_path / "src")), "--dataset", "films")
    assert code == 0, err
    code, out, err = run(
        ws,
        "sql",
        "--dialect",
        "bigquery",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM `any-project.films.ratings`",
    )
    assert code == 0 and out.splitlines() == ["n", "7"], err
    code, _, err = run(ws, "sql", "--dialect", "bigquery", "SELECT * FROM movielens.ratings")
    error_line(code, err, "unknown table")
