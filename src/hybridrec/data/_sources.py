"""Where data comes from: a local path, or a MovieLens name downloaded from GroupLens and cached.

Offline, ``ml-100k`` falls back to the PyPI wheel ``recbole==1.2.1``, which ships the real
MovieLens 100K in RecBole's atomic layout (``recbole/dataset_example/ml-100k/``). Nothing here runs
at import time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from hybridrec._core.progress import progress_bar
from hybridrec._errors import DataError, NotFoundError

__all__ = [
    "DATASETS",
    "GROUPLENS_URL",
    "RECBOLE_WHEEL",
    "default_cache_dir",
    "download",
    "fetch_recbole_wheel",
    "resolve_source",
]

log = logging.getLogger(__name__)

#: Dataset names -> MD5 of the zip as published by GroupLens. ``None``: no fixed checksum
#: (ml-latest* are rebuilt from time to time; ml-32m's is not recorded here), so the download is
#: used unchecked and a warning is logged.
DATASETS: dict[str, str | None] = {
    "ml-100k": "0e33842e24a9c977be4e0107933c0723",
    "ml-1m": "c4d9eecfca2ab87c1945afe126590906",
    "ml-10m": "ce571fd55effeba0271552578f2648bd",
    "ml-20m": "cd245b17a1ae2cc31bb14903e1204af3",
    "ml-25m": "6b51fb2759a8657d3bfcbfc42b592ada",
    "ml-32m": None,
    "ml-latest-small": None,
    "ml-latest": None,
}

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/{name}.zip"

#: The wheel that carries MovieLens 100K, and its SHA-256 as served by PyPI.
RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_WHEEL_FILE = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"

CONNECT_TIMEOUT = 10.0


def default_cache_dir() -> Path:
    """``$HYBRIDREC_CACHE``, else ``~/.cache/hybridrec``."""
    env = os.environ.get("HYBRIDREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hybridrec"


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
    show_progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` atomically (temporary file + rename), checking ``md5``.

    Network failures raise :class:`NotFoundError`; a checksum mismatch raises :class:`DataError`
    and leaves nothing behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        log.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
                total = getattr(response, "length", None)
                with progress_bar(f"downloading {dest.name}", total, show=show_progress) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        bar.advance(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise NotFoundError(f"cannot download {url} ({_one_line(reason)})") from None
        if md5 is not None:
            got = _digest(part, "md5")
            if got != md5:
                raise DataError(
                    f"{url}: downloaded file has MD5 {got}, expected {md5}; try again, or "
                    f"download it yourself and pass its path"
                )
        else:
            log.warning("%s has no published checksum: used unchecked", dest.name)
        os.replace(part, dest)
        return dest
    finally:
        part.unlink(missing_ok=True)


def fetch_recbole_wheel(cache_dir: Path) -> Path:
    """The ``recbole==1.2.1`` wheel from PyPI (through pip), cached under ``cache_dir/wheels``."""
    wheels = cache_dir / "wheels"
    wheel = wheels / RECBOLE_WHEEL_FILE
    if wheel.is_file():
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pip-", dir=wheels))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            RECBOLE_WHEEL,
            "-d",
            str(staging),
        ]
        log.info("fetching MovieLens 100K from PyPI: %s", " ".join(cmd[2:]))
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NotFoundError(f"cannot run pip to fetch {RECBOLE_WHEEL} ({exc})") from None
        fetched = staging / RECBOLE_WHEEL_FILE
        if done.returncode != 0 or not fetched.is_file():
            err = [line for line in done.stderr.splitlines() if line.strip()]
            reason = err[-1].strip() if err else f"pip exited with {done.returncode}"
            raise NotFoundError(f"cannot fetch {RECBOLE_WHEEL} from PyPI ({reason})")
        got = _digest(fetched, "sha256")
        if got != RECBOLE_WHEEL_SHA256:
            raise DataError(
                f"{RECBOLE_WHEEL_FILE}: SHA-256 {got} does not match {RECBOLE_WHEEL_SHA256}"
            )
        os.replace(fetched, wheel)
        return wheel
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_source(
    source: str | Path, *, cache_dir: str | Path | None = None, show_progress: bool = False
) -> Path:
    """Turn ``source`` into a local folder or archive to load.

    An existing path (folder, ``.zip``, ``.whl``) is returned as is. A MovieLens name
    (:data:`DATASETS`) is served from the cache or downloaded from GroupLens into
    ``cache_dir`` (``$HYBRIDREC_CACHE`` or ``~/.cache/hybridrec``). When GroupLens cannot be
    reached, ``ml-100k`` comes from the ``recbole==1.2.1`` wheel on PyPI instead; the wheel is
    cached, so later calls need no network. Anything else raises :class:`NotFoundError`.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    name = str(source)
    if name not in DATASETS:
        if os.sep in name or "/" in name or "." in name:
            raise NotFoundError(f"no such file or folder: {path}")
        raise NotFoundError(
            f"unknown source {name!r}: pass a folder, a .zip or a .whl, or one of "
            f"{', '.join(DATASETS)}"
        )
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cached_zip = cache / f"{name}.zip"
    if cached_zip.is_file():
        log.info("using cached %s", cached_zip)
        return cached_zip
    if name == "ml-100k" and (cache / "wheels" / RECBOLE_WHEEL_FILE).is_file():
        log.info("using cached %s", cache / "wheels" / RECBOLE_WHEEL_FILE)
        return cache / "wheels" / RECBOLE_WHEEL_FILE
    url = GROUPLENS_URL.format(name=name)
    try:
        return download(url, cached_zip, md5=DATASETS[name], show_progress=show_progress)
    except NotFoundError as exc:
        if name != "ml-100k":
            raise NotFoundError(
                f"{exc}; download {name}.zip on a machine with internet access and run "
                f"`hybridrec load /path/to/{name}.zip`"
            ) from None
        log.warning("%s; falling back to the %s wheel from PyPI", exc, RECBOLE_WHEEL)
    try:
        return fetch_recbole_wheel(cache)
    except NotFoundError as exc:
        raise NotFoundError(
            f"cannot get ml-100k from GroupLens nor PyPI ({exc}); download ml-100k.zip and run "
            f"`hybridrec load /path/to/ml-100k.zip`"
        ) from None


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:200]
