"""Sources: local paths, GroupLens names (download, checksum, cache) and the ml-100k wheel."""

from __future__ import annotations

import hashlib
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _support.data import write_ml1m, write_recbole, zip_folder

from hybridrec import DataError, NotFoundError
from hybridrec.data import _sources
from hybridrec.data._sources import RECBOLE_WHEEL_FILE, default_cache_dir, resolve_source
from hybridrec.workspace import Workspace

REFUSED = "http://127.0.0.1:9/{name}.zip"  # nothing listens on the discard port: fails at once


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("no network expected")


def _fake_wheel(tmp_path: Path) -> Path:
    """A wheel shaped like recbole's: the dataset under recbole/dataset_example/ml-100k/."""
    data = write_recbole(tmp_path / "wheel-src" / "recbole" / "dataset_example" / "ml-100k")
    (data.parents[1] / "__init__.py").write_text("")
    (tmp_path / "built").mkdir()
    return zip_folder(tmp_path / "wheel-src", tmp_path / "built" / RECBOLE_WHEEL_FILE)


def _fake_pip(wheel: Path, calls: list[list[str]]) -> Any:
    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / RECBOLE_WHEEL_FILE).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


def test_existing_paths_are_used_as_is(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml-1m")
    assert resolve_source(folder) == folder
    archive = zip_folder(folder, tmp_path / "x.zip")
    assert resolve_source(str(archive)) == archive


def test_missing_path_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file or folder"):
        resolve_source(tmp_path / "missing.zip")
    with pytest.raises(NotFoundError) as err:
        resolve_source("ml-5m")
    assert "unknown source 'ml-5m'" in str(err.value) and "ml-latest-small" in str(err.value)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HYBRIDREC_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HYBRIDREC_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "hybridrec"


def test_download_checks_md5_then_serves_from_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "server"
    served.mkdir()
    archive = zip_folder(write_ml1m(tmp_path / "src"), served / "ml-1m.zip", prefix="ml-1m/")
    monkeypatch.setattr(_sources, "GROUPLENS_URL", served.as_uri() + "/{name}.zip")
    monkeypatch.setitem(_sources.DATASETS, "ml-1m", _md5(archive))
    cache = tmp_path / "cache"
    got = resolve_source("ml-1m", cache_dir=cache)
    assert got == cache / "ml-1m.zip" and got.read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["ml-1m.zip"]  # no temp file left
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert resolve_source("ml-1m", cache_dir=cache) == got
    summary = Workspace(tmp_path / "ws").load("ml-1m", cache_dir=cache)
    assert (summary.layout, summary.n_ratings, summary.source) == ("ml-1m", 7, str(got))


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "server"
    served.mkdir()
    zip_folder(write_ml1m(tmp_path / "src"), served / "ml-10m.zip")
    monkeypatch.setattr(_sources, "GROUPLENS_URL", served.as_uri() + "/{name}.zip")
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        resolve_source("ml-10m", cache_dir=cache)
    assert "expected ce571fd55effeba0271552578f2648bd" in str(err.value)
    assert "\n" not in str(err.value)
    assert list(cache.iterdir()) == []


def test_failed_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sources, "GROUPLENS_URL", REFUSED)
    with pytest.raises(NotFoundError) as err:
        resolve_source("ml-20m", cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert msg.startswith("cannot download http://127.0.0.1:9/ml-20m.zip")
    assert msg.endswith("run `hybridrec load /path/to/ml-20m.zip`") and "\n" not in msg
    assert list((tmp_path / "cache").iterdir()) == []


def test_ml100k_falls_back_to_the_wheel_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _fake_wheel(tmp_path)
    monkeypatch.setattr(_sources, "GROUPLENS_URL", REFUSED)
    monkeypatch.setattr(
        _sources, "RECBOLE_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest()
    )
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _fake_pip(wheel, calls))
    cache = tmp_path / "cache"
    got = resolve_source("ml-100k", cache_dir=cache)
    assert got == cache / "wheels" / RECBOLE_WHEEL_FILE
    assert len(calls) == 1 and "recbole==1.2.1" in calls[0] and "--no-deps" in calls[0]
    assert sorted(p.name for p in (cache / "wheels").iterdir()) == [RECBOLE_WHEEL_FILE]
    # second time: straight from the cache, no network of any kind
    monkeypatch.setattr(subprocess, "run", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    summary = Workspace(tmp_path / "ws").load("ml-100k", cache_dir=cache)
    assert summary.source == str(got)
    assert (summary.layout, summary.n_ratings, summary.n_users) == ("recbole", 7, 3)


def test_ml100k_wheel_with_wrong_hash_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sources, "GROUPLENS_URL", REFUSED)
    monkeypatch.setattr(subprocess, "run", _fake_pip(_fake_wheel(tmp_path), []))
    with pytest.raises(DataError, match=r"recbole-1\.2\.1-py3-none-any\.whl: SHA-256"):
        resolve_source("ml-100k", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "wheels").iterdir()) == []


def test_ml100k_when_pip_fails_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(_sources, "GROUPLENS_URL", REFUSED)
    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(NotFoundError) as err:
        resolve_source("ml-100k", cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert "No matching distribution found" in msg and "\n" not in msg
    assert msg.endswith("run `hybridrec load /path/to/ml-100k.zip`")


@pytest.mark.realdata
def test_real_ml100k_from_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real fallback: pip fetches recbole==1.2.1 and its MovieLens 100K loads."""
    monkeypatch.setattr(_sources, "GROUPLENS_URL", REFUSED)
    cache = tmp_path / "cache"
    ws = Workspace(tmp_path / "ws")
    summary = ws.load("ml-100k", cache_dir=cache)
    assert summary.source == str(cache / "wheels" / RECBOLE_WHEEL_FILE)
    assert summary.layout == "recbole"
    assert (summary.n_ratings, summary.n_users, summary.n_movies) == (100_000, 943, 1682)
    assert summary.n_duplicates_dropped == 0
    toy = ws.sql("SELECT title, genres, year FROM movies WHERE movieId = 1").iloc[0]
    assert (toy["title"], list(toy["genres"]), toy["year"]) == (
        "Toy Story",
        ["Animation", "Children", "Comedy"],
        1995,
    )
    assert list(ws.users().columns) == ["userId", "age", "gender", "occupation", "zip"]
    assert ws.sql("SELECT min(rating) AS lo, max(rating) AS hi FROM ratings").values.tolist() == [
        [1.0, 5.0]
    ]
