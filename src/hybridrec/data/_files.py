"""Reading user-supplied CSV / Parquet files (``--pairs``, ``--data``, ``--ratings``) with
clear errors that name the file and the line (CSV, header counted) or row (Parquet)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hybridrec._errors import DataError, NotFoundError, first_line
from hybridrec.data._ratings import (
    check_scalar_ids,
    id_values,
    new_user_ratings,
    rating_values,
)

__all__ = ["read_frame", "read_new_user_ratings", "read_ratings"]


def read_frame(path: str | Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (header row) or Parquet file; check the ``required`` columns are present."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    try:
        table = pq.read_table(path) if _is_parquet(path) else pacsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _read_error(path, exc) from None
    frame = table.to_pandas()
    if frame.empty:
        raise DataError(f"{path}: no rows")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column {', '.join(missing)} "
            f"(columns found: {', '.join(map(str, frame.columns))})"
        )
    for column in ("userId", "movieId"):
        if column in required:
            check_scalar_ids(frame[column], column, _locator(path))
    return frame


def read_ratings(
    path: str | Path, required: Sequence[str] = ("userId", "movieId", "rating")
) -> pd.DataFrame:
    """:func:`read_frame`, then check the ratings as ``hybridrec load`` does: every id present
    and an integer or a string, every rating a number on the load scale (0-10). Errors name
    the file and line (CSV) or row (Parquet)."""
    frame = read_frame(path, required)
    where = _locator(Path(path))
    for column in ("userId", "movieId"):
        if column in required:
            id_values(frame[column], column, where)
    if "rating" in required:
        rating_values(frame["rating"], where, scale=True)
    return frame


def read_new_user_ratings(path: str | Path) -> pd.DataFrame:
    """A new user's ratings file (``movieId``, ``rating``) for fold-in, checked as
    :func:`read_ratings` and with each movieId at most once."""
    frame = read_frame(path, ("movieId", "rating"))
    new_user_ratings(frame, _locator(Path(path)), scale=True)
    return frame


# ---------------------------------------------------------------------- where things are
def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _locator(path: Path) -> Callable[[int], str]:
    """``where(data row)``: ``"FILE: line N"`` (CSV, 1-based, header and blank lines counted)
    or ``"FILE: row N"`` (Parquet, 1-based)."""
    if _is_parquet(path):
        return lambda row: f"{path}: row {row + 1}"
    return lambda row: f"{path}: line {_csv_line(path, row + 1)}"


def _csv_line(path: Path, record: int) -> int:
    """1-based file line of CSV record ``record`` (0-based, the header is record 0), skipping
    the empty lines the CSV reader skips; compressed files (``.csv.gz``) are decompressed as
    the reader does. Reads the file: for error messages only."""
    seen, number, rest = -1, 0, b""
    with pa.input_stream(str(path), compression="detect") as fh:
        while True:
            chunk = fh.read(1 << 20)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop() if chunk else b""
            for raw in lines:
                number += 1
                if raw.rstrip(b"\r"):
                    seen += 1
                    if seen == record:
                        return number
            if not chunk:
                return number + 1 + record - seen


def _read_error(path: Path, exc: Exception) -> DataError:
    """One line for a file the reader refused; CSV parse errors name the line (the threaded
    reader does not know it: the file is parsed again, serially, on this error path only)."""
    text = str(exc).strip()
    if _is_parquet(path) or "CSV parse error" not in text:
        return DataError(f"{path}: cannot read: {first_line(exc)}")
    try:
        pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False))
    except (pa.ArrowInvalid, OSError) as serial:
        text = str(serial).strip()
    row = re.search(r"Row #(\d+)", text)
    count = re.search(r"Expected (\d+) columns, got (\d+)", text)
    where = f"{path}: line {_csv_line(path, int(row.group(1)) - 1)}" if row else str(path)
    if count:
        return DataError(
            f"{where}: expected {count.group(1)} ','-separated columns, found {count.group(2)}"
        )
    detail = re.sub(r"^CSV parse error: (Row #\d+: )?", "", text.splitlines()[0])
    return DataError(f"{where}: cannot read: {detail}")
