"""What a model's ``meta.json`` must look like: the keys each kind's loader reads, and
their JSON types. :func:`hybridrec.artifacts.read_meta` applies it, so a hand-edited or
foreign ``meta.json`` is a one-line :class:`~hybridrec.ModelError` naming the file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybridrec._errors import ModelError

__all__ = ["CHECKSUMS", "RETRAIN", "MetaDict", "check_meta_keys", "json_type"]

CHECKSUMS = "checksums"  # meta.json key: {relative posix path: {"sha256": hex, "size": bytes}}
RETRAIN = "retrain the model"

_NUMBER = (int, float)
_MF_KEYS: dict[str, Any] = {
    "params": dict,
    "global_mean": _NUMBER,
    "rating_range": list,
    "training_log": list,
}
# the JSON types of the keys each kind's ``load`` reads (checked when present: a missing one is
# reported when a loader asks for it, so that ``meta.get("kind")`` works on any model)
_KIND_KEYS: dict[str, dict[str, Any]] = {
    "matrix_factorization": _MF_KEYS,
    "matrix_factorization_implicit": _MF_KEYS,
    "hybrid": {
        "params": dict,
        "regressor": dict,
        "feature_names": list,
        "user_encoder": dict,
        "item_encoder": dict,
        "stats_global_mean": list,
        "rating_range": list,
    },
    "ranking": {"params": dict},
}
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
    kind_keys = _KIND_KEYS.get(str(meta.get("kind")), {})
    for key, expected in {**_COMMON_KEYS, **kind_keys}.items():
        if key not in meta:
            continue
        value = meta[key]
        if not isinstance(value, expected) or (expected is _NUMBER and isinstance(value, bool)):
            raise ModelError(
                f"{meta_file}: {key!r} should be {_expected_name(expected)}, "
                f"not {json_type(value)}; {RETRAIN}"
            )
        if key in _PAIRS and len(value) != 2:
            raise ModelError(
                f"{meta_file}: {key!r} should hold 2 values, not {len(value)}; {RETRAIN}"
            )
    params = meta.get("params")
    if kind_keys is _MF_KEYS and isinstance(params, dict):
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
    return "a number" if isinstance(value, _NUMBER) else type(value).__name__


def _expected_name(expected: Any) -> str:
    return "a number" if expected is _NUMBER else _JSON_TYPES.get(expected, str(expected))
