"""``dnn``: a PyTorch multi-layer perceptron on the CPU; the only module that imports torch,
and only inside methods."""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from hybridrec._core.params import constructor_params
from hybridrec._errors import ModelError
from hybridrec.artifacts import RETRAIN
from hybridrec.hybrid.regressors._base import (
    CHUNK_ROWS,
    FILE_FORMAT,
    as_matrix,
    as_target,
    check_meta,
    column_names,
    construct,
    import_optional,
    load_npz,
    meta_value,
    npz_array,
    require_file,
    validation_set,
)

log = logging.getLogger(__name__)


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
        torch = import_optional("torch")
        X = as_matrix(X, "X")
        y = as_target(y, "y", X.shape[0])
        val = validation_set(X_val, y_val, X.shape[1])
        names = column_names(feature_names, X.shape[1])
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
        X = as_matrix(X, "X", self.n_features_, allow_empty=True)
        torch = import_optional("torch")
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
        X = as_matrix(X, "X", self.n_features_, allow_empty=True)
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
            "regressor_format": FILE_FORMAT,
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
        check_meta(meta, cls.kind, directory)
        torch = import_optional("torch")
        file = require_file(directory, cls._FILE)
        arrays = load_npz(file)
        params = dict(meta_value(meta, "params", directory, dict))
        hidden = meta_value(params, "hidden", directory, list)
        if not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ModelError(
                f"{directory}: the regressor's 'hidden' should be positive integers; {RETRAIN}"
            )
        params["hidden"] = tuple(hidden)
        model = construct(cls, params, directory)
        arch = meta_value(meta, "architecture", directory, dict)
        count = int(meta_value(arch, "n_params_arrays", directory, int))
        arrays_k = [npz_array(arrays, f"param{k}", file, None) for k in range(count)]
        if count < 2 or arrays_k[0].ndim != 2:
            raise ModelError(f"{file}: malformed network weight arrays; {RETRAIN}")
        model.params_ = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays_k]
        model.x_mean_ = npz_array(arrays, "x_mean", file, 1)
        model.x_scale_ = npz_array(arrays, "x_scale", file, 1)
        model.importance_ = npz_array(arrays, "importance", file, 1)
        model.y_mean_ = float(meta_value(meta, "y_mean", directory, (int, float)))
        model.y_scale_ = float(meta_value(meta, "y_scale", directory, (int, float)))
        model.n_features_ = int(meta_value(arch, "n_features", directory, int))
        model.feature_names_ = list(meta_value(meta, "feature_names", directory, list))
        model.best_epoch_ = int(meta_value(meta, "best_epoch", directory, int))
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
    for start in range(0, n, CHUNK_ROWS):
        block = np.asarray(X[start : start + CHUNK_ROWS], dtype=np.float64)
        n_b = block.shape[0]
        mean_b = block.mean(axis=0)
        m2_b = ((block - mean_b) ** 2).sum(axis=0)
        delta = mean_b - mean
        total = count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (count * n_b / total)
        count = total
    return mean, m2 / n
