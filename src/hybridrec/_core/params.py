"""Hyper-parameters of an estimator, read off its constructor (scikit-learn's convention)."""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

import numpy as np

# Runtime switches, not hyper-parameters: never saved with a model.
_NOT_PARAMS = ("self", "show_progress")


def constructor_params(estimator: Any) -> dict[str, Any]:
    """``{name: value}`` for every constructor argument, as stored verbatim on the instance."""
    signature = inspect.signature(type(estimator).__init__)
    return {
        name: getattr(estimator, name) for name in signature.parameters if name not in _NOT_PARAMS
    }


# ---------------------------------------------------------------------- checking values
# ``_check_params`` of every estimator uses these, so a bad value is one ``ValueError`` naming
# the parameter, and NaN or infinity never slips through a range check (``nan < 0`` is false).


def check_integer(
    name: str, value: Any, *, low: int | None = None, high: int | None = None
) -> None:
    """``value`` is an integer (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{name} must be {_range_text(low, high)}, got {number}")


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    """``value`` is a finite real number in the range (``None`` too when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        bounds = (
            ""
            if low is None and high is None
            else " " + _range_text(low, high, low_open, high_open)
        )
        raise ValueError(f"{name} must be a finite number{bounds}, got {number}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ValueError(
            f"{name} must be {_range_text(low, high, low_open, high_open)}, got {value}"
        )


def check_fraction(name: str, value: Any, *, allow_zero: bool = True) -> None:
    """``value`` is a share of the data to set aside: in ``[0, 1)`` (``(0, 1)`` when zero is
    not allowed); all of it never is."""
    check_number(name, value, low=0, high=1, low_open=not allow_zero, high_open=True)


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_seed(name: str, value: Any) -> None:
    """A seed NumPy accepts: a non-negative integer."""
    check_integer(name, value, low=0)


def _range_text(
    low: float | None, high: float | None, low_open: bool = False, high_open: bool = False
) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "a number"
