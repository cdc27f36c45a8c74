"""Rendering result tables for the terminal (rich), or as JSON or CSV for other programs."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

FORMATS = ("table", "json", "csv")
MAX_TABLE_WIDTH = 100  # never wider, however wide the terminal
PIPE_TABLE_WIDTH = 80  # when stdout is not a terminal (files, pipes, tests)


def render(frame: pd.DataFrame, fmt: str, *, title: str | None = None) -> str:
    """Text of ``frame`` in ``fmt``; JSON is a list of records keyed by column name."""
    if fmt == "json":
        records = [
            {k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
        ]
        return json_text(records)
    if fmt == "csv":
        buf = io.StringIO()
        frame.map(_csv_cell).to_csv(buf, index=False)
        return buf.getvalue().rstrip("\n")
    return _rich_table(frame, title)


def render_mapping(values: Mapping[str, Any], fmt: str, *, title: str | None = None) -> str:
    """A flat mapping (e.g. metrics) as a two-column table, a JSON object, or a CSV row."""
    if fmt == "json":
        return json_text(dict(values))
    if fmt == "csv":
        return render(pd.DataFrame([dict(values)]), "csv")
    frame = pd.DataFrame({"metric": list(values), "value": list(values.values())})
    return _rich_table(frame, title)


def json_text(value: Any) -> str:
    """``value`` as indented, valid JSON: numpy values made plain, NaN and ±inf as null."""
    return json.dumps(_plain(value), indent=2, allow_nan=False)


def _rich_table(frame: pd.DataFrame, title: str | None) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(str(col), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(cell(v) for v in row))
    console = Console(
        file=io.StringIO(), width=table_width(), force_terminal=False, color_system=None
    )
    console.print(table)
    return console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined]


def table_width() -> int:
    """Columns for a table: on a terminal its width (``$COLUMNS`` wins), at most 100; when
    stdout is a file or a pipe, 80 (or ``$COLUMNS`` kept within 80..100)."""
    import shutil
    import sys

    try:
        interactive = sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        interactive = False
    columns = shutil.get_terminal_size((PIPE_TABLE_WIDTH, 24)).columns
    if interactive:
        return max(20, min(columns, MAX_TABLE_WIDTH))
    if not os.environ.get("COLUMNS", "").isdigit():
        columns = PIPE_TABLE_WIDTH
    return max(PIPE_TABLE_WIDTH, min(columns, MAX_TABLE_WIDTH))


def cell(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, list):
        shown = ", ".join(cell(v) for v in value[:3])
        return f"[{shown}{', …' if len(value) > 3 else ''}] ({len(value)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {cell(v)}" for k, v in value.items()) + "}"
    return "" if value is None else str(value)


def _csv_cell(value: Any) -> Any:
    value = _plain(value)
    return json.dumps(value) if isinstance(value, list | dict) else value


def _plain(value: Any) -> Any:
    """Numpy/pandas scalars and arrays to plain Python, NaN and ±inf to None (valid JSON)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if value is pd.NA or value is pd.NaT:
        return None
    return value
