"""Bad CLI input is one line naming the problem and exit code 2, never a traceback or a bad model.

Hyper-parameters (NaN, inf, out of range), workspaces too small to split, ratings files
(``train mf --ratings``, ``evaluate --data``, ``recommend --ratings`` fold-in) checked like
``hybridrec load`` checks them and named by file and line (CSV) or row (Parquet).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _support.cli import error_line, run
from _support.data import random_ratings
from click.testing import CliRunner

from hybridrec import DataError, ModelError
from hybridrec.cli import main
from hybridrec.mf import MatrixFactorization

NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def files(trained: Path, tmp_path_factory) -> dict[str, Path]:
    """Ratings files: the first 50 lines of the synthetic ratings.csv with one bad row
    inserted at file line 31 (``bad_<name>.csv``), Parquet files and new-user files."""
    root = tmp_path_factory.mktemp("files")
    lines = (trained.parent / "synth" / "ratings.csv").read_text().splitlines()[:50]
    out: dict[str, Path] = {}
    for name, row in {
        "abc": "1,5,abc,1",
        "nan": "1,5,nan,1",
        "inf": "1,5,inf,1",
        "huge": "1,5,1e308,1",
        "negative": "1,5,-3.0,1",
        "forty": "1,5,40,1",
        "short": "1,5",
        "no_user": ",5,3.0,1",
    }.items():
        path = root / f"bad_{name}.csv"
        path.write_text("\n".join([*lines[:30], row, *lines[30:]]) + "\n")
        out[name] = path
    good = pd.read_csv(trained.parent / "synth" / "ratings.csv", nrows=49)
    listed = pa.table(
        {
            "userId": pa.array([[int(u)] for u in good["userId"]], pa.list_(pa.int64())),
            "movieId": pa.array(good["movieId"]),
            "rating": pa.array(good["rating"]),
        }
    )
    pq.write_table(listed, root / "list_ids.parquet")
    out["list_ids"] = root / "list_ids.parquet"
    nan_rating = good.copy()
    nan_rating.loc[29, "rating"] = NAN
    nan_rating.to_parquet(root / "nan_rating.parquet")
    out["nan_parquet"] = root / "nan_rating.parquet"
    for name, text in {
        "new_ok": "movieId,rating\n1,5\n2,4\n999999,3\n",
        "new_abc": "movieId,rating\n1,5\n2,abc\n",
        "new_nan": "movieId,rating\n1,5\n2,nan\n",
        "new_inf": "movieId,rating\n1,5\n2,inf\n",
        "new_no_movie": "movieId,rating\n1,5\n,4\n",
        "new_twice": "movieId,rating\n1,5\n2,4\n1,3\n",
    }.items():
        (root / f"{name}.csv").write_text(text)
        out[name] = root / f"{name}.csv"
    return out


def workspace_of(root: Path, users: int, items: int, ratings: int) -> Path:
    data, ws = root / "synth", root / "ws"
    args = ("--users", str(users), "--items", str(items), "--ratings", str(ratings))
    code, _, err = run(ws, "synth", "--out", str(data), *args)
    assert code == 0, err
    code, _, err = run(ws, "load", str(data))
    assert code == 0, err
    return ws


def models_of(ws: Path) -> set[str]:
    return {p.name for p in (ws / "models").iterdir()} if (ws / "models").is_dir() else set()


# ---------------------------------------------------------------------- 1. hyper-parameters
@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        (["--l2-reg", "nan"], "l2_reg"),
        (["--l2-reg", "inf"], "l2_reg"),
        (["--l2-reg-bias", "nan"], "l2_reg_bias"),
        (["--min-rel-progress", "nan"], "min_rel_progress"),
        (["--eval-fraction", "nan"], "eval_fraction"),
        (["--feedback-type", "implicit", "--wals-alpha", "nan"], "wals_alpha"),
        (["--num-factors", "100000", "--max-iterations", "1"], "num_factors"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_train_mf_rejects_non_finite_and_huge_parameters(trained, args, parameter):
    before = models_of(trained)
    line = error_line(*run(trained, "train", "mf", "--name", "x", *args)[::2])
    assert f"error: {parameter} must be" in line
    assert models_of(trained) == before, "nothing saved"


def test_num_factors_bound_explains_the_limit(trained):
    line = error_line(*run(trained, "train", "mf", "--name", "x", "--num-factors", "100000")[::2])
    assert "at most 1024" in line and "memory" in line


def test_train_hybrid_cold_fraction_nan(trained):
    args = ("--name", "hx", "--mf", "m", "--kind", "linear", "--cold-fraction", "nan")
    line = error_line(*run(trained, "train", "hybrid", *args)[::2])
    assert "cold_fraction must be a finite number" in line


@pytest.mark.parametrize(("option", "value"), [("--timeout", "nan"), ("--timeout", "inf")])
def test_serve_non_finite_seconds_name_the_option(trained, option, value):
    line = error_line(*run(trained, "serve", "m", option, value)[::2])
    assert f"'{option}'" in line and "not a finite number" in line


# ---------------------------------------------------------------------- 2. + 8. tiny data
def test_one_rating_workspace(tmp_path):
    ws = workspace_of(tmp_path, 1, 1, 1)
    code, _, err = run(ws, "train", "mf", "--name", "t", "--num-factors", "2")
    assert code == 0, err
    code, _, err = run(
        ws, "train", "mf", "--name", "t0", "--num-factors", "2", "--eval-fraction", "0"
    )
    assert code == 0, err
    line = error_line(*run(ws, "train", "mf", "--name", "tt", "--tune", "2")[::2])
    assert "too few ratings to tune" in line
    line = error_line(*run(ws, "compare", "--kinds", "linear")[::2])
    assert "too few ratings to compare" in line
    line = error_line(*run(ws, "evaluate", "t0")[::2])
    assert "no hold-out" in line and "--data FILE" in line


def test_twenty_rating_workspace_names_the_validation_split(tmp_path):
    ws = workspace_of(tmp_path, 5, 8, 20)
    code, _, err = run(ws, "train", "mf", "--name", "m", "--num-factors", "2")
    assert code == 0, err
    line = error_line(
        *run(ws, "train", "hybrid", "--name", "h", "--mf", "m", "--kind", "linear")[::2]
    )
    assert "too few ratings for the regressor's validation split" in line
    line = error_line(*run(ws, "compare", "--kinds", "linear")[::2])
    assert "too few ratings" in line and "X_val" not in line


def test_evaluate_without_hold_out_suggests_data(trained):
    args = ("--name", "x1", "--num-factors", "2", "--max-iterations", "2", "--eval-fraction", "0")
    code, _, err = run(trained, "train", "mf", *args)
    assert code == 0, err
    line = error_line(*run(trained, "evaluate", "x1")[::2])
    assert "no hold-out" in line and "eval_fraction=0" in line and "--data FILE" in line
    model = MatrixFactorization(num_factors=2, eval_fraction=0.0).fit(random_ratings())
    with pytest.raises(ModelError, match="no hold-out"):
        model.evaluate()


# ---------------------------------------------------------------------- 4.-6. ratings files
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("abc", "line 31: column rating: 'abc' is not a number"),
        ("nan", "line 31: missing rating"),
        ("inf", "line 31: rating inf is outside 0-10"),
        ("huge", "line 31: rating 1e+308 is outside 0-10"),
        ("negative", "line 31: rating -3.0 is outside 0-10"),
        ("forty", "line 31: rating 40.0 is outside 0-10"),
        ("short", "line 31: expected 4 ','-separated columns, found 2"),
        ("no_user", "line 31: missing userId"),
    ],
)
def test_ratings_files_name_file_and_line(trained, files, name, message):
    before = models_of(trained)
    path = files[name]
    line = error_line(*run(trained, "train", "mf", "--name", "bad", "--ratings", str(path))[::2])
    assert line == f"error: {path}: {message}"
    assert models_of(trained) == before, "no model saved from a bad file"
    line = error_line(*run(trained, "evaluate", "m", "--data", str(path))[::2])
    assert line == f"error: {path}: {message}"


def test_csv_lines_count_blank_lines_crlf_and_compressed_files(trained, tmp_path):
    text = b"userId,movieId,rating\r\n1,2,3\r\n\r\n1,3,x\r\n"
    plain, packed = tmp_path / "r.csv", tmp_path / "r.csv.gz"
    plain.write_bytes(text)
    packed.write_bytes(gzip.compress(text))
    for path in (plain, packed):
        line = error_line(*run(trained, "evaluate", "m", "--data", str(path))[::2])
        assert line == f"error: {path}: line 4: column rating: 'x' is not a number"


def test_load_and_train_share_the_rating_check(trained, files, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(trained.parent / "synth" / "movies.csv", source / "movies.csv")
    shutil.copy(files["negative"], source / "ratings.csv")
    load_line = error_line(*run(tmp_path / "ws", "load", str(source))[::2])
    train_args = ("train", "mf", "--name", "bad", "--ratings", str(source / "ratings.csv"))
    train_line = error_line(*run(trained, *train_args)[::2])
    assert load_line == train_line
    assert train_line.endswith("ratings.csv: line 31: rating -3.0 is outside 0-10")


def test_parquet_errors_name_file_and_row(trained, files):
    path = files["nan_parquet"]
    line = error_line(*run(trained, "evaluate", "m", "--data", str(path))[::2])
    assert line == f"error: {path}: row 30: missing rating"
    path = files["list_ids"]
    for args in (
        ("train", "mf", "--name", "bad", "--ratings", str(path)),
        ("predict", "m", "--pairs", str(path)),
    ):
        line = error_line(*run(trained, *args)[::2])
        assert f"{path}: row 1: column userId holds a list ([" in line


# ---------------------------------------------------------------------- 7. fold-in files
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("new_abc", "line 3 (movieId 2): column rating: 'abc' is not a number"),
        ("new_nan", "line 3 (movieId 2): missing rating"),
        ("new_inf", "line 3 (movieId 2): rating inf is outside 0-10"),
        ("new_no_movie", "line 3: missing movieId"),
        ("new_twice", "line 4: movieId 1 is rated twice (first at line 2): give each item once"),
    ],
)
def test_fold_in_file_errors(trained, files, name, message):
    path = files[name]
    line = error_line(*run(trained, "recommend", "m", "--ratings", str(path))[::2])
    assert line == f"error: {path}: {message}"


def test_fold_in_unknown_movies_are_ignored_with_a_note(trained, files):
    path = files["new_ok"]
    args = ["--workspace", str(trained), "recommend", "m", "--ratings", str(path), "-n", "3"]
    result = CliRunner().invoke(main, [*args, "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 4
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "999999" in notes[0] and "ignores 1 movieId" in notes[0]
    model = MatrixFactorization(num_factors=2).fit(random_ratings())
    ratings = pd.DataFrame({"movieId": [1, 999999], "rating": [5.0, 3.0]})
    assert model.ignored_items(ratings).tolist() == [999999]
    assert model.ignored_items({1: 4.0}).size == 0
    with pytest.raises(DataError, match="movieId 1 is rated twice"):
        model.fold_in(pd.DataFrame({"movieId": [1, 1], "rating": [5.0, 3.0]}))
    with pytest.raises(DataError, match="movieId 3 is nan: ratings must be finite numbers"):
        model.fold_in({3: NAN})
