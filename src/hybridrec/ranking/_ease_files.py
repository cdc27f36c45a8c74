"""EASE's model files: the seen / training pairs as Parquet rows and the weights as a raw
``.npy`` (float32, no pickle), checked against their checksums and memory-mapped on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hybridrec import artifacts
from hybridrec._core.sparse import Csr
from hybridrec._errors import ModelError
from hybridrec.artifacts import RETRAIN


def csr_table(csr: Csr) -> Any:
    import pyarrow as pa

    rows = np.repeat(np.arange(csr.indptr.size - 1, dtype=np.int32), np.diff(csr.indptr))
    return pa.table({"user_index": rows, "item_index": csr.indices.astype(np.int32)})


def csr_from(table: Any, n_rows: int, n_cols: int, path: Path) -> Csr:
    rows = table["user_index"].to_numpy().astype(np.int64)
    cols = table["item_index"].to_numpy().astype(np.int32)
    if rows.size and (
        rows.min() < 0 or rows.max() >= n_rows or cols.min() < 0 or cols.max() >= n_cols
    ):
        raise ModelError(f"{path}: seen/train pairs out of range; {RETRAIN}")
    return Csr.build(rows, cols, np.ones(cols.size, np.float32), n_rows, sort_cols=True)


def read_weights(file: Path, n: int) -> np.ndarray:
    """The ``n × n`` float32 weights, checked against their checksum, memory-mapped."""
    if not file.is_file():
        raise ModelError(f"{file}: missing; {RETRAIN}")
    artifacts.verify_file(file)
    try:
        weights = np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ModelError(f"{file}: not a readable .npy array ({exc}); {RETRAIN}") from None
    if weights.dtype != np.float32 or weights.shape != (n, n):
        raise ModelError(
            f"{file}: holds {weights.dtype} {weights.shape}, expected float32 ({n}, {n}); {RETRAIN}"
        )
    return weights
