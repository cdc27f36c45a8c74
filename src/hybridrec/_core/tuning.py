"""Random-search hyperparameter tuning (BigQuery ML's ``NUM_TRIALS``), objective: RMSE.

Trials are scored on a validation split carved from the *training* ratings, never on the
evaluation hold-out, so the reported evaluation stays honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def random_search(
    n_trials: int,
    space: Mapping[str, Callable[[np.random.Generator], Any]],
    score: Callable[[dict[str, Any]], float],
    *,
    seed: int,
    first: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Try ``n_trials`` parameter sets (the first is ``first``, e.g. the defaults, if given);
    return the best set and the trials table (trial, params, rmse, seconds)."""
    if n_trials < 1:
        raise ValueError(f"the number of trials must be at least 1, got {n_trials}")
    rng = np.random.default_rng([seed, 7])
    trials: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] | None = None
    for trial in range(n_trials):
        if trial == 0 and first is not None:
            params = dict(first)
        else:
            params = {name: _plain(sample(rng)) for name, sample in space.items()}
        start = time.perf_counter()
        rmse = float(score(params))
        trials.append(
            {
                "trial": trial,
                "params": params,
                "rmse": rmse,
                "seconds": round(time.perf_counter() - start, 3),
            }
        )
        if best is None or rmse < best[0]:
            best = (rmse, params)
    assert best is not None
    return best[1], trials


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
