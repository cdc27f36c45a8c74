"""Numba kernels of implicit-feedback ALS (Hu, Koren & Volinsky 2008): the half-step solvers
and the training loss.

Row ``u`` of a half-step minimises ``Σ_i c_ui (p_ui − x_u·y_i)² + λ |x_u|²`` over *all*
columns, with preference ``p = 1`` and confidence ``c = 1 + α r`` where a rating exists and
``p = 0, c = 1`` elsewhere. With ``G = YᵀY`` (shared by every row) the normal equations only
touch the rated columns::

    A x = b,   A = G + Σ_rated (c − 1) y yᵀ + λ I,   b = Σ_rated c y

Two solvers, parallel over rows (``prange``), factors in float32:

- :func:`solve_side_cholesky` forms ``A`` exactly and solves it by Cholesky: per row
  ``n_u k²/2`` multiply-adds for the weighted Gram matrix (the explicit ALS's vectorised Gram
  tile on the rows ``√(c−1) y``) and ``k³/6`` for the factorisation.
- :func:`solve_side_cg` takes a few conjugate-gradient steps on the same system, warm-started
  from the row's current factors, as the ``implicit`` library does (Takács, Pilászy & Tikk
  2011): each step costs ``2 n_u k`` (the product ``Σ (c−1)(y·p) y`` without forming ``A``)
  plus ``k²`` (``G p``). At 64 factors and three steps that is a quarter of the Cholesky
  path's work; with ``k`` steps it is the exact solution (up to round-off).

``_reference.solve_side_implicit_reference`` is the slow dense version; the tests compare.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._kernels import _new_system, _solve_spd
from ._simd import gram_upper

#: ratings per gathered block of the Cholesky path (float32 sums within a block)
_BLOCK = 256
#: rows handed to a thread at a time (each thread allocates its scratch once per chunk)
_ROWS_PER_TASK = 64
#: squared residual norm below which conjugate gradient stops early (as ``implicit`` does)
_CG_TOLERANCE = 1e-20


@njit(parallel=True, cache=True, fastmath=True)
def solve_side_cholesky(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    gram: np.ndarray,
    alpha: float,
    reg: float,
    out_factors: np.ndarray,
) -> None:
    """Exact half-step: every row's ``A`` and ``b`` formed and solved by Cholesky.

    The rated vectors are gathered a block at a time as ``√(c − 1) y`` and their Gram matrix
    accumulated by :func:`_simd.gram_upper` (float32 within a block, float64 across blocks);
    ``b`` is summed alongside in float64. Rows without ratings get zero factors.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    n_tasks = (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(n_tasks):
        # column k stays zero: gram_upper's "target" column, unused here (b is summed apart)
        a, x = _new_system(k)
        block = np.zeros((_BLOCK, a.shape[1]), dtype=np.float32)
        rhs = np.zeros(k)
        for u in range(task * _ROWS_PER_TASK, min((task + 1) * _ROWS_PER_TASK, n_rows)):
            start = indptr[u]
            end = indptr[u + 1]
            if end == start:
                out_factors[u, :] = 0.0
                continue
            rhs[:] = 0.0
            for block_start in range(start, end, _BLOCK):
                n = min(_BLOCK, end - block_start)
                for j in range(n):
                    i = indices[block_start + j]
                    extra = alpha * np.float64(values[block_start + j])
                    weight = np.float32(np.sqrt(extra))
                    confidence = 1.0 + extra
                    for f in range(k):
                        y = other_factors[i, f]
                        block[j, f] = weight * y
                        rhs[f] += confidence * y
                gram_upper(block, n, k, a, block_start == start)
            for f in range(k):
                for g in range(f, k):
                    a[f, g] += gram[f, g]
                a[f, f] += reg
                a[f, k] = rhs[f]
            _solve_spd(a, k, x)
            for f in range(k):
                out_factors[u, f] = x[f]


@njit(cache=True, fastmath=True, inline="always")
def _row_dot(factors: np.ndarray, i: int, v: np.ndarray) -> np.float32:
    """``factors[i] · v`` in float32 (``k`` terms: vectorised, no widening)."""
    s = np.float32(0.0)
    for f in range(v.shape[0]):
        s += factors[i, f] * v[f]
    return s


@njit(cache=True, fastmath=True, inline="always")
def _gram_times(gram: np.ndarray, reg: float, v: np.ndarray, out: np.ndarray) -> None:
    """``out = (G + reg I) v``."""
    k = v.shape[0]
    for f in range(k):
        s = np.float32(0.0)
        for g in range(k):
            s += gram[f, g] * v[g]
        out[f] = s + np.float32(reg) * v[f]


@njit(cache=True, fastmath=True, inline="always")
def _vec_dot(a: np.ndarray, b: np.ndarray) -> float:
    s = 0.0
    for f in range(a.shape[0]):
        s += np.float64(a[f]) * b[f]
    return s


@njit(parallel=True, cache=True, fastmath=True)
def solve_side_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    gram: np.ndarray,
    alpha: float,
    reg: float,
    steps: int,
    out_factors: np.ndarray,
) -> None:
    """Approximate half-step: ``steps`` conjugate-gradient steps on ``A x = b`` per row,
    starting from the row's current factors in ``out_factors`` (overwritten).

    ``A v = (G + λI) v + Σ_rated (c − 1)(y·v) y`` is applied without forming ``A``; ``gram``
    is ``G`` in float32. The row's vectors are gathered once into a contiguous block (during
    the first pass, the residual), so that the passes of the steps read them from cache, not
    from scattered rows of ``other_factors`` in memory. Stops early once the squared residual
    is below 1e-20. Rows without ratings get zero factors.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    n_tasks = (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(n_tasks):
        first_row = task * _ROWS_PER_TASK
        last_row = min(first_row + _ROWS_PER_TASK, n_rows)
        longest = 0
        for u in range(first_row, last_row):
            longest = max(longest, indptr[u + 1] - indptr[u])
        block = np.empty((longest, k), dtype=np.float32)
        extra = np.empty(longest, dtype=np.float32)
        x = np.empty(k, dtype=np.float32)
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        ap = np.empty(k, dtype=np.float32)
        for u in range(first_row, last_row):
            start = indptr[u]
            n = indptr[u + 1] - start
            if n == 0:
                out_factors[u, :] = 0.0
                continue
            for f in range(k):
                x[f] = out_factors[u, f]
            # r = b − A x = −(G + λI) x + Σ_rated (c − (c − 1) y·x) y
            _gram_times(gram, reg, x, r)
            for f in range(k):
                r[f] = -r[f]
            for j in range(n):
                i = indices[start + j]
                for f in range(k):
                    block[j, f] = other_factors[i, f]
                extra[j] = np.float32(alpha) * values[start + j]
                coef = np.float32(1.0) + extra[j] - extra[j] * _row_dot(block, j, x)
                for f in range(k):
                    r[f] += coef * block[j, f]
            for f in range(k):
                p[f] = r[f]
            rs_old = _vec_dot(r, r)
            for _ in range(steps):
                if rs_old < _CG_TOLERANCE:
                    break
                _gram_times(gram, reg, p, ap)
                for j in range(n):
                    coef = extra[j] * _row_dot(block, j, p)
                    for f in range(k):
                        ap[f] += coef * block[j, f]
                step = np.float32(rs_old / _vec_dot(p, ap))
                for f in range(k):
                    x[f] += step * p[f]
                    r[f] -= step * ap[f]
                rs_new = _vec_dot(r, r)
                beta = np.float32(rs_new / rs_old)
                for f in range(k):
                    p[f] = r[f] + beta * p[f]
                rs_old = rs_new
            for f in range(k):
                out_factors[u, f] = x[f]


@njit(parallel=True, cache=True, fastmath=True)
def rated_loss_sum(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    row_factors: np.ndarray,
    col_factors: np.ndarray,
    alpha: float,
) -> float:
    """``Σ_rated [c (1 − s)² − s²]`` with ``s = x_u·y_i``: what the rated pairs add to the
    loss beyond ``Σ_all s²`` (computed from the Gram matrices), with no per-rating copy."""
    n_rows = indptr.shape[0] - 1
    k = row_factors.shape[1]
    total = 0.0
    for u in prange(n_rows):
        part = 0.0
        for j in range(indptr[u], indptr[u + 1]):
            i = indices[j]
            s = 0.0
            for f in range(k):
                s += np.float64(row_factors[u, f]) * col_factors[i, f]
            part += (1.0 + alpha * values[j]) * (1.0 - s) ** 2 - s * s
        total += part
    return total


@njit(parallel=True, cache=True, fastmath=True)
def percentile_ranks(
    scores: np.ndarray,
    users: np.ndarray,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    held_indptr: np.ndarray,
    held_items: np.ndarray,
    out: np.ndarray,
) -> None:
    """Percentile rank (0 = top) of held-out items among each user's unseen items.

    Row ``r`` of ``scores`` holds every item's score for user ``users[r]``; that user's
    held-out items are ``held_items[held_indptr[r]:held_indptr[r + 1]]`` and their ranks go to
    the same positions of ``out``: the number of unseen items scored strictly higher, over
    the unseen items less one. The user's training items (``excl_*``, a CSR by user) are
    masked to ``-inf`` first (``scores`` is scratch).
    """
    n_items = scores.shape[1]
    for r in prange(users.shape[0]):
        user = users[r]
        for e in range(excl_indptr[user], excl_indptr[user + 1]):
            scores[r, excl_indices[e]] = -np.inf
        candidates = n_items - (excl_indptr[user + 1] - excl_indptr[user])
        for e in range(held_indptr[r], held_indptr[r + 1]):
            s = scores[r, held_items[e]]
            better = 0
            for c in range(n_items):
                better += scores[r, c] > s
            out[e] = better / max(candidates - 1, 1)
