"""``OPTIONS(name = value, …)`` of ``CREATE MODEL``: typed access, one-line errors that name
the option, ``HPARAM_RANGE`` / ``HPARAM_CANDIDATES`` as random-search samplers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlglot import exp

from hybridrec.bigquery._script import Statement

__all__ = ["Options", "read_options"]

_MISSING = object()
EXTRA_PREFIX = "hybridrec_"


class Options:
    def __init__(self, values: dict[str, exp.Expression], st: Statement) -> None:
        self.values = values
        self.st = st

    def has(self, name: str) -> bool:
        return name in self.values

    def node(self, name: str) -> exp.Expression | None:
        return self.values.get(name)

    def check_known(self, known: set[str], model_type: str) -> None:
        for name, node in self.values.items():
            if name not in known and not name.startswith(EXTRA_PREFIX):
                raise self.st.error(f"unknown option {name} for model_type {model_type}", node)

    def text(self, name: str, default: Any) -> Any:
        node = self.values.get(name)
        if node is None:
            return default
        if isinstance(node, exp.Literal) and node.is_string:
            return node.name
        raise self.st.error(f"option {name} must be a string", node)

    def number(self, name: str) -> float:
        node = self.values[name]
        value = _number(node)
        if value is None:
            raise self.st.error(f"option {name} must be a number", node)
        return value

    def boolean(self, name: str) -> bool:
        node = self.values[name]
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        raise self.st.error(f"option {name} must be TRUE or FALSE", node)

    def strings(self, name: str) -> list[str]:
        node = self.values.get(name)
        if node is None:
            return []
        items = node.expressions if isinstance(node, exp.Array) else [node]
        if not all(isinstance(i, exp.Literal) and i.is_string for i in items):
            raise self.st.error(f"option {name} must be a list of strings ['a', …]", node)
        return [i.name for i in items]

    def number_or_space(self, name: str) -> float | Callable[[np.random.Generator], Any] | None:
        """The option's number, or a sampler for ``HPARAM_RANGE(a, b)`` /
        ``HPARAM_CANDIDATES([…])``; None when absent. Ranges whose bounds are positive and a
        decade or more apart are sampled log-uniformly (integers for ``num_factors``)."""
        node = self.values.get(name)
        if node is None:
            return None
        if isinstance(node, exp.Anonymous) and node.name.upper() in (
            "HPARAM_RANGE",
            "HPARAM_CANDIDATES",
        ):
            return self._space(name, node)
        return self.number(name)

    def _space(self, name: str, node: exp.Anonymous) -> Callable[[np.random.Generator], Any]:
        integer = name == "num_factors"
        if node.name.upper() == "HPARAM_CANDIDATES":
            items = (
                node.expressions[0].expressions
                if node.expressions and isinstance(node.expressions[0], exp.Array)
                else node.expressions
            )
            values = [_number(i) for i in items]
            if not values or any(v is None for v in values):
                raise self.st.error(f"HPARAM_CANDIDATES of {name} must list numbers", node)
            cast = [int(v) if integer else float(v) for v in values if v is not None]
            return lambda rng: cast[int(rng.integers(len(cast)))]
        bounds = [_number(i) for i in node.expressions]
        if len(bounds) != 2 or bounds[0] is None or bounds[1] is None or bounds[0] > bounds[1]:
            raise self.st.error(f"HPARAM_RANGE of {name} needs (low, high) with low <= high", node)
        low, high = float(bounds[0]), float(bounds[1])
        logscale = low > 0 and high / low >= 10

        def sample(rng: np.random.Generator) -> Any:
            value = (
                math.exp(rng.uniform(math.log(low), math.log(high)))
                if logscale
                else rng.uniform(low, high)
            )
            return round(value) if integer else float(value)

        return sample

    def hybridrec_params(self, known: set[str]) -> dict[str, Any]:
        """``hybridrec_<param> = value`` options as constructor parameters (``known`` names
        them; any other is an unknown option)."""
        out: dict[str, Any] = {}
        for name, node in self.values.items():
            if not name.startswith(EXTRA_PREFIX):
                continue
            param = name[len(EXTRA_PREFIX) :]
            if param not in known:
                raise self.st.error(
                    f"unknown option {name} (hybridrec_ options: "
                    f"{', '.join(EXTRA_PREFIX + k for k in sorted(known))})",
                    node,
                )
            if isinstance(node, exp.Boolean):
                out[param] = bool(node.this)
            elif isinstance(node, exp.Literal) and node.is_string:
                out[param] = node.name
            elif isinstance(node, exp.Null):
                out[param] = None
            else:
                value = _number(node)
                if value is None:
                    raise self.st.error(f"option {name} must be a number, string or boolean", node)
                out[param] = (
                    int(value) if float(value).is_integer() and "." not in node.sql() else value
                )
        return out


def _number(node: exp.Expression) -> float | None:
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.name)
    if isinstance(node, exp.Neg):
        inner = _number(node.this)
        return None if inner is None else -inner
    return None


def read_options(properties: exp.Expression | None, st: Statement) -> Options:
    values: dict[str, exp.Expression] = {}
    for prop in properties.expressions if properties is not None else []:
        if not isinstance(prop, exp.Property):
            continue
        name = prop.name.lower()
        if name in values:
            raise st.error(f"option {name} is given twice", prop)
        values[name] = prop.args["value"]
    return Options(values, st)
