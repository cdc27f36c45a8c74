"""Numba kernels for biased ALS, scoring and top-N selection.

Compiled once (``cache=True``) and parallel over users or items (``prange``). Factors are stored
in float32; normal equations are summed in float32 within blocks of at most 256 ratings and in
float64 across blocks, and solved in float64. ``_reference.py`` holds the slow NumPy
version of the same maths; the tests compare the two.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, fastmath=True, inline="always")
def _cholesky_solve(a: np.ndarray, b: np.ndarray, d: int) -> None:
    """Solve ``a x = b`` in place (x left in ``b``) for a symmetric positive-definite ``a``.

    Only the lower triangle of the leading ``d × d`` block of ``a`` is read; it is overwritten
    by the Cholesky factor ``L``. Column ``j`` of ``L`` is computed eight rows at a time, so each
    load of row ``j`` feeds eight multiply-adds (eight independent sums in registers).
    """
    for j in range(d):
        rj = a[j, :j]
        s = a[j, j]
        for k in range(j):
            s -= rj[k] * rj[k]
        # The ridge term keeps s > 0; the guard only protects against round-off on empty rows.
        s = np.sqrt(s) if s > 1e-12 else 1e-6
        a[j, j] = s
        inv = 1.0 / s
        i = j + 1
        while i + 8 <= d:
            r0 = a[i, :j]
            r1 = a[i + 1, :j]
            r2 = a[i + 2, :j]
            r3 = a[i + 3, :j]
            r4 = a[i + 4, :j]
            r5 = a[i + 5, :j]
            r6 = a[i + 6, :j]
            r7 = a[i + 7, :j]
            t0 = a[i, j]
            t1 = a[i + 1, j]
            t2 = a[i + 2, j]
            t3 = a[i + 3, j]
            t4 = a[i + 4, j]
            t5 = a[i + 5, j]
            t6 = a[i + 6, j]
            t7 = a[i + 7, j]
            for k in range(j):
                x = rj[k]
                t0 -= r0[k] * x
                t1 -= r1[k] * x
                t2 -= r2[k] * x
                t3 -= r3[k] * x
                t4 -= r4[k] * x
                t5 -= r5[k] * x
                t6 -= r6[k] * x
                t7 -= r7[k] * x
            a[i, j] = t0 * inv
            a[i + 1, j] = t1 * inv
            a[i + 2, j] = t2 * inv
            a[i + 3, j] = t3 * inv
            a[i + 4, j] = t4 * inv
            a[i + 5, j] = t5 * inv
            a[i + 6, j] = t6 * inv
            a[i + 7, j] = t7 * inv
            i += 8
        while i < d:
            ri = a[i, :j]
            t = a[i, j]
            for k in range(j):
                t -= ri[k] * rj[k]
            a[i, j] = t * inv
            i += 1
    for i in range(d):  # L y = b
        ri = a[i, :i]
        t = b[i]
        for k in range(i):
            t -= ri[k] * b[k]
        b[i] = t / a[i, i]
    for i in range(d - 1, -1, -1):  # Lᵀ x = y, by columns of Lᵀ (rows of L)
        t = b[i] / a[i, i]
        b[i] = t
        ri = a[i, :i]
        for k in range(i):
            b[k] -= ri[k] * t


#: ratings per gathered block: sums within a block are float32 (at most this many terms)
_BLOCK = 256
#: rows handed to a thread at a time (each thread allocates its scratch once per chunk)
_ROWS_PER_TASK = 64


@njit(cache=True, fastmath=True, inline="always")
def _gather_block(
    yt: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    other_bias: np.ndarray,
    global_mean: float,
    start: int,
    n: int,
) -> None:
    """Fill columns ``0 .. ceil8(n)`` of ``yt`` with the augmented vectors ``[q_i, 1, t_i]`` of
    ratings ``start .. start + n`` (``t_i = r − μ − b_i``), column-major; the padding columns
    past ``n`` are zero, so they add nothing to the Gram matrix.

    Eight ratings are transposed at a time, so that every store writes eight adjacent floats
    (one store per factor per eight ratings instead of one per factor per rating).
    """
    k = other_factors.shape[1]
    for j0 in range(0, n, 8):
        i0 = indices[start + min(j0, n - 1)]
        i1 = indices[start + min(j0 + 1, n - 1)]
        i2 = indices[start + min(j0 + 2, n - 1)]
        i3 = indices[start + min(j0 + 3, n - 1)]
        i4 = indices[start + min(j0 + 4, n - 1)]
        i5 = indices[start + min(j0 + 5, n - 1)]
        i6 = indices[start + min(j0 + 6, n - 1)]
        i7 = indices[start + min(j0 + 7, n - 1)]
        o0 = other_factors[i0]
        o1 = other_factors[i1]
        o2 = other_factors[i2]
        o3 = other_factors[i3]
        o4 = other_factors[i4]
        o5 = other_factors[i5]
        o6 = other_factors[i6]
        o7 = other_factors[i7]
        for f in range(k):
            c = yt[f, j0 : j0 + 8]
            c[0] = o0[f]
            c[1] = o1[f]
            c[2] = o2[f]
            c[3] = o3[f]
            c[4] = o4[f]
            c[5] = o5[f]
            c[6] = o6[f]
            c[7] = o7[f]
        for j in range(j0, j0 + 8):
            if j < n:
                r = start + j
                yt[k, j] = 1.0
                yt[k + 1, j] = values[r] - global_mean - other_bias[indices[r]]
            else:
                yt[k, j] = 0.0
                yt[k + 1, j] = 0.0
        if j0 + 8 > n:  # padding columns: zero vectors
            for f in range(k):
                for j in range(n, j0 + 8):
                    yt[f, j] = 0.0


@njit(cache=True, fastmath=True, inline="always")
def _add_gram_tiles(yt: np.ndarray, n: int, a: np.ndarray) -> None:
    """``a += Y Yᵀ`` on the lower triangle (in 4 × 4 tiles) for the first ``n`` columns of ``yt``.

    ``yt`` holds one block of gathered vectors column by column (rows padded with zeros to a
    multiple of 4), so each tile is 16 dot products over the same eight contiguous rows:
    vectorised over the ratings, every load feeds two multiply-adds and the 16 sums stay in
    registers. Sums within a block are float32 (at most ``_BLOCK`` terms), added into the
    float64 ``a``.
    """
    p = yt.shape[0]
    for f0 in range(0, p, 4):
        r0 = yt[f0]
        r1 = yt[f0 + 1]
        r2 = yt[f0 + 2]
        r3 = yt[f0 + 3]
        for g0 in range(0, f0 + 1, 4):
            q0 = yt[g0]
            q1 = yt[g0 + 1]
            q2 = yt[g0 + 2]
            q3 = yt[g0 + 3]
            s00 = s01 = s02 = s03 = np.float32(0.0)
            s10 = s11 = s12 = s13 = np.float32(0.0)
            s20 = s21 = s22 = s23 = np.float32(0.0)
            s30 = s31 = s32 = s33 = np.float32(0.0)
            for j in range(n):
                x0 = r0[j]
                x1 = r1[j]
                x2 = r2[j]
                x3 = r3[j]
                y0 = q0[j]
                y1 = q1[j]
                y2 = q2[j]
                y3 = q3[j]
                s00 += x0 * y0
                s01 += x0 * y1
                s02 += x0 * y2
                s03 += x0 * y3
                s10 += x1 * y0
                s11 += x1 * y1
                s12 += x1 * y2
                s13 += x1 * y3
                s20 += x2 * y0
                s21 += x2 * y1
                s22 += x2 * y2
                s23 += x2 * y3
                s30 += x3 * y0
                s31 += x3 * y1
                s32 += x3 * y2
                s33 += x3 * y3
            a[f0, g0] += s00
            a[f0, g0 + 1] += s01
            a[f0, g0 + 2] += s02
            a[f0, g0 + 3] += s03
            a[f0 + 1, g0] += s10
            a[f0 + 1, g0 + 1] += s11
            a[f0 + 1, g0 + 2] += s12
            a[f0 + 1, g0 + 3] += s13
            a[f0 + 2, g0] += s20
            a[f0 + 2, g0 + 1] += s21
            a[f0 + 2, g0 + 2] += s22
            a[f0 + 2, g0 + 3] += s23
            a[f0 + 3, g0] += s30
            a[f0 + 3, g0 + 1] += s31
            a[f0 + 3, g0 + 2] += s32
            a[f0 + 3, g0 + 3] += s33


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
    The row's vectors, each followed by its target ``t_i``, are gathered a block at a time
    (:func:`_gather_block`) and the Gram matrix of ``[y_i, t_i]`` accumulated block by block
    (:func:`_add_gram_tiles`): its leading ``d × d`` part is ``Σ y yᵀ`` and its last row
    ``Σ t yᵀ``, the right-hand side. The system is solved in float64 by Cholesky.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    d = k + 1
    p = (d + 1 + 3) // 4 * 4  # Gram rows: k factors, the 1, the target, zero padding
    n_tasks = (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(n_tasks):
        yt = np.zeros((p, _BLOCK), dtype=np.float32)
        a = np.empty((p, p))
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
            for block_start in range(start, end, _BLOCK):
                n = min(_BLOCK, end - block_start)
                _gather_block(
                    yt, indices, values, other_factors, other_bias, global_mean, block_start, n
                )
                _add_gram_tiles(yt, (n + 7) // 8 * 8, a)
            b[:] = a[d, :d]
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
