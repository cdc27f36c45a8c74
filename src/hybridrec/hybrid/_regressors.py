"""Regressors of the hybrid model: dense float features → rating.

Three kinds share one small protocol (:class:`Regressor`):

* ``linear`` — :class:`LinearRegressor`, ridge regression solved from normal equations that are
  accumulated in float64 in one streamed pass (``partial_fit`` per batch, then ``finalize``).
* ``boosted`` — :class:`BoostedRegressor`, LightGBM gradient-boosted trees (native API).
* ``dnn`` — :class:`DnnRegressor`, a PyTorch multi-layer perceptron trained on the CPU.

Predictions are raw float64 (not clipped to the rating scale): clipping is the caller's job,
because only the caller knows the scale. Feature contributions follow one convention for every
kind: ``contributions(X)[:, :d]`` per feature and ``contributions(X)[:, d]`` a bias column, the
model's output at the "average" input; rows sum to the prediction (exactly for ``linear`` and
``boosted``; for ``dnn`` up to float32 rounding, and the attribution is approximate).

Heavy libraries (LightGBM, PyTorch) are imported inside methods, so importing hybridrec never
imports them. Nothing is pickled: arrays go to ``.npz`` files read with ``allow_pickle=False``,
LightGBM models to its own text format, everything else into the returned JSON-able metadata.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from hybridrec._core.params import constructor_params
from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import RETRAIN, read_lightgbm, read_npz

__all__ = [
    "REGRESSOR_KINDS",
    "BoostedRegressor",
    "DnnRegressor",
    "LinearRegressor",
    "Regressor",
    "TreeEnsembleRegressor",
    "load_regressor",
    "make_regressor",
    "search_space",
]

log = logging.getLogger(__name__)

REGRESSOR_KINDS = ("linear", "boosted", "dnn")
_FORMAT = 1  # version of the files written by ``save``; bumped on incompatible changes
_CHUNK_ROWS = 1 << 18  # rows per block when streaming over big arrays (≈ 128 MB at 60 float64)


@runtime_checkable
class Regressor(Protocol):
    """What the hybrid model needs from a regressor."""

    kind: str

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def contributions(self, X: np.ndarray) -> np.ndarray: ...

    def feature_importance(self) -> dict[str, float]: ...

    def get_params(self) -> dict[str, Any]: ...

    def save(self, directory: Path) -> dict[str, Any]: ...

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self: ...


def _import(name: str) -> Any:
    """Import an optional heavy dependency on first use, with an actionable error if missing.

    Typed ``Any`` on purpose: mypy would otherwise analyse all of torch on every run of
    ``mypy src``, for every engineer, whether or not they touch this module.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ModelError(
            f"this regressor needs the optional dependency {name!r}: "
            "pip install 'hybridrec[hybrid]'"
        ) from None


# ---------------------------------------------------------------------------------------------
# input checks


def _as_matrix(
    X: Any, name: str, n_features: int | None = None, *, allow_empty: bool = False
) -> np.ndarray:
    """``X`` as a 2-D float array (float32 stays float32, no copy when already fine)."""
    try:
        arr = np.asarray(X)
        if arr.dtype.kind not in "f":
            arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a numeric matrix") from None
    if arr.ndim != 2:
        raise DataError(f"{name} must be 2-D (rows × features), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise DataError(f"{name} has no feature columns")
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"{name} has {arr.shape[1]} features; the model was fitted on {n_features}")
    if arr.shape[0] == 0 and not allow_empty:
        raise DataError(f"{name} is empty (0 rows)")
    _check_finite(arr, name)
    return arr


def _as_target(y: Any, name: str, n_rows: int) -> np.ndarray:
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numeric") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise DataError(f"{name} has {arr.shape[0]} values but X has {n_rows} rows")
    _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    """Raise on NaN/inf, scanning in blocks so a 20M-row matrix needs no full boolean copy."""
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        block = arr[start : start + _CHUNK_ROWS]
        ok = np.isfinite(block)
        if not ok.all():
            where = np.argwhere(~ok)[0]
            at = f"row {start + int(where[0])}"
            if block.ndim == 2:
                at += f", column {int(where[1])}"
            raise DataError(f"{name} contains NaN or infinite values (first at {at})")


