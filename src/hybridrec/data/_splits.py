"""The seeded random hold-out split every model (and the Spark engine) uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["holdout_mask"]


def holdout_mask(
    n: int, fraction: float, seed: int | Sequence[int] | np.random.Generator
) -> np.ndarray:
    """Which of ``n`` rows are held out: each one independently with probability ``fraction``,
    from ``n`` uniform draws of ``numpy.random.default_rng(seed)``.

    Given a ``Generator``, the draws come from it (and advance it), so a model that goes on to
    draw its initial factors from the same generator gets the same numbers as before."""
    return np.asarray(np.random.default_rng(seed).random(n) < fraction)
