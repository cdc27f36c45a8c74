"""Output files: checked before anything is computed, written atomically, errors named.

Every file the CLI writes goes through :func:`check_output` (is it a place we may write, of a
type we can write?) and :func:`atomic_file` (a temporary file beside it, renamed into place), so
a failed or interrupted write never leaves half a file, never replaces the user's input, the
workspace or a model, and reports the path the user gave rather than a temporary name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from hybridrec._errors import HybridrecError

__all__ = ["atomic_file", "check_output"]


def check_output(
    out: str | Path,
    *,
    suffixes: Iterable[str],
    protected: Iterable[str | Path] = (),
    inputs: Iterable[str | Path | None] = (),
    option: str = "--out",
) -> Path:
    """``out`` as a Path, after checking that it can be written without harm.

    ``suffixes``: the accepted file types (e.g. ``(".parquet",)``); ``protected``: files and
    folders that must not be written into (the workspace database, the models folder);
    ``inputs``: files this command reads, which must not be overwritten by its output."""
    target = Path(out)
    allowed = tuple(s.lower() for s in suffixes)
    if target.is_dir():
        raise HybridrecError(f"{option} {out} is a folder: give a {' or '.join(allowed)} file")
    if target.suffix.lower() not in allowed:
        raise HybridrecError(
            f"{option} {out}: give a {' or '.join(allowed)} file name "
            f"(the file type is taken from the extension)"
        )
    if not target.parent.is_dir():
        raise HybridrecError(f"{option} {out}: folder {target.parent} does not exist")
    if target.exists() and not target.is_file():
        raise HybridrecError(f"{option} {out} exists and is not a regular file")
    resolved = target.resolve()
    for place in protected:
        place = Path(place).resolve()
        if resolved == place or place in resolved.parents:
            raise HybridrecError(
                f"{option} {out} would overwrite {place}, which belongs to the workspace: "
                "write somewhere else"
            )
    for source in inputs:
        if source is not None and Path(source).exists() and Path(source).resolve() == resolved:
            raise HybridrecError(f"{option} {out} is also this command's input: write elsewhere")
    return target


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds it is renamed to
    ``target``, otherwise removed. An OS error (disk full, no permission) becomes one line
    naming ``target``."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise HybridrecError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
