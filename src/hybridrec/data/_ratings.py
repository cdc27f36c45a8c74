"""What a valid rating row is: the one rule ``hybridrec load`` and every ratings file use.

A rating is a finite number on the scale :data:`RATING_MIN`–:data:`RATING_MAX` (0–10 covers
MovieLens' 0.5–5 stars and 1–10 scales); ids are integers or strings, never missing or blank.
``load`` applies the scale in SQL (:func:`bad_rating_sql`); ratings files read for ``train mf
--ratings``, ``evaluate --data`` and new-user fold-in apply it here (:func:`rating_values`),
with the same messages (:func:`rating_outside`). In-memory frames given to the Python API are
checked by the same functions without the scale (any finite rating up to
:data:`MAX_ABS_RATING`, e.g. implicit-feedback counts).

Errors name where the bad value is through a ``where(position)`` callback: ``"FILE: line 31"``
for a CSV file, ``"FILE: row 30"`` for Parquet, ``"row 29"`` (the index label) for a frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._errors import DataError

__all__ = [
    "MAX_ABS_RATING",
    "RATING_MAX",
    "RATING_MIN",
    "bad_rating_sql",
    "check_scalar_ids",
    "frame_rows",
    "id_values",
    "new_user_ratings",
    "rating_outside",
    "rating_values",
]

#: the rating scale every loaded or read rating must be on
RATING_MIN, RATING_MAX = 0.0, 10.0
#: without the scale (in-memory frames): beyond this, float32 training arithmetic overflows
MAX_ABS_RATING = 1e9

Where = Callable[[int], str]


def rating_outside(value: float) -> str:
    """The message for a rating off the scale (NaN and infinities included)."""
    return f"rating {float(value)} is outside {RATING_MIN:g}-{RATING_MAX:g}"


def bad_rating_sql(column: str = "rating") -> str:
    """SQL condition true for a (non-NULL) rating off the scale: :func:`rating_outside`."""
    return f"isnan({column}) OR {column} < {RATING_MIN:g} OR {column} > {RATING_MAX:g}"


def frame_rows(frame: pd.DataFrame) -> Where:
    """``where`` for an in-memory frame: the row's index label."""
    index = frame.index
    return lambda position: f"row {index[position]}"


def rating_values(column: pd.Series, where: Where, *, scale: bool = True) -> np.ndarray:
    """The ratings as float64; a :class:`DataError` at the first missing one, non-number,
    non-finite one or (``scale``) one off the scale; else any magnitude over
    :data:`MAX_ABS_RATING`."""
    if pd.api.types.is_bool_dtype(column.dtype):
        raise DataError(f"{where(0)}: column rating holds true/false values, not numbers")
    missing = column.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    ok = finite & (values >= RATING_MIN) & (values <= RATING_MAX) if scale else finite
    if not scale:
        ok &= np.abs(values, where=finite, out=np.zeros_like(values)) <= MAX_ABS_RATING
    if ok.all():
        return values
    position = int(np.flatnonzero(~ok)[0])
    at = where(position)
    if missing[position]:
        raise DataError(f"{at}: missing rating")
    raw = column.iloc[position]
    if np.isnan(values[position]) and not _is_nan_number(raw):
        raise DataError(f"{at}: column rating: {_short(raw)} is not a number")
    if scale:
        raise DataError(f"{at}: {rating_outside(values[position])}")
    raise DataError(
        f"{at}: rating {values[position]} is not a finite number within ±{MAX_ABS_RATING:g}"
    )


def id_values(column: pd.Series, name: str, where: Where) -> np.ndarray:
    """The ids as a NumPy array; a :class:`DataError` at the first missing or blank id, or
    one that is not an integer or a string (a list, a fraction, true/false), or when integers
    and strings are mixed."""
    missing = column.isna().to_numpy()
    if missing.any():
        raise DataError(f"{where(int(np.flatnonzero(missing)[0]))}: missing {name}")
    kind = pd.api.types.infer_dtype(column, skipna=False)
    if kind == "string":
        blank = (column.astype(str).str.strip() == "").to_numpy()
        if blank.any():
            raise DataError(f"{where(int(np.flatnonzero(blank)[0]))}: missing {name} (blank)")
    elif kind == "floating":
        values = column.to_numpy(dtype=np.float64)
        fraction = ~np.isfinite(values) | (values % 1 != 0)
        if fraction.any():
            position = int(np.flatnonzero(fraction)[0])
            raise DataError(
                f"{where(position)}: column {name}: {values[position]} is not an id "
                "(ids are integers or strings)"
            )
    elif kind not in ("integer", "empty"):
        _raise_bad_ids(column, name, where)
    return column.to_numpy()


def check_scalar_ids(column: pd.Series, name: str, where: Where) -> None:
    """A :class:`DataError` at the first id that is not a scalar (a list, a dict): where ids
    may be missing or unknown (pairs to predict) but must still be ids."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if kind in ("integer", "string", "floating", "empty", "mixed-integer", "mixed-integer-float"):
        return
    for position, value in enumerate(column.array):
        if isinstance(value, list | tuple | dict | set | np.ndarray):
            raise DataError(
                f"{where(position)}: column {name} holds {_kind_of(value)} ({_short(value)}), "
                "not an id: ids must be integers or strings"
            )


def _raise_bad_ids(column: pd.Series, name: str, where: Where) -> None:
    """The first value of an id column holding something else than integers or strings (or
    both): only on the error path, so a Python loop is fine."""
    first_type: type | None = None
    for position, value in enumerate(column.array):
        if isinstance(value, str):
            this: type = str
        elif isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
            this = int
        else:
            raise DataError(
                f"{where(position)}: column {name} holds {_kind_of(value)} ({_short(value)}), "
                "not an id: ids must be integers or strings"
            )
        if first_type is None:
            first_type = this
        elif this is not first_type:
            raise DataError(
                f"{where(position)}: column {name} mixes integer and text ids "
                f"({_short(value)}): give one kind"
            )
    raise DataError(f"column {name} does not hold ids (integers or strings)")


def _kind_of(value: Any) -> str:
    """``"a list"`` for any sequence (Parquet lists arrive as arrays), else the type."""
    if isinstance(value, list | tuple | np.ndarray):
        return "a list"
    return f"a {type(value).__name__}"


def _is_nan_number(value: Any) -> bool:
    """Whether ``value`` is itself a NaN number (not text that failed to parse)."""
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()  # plain Python: 5, not np.int64(5)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def new_user_ratings(
    frame: pd.DataFrame, where: Where, *, scale: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """A new user's ``(movieId, rating)`` rows as arrays: ids as :func:`id_values`, each
    item at most once, ratings as :func:`rating_values` (errors also name the movieId)."""
    items = id_values(frame["movieId"], "movieId", where)
    repeated = pd.Series(items).duplicated().to_numpy()
    if repeated.any():
        second = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero(items[:second] == items[second])[0])
        raise DataError(
            f"{where(second)}: movieId {_short(items[second])} is rated twice (first at "
            f"{where(first).rsplit(': ', 1)[-1]}): give each item once"
        )
    values = rating_values(
        frame["rating"], lambda p: f"{where(p)} (movieId {_short(items[p])})", scale=scale
    )
    return items, values
