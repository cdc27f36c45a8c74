"""A model directory: Parquet tables plus ``meta.json``, written atomically, read checked.

A crash never leaves half a model: everything is written to a sibling temporary directory which
is then renamed into place. No pickle anywhere: tables are Parquet, the rest is JSON (and the
regressors' ``.npz`` arrays and LightGBM text models, read without pickle).

Integrity: ``write_artifact`` records the SHA-256 and size of every file of the directory,
sub-directories included (a hybrid's ``mf/`` and ``regressor/``, a ranking model's ``ranker/``),
under ``checksums`` in ``meta.json``. The readers (:func:`read_table` here, those of
:mod:`hybridrec.artifacts._native` for ``.npz`` and LightGBM files) check a file against that record
(:func:`verify_file`) before a native library parses it, so an edited or truncated file is a
one-line :class:`~hybridrec.ModelError` naming it, never a crash inside Arrow, NumPy or
LightGBM. Models saved before checksums existed (no ``checksums`` key) load unchecked; their
files are still parsed defensively and any parse failure is a :class:`~hybridrec.ModelError`
naming the file.

``meta.json`` itself is validated rather than checksummed (:func:`read_meta`, with the rules
of :mod:`hybridrec.artifacts._schema`): a JSON object whose known keys have the right types; a key a
loader needs and does not find is a :class:`~hybridrec.ModelError` naming the file and key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hybridrec._errors import ModelError, NotFoundError, first_line
from hybridrec.artifacts._schema import CHECKSUMS, RETRAIN, MetaDict, check_meta_keys, json_type

__all__ = [
    "FORMAT_VERSION",
    "check_list_width",
    "read_meta",
    "read_table",
    "verify_file",
    "write_artifact",
]

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
    their own names before the directory is renamed into place. The SHA-256 and size of every
    file in the directory (those of ``extra_dirs`` too) go to ``meta.json`` under
    ``checksums``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
        for extra in extra_dirs:
            shutil.move(str(extra), str(tmp / extra.name))
        full_meta = {"format_version": FORMAT_VERSION, **meta, CHECKSUMS: file_checksums(tmp)}
        (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2, default=_json_default))
        move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_checksums(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"sha256", "size"}}`` of every file under ``root`` but its own
    ``meta.json`` (a sub-directory's ``meta.json`` is included)."""
    sums: dict[str, dict[str, Any]] = {}
    for file in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel != META_FILE:
            sums[rel] = {"sha256": _sha256(file), "size": file.stat().st_size}
    return sums


def verify_file(file: str | Path) -> Path:
    """Check ``file`` against the checksum its model directory recorded; return it.

    The model directory of a file is the directory holding it when that has a ``meta.json``,
    else its parent (the files of a hybrid's ``regressor/`` are recorded by the hybrid's
    ``meta.json``; those of its ``mf/`` by ``mf/meta.json``, which its own ``save`` wrote). A
    model saved without checksums is not checked, nor is ``meta.json`` (see :func:`read_meta`).
    Raises :class:`ModelError` naming the file when it differs from what was saved, or when a
    model that records its files did not record this one."""
    file = Path(file)
    where = file.absolute()
    root = where.parent
    if not (root / META_FILE).is_file():
        root = root.parent
    recorded = _recorded_checksums(root)
    rel = where.relative_to(root).as_posix()
    if recorded is None or rel == META_FILE:
        return file
    entry = recorded.get(rel)
    if entry is None:
        raise ModelError(
            f"{file}: not one of the files saved with the model at {root} "
            f"(its {META_FILE} does not list it); {RETRAIN}"
        )
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("size"), int)
    ):
        raise ModelError(f"{root / META_FILE}: malformed checksum entry for {rel!r}; {RETRAIN}")
    try:
        size = file.stat().st_size
        digest = _sha256(file) if size == entry["size"] else None
    except OSError as exc:
        raise ModelError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    if digest != entry["sha256"]:
        raise ModelError(f"{file}: checksum mismatch: the file is corrupt or was edited; {RETRAIN}")
    return file


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read and check ``meta.json``: a JSON object of a supported format version whose keys
    have the types its kind's loader needs; anything else is a one-line :class:`ModelError`
    naming the file. Looking up a missing key in the result (``meta["params"]``) is a
    :class:`ModelError` naming the file and the key, not a ``KeyError``."""
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise NotFoundError(f"no model at {path} (missing {META_FILE})")
    try:
        loaded = json.loads(meta_file.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_file}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    except UnicodeDecodeError:
        raise ModelError(f"{meta_file}: not valid JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise ModelError(f"{meta_file}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(loaded, dict):
        raise ModelError(
            f"{meta_file}: expected a JSON object, found {json_type(loaded)}; {RETRAIN}"
        )
    meta: dict[str, Any] = MetaDict(loaded, meta_file)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{meta_file}: model format version {version!r} is not supported by this hybridrec "
            f"(it reads version {FORMAT_VERSION}); retrain the model or use a matching release"
        )
    check_meta_keys(meta, meta_file)
    return meta


def read_table(path: str | Path, name: str) -> pa.Table:
    """Table ``name`` of the model directory ``path``, checked against its checksum."""
    file = Path(path) / f"{name}.parquet"
    if not file.is_file():
        raise ModelError(f"model at {path} is incomplete: {file.name} is missing")
    verify_file(file)
    try:
        return pq.read_table(file)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = first_line(exc).replace(f"Could not open Parquet input source '{file}': ", "")
        raise ModelError(f"{file}: not a readable Parquet file ({reason}); {RETRAIN}") from None


def check_list_width(path: str | Path, name: str, table: pa.Table, column: str, width: int) -> None:
    """Every row of the list column ``column`` of table ``name`` holds ``width`` values (the
    width ``meta.json`` gives); a missing column or another width is a :class:`ModelError`."""
    file = Path(path) / f"{name}.parquet"
    if column not in table.column_names:
        raise ModelError(f"{file}: no {column!r} column; {RETRAIN}")
    lengths = pc.list_value_length(table[column])
    low, high = pc.min(lengths).as_py(), pc.max(lengths).as_py()
    if table.num_rows and not low == high == width:
        found = low if low == high else f"{low} to {high}"
        raise ModelError(
            f"{file}: {column!r} holds {found} values per row but {Path(path) / META_FILE} "
            f"says {width}; the files do not belong together ({RETRAIN})"
        )


# ---------------------------------------------------------------------- helpers
def _sha256(file: Path) -> str:
    with open(file, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _recorded_checksums(root: Path) -> dict[str, Any] | None:
    """The ``checksums`` recorded by ``root/meta.json``; None without one (no meta.json, not a
    JSON object, or a model saved before checksums existed)."""
    meta_file = root / META_FILE
    try:
        meta = json.loads(meta_file.read_bytes())
    except (OSError, ValueError):
        return None  # no model here, or one whose meta.json read_meta reports on its own
    if not isinstance(meta, dict) or CHECKSUMS not in meta:
        return None
    sums = meta[CHECKSUMS]
    if not isinstance(sums, dict):
        raise ModelError(f"{meta_file}: {CHECKSUMS!r} should be a JSON object; {RETRAIN}")
    return sums


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in meta.json")