def _validation(X_val: Any, y_val: Any, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    if X_val is None and y_val is None:
        return None
    if X_val is None or y_val is None:
        raise DataError("X_val and y_val must be given together")
    Xv = _as_matrix(X_val, "X_val", n_features)
    return Xv, _as_target(y_val, "y_val", Xv.shape[0])


def _names(feature_names: Sequence[str], n_features: int) -> list[str]:
    names = [str(n) for n in feature_names]
    if not names:
        return [f"x{j}" for j in range(n_features)]
    if len(names) != n_features:
        raise DataError(f"got {len(names)} feature names for {n_features} feature columns")
    if len(set(names)) != len(names):
        raise DataError("feature names must be unique")
    return names


def _check_meta(meta: dict[str, Any], kind: str, directory: Path) -> None:
    if not isinstance(meta, dict):
        raise ModelError(f"{directory}: the regressor's metadata is not a JSON object")
    if meta.get("kind") != kind:
        raise ModelError(f"{directory}: stored regressor is {meta.get('kind')!r}, not {kind!r}")
    if meta.get("regressor_format") != _FORMAT:
        raise ModelError(
            f"{directory}: regressor format {meta.get('regressor_format')!r} is not supported "
            f"(this hybridrec reads {_FORMAT})"
        )


def _require_file(directory: Path, name: str) -> Path:
    path = Path(directory) / name
    if not path.is_file():
        raise ModelError(f"model at {directory} is incomplete: {name} is missing")
    return path


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer"}


def _meta_value(meta: dict[str, Any], key: str, directory: Path, expected: Any = object) -> Any:
    """``meta[key]`` (the regressor's entry of the model's ``meta.json``), of type ``expected``;
    a missing key or another type is a :class:`ModelError` naming the directory."""
    if key not in meta:
        raise ModelError(f"{directory}: the regressor's metadata has no {key!r}; {RETRAIN}")
    value = meta[key]
    wrong_bool = isinstance(value, bool) and expected in (int, (int, float))
    if not isinstance(value, expected) or wrong_bool:
        what = _JSON_NAMES.get(expected, "a number")
        raise ModelError(
            f"{directory}: the regressor's {key!r} should be {what}, not {value!r:.40}; {RETRAIN}"
        )
    return value


def _construct(cls: Any, params: dict[str, Any], directory: Path) -> Any:
    """``cls(**params)`` with the stored parameters; unknown or invalid ones are a
    :class:`ModelError` naming the directory."""
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"{directory}: the regressor's stored params are not valid ({exc}); {RETRAIN}"
        ) from None


