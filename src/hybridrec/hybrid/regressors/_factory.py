"""Make, load and tune a regressor by kind."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec._errors import ModelError
from hybridrec.hybrid.regressors._base import REGRESSOR_KINDS, Regressor
from hybridrec.hybrid.regressors._boosted import BoostedRegressor
from hybridrec.hybrid.regressors._dnn import DnnRegressor
from hybridrec.hybrid.regressors._linear import LinearRegressor
from hybridrec.hybrid.regressors._tree_ensemble import TreeEnsembleRegressor

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
