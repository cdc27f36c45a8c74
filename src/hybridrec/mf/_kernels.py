"""Numba kernels for biased ALS, scoring and top-N selection.

Compiled once (``cache=True``) and parallel over users or items (``prange``). Factors are stored
in float32; normal equations are summed in float32 within blocks of at most 256 ratings and in
float64 across blocks, and solved in float64. ``_reference.py`` holds the slow NumPy
version of the same maths; the tests compare the two.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._simd import (
    PAD,
    back_substitute,
    cholesky_upper,
    gather_rows,
    gram_upper,
    padded_rows,
)


@njit(cache=True, inline="always")
def _new_system(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed scratch for a ``d``-unknown system solved by :func:`_solve_spd`: the matrix ``a``
    (with room for the right-hand side and the kernels' padding) and the solution ``x``."""
    return np.zeros((padded_rows(d), d + 1 + PAD)), np.zeros(d + PAD)


@njit(cache=True, fastmath=True, inline="always")
def _solve_spd(a: np.ndarray, d: int, x: np.ndarray) -> None:
    """Solve ``A x = b`` for a symmetric positive-definite ``A`` given by the upper triangle of
    ``a[:d, :d]`` and ``b`` by column ``d`` of ``a`` (both overwritten: Cholesky factor ``U``
    and ``U⁻ᵀ b``); ``a`` and ``x`` come from :func:`_new_system`."""
    cholesky_upper(a, d, d + 1)
    back_substitute(a, d, x)


#: ratings per gathered block: sums within a block are float32 (at most this many terms)
_BLOCK = 256
#: rows handed to a thread at a time (each thread allocates its scratch once per chunk)
_ROWS_PER_TASK = 64


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
    (:func:`_simd.gather_rows`) and the Gram matrix of ``[y_i, t_i]`` accumulated block by block
    (:func:`_simd.gram_upper`): its leading ``d × d`` part is ``Σ y yᵀ`` and its last column
    ``Σ t y``, the right-hand side. The system is solved in float64 by Cholesky.
    """
    n_rows = indptr.shape[0] - 1
    k = other_factors.shape[1]
    d = k + 1
    n_tasks = (n_rows + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in prange(n_tasks):
        block = np.zeros((_BLOCK, d + PAD), dtype=np.float32)
        a, x = _new_system(d)
        for u in range(task * _ROWS_PER_TASK, min((task + 1) * _ROWS_PER_TASK, n_rows)):
            start = indptr[u]
            end = indptr[u + 1]
            if end == start:
                for f in range(k):
                    out_factors[u, f] = 0.0
                out_bias[u] = 0.0
                continue
            for block_start in range(start, end, _BLOCK):
                n = min(_BLOCK, end - block_start)
                gather_rows(
                    block, indices, values, other_factors, other_bias, global_mean, block_start, n
                )
                gram_upper(block, n, d, a, block_start == start)
            count = np.float64(end - start)
            scale = count**reg_exponent
            for f in range(k):
                a[f, f] += reg_factors * scale
            a[k, k] += reg_bias * count**reg_bias_exponent
            _solve_spd(a, d, x)
            for f in range(k):
                out_factors[u, f] = x[f]
            out_bias[u] = x[k]


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
