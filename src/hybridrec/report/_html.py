"""The page around the sections: inline CSS, escaping, tables, and the atomic write."""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrec._core.files import atomic_file
from hybridrec._core.output import cell
from hybridrec.report._data import Subject, kind_label

_CSS = """
:root { --fg: #1d232a; --muted: #5b6673; --line: #dde3ea; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #f6f8fa; }
header { background: #1d232a; color: #fff; padding: 1.4rem 2rem; }
header h1 { margin: 0 0 .3rem; font-size: 1.6rem; }
header p { margin: 0; color: #c8d1da; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: .5rem 2rem;
      position: sticky; top: 0; }
nav a { margin-right: 1.1rem; color: var(--accent); text-decoration: none; font-size: .92rem; }
main { max-width: 1080px; margin: 0 auto; padding: 1rem 2rem 3rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 1rem 1.4rem; margin: 1.2rem 0; }
h2 { margin: .2rem 0 .8rem; font-size: 1.25rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .3rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
thead th { border-bottom: 2px solid var(--fg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.kind td { color: var(--muted); font-size: .82rem; max-width: 16rem; }
table.summary th { color: var(--muted); font-weight: normal; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .2rem; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .4rem .8rem; }
code { background: #eef1f4; padding: 0 .25rem; border-radius: 3px; font-size: .88em;
       white-space: nowrap; }
footer { text-align: center; color: var(--muted); font-size: .85rem; padding-bottom: 2rem; }
"""


def html_page(title: str, names: Sequence[str], subject: Subject, bodies: list[Any]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        hybridrec_version = version("hybridrec")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        hybridrec_version = "dev"
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in bodies)
    sections = "".join(
        f'<section id="{a}"><h2>{esc(h)}</h2>{body}</section>' for a, h, body in bodies
    )
    compared = ", ".join(esc(n) for n in names[1:])
    subtitle = f"Model <b>{esc(subject.name)}</b> ({esc(kind_label(subject.model))})" + (
        f", compared with {compared}" if compared else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{subtitle}. Generated {stamp} by hybridrec "
        f"{esc(hybridrec_version)}.</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main>"
        "<footer>Self-contained: images are embedded, nothing is loaded from the network."
        "</footer></body></html>\n"
    )


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def kv_table(values: Mapping[str, str], css: str) -> str:
    rows = "".join(
        f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in values.items()
    )
    return f'<table class="{css}"><tbody>{rows}</tbody></table>'


def frame_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(cell(v))}</td>' if is_num else f"<td>{esc(cell(v))}</td>"
            for v, is_num in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
