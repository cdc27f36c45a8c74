"""``linear``: ridge regression from streamed normal equations (NumPy)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from hybridrec._core.params import constructor_params
from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import RETRAIN
from hybridrec.hybrid.regressors._base import (
    CHUNK_ROWS,
    FILE_FORMAT,
    as_matrix,
    as_target,
    check_meta,
    column_names,
    construct,
    load_npz,
    meta_value,
    npz_array,
    require_file,
    validation_set,
)

log = logging.getLogger(__name__)


class LinearRegressor:
    """Ridge regression from streamed normal equations, with an unpenalised intercept.

    Model: ``ŷ = b + Σ_j β_j x_j``. With ``standardize=True`` the penalty applies to the
    coefficients of the standardised features ``z_j = (x_j − μ_j) / σ_j``; the objective is::

        (1/n) Σ_i (y_i − b − Σ_j w_j z_ij)²  +  l2_reg · Σ_j w_j²,   β_j = w_j / σ_j

    so ``l2_reg`` does not depend on the number of rows or on the units of the features. With
    ``standardize=False`` the same objective is used with ``z = x − μ`` (``σ = 1``). Features with
    zero variance get a zero coefficient.

    The only state kept while streaming is ``n``, the means of ``[x, y]`` and their centred
    cross-product matrix ``M = Σ ([x, y] − mean)ᵀ([x, y] − mean)`` — the normal equations
    ``XᵀX``, ``Xᵀy`` and the sums, stored centred (Chan et al.'s pairwise update) so that the
    variances do not suffer cancellation when means are large. All in float64, whatever the
    input dtype. Then ``(C_zz + l2_reg·I) w = C_zy`` with ``C = M / n``; ``b = ȳ − β·μ``.

    Use ``fit(X, y)`` for an array in memory, or ``partial_fit(batch_X, batch_y)`` for each batch
    of a stream followed by ``finalize()``; both give the same answer (to rounding).

    ``contributions`` are ``β_j (x_j − μ_j)`` with the bias column ``b + β·μ = ȳ`` (the
    interventional SHAP values of a linear model); ``feature_importance`` is ``|β_j|·σ_j``.
    """

    kind = "linear"

    def __init__(self, l2_reg: float = 1e-3, standardize: bool = True) -> None:
        self.l2_reg = l2_reg
        self.standardize = standardize
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._mean: np.ndarray | None = None
        self._comoment: np.ndarray | None = None
        self._feature_names: list[str] | None = None

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    # -- fitting
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        """Fit on arrays in memory. ``X_val``/``y_val`` are only checked (no early stopping)."""
        X = as_matrix(X, "X")
        validation_set(X_val, y_val, X.shape[1])
        self._reset()
        self.partial_fit(X, y, feature_names=feature_names)
        return self.finalize()

    def partial_fit(
        self, X: np.ndarray, y: np.ndarray, *, feature_names: Sequence[str] = ()
    ) -> Self:
        """Add one batch to the normal equations. A bad batch leaves the state untouched."""
        n_features = None if self._mean is None else self._mean.shape[0] - 1
        X = as_matrix(X, "X", n_features)
        y = as_target(y, "y", X.shape[0])
        d = X.shape[1]
        names = column_names(feature_names, d) if feature_names else None
        if names is not None and self._feature_names not in (None, names):
            raise DataError("feature names differ from those of the earlier batches")
        n, mean, comoment = self._n, self._mean, self._comoment
        for start in range(0, X.shape[0], CHUNK_ROWS):
            block = np.empty((min(CHUNK_ROWS, X.shape[0] - start), d + 1), dtype=np.float64)
            block[:, :d] = X[start : start + CHUNK_ROWS]
            block[:, d] = y[start : start + CHUNK_ROWS]
            n_b = block.shape[0]
            mean_b = block.mean(axis=0)
            block -= mean_b
            m_b = block.T @ block
            if mean is None or comoment is None:
                n, mean, comoment = n_b, mean_b, m_b
            else:
                delta = mean_b - mean
                total = n + n_b
                mean = mean + delta * (n_b / total)
                comoment = comoment + m_b + np.outer(delta, delta) * (n * n_b / total)
                n = total
        self._n, self._mean, self._comoment = n, mean, comoment
        if names is not None:
            self._feature_names = names
        return self

    @classmethod
    def from_moments(
        cls,
        n: int,
        mean: np.ndarray,
        comoment: np.ndarray,
        *,
        l2_reg: float = 1e-3,
        standardize: bool = True,
        feature_names: Sequence[str] = (),
    ) -> Self:
        """Solve from moments accumulated elsewhere: ``n`` rows, the means of ``[x, y]`` and
        their centred cross-product matrix (the state ``partial_fit`` keeps)."""
        model = cls(l2_reg=l2_reg, standardize=standardize)
        d = np.asarray(mean).shape[0] - 1
        model._n = int(n)
        model._mean = np.asarray(mean, dtype=np.float64)
        model._comoment = np.asarray(comoment, dtype=np.float64)
        model._feature_names = column_names(feature_names, d) if feature_names else None
        return model.finalize()

    def finalize(self) -> Self:
        """Solve the accumulated normal equations; later batches may be added and re-solved."""
        if self._mean is None or self._comoment is None or self._n == 0:
            raise DataError("no training rows: call partial_fit with at least one batch first")
        if self.l2_reg < 0:
            raise ValueError(f"l2_reg must be >= 0, got {self.l2_reg}")
        d = self._mean.shape[0] - 1
        cov = self._comoment / self._n
        c_xx, c_xy = cov[:d, :d], cov[:d, d]
        var = np.clip(np.diag(c_xx), 0.0, None)
        constant = var <= 1e-12 * max(1.0, float(var.max()))
        scale = np.sqrt(var) if self.standardize else np.ones(d)
        scale[constant] = 1.0
        a = c_xx / np.outer(scale, scale)
        b = c_xy / scale
        a[constant, :] = 0.0
        a[:, constant] = 0.0
        b[constant] = 0.0
        a[np.diag_indices(d)] += self.l2_reg
        a[constant, constant] = 1.0
        try:
            w = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:  # singular only with l2_reg == 0: minimum-norm solution
            w = np.linalg.lstsq(a, b, rcond=None)[0]
        coef = w / scale
        self.coef_: np.ndarray = coef
        self.mean_: np.ndarray = self._mean[:d].copy()
        self.scale_: np.ndarray = np.sqrt(var)
        self.intercept_: float = float(self._mean[d] - coef @ self.mean_)
        self.y_mean_: float = float(self._mean[d])
        self.n_samples_: int = int(self._n)
        self.n_features_: int = d
        self.feature_names_: list[str] = list(self._feature_names or column_names((), d))
        log.debug("linear regressor: n=%d, d=%d, l2_reg=%g", self._n, d, self.l2_reg)
        return self

    @classmethod
    def from_coefficients(
        cls,
        coef: np.ndarray,
        intercept: float,
        *,
        mean: np.ndarray,
        scale: np.ndarray,
        y_mean: float,
        n_samples: int,
        feature_names: Sequence[str] = (),
        l2_reg: float = 1e-3,
        standardize: bool = True,
    ) -> Self:
        """A fitted regressor from coefficients solved elsewhere (e.g. Spark's
        ``LinearRegression``): ``mean``/``scale`` are the training features' means and
        (population) standard deviations, used by ``contributions`` and ``feature_importance``."""
        model = cls(l2_reg=l2_reg, standardize=standardize)
        model.coef_ = np.asarray(coef, dtype=np.float64)
        d = model.coef_.shape[0]
        model.mean_ = np.asarray(mean, dtype=np.float64)
        model.scale_ = np.asarray(scale, dtype=np.float64)
        if model.mean_.shape != (d,) or model.scale_.shape != (d,):
            raise DataError(f"mean and scale must have {d} values, like the coefficients")
        model.intercept_ = float(intercept)
        model.y_mean_ = float(y_mean)
        model.n_samples_ = int(n_samples)
        model.n_features_ = d
        model.feature_names_ = column_names(feature_names, d)
        return model

    def _require_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ModelError("the linear regressor is not fitted")

    # -- using
    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], CHUNK_ROWS):  # float64 maths, one block at a time
            block = np.asarray(X[start : start + CHUNK_ROWS], dtype=np.float64)
            out[start : start + CHUNK_ROWS] = block @ self.coef_
        return out + self.intercept_

    def contributions(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.empty((X.shape[0], self.n_features_ + 1))
        np.subtract(X, self.mean_, out=out[:, :-1])
        out[:, :-1] *= self.coef_
        out[:, -1] = self.intercept_ + float(self.coef_ @ self.mean_)
        return out

    def feature_importance(self) -> dict[str, float]:
        self._require_fitted()
        imp = np.abs(self.coef_) * self.scale_
        return {n: float(v) for n, v in zip(self.feature_names_, imp, strict=True)}

    # -- persistence
    _FILE = "regressor_linear.npz"

    def save(self, directory: Path) -> dict[str, Any]:
        self._require_fitted()
        np.savez(
            Path(directory) / self._FILE,
            coef=self.coef_,
            mean=self.mean_,
            scale=self.scale_,
            intercept=np.array(self.intercept_),
            y_mean=np.array(self.y_mean_),
        )
        return {
            "kind": self.kind,
            "regressor_format": FILE_FORMAT,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "n_samples": self.n_samples_,
            "files": [self._FILE],
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self:
        check_meta(meta, cls.kind, directory)
        file = require_file(directory, cls._FILE)
        arrays = load_npz(file)
        model = construct(cls, meta_value(meta, "params", directory, dict), directory)
        model.coef_ = npz_array(arrays, "coef", file, 1)
        model.mean_ = npz_array(arrays, "mean", file, 1)
        model.scale_ = npz_array(arrays, "scale", file, 1)
        model.intercept_ = float(npz_array(arrays, "intercept", file, 0))
        model.y_mean_ = float(npz_array(arrays, "y_mean", file, 0))
        model.n_samples_ = int(meta_value(meta, "n_samples", directory, (int, float)))
        model.n_features_ = int(model.coef_.shape[0])
        model.feature_names_ = list(meta_value(meta, "feature_names", directory, list))
        d = model.n_features_
        if not model.mean_.size == model.scale_.size == len(model.feature_names_) == d:
            raise ModelError(
                f"{file}: {d} coefficients but {model.mean_.size} means, {model.scale_.size} "
                f"scales and {len(model.feature_names_)} feature names; {RETRAIN}"
            )
        return model
