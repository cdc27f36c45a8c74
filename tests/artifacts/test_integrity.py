"""Saved models that were corrupted, truncated or edited: a one-line error naming the file.

Every file of a model directory (sub-directories included) has its SHA-256 and size recorded in
``meta.json`` at save time and checked before Arrow, NumPy or LightGBM parse it; models saved
before checksums existed still load, and their broken files are still named in a one-line error
(never a crash of the process, a traceback or an ``internal error``). ``meta.json`` itself is
validated: a JSON object, keys of the right types, a missing key named.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support.cli import error_line, run

from hybridrec import ModelError
from hybridrec.hybrid import LinearRegressor
from hybridrec.models import load_model, model_dir

CHECKSUM = "checksum mismatch: the file is corrupt or was edited; retrain the model"


@pytest.fixture(scope="module")
def ws(trained: Path) -> Path:
    """``trained`` (MF ``m``, 4 factors) plus a linear hybrid ``hl``, a boosted hybrid ``hb``
    and a ranking model ``rk``, trained small and fast through the Python API."""
    from hybridrec.hybrid import HybridRecommender
    from hybridrec.ranking import RankingRecommender
    from hybridrec.workspace import Workspace

    workspace = Workspace(trained)
    mf = load_model(workspace.models_dir, "m")
    ratings, users, movies = workspace.ratings(), workspace.users(), workspace.movies()
    params = mf.get_params()
    fast_trees = {"n_estimators": 10, "num_leaves": 7, "n_jobs": 1}
    for name, kind, regressor in (("hl", "linear", None), ("hb", "boosted", fast_trees)):
        hybrid = HybridRecommender(
            kind,
            mf_params=params,
            regressor_params=regressor,
            n_folds=2,
            new_user_model=False,
            eval_fraction=params["eval_fraction"],
            seed=params["seed"],
        ).fit(ratings, users, movies, mf=mf)
        hybrid.save(model_dir(workspace.models_dir, name))
    small = {"num_factors": 3, "max_iterations": 2}
    RankingRecommender(
        mf_params=small,
        implicit_params=small,
        ranker_params={"num_boost_round": 3, "min_data_in_leaf": 5},
        n_candidates=10,
    ).fit(ratings, items=movies).save(model_dir(workspace.models_dir, "rk"))
    workspace.close()
    return trained


def _copy(ws: Path, name: str, new: str) -> Path:
    """A fresh copy ``new`` of model ``name`` (replacing an older copy)."""
    target = ws / "models" / new
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ws / "models" / name, target)
    return target


def _error(code: int, err: str) -> str:
    """The message of a one-line CLI error (exit code 2), without the ``error: `` prefix."""
    return error_line(code, err).removeprefix("error: ")


def _edit_meta(meta_file: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    meta = json.loads(meta_file.read_text())
    change(meta)
    meta_file.write_text(json.dumps(meta))


def _strip_checksums(model: Path) -> None:
    """Make ``model`` look saved by a release without checksums."""
    for meta_file in model.rglob("meta.json"):
        _edit_meta(meta_file, lambda meta: meta.pop("checksums"))


def _recommend(ws: Path, name: str) -> tuple[int, str, str]:
    return run(ws, "recommend", name, "--user", "1", "-n", "2", "--format", "json")


# ---------------------------------------------------------------------- what is recorded
@pytest.mark.parametrize("name", ["m", "hl", "hb", "rk"])
def test_every_saved_file_is_recorded_with_its_sha256_and_size(ws, name):
    root = ws / "models" / name
    recorded = json.loads((root / "meta.json").read_text())["checksums"]
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    del files["meta.json"]
    assert set(recorded) == set(files)
    for rel, path in files.items():
        data = path.read_bytes()
        assert recorded[rel] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if name != "m":  # the sub-directories written by their own save are covered
        assert {"mf/meta.json", "mf/users.parquet"} <= set(recorded)
        assert any(rel.startswith(("regressor/", "ranker/")) for rel in recorded)


# ---------------------------------------------------------------------- corrupt files
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


def _garbage(path: Path) -> None:
    path.write_bytes(b"garbage\n")


@pytest.mark.parametrize(
    ("model", "rel", "damage"),
    [
        ("hb", "regressor/regressor_boosted.txt", _truncate),  # used to abort (exit 134)
        ("hb", "regressor/regressor_boosted.txt", _garbage),
        ("rk", "ranker/ranker.txt", _garbage),
        ("hl", "regressor/regressor_linear.npz", _garbage),
        ("m", "users.parquet", _garbage),
        ("hb", "mf/train.parquet", _truncate),
        ("hl", "user_stats.parquet", _garbage),
    ],
)
def test_corrupt_file_is_a_checksum_error_naming_it(ws, model, rel, damage):
    copy = _copy(ws, model, f"{model}_bad")
    damage(copy / rel)
    assert _error(*_recommend(ws, copy.name)[::2]) == f"{copy / rel}: {CHECKSUM}"


def test_edited_but_same_size_file_is_caught(ws):
    copy = _copy(ws, "hl", "hl_flip")
    path = copy / "regressor" / "regressor_linear.npz"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert _error(*_recommend(ws, "hl_flip")[::2]) == f"{path}: {CHECKSUM}"


def test_file_the_model_did_not_record_is_named(ws):
    copy = _copy(ws, "hl", "hl_extra")
    _edit_meta(copy / "meta.json", lambda meta: meta["checksums"].pop("item_stats.parquet"))
    message = _error(*_recommend(ws, "hl_extra")[::2])
    assert message.startswith(f"{copy / 'item_stats.parquet'}: not one of the files saved")


# ---------------------------------------------------------------------- models without checksums
def test_model_saved_without_checksums_still_loads(ws):
    for name in ("m", "hl", "hb", "rk"):
        copy = _copy(ws, name, f"{name}_old")
        _strip_checksums(copy)
        code, out, err = _recommend(ws, copy.name)
        assert code == 0, err
        assert len(json.loads(out)) == 2


@pytest.mark.parametrize(
    ("model", "rel", "damage", "reason"),
    [
        ("hb", "regressor/regressor_boosted.txt", _garbage, "not a readable LightGBM model"),
        ("rk", "ranker/ranker.txt", _truncate, "not a readable LightGBM model"),
        ("hl", "regressor/regressor_linear.npz", _garbage, "not a readable .npz array file"),
        ("hl", "regressor/regressor_linear.npz", _truncate, "not a readable .npz array file"),
        ("m", "users.parquet", _garbage, "not a readable Parquet file"),
        ("hb", "mf/seen.parquet", _truncate, "not a readable Parquet file"),
    ],
)
def test_unchecked_garbage_is_still_a_one_line_error_naming_the_file(
    ws, model, rel, damage, reason
):
    copy = _copy(ws, model, f"{model}_oldbad")
    _strip_checksums(copy)
    damage(copy / rel)
    message = _error(*_recommend(ws, copy.name)[::2])
    assert message.startswith(f"{copy / rel}: {reason} (")
    assert message.endswith("; retrain the model")


def test_truncated_lightgbm_model_without_checksums_does_not_abort_the_process(ws):
    """LightGBM parses trees in parallel and calls std::terminate on a truncated one: run the
    CLI in its own process so that a regression shows as exit code 134 here, not a dead test
    run."""
    copy = _copy(ws, "hb", "hb_trunc")
    _strip_checksums(copy)
    _truncate(copy / "regressor" / "regressor_boosted.txt")
    cli = [sys.executable, "-c", "from hybridrec.cli import main; main()", "-w", str(ws), "-q"]
    done = subprocess.run(
        [*cli, "recommend", "hb_trunc", "--user", "1", "-n", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    file = copy / "regressor" / "regressor_boosted.txt"
    assert _error(done.returncode, done.stderr) == (
        f"{file}: not a readable LightGBM model (no complete list of trees: the file is "
        "truncated); retrain the model"
    )
    assert done.stdout == ""


def test_unchecked_tables_that_do_not_fit_name_the_model(ws):
    import pyarrow.parquet as pq

    copy = _copy(ws, "m", "m_nocol")
    _strip_checksums(copy)
    users = pq.read_table(copy / "users.parquet")
    pq.write_table(users.drop_columns(["intercept"]), copy / "users.parquet")
    assert _error(*_recommend(ws, "m_nocol")[::2]) == (
        f'{copy}: the model\'s files do not fit together (Field "intercept" does not exist '
        "in schema); retrain the model"
    )
    copy = _copy(ws, "rk", "rk_rows")
    _strip_checksums(copy)
    items = pq.read_table(copy / "item_stats.parquet")
    pq.write_table(items.slice(0, 5), copy / "item_stats.parquet")
    n_items = json.loads((copy / "mf" / "meta.json").read_text())["n_items"]
    assert _error(*_recommend(ws, "rk_rows")[::2]) == (
        f"{copy / 'item_stats'}.parquet: 5 rows but mf/ knows {n_items}; the files do not "
        "belong together (retrain the model)"
    )


def test_regressor_api_names_the_garbage_file(tmp_path):
    (tmp_path / "regressor_linear.npz").write_bytes(b"garbage\n")
    meta = {"kind": "linear", "regressor_format": 1, "params": {}, "feature_names": ["a"]}
    with pytest.raises(ModelError) as err:
        LinearRegressor.load(tmp_path, {**meta, "n_samples": 3})
    assert str(err.value) == (
        f"{tmp_path / 'regressor_linear.npz'}: not a readable .npz array file "
        "(not a NumPy .npz archive); retrain the model"
    )


# ---------------------------------------------------------------------- meta.json
def test_meta_json_that_is_not_an_object(ws):
    copy = _copy(ws, "m", "m_list")
    (copy / "meta.json").write_text("[1, 2, 3]")
    expected = f"{copy / 'meta.json'}: expected a JSON object, found an array; retrain the model"
    assert _error(*_recommend(ws, "m_list")[::2]) == expected
    code, out, err = run(ws, "models", "--format", "json")
    assert code == 0, err
    kinds = {row["name"]: row["kind"] for row in json.loads(out)}
    assert kinds["m_list"] == "unreadable" and kinds["m"] == "matrix_factorization"
    message = _error(*_recommend(ws, "no_such_model")[::2])
    assert message.startswith("no model named 'no_such_model' (models: ") and "m_list" in message
    shutil.rmtree(copy)


def _set_factors(k: int) -> Callable[[dict[str, Any]], Any]:
    return lambda meta: meta["params"].update(num_factors=k)


@pytest.mark.parametrize(
    ("model", "meta_rel", "change", "expected"),
    [
        (
            "m",
            "meta.json",
            _set_factors(7),
            "{d}/users.parquet: 'factors' holds 4 values per row but {d}/meta.json says 7; "
            "the files do not belong together (retrain the model)",
        ),
        (  # fewer factors would reshape without error: a silently wrong model
            "m",
            "meta.json",
            _set_factors(2),
            "{d}/users.parquet: 'factors' holds 4 values per row but {d}/meta.json says 2; "
            "the files do not belong together (retrain the model)",
        ),
        (
            "m",
            "meta.json",
            lambda meta: meta.pop("params"),
            "{d}/meta.json: missing key 'params'; retrain the model",
        ),
        (
            "m",
            "meta.json",
            lambda meta: meta.update(params=[4]),
            "{d}/meta.json: 'params' should be an object, not an array; retrain the model",
        ),
        (
            "m",
            "meta.json",
            lambda meta: meta["params"].update(num_factors="4"),
            "{d}/meta.json: params.num_factors should be a positive integer, not '4'; "
            "retrain the model",
        ),
        (
            "hl",
            "meta.json",
            lambda meta: meta.pop("feature_names"),
            "{d}/meta.json: missing key 'feature_names'; retrain the model",
        ),
        (
            "hl",
            "meta.json",
            lambda meta: meta["regressor"].pop("params"),
            "{d}/regressor: the regressor's metadata has no 'params'; retrain the model",
        ),
        (
            "hb",
            "meta.json",
            lambda meta: meta.update(rating_range=[1]),
            "{d}/meta.json: 'rating_range' should hold 2 values, not 1; retrain the model",
        ),
        (
            "rk",
            "mf/meta.json",
            lambda meta: meta.pop("global_mean"),
            "{d}/mf/meta.json: missing key 'global_mean'; retrain the model",
        ),
    ],
)
def test_edited_meta_json_names_the_file_and_the_problem(ws, model, meta_rel, change, expected):
    copy = _copy(ws, model, f"{model}_meta")
    _edit_meta(copy / meta_rel, change)
    assert _error(*_recommend(ws, copy.name)[::2]) == expected.format(d=copy)


def test_missing_key_raises_model_error_through_the_api(ws):
    copy = _copy(ws, "m", "m_api")
    _edit_meta(copy / "meta.json", lambda meta: meta.pop("training_log"))
    with pytest.raises(ModelError, match=r"meta\.json: missing key 'training_log'"):
        load_model(ws / "models", "m_api")


# ---------------------------------------------------------------------- kinds
def test_explain_names_the_real_kind(ws):
    message = _error(*run(ws, "explain", "rk", "--user", "1", "--item", "1")[::2])
    assert message == "model 'rk' is a ranking model: explain needs a hybrid model"
    message = _error(*run(ws, "explain", "m", "--user", "1", "--item", "1")[::2])
    assert message == "model 'm' is a matrix factorization model: explain needs a hybrid model"


@pytest.mark.parametrize(("name", "kind"), [("hl", "hybrid"), ("rk", "ranking")])
def test_ml_weights_of_a_hybrid_or_ranking_model_says_so(ws, name, kind):
    code, _, err = run(ws, "sql", f"SELECT count(*) FROM ml_weights('{name}')")
    assert _error(code, err) == (
        f"ml_weights: '{name}' is a {kind} model; ml_weights needs a matrix factorization "
        f"model (for the weights of the MF inside it: hybridrec weights {name})"
    )


@pytest.mark.parametrize("name", ["../m", "../models/m", "m/../m", ".hidden"])
def test_ml_weights_rejects_names_that_are_not_plain_words(ws, name):
    code, _, err = run(ws, "sql", f"SELECT count(*) FROM ml_weights('{name}')")
    assert _error(code, err) == (
        f"ml_weights: invalid model name '{name}': use letters, digits, '_', '-' or '.', "
        "up to 100 characters"
    )


def test_ml_weights_of_an_mf_and_of_no_model(ws):
    code, out, err = run(ws, "sql", "SELECT count(*) AS n FROM ml_weights('m')", "--format", "json")
    assert code == 0, err
    meta = json.loads((ws / "models" / "m" / "meta.json").read_text())
    assert json.loads(out)[0]["n"] == meta["n_users"] + meta["n_items"] + 1
    code, _, err = run(ws, "sql", "SELECT count(*) FROM ml_weights('nope')")
    assert _error(code, err) == f"no model 'nope' in {ws / 'models'}"
