"""The linear (ridge) regressor: closed-form answers, numerical stability, batched fitting."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec._errors import DataError
from hybridrec.hybrid.regressors import (
    LinearRegressor,
)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    return float(1 - np.mean((y - pred) ** 2) / np.var(y))


def _ridge_reference(X: np.ndarray, y: np.ndarray, lam: float, standardize: bool) -> np.ndarray:
    """Closed-form ridge by an augmented least-squares problem; returns [intercept, coef...]."""
    X = X.astype(np.float64)
    n, d = X.shape
    mu = X.mean(axis=0)
    sd = X.std(axis=0) if standardize else np.ones(d)
    Z = np.hstack([np.ones((n, 1)), (X - mu) / sd])
    # (1/n)|y − Zw|² + λ|w_{1:}|²  ⇔  least squares on [Z; √(nλ)·[0 I]]
    penalty = np.hstack([np.zeros((d, 1)), np.sqrt(n * lam) * np.eye(d)])
    A = np.vstack([Z, penalty])
    b = np.concatenate([y, np.zeros(d)])
    w = np.linalg.lstsq(A, b, rcond=None)[0]
    coef = w[1:] / sd
    return np.concatenate([[w[0] - coef @ mu], coef])


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.5])
def test_linear_matches_closed_form_ridge(standardize: bool, lam: float) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6)) * rng.uniform(0.1, 10, size=6) + rng.normal(size=6) * 5
    y = X @ rng.normal(size=6) + 3.0 + rng.normal(size=500)
    model = LinearRegressor(l2_reg=lam, standardize=standardize).fit(X, y)
    ref = _ridge_reference(X, y, lam, standardize)
    np.testing.assert_allclose(model.intercept_, ref[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.coef_, ref[1:], rtol=1e-9, atol=1e-10)
    if lam == 0.0:
        ols = np.linalg.lstsq(np.hstack([np.ones((500, 1)), X]), y, rcond=None)[0]
        np.testing.assert_allclose(model.coef_, ols[1:], rtol=1e-9)
        np.testing.assert_allclose(model.predict(X), np.hstack([np.ones((500, 1)), X]) @ ols)


def test_linear_large_offsets_are_stable() -> None:
    """Centred accumulation: features with mean 1e6 and unit spread still solve exactly."""
    rng = np.random.default_rng(1)
    X = 1e6 + rng.normal(size=(2000, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=2000)
    model = LinearRegressor(l2_reg=0.0).fit(X, y)
    ref = _ridge_reference(X, y, 0.0, True)
    np.testing.assert_allclose(model.coef_, ref[1:], rtol=1e-7)
    np.testing.assert_allclose(model.scale_, X.std(axis=0), rtol=1e-9)


def test_linear_learns_linear_function() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    X[:, 7] = 4.0  # a constant column gets a zero coefficient, not a singular system
    beta = np.array([0.8, -0.5, 0.3, 0.0, 1.2, -0.7, 0.2, 0.0])
    y = 3.5 + X[:, :7] @ beta[:7] + 0.1 * rng.normal(size=3000)
    model = LinearRegressor().fit(X, y)
    assert _r2(y, model.predict(X)) > 0.98
    np.testing.assert_allclose(model.coef_[:7], beta[:7], atol=0.01)
    assert model.coef_[7] == 0.0
    imp = model.feature_importance()
    assert list(imp) == [f"x{j}" for j in range(8)]
    assert imp["x4"] == pytest.approx(abs(model.coef_[4]) * X[:, 4].std(), rel=1e-6)


def test_linear_batched_equals_one_shot() -> None:
    rng = np.random.default_rng(3)
    X = (rng.normal(size=(1037, 5)) * 3 + 7).astype(np.float32)
    y = X @ rng.normal(size=5) + rng.normal(size=1037)
    one = LinearRegressor(l2_reg=0.01).fit(X, y, feature_names=list("abcde"))
    streamed = LinearRegressor(l2_reg=0.01)
    for start, stop in [(0, 1), (1, 300), (300, 301), (301, 800), (800, 1037)]:
        streamed.partial_fit(X[start:stop], y[start:stop], feature_names=list("abcde"))
    streamed.finalize()
    np.testing.assert_allclose(streamed.coef_, one.coef_, rtol=1e-10, atol=1e-12)
    assert streamed.intercept_ == pytest.approx(one.intercept_, rel=1e-12)
    np.testing.assert_allclose(streamed.predict(X), one.predict(X), rtol=1e-10)
    assert streamed.feature_names_ == one.feature_names_ == list("abcde")
    assert streamed.n_samples_ == 1037


def test_linear_bad_batch_leaves_state_untouched() -> None:
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(200, 3)), rng.normal(size=200)
    model = LinearRegressor().partial_fit(X[:100], y[:100])
    bad = X[100:].copy()
    bad[50, 2] = np.nan
    with pytest.raises(DataError, match=r"row 50, column 2"):
        model.partial_fit(bad, y[100:])
    with pytest.raises(DataError, match="3"):
        model.partial_fit(X[100:, :2], y[100:])
    model.finalize()
    np.testing.assert_allclose(model.coef_, LinearRegressor().fit(X[:100], y[:100]).coef_)
    with pytest.raises(DataError, match="no training rows"):
        LinearRegressor().finalize()
