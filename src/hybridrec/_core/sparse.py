"""Rows of a sparse matrix (CSR) and top-N selection: the kernels' shared data layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numba import njit

from hybridrec._errors import DataError

__all__ = ["Csr", "check_n", "csr_from_coo", "csr_from_table", "empty_csr", "rows_of", "top_n"]


@dataclass(frozen=True)
class Csr:
    """Rows of a sparse matrix: ``indices[indptr[r]:indptr[r+1]]`` (and ``values``) of row r."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @classmethod
    def build(
        cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, *, sort_cols: bool
    ) -> Csr:
        if sort_cols:
            # Two stable counting sorts (by column, then by row) leave columns sorted in a row.
            _, by_col = csr_from_coo(cols, int(cols.max()) + 1 if cols.size else 1)
            rows, cols, values = rows[by_col], cols[by_col], values[by_col]
        indptr, order = csr_from_coo(rows, n_rows)
        return cls(indptr, cols[order], values[order])


@njit(cache=True)
def csr_from_coo(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of ``rows``: returns ``(indptr, order)`` such that ``order`` lists the
    entries row by row, keeping the input order within a row (stable)."""
    counts = np.zeros(n_rows + 1, dtype=np.int64)
    for r in rows:
        counts[r + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    order = np.empty(rows.shape[0], dtype=np.int64)
    for j in range(rows.shape[0]):
        r = rows[j]
        order[fill[r]] = j
        fill[r] += 1
    return indptr, order


def check_n(n: int) -> None:
    """The length asked of a top-``n`` list: at least 1 (a :class:`DataError` otherwise)."""
    if n < 1:
        raise DataError(f"n must be at least 1, got {n}")


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest finite ``scores``, best first."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size <= n:
        return finite[np.argsort(-scores[finite], kind="stable")]
    part = finite[np.argpartition(-scores[finite], n - 1)[:n]]
    return part[np.argsort(-scores[part], kind="stable")]


def rows_of(csr: Csr, rows: np.ndarray) -> Csr:
    """The CSR of the given rows only, in that order."""
    starts, ends = csr.indptr[rows], csr.indptr[rows + 1]
    counts = ends - starts
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # positions of the kept entries: each row's start, then consecutive
    positions = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
    return Csr(indptr, csr.indices[positions], csr.values[positions])


def empty_csr(n_rows: int) -> Csr:
    """``n_rows`` rows with nothing in them."""
    return Csr(
        np.zeros(n_rows + 1, dtype=np.int64),
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.float32),
    )


def csr_from_table(table: pa.Table, n_rows: int) -> Csr:
    """The CSR of a model's saved ``(user_index, item_index)`` pairs (sorted by user)."""
    rows = table["user_index"].to_numpy()
    cols = table["item_index"].to_numpy()
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.add.at(indptr, rows.astype(np.int64) + 1, 1)
    return Csr(np.cumsum(indptr), cols, np.ones(cols.size, dtype=np.float32))
