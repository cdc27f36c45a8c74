"""Model artifacts: a directory of Parquet tables plus ``meta.json``, written atomically.

A crash never leaves half a model: everything is written to a sibling temporary directory which
is then renamed into place. No pickle anywhere: tables are Parquet, the rest is JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hybridrec._errors import ModelError, NotFoundError

__all__ = ["FORMAT_VERSION", "read_meta", "read_table", "write_artifact"]

FORMAT_VERSION = 1
META_FILE = "meta.json"


def move_into_place(staging: Path, path: Path) -> None:
    """Rename the finished directory ``staging`` to ``path``, replacing any old directory
    there; the old one is renamed aside first, so ``path`` always holds a whole model."""
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
        os.rename(staging, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, path)


def write_artifact(
    path: str | Path,
    meta: Mapping[str, Any],
    tables: Mapping[str, pa.Table],
    *,
    extra_dirs: Sequence[Path] = (),
) -> None:
    """Write ``meta`` and ``tables`` as a model directory at ``path``, replacing any old one.

    ``extra_dirs`` (e.g. a sub-model written by its own ``save``) are moved inside it under
    their own names before the directory is renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
        for extra in extra_dirs:
            shutil.move(str(extra), str(tmp / extra.name))
        full_meta = {"format_version": FORMAT_VERSION, **meta}
        (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2, default=_json_default))
        move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and check ``meta.json``; unknown format versions are a clear error."""
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise NotFoundError(f"no model at {path} (missing {META_FILE})")
    try:
        meta: dict[str, Any] = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_file}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{meta_file}: model format version {version!r} is not supported by this hybridrec "
            f"(it reads version {FORMAT_VERSION}); retrain the model or use a matching release"
        )
    return meta


def read_table(path: str | Path, name: str) -> pa.Table:
    file = Path(path) / f"{name}.parquet"
    if not file.is_file():
        raise ModelError(f"model at {path} is incomplete: {file.name} is missing")
    return pq.read_table(file)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in meta.json")