def _array(arrays: dict[str, np.ndarray], key: str, file: Path, ndim: int | None) -> np.ndarray:
    """Numeric array ``key`` of a loaded ``.npz`` ``file``, with ``ndim`` dimensions."""
    if key not in arrays:
        raise ModelError(f"{file}: no array {key!r}; {RETRAIN}")
    arr = arrays[key]
    if arr.dtype.kind not in "fiu" or (ndim is not None and arr.ndim != ndim):
        wanted = "numbers" if ndim is None else f"{ndim}-D numbers"
        raise ModelError(
            f"{file}: array {key!r} is {arr.dtype} of shape {arr.shape}, not {wanted}; {RETRAIN}"
        )
    return arr


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``path``, checked against the model's checksums first; a file NumPy
    cannot read is a :class:`ModelError` naming it."""
    return read_npz(path)


# ---------------------------------------------------------------------------------------------
# linear


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
        X = _as_matrix(X, "X")
        _validation(X_val, y_val, X.shape[1])
        self._reset()
        self.partial_fit(X, y, feature_names=feature_names)
        return self.finalize()

    def partial_fit(
        self, X: np.ndarray, y: np.ndarray, *, feature_names: Sequence[str] = ()
    ) -> Self:
        """Add one batch to the normal equations. A bad batch leaves the state untouched."""
        n_features = None if self._mean is None else self._mean.shape[0] - 1
        X = _as_matrix(X, "X", n_features)
        y = _as_target(y, "y", X.shape[0])
        d = X.shape[1]
        names = _names(feature_names, d) if feature_names else None
        if names is not None and self._feature_names not in (None, names):
            raise DataError("feature names differ from those of the earlier batches")
        n, mean, comoment = self._n, self._mean, self._comoment
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            block = np.empty((min(_CHUNK_ROWS, X.shape[0] - start), d + 1), dtype=np.float64)
            block[:, :d] = X[start : start + _CHUNK_ROWS]
            block[:, d] = y[start : start + _CHUNK_ROWS]
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
        model._feature_names = _names(feature_names, d) if feature_names else None
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
        self.feature_names_: list[str] = list(self._feature_names or _names((), d))
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
        model.feature_names_ = _names(feature_names, d)
        return model

    def _require_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ModelError("the linear regressor is not fitted")

    # -- using
    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], _CHUNK_ROWS):  # float64 maths, one block at a time
            block = np.asarray(X[start : start + _CHUNK_ROWS], dtype=np.float64)
            out[start : start + _CHUNK_ROWS] = block @ self.coef_
        return out + self.intercept_

    def contributions(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
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
            "regressor_format": _FORMAT,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "n_samples": self.n_samples_,
            "files": [self._FILE],
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self:
        _check_meta(meta, cls.kind, directory)
        file = _require_file(directory, cls._FILE)
        arrays = _load_npz(file)
        model = _construct(cls, _meta_value(meta, "params", directory, dict), directory)
        model.coef_ = _array(arrays, "coef", file, 1)
        model.mean_ = _array(arrays, "mean", file, 1)
        model.scale_ = _array(arrays, "scale", file, 1)
        model.intercept_ = float(_array(arrays, "intercept", file, 0))
        model.y_mean_ = float(_array(arrays, "y_mean", file, 0))
        model.n_samples_ = int(_meta_value(meta, "n_samples", directory, (int, float)))
        model.n_features_ = int(model.coef_.shape[0])
        model.feature_names_ = list(_meta_value(meta, "feature_names", directory, list))
        d = model.n_features_
        if not model.mean_.size == model.scale_.size == len(model.feature_names_) == d:
            raise ModelError(
                f"{file}: {d} coefficients but {model.mean_.size} means, {model.scale_.size} "
                f"scales and {len(model.feature_names_)} feature names; {RETRAIN}"
            )
        return model


# ---------------------------------------------------------------------------------------------
# boosted trees


class BoostedRegressor:
    """Gradient-boosted regression trees (LightGBM, squared loss).

    Trained with ``lightgbm.train`` on the native API, deterministically (``deterministic``,
    fixed ``seed`` and ``n_jobs``). With ``X_val``/``y_val``, boosting stops once the validation
    RMSE has not improved for ``early_stopping_rounds`` rounds (0: never) and the best
    iteration is kept; without, all ``n_estimators`` trees are grown.
    ``bagging_fraction < 1`` resamples rows every iteration.

    ``contributions`` are LightGBM's exact TreeSHAP values (``pred_contrib=True``): one column
    per feature plus the expected value; each row sums to the prediction.
    ``feature_importance`` is the total gain (loss reduction) of the splits on each feature.
    The model is saved in LightGBM's text format.
    """

    kind = "boosted"

    def __init__(
        self,
        num_leaves: int = 63,
        learning_rate: float = 0.05,
        n_estimators: int = 1000,
        min_child_samples: int = 20,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        early_stopping_rounds: int = 50,
        seed: int = 42,
        n_jobs: int = 2,
    ) -> None:
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "regression",
            "metric": "rmse",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "num_threads": self.n_jobs,
            "deterministic": True,
            # a fixed layout (not LightGBM's timing-based pick) keeps runs identical; col-wise
            # measured ~1.7x faster than row-wise on 1M × 50 dense float32 with one thread
            "force_col_wise": True,
            "verbosity": -1,
        }

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        lgb = _import("lightgbm")
        X = _as_matrix(X, "X")
        y = _as_target(y, "y", X.shape[0])
        val = _validation(X_val, y_val, X.shape[1])
        names = _names(feature_names, X.shape[1])
        # LightGBM restricts feature names (no JSON characters); ours live next to the model.
        internal = [f"f{j}" for j in range(X.shape[1])]
        params = self._lgb_params()
        started = time.perf_counter()
        train_set = lgb.Dataset(X, label=y, feature_name=internal, params=params)
        evals: dict[str, Any] = {}
        callbacks = [lgb.record_evaluation(evals)]
        valid_sets = []
        if val is not None:
            valid_sets = [lgb.Dataset(val[0], label=val[1], reference=train_set)]
            if self.early_stopping_rounds and self.early_stopping_rounds > 0:
                callbacks.append(
                    lgb.early_stopping(
                        self.early_stopping_rounds, first_metric_only=True, verbose=False
                    )
                )
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.n_estimators,
            valid_sets=valid_sets,
            valid_names=["val"] if valid_sets else None,
            callbacks=callbacks,
        )
        best = int(booster.best_iteration) or int(booster.current_iteration())
        self.booster_: Any = booster
        self.best_iteration_: int = best
        val_rmse = evals.get("val", {}).get("rmse", [])
        self.val_rmse_: list[float] = [float(v) for v in val_rmse]
        self.n_features_: int = X.shape[1]
        self.feature_names_: list[str] = names
        log.info(
            "boosted regressor: %d trees (best of %d) in %.1f s%s",
            best,
            booster.current_iteration(),
            time.perf_counter() - started,
            f", val rmse {val_rmse[best - 1]:.4f}" if val_rmse else "",
        )
        return self

    def _require_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise ModelError("the boosted regressor is not fitted")

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        if X.shape[0] == 0:
            return np.empty(0)
        pred = self.booster_.predict(X, num_iteration=self.best_iteration_, num_threads=self.n_jobs)
        return np.asarray(pred, dtype=np.float64)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        if X.shape[0] == 0:
            return np.empty((0, self.n_features_ + 1))
        contrib = self.booster_.predict(
            X, num_iteration=self.best_iteration_, pred_contrib=True, num_threads=self.n_jobs
        )
        return np.asarray(contrib, dtype=np.float64)

    def feature_importance(self) -> dict[str, float]:
        self._require_fitted()
        gain = self.booster_.feature_importance(
            importance_type="gain", iteration=self.best_iteration_
        )
        return {n: float(v) for n, v in zip(self.feature_names_, gain, strict=True)}

    _FILE = "regressor_boosted.txt"

    def save(self, directory: Path) -> dict[str, Any]:
        self._require_fitted()
        self.booster_.save_model(
            str(Path(directory) / self._FILE), num_iteration=self.best_iteration_
        )
        return {
            "kind": self.kind,
            "regressor_format": _FORMAT,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "best_iteration": self.best_iteration_,
            "val_rmse": self.val_rmse_,
            "files": [self._FILE],
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self:
        _check_meta(meta, cls.kind, directory)
        lgb = _import("lightgbm")
        path = _require_file(directory, cls._FILE)
        model = _construct(cls, _meta_value(meta, "params", directory, dict), directory)
        model.booster_ = read_lightgbm(path, lgb)
        model.best_iteration_ = int(_meta_value(meta, "best_iteration", directory, int))
        val_rmse = meta.get("val_rmse") or []
        if not isinstance(val_rmse, list) or not all(isinstance(v, (int, float)) for v in val_rmse):
            raise ModelError(
                f"{directory}: the regressor's 'val_rmse' should be numbers; {RETRAIN}"
            )
        model.val_rmse_ = [float(v) for v in val_rmse]
        model.feature_names_ = list(_meta_value(meta, "feature_names", directory, list))
        model.n_features_ = len(model.feature_names_)
        if model.booster_.num_feature() != model.n_features_:
            raise ModelError(f"{path}: tree model and metadata disagree on the feature count")
        return model


# ---------------------------------------------------------------------------------------------
# neural network


class DnnRegressor:
    """Multi-layer perceptron regressor (PyTorch, CPU).

    ``ŷ = σ_y · f(z) + μ_y`` with ``z = (x − μ_x) / σ_x`` and
    ``f = Linear ∘ (Dropout ∘ ReLU ∘ Linear)^len(hidden)``; the inputs and the target are
    standardised with statistics of the training data (stored with the model). Trained by Adam
    (L2 ``weight_decay``) on the mean squared error in mini-batches of ``batch_size`` shuffled
    rows, at most ``epochs`` passes. With ``X_val``/``y_val`` training stops after ``patience``
    epochs without a lower validation MSE (never if ``patience`` is 0) and the best epoch's
    weights are kept; without, all ``epochs`` are run and the last weights kept.
    ``training_log_`` has one row per epoch (train/val RMSE, seconds).

    Deterministic under ``seed``: weights, dropout masks and shuffling come from private
    generators (no global RNG is read or changed) and the thread count is fixed to ``n_jobs``
    during ``fit``/``predict`` (restored afterwards). Batches are gathered from ``X`` as needed,
    so the only copy of the data made is one batch; ``X`` may stay float32.

    ``contributions`` are DeepLIFT-Rescale attributions (Shrikumar et al., 2017; DeepSHAP with one
    reference) against the training mean ``μ_x``: each ReLU is replaced by the secant between its
    value at ``μ_x`` and at ``x``, which linearises the network per row. The bias column is the
    prediction at ``μ_x`` and a row sums to the prediction exactly (up to float32 rounding of
    the network, ~1e-6). Unlike linear/TreeSHAP values they are one of several reasonable
    attributions for a network (integrated gradients would differ slightly): use them to rank
    features, not as ground truth. ``feature_importance`` is their mean absolute value on up to
    1024 rows of the validation data (else the training data), computed at the end of ``fit``;
    in rating units, like the linear model's ``|β|·σ``.
    Weights are saved as a ``.npz`` of arrays (no pickle); the architecture is in the metadata.
    """

    kind = "dnn"

    def __init__(
        self,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 4096,
        epochs: int = 20,
        patience: int = 3,
        seed: int = 42,
        n_jobs: int = 2,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.seed = seed
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def _check_params(self) -> None:
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(
                f"hidden must be a non-empty list of positive sizes, got {self.hidden}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be >= 1")

    # -- the network, as plain tensors (so that no global RNG is touched at construction)
    def _init_weights(self, torch: Any, n_features: int, gen: Any) -> list[Any]:
        sizes = [n_features, *(int(h) for h in self.hidden), 1]
        params = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default nn.Linear initialisation
            for shape in ((fan_out, fan_in), (fan_out,)):
                t = (torch.rand(shape, generator=gen) * 2 - 1) * bound
                params.append(t.requires_grad_(True))
        return params

    def _forward(self, torch: Any, params: list[Any], z: Any, gen: Any = None) -> Any:
        """Standardised inputs → standardised output; dropout only when ``gen`` is given."""
        linear = torch.nn.functional.linear
        h = z
        n_layers = len(params) // 2
        for k in range(n_layers - 1):
            h = torch.relu(linear(h, params[2 * k], params[2 * k + 1]))
            if gen is not None and self.dropout > 0:
                keep = 1.0 - self.dropout
                mask = torch.empty_like(h).bernoulli_(keep, generator=gen)
                h = h * mask / keep
        return linear(h, params[-2], params[-1]).squeeze(-1)

    def _standardized(self, torch: Any, X: np.ndarray) -> Any:
        xb = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        return (xb - self._x_mean_t) / self._x_scale_t

    def _set_tensors(self, torch: Any) -> None:
        self._x_mean_t = torch.from_numpy(self.x_mean_.astype(np.float32))
        self._x_scale_t = torch.from_numpy(self.x_scale_.astype(np.float32))

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        self._check_params()
        torch = _import("torch")
        X = _as_matrix(X, "X")
        y = _as_target(y, "y", X.shape[0])
        val = _validation(X_val, y_val, X.shape[1])
        names = _names(feature_names, X.shape[1])
        n, d = X.shape
        self.__dict__.pop("params_", None)  # a failed refit must not leave a usable old model

        x_mean, x_var = _column_moments(X)
        x_scale = np.sqrt(x_var)
        x_scale[x_scale <= 1e-12] = 1.0
        self.x_mean_: np.ndarray = x_mean
        self.x_scale_: np.ndarray = x_scale
        self.y_mean_: float = float(y.mean())
        self.y_scale_: float = float(y.std()) or 1.0
        self.n_features_: int = d
        self.feature_names_: list[str] = names
        y_std = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            self._set_tensors(torch)
            gen = torch.Generator().manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)
            params = self._init_weights(torch, d, gen)
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
            best_val, best_state, since_best = math.inf, None, 0
            self.training_log_: list[dict[str, float]] = []
            for epoch in range(1, self.epochs + 1):
                started = time.perf_counter()
                order = rng.permutation(n)
                total = 0.0
                for start in range(0, n, self.batch_size):
                    idx = np.sort(order[start : start + self.batch_size])  # sorted: faster gather
                    zb = self._standardized(torch, X[idx])
                    yb = torch.from_numpy(y_std[idx])
                    loss = torch.mean((self._forward(torch, params, zb, gen) - yb) ** 2)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                if not math.isfinite(total):
                    raise ModelError(
                        f"dnn training diverged in epoch {epoch} (loss is not finite); lower lr"
                    )
                row = {
                    "epoch": float(epoch),
                    "train_rmse": math.sqrt(total / n) * self.y_scale_,
                }
                if val is not None:
                    val_pred = self._predict_raw(torch, val[0], params)
                    val_mse = float(np.mean((val_pred - val[1]) ** 2))
                    row["val_rmse"] = math.sqrt(val_mse)
                    if val_mse < best_val:
                        best_val, since_best = val_mse, 0
                        best_state = [p.detach().clone() for p in params]
                    else:
                        since_best += 1
                row["seconds"] = time.perf_counter() - started
                self.training_log_.append(row)
                log.info("dnn epoch %d: %s", epoch, row)
                if val is not None and 0 < self.patience <= since_best:
                    break
            self.params_: list[Any] = (
                best_state if best_state is not None else [p.detach() for p in params]
            )
            self.best_epoch_: int = (
                int(np.argmin([r["val_rmse"] for r in self.training_log_])) + 1
                if val is not None
                else len(self.training_log_)
            )
            sample_from = val[0] if val is not None else X
            take = min(1024, sample_from.shape[0])
            rows = np.sort(rng.choice(sample_from.shape[0], size=take, replace=False))
            contrib = self._deeplift(sample_from[rows])
            self.importance_: np.ndarray = np.abs(contrib[:, :-1]).mean(axis=0)
        finally:
            torch.set_num_threads(previous_threads)
        return self

    def _require_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise ModelError("the dnn regressor is not fitted")

    def _predict_raw(
        self, torch: Any, X: np.ndarray, params: list[Any] | None = None
    ) -> np.ndarray:
        params = self.params_ if params is None else params
        out = np.empty(X.shape[0], dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, X.shape[0], 65536):
                z = self._standardized(torch, X[start : start + 65536])
                out[start : start + 65536] = self._forward(torch, params, z).numpy()
        return out * self.y_scale_ + self.y_mean_

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        torch = _import("torch")
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            return self._predict_raw(torch, X)
        finally:
            torch.set_num_threads(previous_threads)

    def _deeplift(self, X: np.ndarray) -> np.ndarray:
        """DeepLIFT-Rescale contributions relative to the training mean, in float64 NumPy.

        Each ReLU unit passes back ``Δa/Δh = (relu(h) − relu(h₀)) / (h − h₀)`` (its slope at
        ``h`` when ``h ≈ h₀``), where ``h₀`` is its pre-activation at the reference input; the
        linear layers pass back their weights. The result ``g`` is a per-row linearisation of
        the network and ``g · (z − 0)`` sums exactly to ``f(z) − f(0)``.
        """
        weights = [np.asarray(p.numpy(), dtype=np.float64) for p in self.params_]
        n_hidden = len(weights) // 2 - 1
        d = self.n_features_
        out = np.empty((X.shape[0], d + 1))
        for start in range(0, X.shape[0], 65536):
            z = (np.asarray(X[start : start + 65536], dtype=np.float64) - self.x_mean_) / (
                self.x_scale_
            )
            a, a0 = z, np.zeros((1, d))
            slopes = []
            for k in range(n_hidden):
                w, bias = weights[2 * k], weights[2 * k + 1]
                h, h0 = a @ w.T + bias, a0 @ w.T + bias
                a, a0 = np.maximum(h, 0.0), np.maximum(h0, 0.0)
                dh = h - h0
                close = np.abs(dh) <= 1e-12
                slopes.append(np.where(close, h > 0, (a - a0) / np.where(close, 1.0, dh)))
            g = np.broadcast_to(weights[-2][0], (z.shape[0], weights[-2].shape[1]))
            for k in reversed(range(n_hidden)):
                g = (g * slopes[k]) @ weights[2 * k]
            out[start : start + 65536, :d] = g * z * self.y_scale_
            base = float((a0 @ weights[-2].T + weights[-1])[0, 0])
            out[start : start + 65536, d] = base * self.y_scale_ + self.y_mean_
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contributions by DeepLIFT-Rescale against the training mean (class doc)."""
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        return self._deeplift(X)

    def feature_importance(self) -> dict[str, float]:
        self._require_fitted()
        return {n: float(v) for n, v in zip(self.feature_names_, self.importance_, strict=True)}

    _FILE = "regressor_dnn.npz"

    def save(self, directory: Path) -> dict[str, Any]:
        self._require_fitted()
        arrays = {f"param{k}": p.numpy() for k, p in enumerate(self.params_)}
        np.savez(
            Path(directory) / self._FILE,
            x_mean=self.x_mean_,
            x_scale=self.x_scale_,
            importance=self.importance_,
            **arrays,
        )
        params = self.get_params()
        params["hidden"] = [int(h) for h in self.hidden]
        return {
            "kind": self.kind,
            "regressor_format": _FORMAT,
            "params": params,
            "architecture": {
                "n_features": self.n_features_,
                "layers": [int(h) for h in self.hidden] + [1],
                "activation": "relu",
                "n_params_arrays": len(self.params_),
            },
            "feature_names": self.feature_names_,
            "y_mean": self.y_mean_,
            "y_scale": self.y_scale_,
            "best_epoch": self.best_epoch_,
            "training_log": self.training_log_,
            "files": [self._FILE],
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self:
        _check_meta(meta, cls.kind, directory)
        torch = _import("torch")
        file = _require_file(directory, cls._FILE)
        arrays = _load_npz(file)
        params = dict(_meta_value(meta, "params", directory, dict))
        hidden = _meta_value(params, "hidden", directory, list)
        if not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ModelError(
                f"{directory}: the regressor's 'hidden' should be positive integers; {RETRAIN}"
            )
        params["hidden"] = tuple(hidden)
        model = _construct(cls, params, directory)
        arch = _meta_value(meta, "architecture", directory, dict)
        count = int(_meta_value(arch, "n_params_arrays", directory, int))
        arrays_k = [_array(arrays, f"param{k}", file, None) for k in range(count)]
        if count < 2 or arrays_k[0].ndim != 2:
            raise ModelError(f"{file}: malformed network weight arrays; {RETRAIN}")
        model.params_ = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays_k]
        model.x_mean_ = _array(arrays, "x_mean", file, 1)
        model.x_scale_ = _array(arrays, "x_scale", file, 1)
        model.importance_ = _array(arrays, "importance", file, 1)
        model.y_mean_ = float(_meta_value(meta, "y_mean", directory, (int, float)))
        model.y_scale_ = float(_meta_value(meta, "y_scale", directory, (int, float)))
        model.n_features_ = int(_meta_value(arch, "n_features", directory, int))
        model.feature_names_ = list(_meta_value(meta, "feature_names", directory, list))
        model.best_epoch_ = int(_meta_value(meta, "best_epoch", directory, int))
        model.training_log_ = list(meta.get("training_log") or [])
        d = model.n_features_
        if not (
            model.params_[0].shape[1] == model.x_mean_.size == model.x_scale_.size == d
            and len(model.feature_names_) == d
        ):
            raise ModelError(f"{directory}: dnn weights and metadata disagree on the feature count")
        model._set_tensors(torch)
        return model


