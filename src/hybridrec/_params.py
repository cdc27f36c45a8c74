"""Hyper-parameters of an estimator, read off its constructor (scikit-learn's convention)."""

from __future__ import annotations

import inspect
from typing import Any

# Runtime switches, not hyper-parameters: never saved with a model.
_NOT_PARAMS = ("self", "show_progress")


def constructor_params(estimator: Any) -> dict[str, Any]:
    """``{name: value}`` for every constructor argument, as stored verbatim on the instance."""
    signature = inspect.signature(type(estimator).__init__)
    return {
        name: getattr(estimator, name) for name in signature.parameters if name not in _NOT_PARAMS
    }
