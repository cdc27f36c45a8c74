"""The regressors' shared protocol, input checks and file helpers (NumPy only)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import RETRAIN, read_npz

REGRESSOR_KINDS = ("linear", "boosted", "dnn")
FILE_FORMAT = 1  # version of the files written by ``save``; bumped on incompatible changes
CHUNK_ROWS = 1 << 18  # rows per block when streaming over big arrays (≈ 128 MB at 60 float64)


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


def import_optional(name: str) -> Any:
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


def as_matrix(
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


def as_target(y: Any, name: str, n_rows: int) -> np.ndarray:
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
    for start in range(0, arr.shape[0], CHUNK_ROWS):
        block = arr[start : start + CHUNK_ROWS]
        ok = np.isfinite(block)
        if not ok.all():
            where = np.argwhere(~ok)[0]
            at = f"row {start + int(where[0])}"
            if block.ndim == 2:
                at += f", column {int(where[1])}"
            raise DataError(f"{name} contains NaN or infinite values (first at {at})")


def validation_set(X_val: Any, y_val: Any, n_features: int) -> tuple[np.ndarray, np.ndarray] | None:
    if X_val is None and y_val is None:
        return None
    if X_val is None or y_val is None:
        raise DataError("X_val and y_val must be given together")
    Xv = as_matrix(X_val, "X_val", n_features)
    return Xv, as_target(y_val, "y_val", Xv.shape[0])


def column_names(feature_names: Sequence[str], n_features: int) -> list[str]:
    names = [str(n) for n in feature_names]
    if not names:
        return [f"x{j}" for j in range(n_features)]
    if len(names) != n_features:
        raise DataError(f"got {len(names)} feature names for {n_features} feature columns")
    if len(set(names)) != len(names):
        raise DataError("feature names must be unique")
    return names


def check_meta(meta: dict[str, Any], kind: str, directory: Path) -> None:
    if not isinstance(meta, dict):
        raise ModelError(f"{directory}: the regressor's metadata is not a JSON object")
    if meta.get("kind") != kind:
        raise ModelError(f"{directory}: stored regressor is {meta.get('kind')!r}, not {kind!r}")
    if meta.get("regressor_format") != FILE_FORMAT:
        raise ModelError(
            f"{directory}: regressor format {meta.get('regressor_format')!r} is not supported "
            f"(this hybridrec reads {FILE_FORMAT})"
        )


def require_file(directory: Path, name: str) -> Path:
    path = Path(directory) / name
    if not path.is_file():
        raise ModelError(f"model at {directory} is incomplete: {name} is missing")
    return path


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer"}


def meta_value(meta: dict[str, Any], key: str, directory: Path, expected: Any = object) -> Any:
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


def construct(cls: Any, params: dict[str, Any], directory: Path) -> Any:
    """``cls(**params)`` with the stored parameters; unknown or invalid ones are a
    :class:`ModelError` naming the directory."""
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"{directory}: the regressor's stored params are not valid ({exc}); {RETRAIN}"
        ) from None


def npz_array(arrays: dict[str, np.ndarray], key: str, file: Path, ndim: int | None) -> np.ndarray:
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


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``path``, checked against the model's checksums first; a file NumPy
    cannot read is a :class:`ModelError` naming it."""
    return read_npz(path)
