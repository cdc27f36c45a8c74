"""Reading the HTML report back: well-formedness, sections, images and metric cells."""

from __future__ import annotations

import math
from html.parser import HTMLParser
from pathlib import Path

SECTIONS = {"dataset", "evaluation", "training", "calibration", "activity", "item-map"}


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class ReportParser(HTMLParser):
    """Checks that every element is closed in order; collects sections, images and metrics."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.doctype = False
        self._cell: tuple[str, str] | None = None
        self._text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(attr.get("id", ""))
        if tag == "img":
            self.images.append(attr)
        if tag == "td" and "data-metric" in attr:
            self._cell = (attr["data-model"], attr["data-metric"])
            self._text = []
        self._in_title = tag == "title"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "td" and self._cell is not None:
            self.cells[self._cell] = "".join(self._text).strip()
            self._cell = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)
        if self._in_title:
            self.title += data


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def shown(value: float) -> str:
    """A metric as the report and ``hybridrec evaluate`` print it."""
    return "—" if value is None or math.isnan(value) else f"{value:.4f}"
