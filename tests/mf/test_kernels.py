"""The ALS kernels (Numba, SIMD and narrow) against the NumPy reference, and the CSR build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hybridrec._core.sparse import Csr as _Csr
from hybridrec.mf import _kernels
from hybridrec.mf._reference import solve_side_reference


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("exponents", [(1.0, 0.0), (0.0, 0.0), (0.5, 1.0)])
def test_kernel_matches_numpy_reference(k, exponents):
    rng = np.random.default_rng(k)
    n_rows, n_cols, nnz = 50, 30, 400
    rows = rng.integers(0, n_rows - 2, nnz)  # the last rows stay empty on purpose
    cols = rng.integers(0, n_cols, nnz)
    values = rng.uniform(0.5, 5, nnz).astype(np.float32)
    csr = _Csr.build(rows, cols, values, n_rows, sort_cols=False)
    other_f = rng.normal(0, 0.3, (n_cols, k)).astype(np.float32)
    other_b = rng.normal(0, 0.3, n_cols)
    out_f = np.full((n_rows, k), 9, dtype=np.float32)
    out_b = np.full(n_rows, 9.0)
    args = (csr.indptr, csr.indices, csr.values, other_f, other_b, 3.5, 0.1, 0.7, *exponents)
    _kernels.solve_side(*args, out_f, out_b)
    ref_f, ref_b = solve_side_reference(*args)
    np.testing.assert_allclose(out_f, ref_f, rtol=1e-4, atol=1e-5)
    # float32 sums within a block of ratings: agreement to float32 precision, not float64's
    np.testing.assert_allclose(out_b, ref_b, rtol=1e-5, atol=1e-6)
    assert np.all(out_f[-2:] == 0) and np.all(out_b[-2:] == 0)


def _long_rows_case(k: int) -> tuple:
    """Rows longer than one gathered block (256 ratings, not a multiple of 8) with ``k``
    factors: the kernel's arguments and the NumPy reference's answer."""
    rng = np.random.default_rng(k)
    n_rows, n_cols, nnz = 6, 900, 3_001
    rows = rng.integers(0, n_rows, nnz)
    cols = rng.integers(0, n_cols, nnz)
    values = rng.uniform(0.5, 5, nnz).astype(np.float32)
    csr = _Csr.build(rows, cols, values, n_rows, sort_cols=False)
    assert np.diff(csr.indptr).min() > 256
    other_f = rng.normal(0, 0.3, (n_cols, k)).astype(np.float32)
    other_b = rng.normal(0, 0.3, n_cols)
    args = (csr.indptr, csr.indices, csr.values, other_f, other_b, 3.5, 0.1, 0.7, 1.0, 0.0)
    return args, solve_side_reference(*args)


def _check_long_rows(k: int) -> None:
    args, (ref_f, ref_b) = _long_rows_case(k)
    out_f = np.empty((len(args[0]) - 1, k), dtype=np.float32)
    out_b = np.empty(len(args[0]) - 1)
    _kernels.solve_side(*args, out_f, out_b)
    np.testing.assert_allclose(out_f, ref_f, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out_b, ref_b, rtol=1e-5, atol=1e-6)


# Widths around the SIMD kernels' steps: Gram tiles of 6 rows × 32 columns, Cholesky blocks of
# 4 rows and chunks of 32 (16 on 8-lane machines), each with and without a remainder.
WIDE = [15, 20, 37, 70, 128]


@pytest.mark.parametrize("k", WIDE)
def test_kernel_matches_reference_on_long_rows_and_wide_factors(k):
    _check_long_rows(k)


def test_narrow_simd_kernels_match_reference(tmp_path):
    """The 8-lane kernels (AVX2 machines) on this machine, in a process with a fresh cache."""
    code = (
        "import test_kernels\n"
        "from hybridrec.mf import _simd\n"
        "assert _simd.LANES == 8, _simd.LANES\n"
        f"for k in {WIDE}:\n"
        "    test_kernels._check_long_rows(k)\n"
    )
    env = {
        **os.environ,
        "HYBRIDREC_SIMD_LANES": "8",
        "NUMBA_CACHE_DIR": str(tmp_path),
        # this folder (for this module), then the caller's path (the source under test)
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_csr_counting_sort_is_stable_and_sorted():
    rows = np.array([2, 0, 2, 1, 0, 2])
    cols = np.array([5, 3, 1, 4, 2, 0])
    csr = _Csr.build(rows, cols, np.arange(6, dtype=np.float32), 3, sort_cols=True)
    assert csr.indptr.tolist() == [0, 2, 3, 6]
    assert csr.indices.tolist() == [2, 3, 4, 0, 1, 5]
    assert csr.values.tolist() == [4, 1, 3, 5, 2, 0]
