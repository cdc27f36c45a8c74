"""EASE's dense linear algebra: the Gram matrix of a binary user × item matrix, its in-place
inversion (LAPACK Cholesky) and the scoring of users by sums of weight rows.

Everything works on one ``n × n`` float32 buffer: the Gram matrix becomes its Cholesky factor,
then the inverse ``P``, then the weights ``B``, so the peak is one such matrix (4 n² bytes).
``_reference_weights`` is the obvious NumPy formula the tests compare against.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hybridrec._errors import DataError


@njit(cache=True, parallel=True)
def gram_upper(
    by_item_indptr: np.ndarray,
    by_item_users: np.ndarray,
    by_user_indptr: np.ndarray,
    by_user_items: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[i, j] = #users who rated both i and j`` for ``j ≥ i`` (the upper triangle; the
    lower one is left as it is). Rows are independent, so items run in parallel; a user's items
    are sorted, so the ``j ≥ i`` part of each user's row is found by a binary search."""
    n_items = by_item_indptr.size - 1
    for i in prange(n_items):
        row = out[i]
        for e in range(by_item_indptr[i], by_item_indptr[i + 1]):
            u = by_item_users[e]
            start, stop = by_user_indptr[u], by_user_indptr[u + 1]
            first = start + np.searchsorted(by_user_items[start:stop], i)
            for f in range(first, stop):
                row[by_user_items[f]] += np.float32(1.0)


@njit(cache=True, parallel=True)
def weights_from_inverse(p: np.ndarray) -> None:
    """Turn ``P`` (its upper triangle) into ``B = I − P·diag(1/diag(P))`` with a zero diagonal,
    in place: ``B[i, j] = −P[i, j] / P[j, j]``, both triangles written."""
    n = p.shape[0]
    diag = np.empty(n, dtype=np.float32)
    for i in range(n):
        diag[i] = p[i, i]
    for i in prange(n):
        p[i, i] = 0.0
        for j in range(i + 1, n):
            value = p[i, j]
            p[j, i] = -value / diag[i]
            p[i, j] = -value / diag[j]


@njit(cache=True, parallel=True)
def score_rows(
    indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Scores of the users ``rows``: the sum of the weight rows of the items each one rated
    (``x_u · B`` for a binary ``x_u``); columns of ``indices`` below 0 are skipped."""
    n = weights.shape[1]
    out = np.zeros((rows.size, n), dtype=np.float32)
    for r in prange(rows.size):
        u = rows[r]
        for e in range(indptr[u], indptr[u + 1]):
            c = indices[e]
            if c >= 0:
                for j in range(n):
                    out[r, j] += weights[c, j]
    return out


#: the largest matrix handed to LAPACK in one call: SciPy's (32-bit integer) OpenBLAS
#: segfaults in spotrf on a 26,744² float32 matrix (measured: 4 s into the call), so larger
#: ones are inverted by blocks (:func:`_invert_by_blocks`)
LAPACK_MAX_ORDER = 16_384


def invert_in_place(gram: np.ndarray, l2_reg: float) -> None:
    """Overwrite ``gram`` (its upper triangle) with ``(gram + l2_reg·I)⁻¹`` (at least its upper
    triangle)."""
    gram[np.diag_indices_from(gram)] += np.float32(l2_reg)
    if gram.shape[0] <= LAPACK_MAX_ORDER:
        _invert_spd(gram, l2_reg)
    else:
        symmetrize_upper(gram)
        _invert_by_blocks(gram, l2_reg)


def _invert_spd(a: np.ndarray, l2_reg: float) -> None:
    """``a`` (C-ordered, its upper triangle: LAPACK sees the lower triangle of the
    Fortran-ordered transpose, so nothing is copied) → the upper triangle of ``a⁻¹``, by
    Cholesky (``spotrf``) and ``spotri``."""
    from scipy.linalg import lapack

    factor, info = lapack.spotrf(a.T, lower=1, overwrite_a=1, clean=0)
    if info != 0 or not np.shares_memory(factor, a):
        raise DataError(
            f"EASE: the item Gram matrix plus l2_reg={l2_reg} is not positive definite "
            f"(LAPACK spotrf info={info}); use a larger l2_reg"
        )
    inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0 or not np.shares_memory(inverse, a):
        raise DataError(f"EASE: inverting the item Gram matrix failed (LAPACK spotri info={info})")


def _inverse_of(block: np.ndarray, l2_reg: float) -> np.ndarray:
    """The full inverse of a symmetric positive-definite block (a new array)."""
    out = np.ascontiguousarray(block, dtype=np.float32)
    if out.shape[0] <= LAPACK_MAX_ORDER:
        _invert_spd(out, l2_reg)
        symmetrize_upper(out)
    else:
        _invert_by_blocks(out, l2_reg)
    return out


def _invert_by_blocks(g: np.ndarray, l2_reg: float) -> None:
    """Invert the full symmetric ``g = [[A, B], [Bᵀ, D]]`` in place by its Schur complement
    ``S = D − Bᵀ A⁻¹ B``: with ``W = A⁻¹ B``, ``g⁻¹ = [[A⁻¹ + W S⁻¹ Wᵀ, −W S⁻¹], [·, S⁻¹]]``.
    Each LAPACK call sees a block of at most half the order; products run in NumPy's BLAS."""
    half = g.shape[0] // 2
    a_inv = _inverse_of(g[:half, :half], l2_reg)
    w = a_inv @ g[:half, half:]
    s_inv = _inverse_of(g[half:, half:] - g[:half, half:].T @ w, l2_reg)
    corner = w @ s_inv  # W S⁻¹
    g[:half, :half] = a_inv + corner @ w.T
    del a_inv
    g[:half, half:] = -corner
    g[half:, :half] = -corner.T
    g[half:, half:] = s_inv


@njit(cache=True, parallel=True)
def symmetrize_upper(a: np.ndarray) -> None:
    """Copy the upper triangle of ``a`` onto its lower triangle."""
    n = a.shape[0]
    for i in prange(n):
        for j in range(i):
            a[i, j] = a[j, i]


def ease_weights(
    by_user_indptr: np.ndarray, by_user_items: np.ndarray, n_items: int, l2_reg: float
) -> np.ndarray:
    """EASE's ``n_items × n_items`` float32 weights from a binary user × item CSR (sorted items
    per user) in one buffer: Gram, Cholesky, inverse, weights."""
    n_users = by_user_indptr.size - 1
    rows = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(by_user_indptr))
    order = np.argsort(by_user_items, kind="stable")
    item_indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(by_user_items, minlength=n_items), out=item_indptr[1:])
    gram = np.zeros((n_items, n_items), dtype=np.float32)
    gram_upper(item_indptr, rows[order], by_user_indptr, by_user_items, gram)
    invert_in_place(gram, l2_reg)
    weights_from_inverse(gram)
    return gram


def reference_weights(x: np.ndarray, l2_reg: float) -> np.ndarray:
    """The textbook formula in float64 NumPy (tests only): ``P = (XᵀX + λI)⁻¹``,
    ``B = I − P / diag(P)`` column-wise."""
    x = np.asarray(x, dtype=np.float64)
    p = np.linalg.inv(x.T @ x + l2_reg * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b
