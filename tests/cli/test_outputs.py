"""What the CLI writes: never the workspace, a model or its own input; never half a file; and
usage mistakes, like every other bad input, as one line and exit code 2."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
from _support.cli import error_line, run

from hybridrec._core.files import atomic_file
from hybridrec._errors import HybridrecError


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace with synthetic data, an explicit MF ``m`` and an implicit MF ``imp``."""
    root = tmp_path_factory.mktemp("outputs")
    ws, data = root / "ws", root / "synth"
    for args in (
        ("synth", "--out", str(data), "--users", "120", "--items", "60", "--ratings", "4000"),
        ("load", str(data)),
        ("train", "mf", "--name", "m", "--num-factors", "3", "--max-iterations", "3"),
        ("train", "mf", "--name", "imp", "--num-factors", "3", "--feedback-type", "implicit"),
    ):
        code, _, err = run(ws, *args)
        assert code == 0, err
    return ws


def test_outputs_never_replace_the_workspace_or_a_model(trained):
    db = trained / "workspace.duckdb"
    before = db.read_bytes()
    # the workspace database has the wrong extension; a Parquet file in models/ would be read
    # as part of the model
    code, _, err = run(trained, "recommend", "m", "--all", "--out", str(db))
    error_line(code, err, "give a .parquet file name")
    users = trained / "models" / "m" / "users.parquet"
    code, _, err = run(trained, "recommend", "m", "--all", "--out", str(users))
    error_line(code, err, "belongs to the workspace")
    code, _, err = run(trained, "weights", "m", "--out", str(trained / "models" / "m" / "x.csv"))
    error_line(code, err, "belongs to the workspace")
    assert db.read_bytes() == before
    code, out, _ = run(trained, "sql", "SELECT count(*) AS n FROM ratings", "--format", "json")
    assert code == 0 and json.loads(out) == [{"n": 4000}]
    code, _, err = run(trained, "recommend", "m", "--user", "1", "-n", "2")
    assert code == 0, err


def test_an_output_never_replaces_the_commands_input(trained, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("userId,movieId\n1,1\n2,2\n")
    code, _, err = run(trained, "predict", "m", "--pairs", str(pairs), "--out", str(pairs))
    error_line(code, err, "is also this command's input")
    assert pairs.read_text() == "userId,movieId\n1,1\n2,2\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("recommend", "m", "--all", "--out", "top.csv"), "give a .parquet file name"),
        (("weights", "m", "--out", "w.txt"), "give a .csv or .parquet file name"),
        (("hybrid", "dataset", "--mf", "m", "--out", "d.csv"), "give a .parquet file name"),
        (("recommend", "m", "--all", "--out", "no/such/top.parquet"), "does not exist"),
        (("recommend", "m", "--user", "1", "--out", "top.parquet"), "--out is for --all"),
        (("recommend", "m", "--all", "--genre", "Comedy", "--out", "t.parquet"), "not with --all"),
        (("recommend", "m", "--item", "1", "--genre", "Comedy"), "not with --all or --item"),
    ],
)
def test_output_paths_and_flags_are_checked_before_any_work(trained, tmp_path, args, fragment):
    args = tuple(str(tmp_path / a) if a.endswith((".csv", ".txt", ".parquet")) else a for a in args)
    code, _, err = run(trained, *args)
    error_line(code, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_not_a_regular_file_is_refused(trained):
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    code, _, err = run(trained, "weights", "m", "--out", "/dev/null")
    error_line(code, err, "give a .csv or .parquet file name")


def test_a_write_error_names_the_users_path_not_a_temporary_file(tmp_path):
    target = tmp_path / "out.parquet"
    written = pytest.raises(HybridrecError, match=r"cannot write .*out\.parquet: disk full$")
    with written, atomic_file(target) as tmp:
        tmp.write_text("half")
        raise OSError(28, "disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_model_is_never_replaced_by_one_built_from_it(trained):
    code, _, err = run(trained, "train", "hybrid", "--mf", "m", "--kind", "linear", "--name", "m")
    error_line(code, err, "is also --mf")
    code, out, _ = run(trained, "info", "m", "--format", "json")
    assert json.loads(out)["kind"] == "matrix_factorization"
    code, _, err = run(trained, "train", "hybrid", "--mf", "imp", "--kind", "linear", "--name", "h")
    error_line(code, err, "'imp' is an implicit-feedback matrix factorization model")
    code, _, err = run(trained, "train", "ranker", "--name", "r", "--mf", "imp")
    error_line(code, err, "give an explicit matrix factorization")


def test_retraining_a_name_says_it_replaced_the_model(trained):
    args = ("train", "mf", "--name", "again", "--num-factors", "2", "--max-iterations", "1")
    code, _, err = run(trained, *args, quiet=False)
    assert code == 0 and "replacing" not in err
    code, _, err = run(trained, *args, quiet=False)
    assert code == 0 and "saved model 'again'" in err and "(replacing the model" in err


def test_synth_never_overwrites_data_it_did_not_write(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating\n1,1,5\n")
    small = ("--users", "5", "--items", "5", "--ratings", "10")
    code, _, err = run(tmp_path / "ws", "synth", "--out", str(folder), *small)
    error_line(code, err, "already holds ratings.csv", "--force")
    assert (folder / "ratings.csv").read_text() == "userId,movieId,rating\n1,1,5\n"
    # a synthetic folder (it has truth/) is regenerated; --force replaces anything
    for extra in ((), ("--force",)):
        target = tmp_path / "synthetic" if not extra else folder
        code, _, err = run(tmp_path / "ws", "synth", "--out", str(target), *small, *extra)
        assert code == 0, err
        code, _, err = run(tmp_path / "ws", "synth", "--out", str(target), *small)
        assert code == 0, err
        assert len(pd.read_csv(target / "ratings.csv")) == 10


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("recommend", "m", "--user", "1", "-n", "0"), "'-n': 0 is not in the range"),
        (("nosuchcommand",), "No such command"),
        (("train", "mf"), "Missing option '--name'"),
        (("recommend", "m", "--format", "xml"), "'--format'"),
    ],
)
def test_usage_mistakes_are_one_line_errors(trained, args, fragment):
    code, out, err = run(trained, *args)
    error_line(code, err, fragment, "--help")
    assert out == ""


