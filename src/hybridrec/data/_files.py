"""Reading user-supplied CSV / Parquet files (``--pairs``, ``--data``) with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hybridrec._errors import DataError, NotFoundError

__all__ = ["read_frame"]


def read_frame(path: str | Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (header row) or Parquet file; check the ``required`` columns are present."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pq.read_table(path)
        else:
            table = pacsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read: {first_line}") from None
    frame = table.to_pandas()
    if frame.empty:
        raise DataError(f"{path}: no rows")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column {', '.join(missing)} "
            f"(columns found: {', '.join(map(str, frame.columns))})"
        )
    return frame