def _column_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and (population) variances in float64, in blocks (no full float64 copy)."""
    n, d = X.shape
    count, mean, m2 = 0, np.zeros(d), np.zeros(d)
    for start in range(0, n, _CHUNK_ROWS):
        block = np.asarray(X[start : start + _CHUNK_ROWS], dtype=np.float64)
        n_b = block.shape[0]
        mean_b = block.mean(axis=0)
        m2_b = ((block - mean_b) ** 2).sum(axis=0)
        delta = mean_b - mean
        total = count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (count * n_b / total)
        count = total
    return mean, m2 / n


# ---------------------------------------------------------------------------------------------
# imported tree ensembles


class TreeEnsembleRegressor:
    """A sum of weighted regression trees trained elsewhere (e.g. Spark's ``GBTRegressor``),
    evaluated with NumPy: ``ŷ = Σ_t w_t tree_t(x)``; a row goes left when
    ``x[feature] <= threshold``.

    Trees are flat arrays in one table (``feature`` −1 at leaves, ``threshold``, ``left``,
    ``right`` as node numbers within the tree, ``value``: the leaf value, and at internal nodes
    the cover-weighted mean of its leaves) with per-tree ``offsets`` and ``weights``.
    ``contributions`` follow each row's path (Saabas): a split's feature gets the change of node
    value it causes, the bias column is ``Σ_t w_t value(root_t)``; rows sum to the prediction
    exactly. ``feature_importance`` is given at import (Spark's ``featureImportances``).
    It cannot be trained locally (``fit`` refuses); it is saved as ``.npz``.
    """

    kind = "tree_ensemble"
    feature_: np.ndarray
    threshold_: np.ndarray
    left_: np.ndarray
    right_: np.ndarray
    value_: np.ndarray
    offsets_: np.ndarray
    weights_: np.ndarray
    importance_: np.ndarray
    n_features_: int
    feature_names_: list[str]

    def __init__(self, source: str = "") -> None:
        self.source = source

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    @classmethod
    def from_arrays(
        cls,
        *,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        value: np.ndarray,
        offsets: np.ndarray,
        weights: np.ndarray,
        importance: np.ndarray,
        feature_names: Sequence[str],
        source: str = "",
    ) -> Self:
        model = cls(source=source)
        model.feature_ = np.asarray(feature, dtype=np.int32)
        model.threshold_ = np.asarray(threshold, dtype=np.float64)
        model.left_ = np.asarray(left, dtype=np.int32)
        model.right_ = np.asarray(right, dtype=np.int32)
        model.value_ = np.asarray(value, dtype=np.float64)
        model.offsets_ = np.asarray(offsets, dtype=np.int64)
        model.weights_ = np.asarray(weights, dtype=np.float64)
        model.importance_ = np.asarray(importance, dtype=np.float64)
        model.n_features_ = int(model.importance_.shape[0])
        model.feature_names_ = _names(feature_names, model.n_features_)
        n_nodes = model.feature_.shape[0]
        if model.offsets_.shape != (model.weights_.shape[0] + 1,) or model.offsets_[-1] != n_nodes:
            raise ModelError("tree ensemble: offsets and weights do not match the node table")
        if model.feature_.max(initial=-1) >= model.n_features_:
            raise ModelError("tree ensemble: a split uses a feature the model does not have")
        return model

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        raise ModelError("a tree ensemble is imported (e.g. from Spark), not trained locally")

    def _require_fitted(self) -> None:
        if not hasattr(self, "feature_"):
            raise ModelError("the tree ensemble is empty")

    def _walk(self, X: np.ndarray, contributions: np.ndarray | None) -> np.ndarray:
        out = np.zeros(X.shape[0])
        rows = np.arange(X.shape[0])
        for t, weight in enumerate(self.weights_):
            lo, hi = int(self.offsets_[t]), int(self.offsets_[t + 1])
            feature, threshold = self.feature_[lo:hi], self.threshold_[lo:hi]
            left, right, value = self.left_[lo:hi], self.right_[lo:hi], self.value_[lo:hi]
            node = np.zeros(X.shape[0], dtype=np.int64)
            if contributions is not None:
                contributions[:, -1] += weight * value[0]
            for _ in range(hi - lo):
                f = feature[node]
                inner = f >= 0
                if not inner.any():
                    break
                x = X[rows[inner], f[inner]]
                here = node[inner]
                nxt = np.where(x <= threshold[here], left[here], right[here])
                if contributions is not None:
                    np.add.at(
                        contributions,
                        (rows[inner], f[inner]),
                        weight * (value[nxt] - value[here]),
                    )
                node[inner] = nxt
            out += weight * value[node]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            block = np.asarray(X[start : start + _CHUNK_ROWS], dtype=np.float64)
            out[start : start + _CHUNK_ROWS] = self._walk(block, None)
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = _as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.zeros((X.shape[0], self.n_features_ + 1))
        self._walk(np.asarray(X, dtype=np.float64), out)
        return out

    def feature_importance(self) -> dict[str, float]:
        self._require_fitted()
        return {n: float(v) for n, v in zip(self.feature_names_, self.importance_, strict=True)}

    _FILE = "regressor_trees.npz"

    def save(self, directory: Path) -> dict[str, Any]:
        self._require_fitted()
        np.savez(
            Path(directory) / self._FILE,
            feature=self.feature_,
            threshold=self.threshold_,
            left=self.left_,
            right=self.right_,
            value=self.value_,
            offsets=self.offsets_,
            weights=self.weights_,
            importance=self.importance_,
        )
        return {
            "kind": self.kind,
            "regressor_format": _FORMAT,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "n_trees": int(self.weights_.shape[0]),
            "files": [self._FILE],
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self:
        _check_meta(meta, cls.kind, directory)
        file = _require_file(directory, cls._FILE)
        arrays = _load_npz(file)
        names = ("feature", "threshold", "left", "right", "value", "offsets", "weights")
        tables = {name: _array(arrays, name, file, 1) for name in (*names, "importance")}
        feature_names = list(_meta_value(meta, "feature_names", directory, list))
        source = str(_meta_value(meta, "params", directory, dict).get("source", ""))
        try:
            return cls.from_arrays(**tables, feature_names=feature_names, source=source)
        except (DataError, ModelError) as exc:  # from_arrays' checks do not know the file
            raise ModelError(f"{file}: {exc}; {RETRAIN}") from None


# ---------------------------------------------------------------------------------------------
# factory and tuning

_RegressorClass = (
    type[LinearRegressor]
    | type[BoostedRegressor]
    | type[DnnRegressor]
    | type[TreeEnsembleRegressor]
)
_CLASSES: dict[str, _RegressorClass] = {
    "linear": LinearRegressor,
    "boosted": BoostedRegressor,
    "dnn": DnnRegressor,
    "tree_ensemble": TreeEnsembleRegressor,  # imported (Spark's GBT), not trained locally
}


def _class_for(kind: str) -> _RegressorClass:
    try:
        return _CLASSES[kind]
    except KeyError:
        raise ModelError(
            f"unknown regressor kind {kind!r}; expected one of {', '.join(REGRESSOR_KINDS)}"
        ) from None


def make_regressor(kind: str, **params: Any) -> Regressor:
    """A new, unfitted regressor of ``kind`` ("linear", "boosted" or "dnn")."""
    cls = _class_for(kind)
    try:
        return cls(**params)
    except TypeError:
        raise ModelError(
            f"unknown parameter for the {kind} regressor in {sorted(params)}; "
            f"it takes {sorted(cls().get_params())}"
        ) from None


def load_regressor(directory: Path, meta: dict[str, Any]) -> Regressor:
    """Load a regressor saved by ``save`` into ``directory``, given the metadata it returned."""
    return _class_for(str(meta.get("kind"))).load(Path(directory), meta)


def _log_uniform(low: float, high: float) -> Callable[[np.random.Generator], float]:
    return lambda rng: float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _uniform(low: float, high: float) -> Callable[[np.random.Generator], float]:
    return lambda rng: float(rng.uniform(low, high))


def _choice(options: Sequence[Any]) -> Callable[[np.random.Generator], Any]:
    return lambda rng: options[int(rng.integers(len(options)))]


def _log_int(low: int, high: int) -> Callable[[np.random.Generator], int]:
    return lambda rng: round(math.exp(rng.uniform(math.log(low), math.log(high))))


def search_space(kind: str) -> dict[str, Callable[[np.random.Generator], Any]]:
    """Samplers for random-search tuning: ``{param: rng → value}``; unlisted params keep defaults.

    ``n_estimators``/``epochs`` are not searched: early stopping on the validation split picks
    the number of trees / epochs.
    """
    _class_for(kind)
    if kind == "linear":
        return {"l2_reg": _log_uniform(1e-6, 10.0)}
    if kind == "boosted":
        return {
            "num_leaves": _choice([15, 31, 63, 127, 255]),
            "learning_rate": _log_uniform(0.01, 0.2),
            "min_child_samples": _log_int(5, 200),
            "feature_fraction": _uniform(0.5, 1.0),
            "bagging_fraction": _uniform(0.5, 1.0),
            "lambda_l2": _log_uniform(1e-3, 10.0),
        }
    return {
        "hidden": _choice([(64,), (128, 64), (256, 128), (256, 128, 64)]),
        "dropout": _uniform(0.0, 0.3),
        "lr": _log_uniform(3e-4, 1e-2),
        "weight_decay": _log_uniform(1e-7, 1e-3),
        "batch_size": _choice([1024, 2048, 4096, 8192]),
    }
