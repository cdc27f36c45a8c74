"""The four SIMD intrinsics of the ALS solve, each against NumPy on its own.

Sizes are drawn at random (Hypothesis), so most are not multiples of the vector width, the
6-row Gram tile or the 4-row Cholesky block; the layouts are those ``mf/_kernels.py`` uses
(``a`` with ``padded_rows(d)`` rows and ``PAD`` spare columns). Each intrinsic refuses arrays
that are not C-contiguous (it indexes raw data pointers) when Numba types the call.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.errors import TypingError

from hybridrec.mf._simd import (
    LANES,
    PAD,
    back_substitute,
    cholesky_upper,
    gather_rows,
    gram_upper,
    padded_rows,
)

SIZES = st.integers(1, 3 * LANES + 5)
SEEDS = st.integers(0, 2**32 - 1)
EXAMPLES = settings(max_examples=40, deadline=None)


@njit
def _gram(block, n, d, a, first):  # type: ignore[no-untyped-def]
    gram_upper(block, n, d, a, first)


@njit
def _cholesky(a, d, cols):  # type: ignore[no-untyped-def]
    cholesky_upper(a, d, cols)


@njit
def _back(a, d, x):  # type: ignore[no-untyped-def]
    back_substitute(a, d, x)


@njit
def _gather(block, indices, values, factors, bias, mean, start, n):  # type: ignore[no-untyped-def]
    gather_rows(block, indices, values, factors, bias, mean, start, n)


def _system(d: int) -> np.ndarray:
    """``a`` as the kernels allocate it, filled with junk the intrinsics must not read."""
    return np.full((padded_rows(d), d + 1 + PAD), np.nan)


def _spd(rng: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray]:
    """A well-conditioned symmetric positive definite matrix and a right-hand side."""
    m = rng.standard_normal((d + 3, d))
    return m.T @ m + d * np.eye(d), rng.standard_normal(d)


# ---------------------------------------------------------------------- Gram
@EXAMPLES
@given(SIZES, st.integers(1, 40), SEEDS)
def test_gram_is_the_upper_triangle_of_block_t_block(d, n, seed) -> None:
    rng = np.random.default_rng(seed)
    block = np.zeros((n, d + 1 + PAD), dtype=np.float32)
    block[:, : d + 1] = rng.standard_normal((n, d + 1))
    expected = block[:, : d + 1].astype(np.float64).T @ block[:, : d + 1].astype(np.float64)
    a = _system(d)
    _gram(block, n, d, a, True)
    rows, cols = np.triu_indices(d, m=d + 1)
    np.testing.assert_allclose(a[rows, cols], expected[rows, cols], rtol=1e-5, atol=1e-4)
    # first=False adds a second block's sums to the first's
    _gram(block, n, d, a, False)
    np.testing.assert_allclose(a[rows, cols], 2 * expected[rows, cols], rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------- Cholesky
@EXAMPLES
@given(SIZES, SEEDS)
def test_cholesky_factors_in_place_and_forward_substitutes_the_rhs(d, seed) -> None:
    rng = np.random.default_rng(seed)
    spd, rhs = _spd(rng, d)
    a = _system(d)
    a[:d, :d] = np.triu(spd) + np.tril(np.full((d, d), np.nan), -1)  # only the upper part is read
    a[:d, d] = rhs
    _cholesky(a, d, d + 1)
    upper = np.linalg.cholesky(spd).T
    rows, cols = np.triu_indices(d)
    np.testing.assert_allclose(a[rows, cols], upper[rows, cols], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a[:d, d], np.linalg.solve(upper.T, rhs), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- back substitution
@EXAMPLES
@given(SIZES, SEEDS)
def test_back_substitution_solves_the_upper_triangular_system(d, seed) -> None:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.standard_normal((d, d))) + np.diag(rng.uniform(1.0, 3.0, d))
    y = rng.standard_normal(d)
    a = _system(d)
    a[:d, :d] = upper + np.tril(np.full((d, d), np.nan), -1)
    a[:d, d] = y
    x = np.full(d + PAD, np.nan)
    _back(a, d, x)
    np.testing.assert_allclose(x[:d], np.linalg.solve(upper, y), rtol=1e-9, atol=1e-9)


@EXAMPLES
@given(SIZES, SEEDS)
def test_cholesky_then_back_substitution_solve_the_system(d, seed) -> None:
    spd, rhs = _spd(np.random.default_rng(seed), d)
    a = _system(d)
    a[:d, :d], a[:d, d] = spd, rhs
    x = np.zeros(d + PAD)
    _cholesky(a, d, d + 1)
    _back(a, d, x)
    np.testing.assert_allclose(x[:d], np.linalg.solve(spd, rhs), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- gather
@EXAMPLES
@given(st.integers(1, 3 * LANES + 5), st.integers(1, 40), SEEDS, st.data())
def test_gather_copies_factor_rows_a_one_and_the_target(k, n_items, seed, data) -> None:
    rng = np.random.default_rng(seed)
    n_ratings = data.draw(st.integers(1, 60), label="ratings")
    start = data.draw(st.integers(0, n_ratings - 1), label="start")
    n = data.draw(st.integers(1, n_ratings - start), label="n")
    factors = rng.standard_normal((n_items, k)).astype(np.float32)
    bias = rng.standard_normal(n_items).astype(np.float32)
    indices = rng.integers(0, n_items, n_ratings).astype(np.int32)
    values = (rng.integers(1, 11, n_ratings) / 2).astype(np.float32)
    mean = float(rng.uniform(2, 4))
    block = np.full((n + 2, k + 2 + PAD), 7.0, dtype=np.float32)
    _gather(block, indices, values, factors, bias, mean, start, n)
    picked = indices[start : start + n]
    np.testing.assert_array_equal(block[:n, :k], factors[picked])
    assert (block[:n, k] == 1.0).all()
    target = values[start : start + n].astype(np.float64) - mean - bias[picked].astype(np.float64)
    np.testing.assert_allclose(block[:n, k + 1], target.astype(np.float32), rtol=1e-6)
    assert (block[:n, k + 2 :] == 7.0).all() and (block[n:] == 7.0).all()  # nothing else written


# ---------------------------------------------------------------------- refusals
D = 5


def _refused_calls() -> dict[str, object]:
    a, block = _system(D), np.zeros((4, D + 1 + PAD), dtype=np.float32)
    every_other_row = np.zeros((2 * a.shape[0], a.shape[1]))[::2]
    factors = np.zeros((3, 4), dtype=np.float32)
    ints, floats = np.zeros(4, dtype=np.int32), np.zeros(4, dtype=np.float32)
    return {
        "gram, Fortran-order block": lambda: _gram(np.asfortranarray(block), 4, D, a, True),
        "gram, strided a": lambda: _gram(block, 4, D, every_other_row, True),
        "cholesky, Fortran-order a": lambda: _cholesky(np.asfortranarray(a), D, D + 1),
        "back substitution, strided a": lambda: _back(every_other_row, D, np.zeros(D + PAD)),
        "back substitution, strided x": lambda: _back(a, D, np.zeros(2 * (D + PAD))[::2]),
        "gather, Fortran-order factors": lambda: _gather(
            block, ints, floats, np.asfortranarray(factors), floats[:3], 0.0, 0, 1
        ),
        "gather, strided indices": lambda: _gather(
            block, np.zeros(8, dtype=np.int32)[::2], floats, factors, floats[:3], 0.0, 0, 1
        ),
        "gather, float64 factors": lambda: _gather(
            block, ints, floats, factors.astype(np.float64), floats[:3], 0.0, 0, 1
        ),
    }


@pytest.mark.parametrize("case", list(_refused_calls()))
def test_each_intrinsic_refuses_arrays_it_cannot_index_directly(case: str) -> None:
    """Not C-contiguous (or, for the gather, factors that are not float32): a typing error when
    Numba compiles the call, never a read through the wrong strides."""
    with pytest.raises(TypingError):
        _refused_calls()[case]()  # type: ignore[operator]
