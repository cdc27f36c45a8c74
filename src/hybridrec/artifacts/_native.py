"""Readers of the model files that native libraries parse (NumPy ``.npz`` arrays, LightGBM
text models): each file is checked against the checksum its model recorded
(:func:`hybridrec.artifacts.verify_file`), then parsed defensively, so a corrupt file is a
one-line :class:`~hybridrec.ModelError` naming it, never a crash inside NumPy or LightGBM."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec._errors import ModelError, first_line
from hybridrec.artifacts._directory import verify_file
from hybridrec.artifacts._schema import RETRAIN

__all__ = ["read_lightgbm", "read_npz"]


def read_npz(file: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file (never pickled objects), checked against its checksum."""
    file = Path(file)
    verify_file(file)
    try:
        with np.load(file, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        reason = "not a NumPy .npz archive" if "pickle" in str(exc) else first_line(exc)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        reason = first_line(exc) or type(exc).__name__
    raise ModelError(f"{file}: not a readable .npz array file ({reason}); {RETRAIN}")


def read_lightgbm(file: str | Path, lgb: Any) -> Any:
    """A LightGBM ``Booster`` from its text model ``file`` (``lgb``: the imported module).

    The file is checked against its checksum, then its layout (the header's ``tree_sizes``
    must point at every ``Tree=`` block and ``end of trees`` must follow): LightGBM parses the
    trees in parallel and aborts the whole process on a malformed one."""
    file = Path(file)
    verify_file(file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ModelError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    problem = _lightgbm_layout_problem(data)
    if problem is None:
        try:
            return lgb.Booster(model_str=data.decode("utf-8"))
        except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
            problem = first_line(exc)
    raise ModelError(f"{file}: not a readable LightGBM model ({problem}); {RETRAIN}")


def _lightgbm_layout_problem(data: bytes) -> str | None:
    """What is wrong with the layout of a LightGBM text model, or None."""
    if not data.startswith(b"tree\n"):
        return "it does not start with LightGBM's 'tree' header"
    end = data.find(b"\nend of trees")
    if end < 0:
        return "no complete list of trees: the file is truncated"
    first = data.find(b"\nTree=", 0, end)
    sizes: list[int] = []
    for line in data[: end if first < 0 else first].split(b"\n"):
        if line.startswith(b"tree_sizes="):
            try:
                sizes = [int(s) for s in line[len(b"tree_sizes=") :].split()]
            except ValueError:
                return "its tree_sizes header is not a list of integers"
    at = first + 1
    for size in sizes:  # LightGBM seeks to each tree by these sizes, in parallel
        if first < 0 or size < 1 or not data.startswith(b"Tree=", at):
            return "the trees do not match the tree_sizes header"
        at += size
    if sizes and not data[at:].lstrip(b"\n").startswith(b"end of trees"):
        return "the trees do not match the tree_sizes header"
    return None
