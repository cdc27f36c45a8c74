"""Tuning the MF's hyperparameters on a validation split carved from the training ratings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.tuning import random_search
from hybridrec._errors import DataError
from hybridrec.data import holdout_mask
from hybridrec.mf._model import MatrixFactorization

SEARCH_SPACE: dict[str, Callable[[np.random.Generator], Any]] = {
    "num_factors": lambda rng: int(rng.choice([8, 16, 32, 64, 128])),
    "l2_reg": lambda rng: float(np.exp(rng.uniform(np.log(0.03), np.log(0.4)))),
    "l2_reg_item": lambda rng: float(np.exp(rng.uniform(np.log(0.1), np.log(2.0)))),
    "item_reg_exponent": lambda rng: float(rng.uniform(0.4, 1.0)),
    "l2_reg_bias": lambda rng: float(np.exp(rng.uniform(np.log(0.1), np.log(10.0)))),
}


def tune_mf(
    ratings: pd.DataFrame,
    n_trials: int,
    base: MatrixFactorization,
    *,
    validation_fraction: float = 0.1,
    space: Mapping[str, Callable[[np.random.Generator], Any]] | None = None,
) -> MatrixFactorization:
    """Random search over ``space`` (default :data:`SEARCH_SPACE`, whose first trial is the
    defaults); returns a copy of ``base`` with the best parameters and the trials in
    ``tuning_trials_`` (kept in the saved model), not yet fitted.

    ``base`` supplies every other parameter, the seed and the evaluation split: trials train on
    the training part minus a ``validation_fraction`` and are scored on that fraction.
    """
    base._check_params()
    params = base.get_params()
    held_out = holdout_mask(len(ratings), base.eval_fraction, base.seed)
    train = ratings.loc[~held_out]

    def score(trial: dict[str, Any]) -> float:
        model = MatrixFactorization(**{**params, **trial, "eval_fraction": validation_fraction})
        model.fit(train)
        if len(model.eval_set_) == 0:
            raise DataError(
                f"too few ratings to tune: the validation split (validation_fraction="
                f"{validation_fraction} of {len(train)} training ratings) is empty; "
                "give more ratings or train without tuning"
            )
        return float(np.sqrt(model.training_log_[-1]["eval_loss"]))

    if space is not None:
        best, trials = random_search(n_trials, space, score, seed=base.seed)
    else:
        first = {name: params[name] for name in SEARCH_SPACE}
        best, trials = random_search(n_trials, SEARCH_SPACE, score, seed=base.seed, first=first)
    tuned = MatrixFactorization(**{**params, **best}, show_progress=base.show_progress)
    tuned.tuning_trials_ = trials
    return tuned


def tuned_params(model: MatrixFactorization) -> dict[str, Any]:
    """The parameters :func:`tune_mf` chose for ``model`` (those of :data:`SEARCH_SPACE`)."""
    return {name: getattr(model, name) for name in SEARCH_SPACE}