def test_serve_on_a_port_in_use_is_a_error_line(trained):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(trained, "serve", "m", "--host", "127.0.0.1", "--port", str(port))
    error_line(code, err, f"cannot listen on 127.0.0.1:{port}")


def test_unknown_ids_are_answered_with_a_note_naming_them(trained, tmp_path):
    code, out, err = run(trained, "recommend", "m", "--user", "999999", "-n", "2", quiet=False)
    assert code == 0 and "note: user 999999 is not in model 'm'" in err and "movieId" in out
    code, _, err = run(trained, "recommend", "m", "--user", "1", "-n", "2", quiet=False)
    assert code == 0 and "note:" not in err
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("userId,movieId\n1,1\n999999,2\n1,777777\n")
    code, out, err = run(trained, "predict", "m", "--pairs", str(pairs), "--format", "json")
    assert code == 0 and len(json.loads(out)) == 3 and err == ""  # --quiet: no note
    code, _, err = run(trained, "predict", "m", "--pairs", str(pairs), quiet=False)
    assert code == 0 and "2 ids" in err and "userId 999999" in err and "movieId 777777" in err


def test_models_needs_a_workspace_and_json_is_always_valid(trained, tmp_path):
    missing = tmp_path / "nowhere"
    code, _, err = run(missing, "models")
    error_line(code, err, "does not exist")
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run(afile, "models")
    error_line(code, err, "is a file")
    query = "SELECT 'inf'::DOUBLE AS a, 'nan'::DOUBLE AS b, 1.5 AS c"
    code, out, _ = run(trained, "sql", query, "--format", "json")
    assert code == 0 and json.loads(out) == [{"a": None, "b": None, "c": 1.5}]
    assert "Infinity" not in out and "NaN" not in out


def test_conflicting_or_empty_options_are_refused(trained):
    code, _, err = run(trained, "compare", "--kinds", " , ")
    error_line(code, err, "--kinds is empty")
    code, _, err = run(trained, "explain", "m", "--global", "--user", "1")
    error_line(code, err)  # the model is an MF (no explain) or the flags conflict


def test_an_unknown_genre_is_named_with_a_hint(trained):
    code, _, err = run(trained, "recommend", "m", "--user", "1", "--genre", "comedy")
    error_line(code, err, "--genre 'comedy'", "did you mean 'Comedy'?", "Drama")
    code, out, err = run(trained, "recommend", "m", "--user", "1", "--genre", "Comedy")
    assert code == 0 and "movieId" in out, err
