"""What a model's ``meta.json`` must look like: the keys each kind's loader reads, and
their JSON types. :func:`hybridrec.artifacts.read_meta` applies it, so a hand-edited or
foreign ``meta.json`` is a one-line :class:`~hybridrec.ModelError` naming the file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybridrec._core.contract import (
    KINDS,
    MATRIX_FACTORIZATION,
    MATRIX_FACTORIZATION_IMPLICIT,
    NUMBER,
)
from hybridrec._errors import ModelError

__all__ = ["CHECKSUMS", "RETRAIN", "MetaDict", "check_meta_keys", "json_type"]

CHECKSUMS = "checksums"  # meta.json key: {relative posix path: {"sha256": hex, "size": bytes}}
RETRAIN = "retrain the model"

# keys any kind may have
_COMMON_KEYS: dict[str, Any] = {
    "kind": str,
    "metrics": dict,
    "tuning_trials": list,
    CHECKSUMS: dict,
}
_PAIRS = ("rating_range", "stats_global_mean")  # [low, high] and [user, item]: two values
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


class MetaDict(dict[str, Any]):
    """``meta.json``'s object: a missing key is a :class:`ModelError` naming the file."""

    def __init__(self, values: dict[str, Any], file: Path) -> None:
        super().__init__(values)
        self.file = file

    def __missing__(self, key: str) -> Any:
        raise ModelError(f"{self.file}: missing key {key!r}; {RETRAIN}")


def check_meta_keys(meta: dict[str, Any], meta_file: Path) -> None:
    # the JSON types of the keys the kind's ``load`` reads (checked when present: a missing one
    # is reported when a loader asks for it, so that ``meta.get("kind")`` works on any model)
    kind = KINDS.get(str(meta.get("kind")))
    kind_keys = kind.meta_keys if kind is not None else {}
    for key, expected in {**_COMMON_KEYS, **kind_keys}.items():
        if key not in meta:
            continue
        value = meta[key]
        if not isinstance(value, expected) or (expected is NUMBER and isinstance(value, bool)):
            raise ModelError(
                f"{meta_file}: {key!r} should be {_expected_name(expected)}, "
                f"not {json_type(value)}; {RETRAIN}"
            )
        if key in _PAIRS and len(value) != 2:
            raise ModelError(
                f"{meta_file}: {key!r} should hold 2 values, not {len(value)}; {RETRAIN}"
            )
    params = meta.get("params")
    if kind in (MATRIX_FACTORIZATION, MATRIX_FACTORIZATION_IMPLICIT) and isinstance(params, dict):
        k = params.get("num_factors")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ModelError(
                f"{meta_file}: params.num_factors should be a positive integer, not {k!r}; "
                f"{RETRAIN}"
            )


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _JSON_TYPES.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, NUMBER) else type(value).__name__


def _expected_name(expected: Any) -> str:
    return "a number" if expected is NUMBER else _JSON_TYPES.get(expected, str(expected))
