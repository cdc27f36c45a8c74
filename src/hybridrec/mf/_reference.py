"""Slow, obvious NumPy reference for the ALS half-step; tests compare the Numba kernel with it."""

from __future__ import annotations

import numpy as np


def solve_side_reference(
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
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(factors, bias)`` for every row, by building and solving each ridge system."""
    n_rows = len(indptr) - 1
    k = other_factors.shape[1]
    factors = np.zeros((n_rows, k))
    bias = np.zeros(n_rows)
    for u in range(n_rows):
        sl = slice(indptr[u], indptr[u + 1])
        cols = indices[sl]
        if len(cols) == 0:
            continue
        y = np.hstack([other_factors[cols].astype(np.float64), np.ones((len(cols), 1))])
        t = values[sl] - global_mean - other_bias[cols]
        count = float(len(cols))
        ridge = np.diag(
            [reg_factors * count**reg_exponent] * k + [reg_bias * count**reg_bias_exponent]
        )
        x = np.linalg.solve(y.T @ y + ridge, y.T @ t)
        factors[u] = x[:k]
        bias[u] = x[k]
    return factors, bias


def solve_side_implicit_reference(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    other_factors: np.ndarray,
    alpha: float,
    reg: float,
) -> np.ndarray:
    """Implicit ALS half-step by building the dense confidence-weighted system per row."""
    n_rows = len(indptr) - 1
    n_cols, k = other_factors.shape
    y = other_factors.astype(np.float64)
    out = np.zeros((n_rows, k))
    for u in range(n_rows):
        sl = slice(indptr[u], indptr[u + 1])
        if indptr[u + 1] == indptr[u]:
            continue
        confidence = np.ones(n_cols)
        preference = np.zeros(n_cols)
        confidence[indices[sl]] = 1.0 + alpha * values[sl]
        preference[indices[sl]] = 1.0
        weighted = y.T * confidence
        out[u] = np.linalg.solve(weighted @ y + reg * np.eye(k), weighted @ preference)
    return out
