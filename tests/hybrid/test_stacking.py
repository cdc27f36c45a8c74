"""The new-user model's ridge path (out-of-fold stacking) against direct solves."""

from __future__ import annotations

import numpy as np

from hybridrec.hybrid._stacking import _ridge_path


def test_ridge_path_matches_one_direct_solve_per_penalty_pair():
    # the new-user model's cross-validation solves every penalty pair through one
    # eigendecomposition of the crossed block; it must equal the plain ridge solutions
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 12))
    x[:, -1] = 1.0  # an unpenalised intercept column
    gram, rhs = x.T @ x, x.T @ rng.standard_normal(400)
    main = np.r_[np.zeros(2), np.ones(3), np.zeros(7)]
    crossed = np.r_[np.zeros(5), np.ones(6), 0.0]
    fixed = np.r_[np.full(2, 1e-4), np.zeros(10)]
    pairs = [(1e-3, 10.0), (1.0, 1e-3), (100.0, 1.0)]
    solutions = _ridge_path(gram, rhs, 400.0, pairs, main, crossed, fixed)
    for (a, b), w in zip(pairs, solutions, strict=True):
        penalty = np.diag(400.0 * (a * main + b * crossed + fixed))
        np.testing.assert_allclose(w, np.linalg.solve(gram + penalty, rhs), rtol=1e-9, atol=1e-12)
