"""Numba kernels for biased ALS, scoring and top-N selection.

Compiled once (``cache=True``) and parallel over users or items (``prange``). Factors are stored
in float32; normal equations are summed in float32 within blocks of at most 256 ratings and in
float64 across blocks, and solved in float64. ``_reference.py`` holds the slow NumPy
version of the same maths; the tests compare the two.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _cholesky_solve(a: np.ndarray, b: np.ndarray, d: int) -> None:
    """Solve ``a x = b`` in place (x left in ``b``) for a symmetric positive-definite ``a``.

    Only the lower triangle of ``a`` is read; it is overwritten by the Cholesky factor.
    """
    for j in range(d):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        # The ridge term keeps s > 0; the guard only protects against round-off on empty rows.
        s = np.sqrt(s) if s > 1e-12 else 1e-6
        a[j, j] = s
        for i in range(j + 1, d):
            t = a[i, j]
            for k in range(j):
                t -= a[i, k] * a[j, k]
            a[i, j] = t / s
    for i in range(d):
        t = b[i]
        for k in range(i):
            t -= a[i, k] * b[k]
        b[i] = t / a[i, i]
    for i in range(d - 1, -1, -1):
        t = b[i]
        for k in range(i + 1, d):
            t -= a[k, i] * b[k]
        b[i] = t / a[i, i]


#: float32 values in one gathered block of the Gram accumulation: ``(k + 1) × block`` of them, so
#: that the block stays in the L1 cache (32 KiB) whatever the row length and the factor count
_BLOCK_VALUES = 8192
_MAX_BLOCK = 256
#: rows handed to a thread at a time (each thread allocates its scratch once per chunk)
_ROWS_PER_TASK = 64


@njit(cache=True, fastmath=True, inline="always")
def _add_gram_block(yt: np.ndarray, t: np.ndarray, n: int, a: np.ndarray, b: np.ndarray) -> None:
    """``a += Y Yᵀ`` (lower triangle) and ``b += Y t`` for the first ``n`` columns of ``yt``.

    ``yt`` holds one block of gathered vectors column by column (``d × n``, float32), so each
    entry of ``a`` is a dot product of two contiguous rows: vectorised, with 2 × 2 tiles so that
    every load feeds two multiply-adds. Sums within a block are float32 (at most ``_MAX_BLOCK``
    terms), added into float64 ``a`` and ``b``.
    """
    d = yt.shape[0]
    for f in range(d):
        rf = yt[f]
        s = np.float32(0.0)
        for j in range(n):
            s += rf[j] * t[j]
        b[f] += s
    f = 0
    while f + 1 < d:
        r0 = yt[f]
        r1 = yt[f + 1]
        g = 0
        while g + 1 <= f:
            q0 = yt[g]
            q1 = yt[g + 1]
            s00 = np.float32(0.0)
            s01 = np.float32(0.0)
            s10 = np.float32(0.0)
            s11 = np.float32(0.0)
            for j in range(n):
                x0 = r0[j]
                x1 = r1[j]
                y0 = q0[j]
                y1 = q1[j]
                s00 += x0 * y0
                s01 += x0 * y1
                s10 += x1 * y0
                s11 += x1 * y1
            a[f, g] += s00
            a[f, g + 1] += s01
            a[f + 1, g] += s10
            a[f + 1, g + 1] += s11
            g += 2
        # the 2 × 2 block on the diagonal (g == f): its upper corner is not needed
        s00 = np.float32(0.0)
        s10 = np.float32(0.0)
        s11 = np.float32(0.0)
        for j in range(n):
            x0 = r0[j]
            x1 = r1[j]
            s00 += x0 * x0
            s10 += x1 * x0
            s11 += x1 * x1
        a[f, f] += s00
        a[f + 1, f] += s10
        a[f + 1, f + 1] += s11
        f += 2
    if f < d:  # an odd dimension leaves one last row
        rf = yt[f]
        for g in range(f + 1):
            rg = yt[g]
            s = np.float32(0.0)
            for j in range(n):
                s += rf[j] * rg[j]
            a[f, g] += s


@njit(parallel=True, cache=True, fastmath=True)
def solve_side(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    global_mean: float,
    reg_factors: float,
    reg_bias: float,
    reg_exponent: float,
    reg_bias_exponent: float,
    out_factors: np.ndarray,
    out_bias: np.ndarray,
) -> None:
    """One ALS half-step: for every row of the CSR matrix, solve its factors and intercept.

    Row ``u`` minimises ``sum_i (r_ui - mu - b_i - b_u - p_u.q_i)^2
    + n_u^reg_exponent reg_factors |p_u|^2 + n_u^reg_bias_exponent reg_bias b_u^2`` with
    ``q_i, b_i`` held fixed, i.e. a ridge regression on the augmented vectors ``y_i = [q_i, 1]``.
    The vectors of a row are gathered a block at a time into a small column-major buffer and
    their Gram matrix accumulated block by block (:func:`_add_gram_block`); the system is solved
    in float64 by Cholesky.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    d = k + 1
    # ratings per block: a multiple of 16 (two AVX-512 / four AVX2 vectors), 32 .. 256
    block = min(_MAX_BLOCK, max(32, (_BLOCK_VALUES // d + 15) // 16 * 16))
    n_tasks = (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(n_tasks):
        yt = np.empty((d, block), dtype=np.float32)
        t = np.empty(block, dtype=np.float32)
        a = np.empty((d, d))
        b = np.empty(d)
        for u in range(task * _ROWS_PER_TASK, min((task + 1) * _ROWS_PER_TASK, n_rows)):
            start = indptr[u]
            end = indptr[u + 1]
            if end == start:
                for f in range(k):
                    out_factors[u, f] = 0.0
                out_bias[u] = 0.0
                continue
            a[:] = 0.0
            b[:] = 0.0
            for block_start in range(start, end, block):
                n = min(block, end - block_start)
                for j in range(n):
                    i = indices[block_start + j]
                    t[j] = values[block_start + j] - global_mean - other_bias[i]
                    for f in range(k):
                        yt[f, j] = other_factors[i, f]
                    yt[k, j] = 1.0
                _add_gram_block(yt, t, n, a, b)
            count = np.float64(end - start)
            scale = count**reg_exponent
            for f in range(k):
                a[f, f] += reg_factors * scale
            a[k, k] += reg_bias * count**reg_bias_exponent
            _cholesky_solve(a, b, d)
            for f in range(k):
                out_factors[u, f] = b[f]
            out_bias[u] = b[k]


@njit(parallel=True, cache=True, fastmath=True)
def squared_error_sum(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    user_factors: np.ndarray,
    user_bias: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
) -> float:
    """Sum of squared residuals over the given (user, item, rating) triples (indices all known)."""
    total = 0.0
    k = user_factors.shape[1]
    for j in prange(values.shape[0]):
        u = users[j]
        i = items[j]
        p = global_mean + user_bias[u] + item_bias[i]
        for f in range(k):
            p += np.float64(user_factors[u, f]) * item_factors[i, f]
        e = values[j] - p
        total += e * e
    return total


@njit(parallel=True, cache=True)
def predict_pairs(
    users: np.ndarray,
    items: np.ndarray,
    user_factors: np.ndarray,
    user_bias: np.ndarray,
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
    low: float,
    high: float,
) -> np.ndarray:
    """Clipped predictions; index -1 means unknown and contributes neither factors nor intercept."""
    out = np.empty(users.shape[0], dtype=np.float64)
    k = user_factors.shape[1]
    for j in prange(users.shape[0]):
        u = users[j]
        i = items[j]
        p = global_mean
        if u >= 0:
            p += user_bias[u]
        if i >= 0:
            p += item_bias[i]
        if u >= 0 and i >= 0:
            for f in range(k):
                p += np.float64(user_factors[u, f]) * item_factors[i, f]
        out[j] = min(max(p, low), high)
    return out


@njit(cache=True, inline="always")
def _insert_best(idx: np.ndarray, val: np.ndarray, s: float, c: int) -> None:
    """Insert score ``s`` of column ``c`` into the best-first list ``val`` / ``idx`` (empty
    slots hold -inf at the end; the last entry drops out). Equal scores keep the earlier
    column first."""
    pos = val.shape[0] - 1
    while pos > 0 and val[pos - 1] < s:
        val[pos] = val[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    val[pos] = s
    idx[pos] = c


@njit(parallel=True, cache=True)
def top_n_rows(
    scores: np.ndarray,
    row_offset: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` columns of every row of ``scores``, best first, skipping excluded columns.

    ``scores`` holds rows ``row_offset .. row_offset + len(scores)`` of the full matrix; the
    exclusion CSR is indexed by full row number. Excluded entries of ``scores`` are overwritten
    with ``-inf`` (the caller's block is scratch space). Columns whose score is ``-inf`` are
    never returned; missing slots are -1.
    """
    n_rows, n_cols = scores.shape
    top_idx = np.full((n_rows, n), -1, dtype=np.int32)
    top_val = np.full((n_rows, n), -np.inf, dtype=np.float32)
    for r in prange(n_rows):
        row = row_offset + r
        # Masking first keeps the scan below a tight compare-and-skip loop.
        for e in range(excl_indptr[row], excl_indptr[row + 1]):
            scores[r, excl_indices[e]] = -np.inf
        idx = top_idx[r]
        val = top_val[r]
        worst = np.float32(-np.inf)
        for c in range(n_cols):
            s = scores[r, c]
            if s <= worst:
                continue
            _insert_best(idx, val, s, c)
            worst = val[n - 1]
    return top_idx, top_val


@njit(cache=True, fastmath=True)
def top_n_for_vector(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    offset: float,
    factors: np.ndarray,
    allowed: np.ndarray,
    exclude: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One user's best ``n`` items by ``offset + item_bias[i] + factors . item_factors[i]``.

    Scores, masking and selection in one pass over the items, without a temporary per item: the
    serving path for a single user. ``allowed`` is a boolean mask over the items (a copy is
    not needed: it is not modified); ``exclude`` lists item indices to skip. Ties keep the lower
    index first. Returns ``(indices, scores)`` best first, shorter than ``n`` when fewer items
    are allowed.
    """
    n_items, k = item_factors.shape
    skip = np.zeros(n_items, dtype=np.bool_)
    for e in range(exclude.shape[0]):
        skip[exclude[e]] = True
    idx = np.full(n, -1, dtype=np.int64)
    val = np.full(n, -np.inf, dtype=np.float64)
    filled = 0
    worst = -np.inf
    for i in range(n_items):
        if skip[i] or not allowed[i]:
            continue
        s = offset + item_bias[i]
        for f in range(k):
            s += np.float64(factors[f]) * item_factors[i, f]
        if s <= worst:
            continue
        _insert_best(idx, val, s, i)
        worst = val[n - 1]
        filled = min(filled + 1, n)
    return idx[:filled], val[:filled]


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


@njit(parallel=True, cache=True, fastmath=True)
def solve_side_implicit(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    gram: np.ndarray,
    alpha: float,
    reg: float,
    out_factors: np.ndarray,
) -> None:
    """One half-step of implicit-feedback ALS (Hu, Koren & Volinsky 2008).

    Row ``u`` minimises ``Σ_i c_ui (p_ui − x_u·y_i)² + reg |x_u|²`` over *all* columns, with
    preference ``p_ui = 1`` and confidence ``c_ui = 1 + alpha r_ui`` where a rating exists,
    ``p = 0, c = 1`` elsewhere. Using ``gram = YᵀY`` the normal equations only touch the rated
    columns: ``(YᵀY + Σ_rated (c − 1) y yᵀ + reg I) x = Σ_rated c y``.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    for u in prange(n_rows):
        start = indptr[u]
        end = indptr[u + 1]
        if end == start:
            for f in range(k):
                out_factors[u, f] = 0.0
            continue
        a = gram.copy()
        b = np.zeros(k)
        for j in range(start, end):
            i = indices[j]
            c = 1.0 + alpha * values[j]
            for f in range(k):
                yf = np.float64(other_factors[i, f])
                b[f] += c * yf
                for g in range(f + 1):
                    a[f, g] += (c - 1.0) * yf * other_factors[i, g]
        for f in range(k):
            a[f, f] += reg
        _cholesky_solve(a, b, k)
        for f in range(k):
            out_factors[u, f] = b[f]
