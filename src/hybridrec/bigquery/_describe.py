"""What a regressor's input columns hold, from two scans of the training query: the encoder's
column descriptions (type, mean, categories, array width) and ``ML.FEATURE_INFO``'s rows.

Scan 1 computes every numeric column's min, max, mean, approximate median (a 4,096-value
reservoir), stddev and NULL count, every string column's distinct and NULL counts and every
array column's width; scan 2 counts the categories of all string columns at once
(``GROUPING SETS``), of which each keeps its ``MAX_CATEGORIES`` most frequent. Array columns
take a third scan for their per-position means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from hybridrec.bigquery._script import Statement

if TYPE_CHECKING:
    from hybridrec.bigquery._session import Session

__all__ = ["MAX_CATEGORIES", "describe_columns", "numeric"]

MAX_CATEGORIES = 128


def numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def describe_columns(
    session: Session, con: Any, st: Statement, sql: str, label: str, node: exp.Expression
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """``(encoder columns, FEATURE_INFO rows, row count)`` of the query ``sql``."""
    schema = session.query(con, st, f"SELECT * FROM ({sql}) LIMIT 0", node).to_arrow_table().schema
    found = [n for n in schema.names if n.lower() == label.lower()]
    if not found:
        raise st.error(
            f"input_label_cols: the query has no column {label} "
            f"(columns: {', '.join(schema.names)})",
            node,
        )
    if not numeric(schema.field(found[0]).type):
        raise st.error(
            f"the label column {label} must be numeric, not {schema.field(found[0]).type}", node
        )
    kinds: dict[str, str] = {}
    for field in schema:
        if field.name == found[0]:
            continue
        if numeric(field.type) or pa.types.is_boolean(field.type):
            kinds[field.name] = "number"
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            kinds[field.name] = "string"
        elif pa.types.is_list(field.type) and numeric(field.type.value_type):
            kinds[field.name] = "array"
        else:
            raise st.error(
                f"column {field.name} of type {field.type} cannot be a feature "
                "(numbers, booleans, strings and arrays of numbers can)",
                node,
            )
    stats, n_rows = _stats(con, sql, kinds)
    categories = _categories(con, sql, [n for n, k in kinds.items() if k == "string"])
    means = _position_means(con, sql, {n: stats[n][0] for n, k in kinds.items() if k == "array"})
    columns: list[dict[str, Any]] = []
    info: list[dict[str, Any]] = []
    for name, kind in kinds.items():
        row = stats[name]
        empty = dict.fromkeys(("min", "max", "mean", "median", "stddev", "category_count"))
        if kind == "number":
            columns.append({"name": name, "type": "number", "mean": float(row[2] or 0.0)})
            values = dict(zip(("min", "max", "mean", "median", "stddev"), row[:5], strict=True))
            info.append(
                {"input": name, **empty, **values, "null_count": int(row[5]), "dimension": None}
            )
        elif kind == "string":
            top, distinct = categories[name]
            columns.append({"name": name, "type": "string", "categories": top})
            info.append(
                {
                    "input": name,
                    **empty,
                    "category_count": distinct,
                    "null_count": int(row[0]),
                    "dimension": None,
                }
            )
        else:
            width = int(row[0] or 0)
            columns.append({"name": name, "type": "array", "width": width, "means": means[name]})
            info.append({"input": name, **empty, "null_count": int(row[1]), "dimension": width})
    return columns, info, n_rows


def _stats(con: Any, sql: str, kinds: dict[str, str]) -> tuple[dict[str, Any], int]:
    parts = ["count(*)"]
    sizes = {"number": 6, "string": 1, "array": 2}
    for name, kind in kinds.items():
        col = _q(name)
        if kind == "number":
            x = f"CAST({col} AS DOUBLE)"
            parts += [
                f"min({x})",
                f"max({x})",
                f"avg({x})",
                f"reservoir_quantile({x}, 0.5, 4096)",
                f"stddev_samp({x})",
                f"count(*) - count({x})",
            ]
        elif kind == "string":
            parts += [f"count(*) - count({col})"]
        else:
            parts += [f"max(len({col}))", f"count(*) - count({col})"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM ({sql})").fetchall()[0]
    out: dict[str, Any] = {}
    at = 1
    for name, kind in kinds.items():
        out[name] = row[at : at + sizes[kind]]
        at += sizes[kind]
    return out, int(row[0])


def _categories(con: Any, sql: str, names: list[str]) -> dict[str, tuple[list[str], int]]:
    """Each string column's ``MAX_CATEGORIES`` most frequent values (ties by value) and its
    number of distinct values."""
    if not names:
        return {}
    cols = ", ".join(_q(n) for n in names)
    sets = ", ".join(f"({_q(n)})" for n in names)
    groupings = ", ".join(f"GROUPING({_q(n)})" for n in names)
    rows = con.execute(
        f"SELECT {cols}, count(*) AS n, [{groupings}] AS g FROM ({sql}) "
        f"GROUP BY GROUPING SETS ({sets})"
    ).fetchall()
    counts: dict[str, list[tuple[int, str]]] = {n: [] for n in names}
    for row in rows:
        flags = row[-1]
        k = flags.index(0)
        if row[k] is not None:
            counts[names[k]].append((-int(row[-2]), str(row[k])))
    return {n: ([v for _, v in sorted(c)[:MAX_CATEGORIES]], len(c)) for n, c in counts.items()}


def _position_means(con: Any, sql: str, widths: dict[str, Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, width in widths.items():
        width = int(width or 0)
        if not width:
            out[name] = []
            continue
        parts = ", ".join(f"avg(CAST({_q(name)}[{k}] AS DOUBLE))" for k in range(1, width + 1))
        row = con.execute(f"SELECT {parts} FROM ({sql})").fetchall()[0]
        out[name] = [float(v) if v is not None else 0.0 for v in row]
    return out
