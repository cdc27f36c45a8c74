"""A script: its statements, where each starts, and errors that say where they happened.

Every error of the SQL face is one line, ``statement N, line L, col C: what`` (the CLI adds
``error:``), with the line and column in the whole script, counted from 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from hybridrec._errors import HybridrecError
from hybridrec.bigquery._dialect import HybridBigQuery

__all__ = ["SqlError", "Statement", "split_script"]


class SqlError(HybridrecError):
    """A refused or failed statement; the message says which one, and where."""


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text, its number (from 1) and its offset in the script."""

    number: int
    text: str
    offset: int
    script: str

    def where(self, offset: int | None = None) -> str:
        """``statement N, line L, col C`` of ``offset`` in this statement (its start if None)."""
        absolute = self.offset + (offset or 0)
        before = self.script[:absolute]
        line = before.count("\n") + 1
        col = absolute - (before.rfind("\n") + 1) + 1
        return f"statement {self.number}, line {line}, col {col}"

    def error(self, message: str, node: exp.Expression | None = None) -> SqlError:
        """A :class:`SqlError` at ``node`` (its first identifier with a position), else at the
        start of the statement."""
        return SqlError(f"{self.where(_offset_of(node))}: {message}")

    def error_at(self, message: str, offset: int | None) -> SqlError:
        return SqlError(f"{self.where(offset)}: {message}")

    def parse(self) -> exp.Expression:
        """The statement's syntax tree; a syntax error is a :class:`SqlError` naming where."""
        try:
            parsed = HybridBigQuery().parse(self.text)
        except ParseError as exc:
            first: dict[str, Any] = exc.errors[0] if exc.errors else {}
            message = str(first.get("description") or exc).splitlines()[0]
            offset = _error_offset(self.text, first)
            raise self.error_at(f"syntax error: {_short(message)}", offset) from None
        except TokenError as exc:
            raise self.error_at(f"syntax error: {_short(str(exc))}", None) from None
        if len(parsed) != 1 or not isinstance(parsed[0], exp.Expression):
            raise self.error_at("expected one statement", None)
        return parsed[0]


def split_script(script: str) -> list[Statement]:
    """The statements of ``script``, split at top-level ``;`` (not inside strings or
    comments); empty statements are skipped."""
    try:
        tokens = HybridBigQuery().tokenize(script)
    except TokenError as exc:
        raise SqlError(f"statement 1, line 1, col 1: syntax error: {_short(str(exc))}") from None
    statements: list[Statement] = []
    start: int | None = None
    end = 0
    for token in [*tokens, None]:
        if token is None or token.token_type == TokenType.SEMICOLON:
            if start is not None:
                text = script[start:end]
                statements.append(Statement(len(statements) + 1, text, start, script))
            start = None
            continue
        if start is None:
            start = _token_start(script, token)
        end = token.end + 1
    return statements


def _token_start(script: str, token: Any) -> int:
    # A token's start skips its comments; a quoted identifier's starts at the quote.
    start = int(token.start)
    return start - 1 if start > 0 and script[start - 1] in "`'\"" else start


def _offset_of(node: exp.Expression | None) -> int | None:
    if node is None:
        return None
    for candidate in [node, *node.find_all(exp.Identifier, exp.Literal)]:
        meta = getattr(candidate, "_meta", None) or {}
        if "start" in meta:
            return int(meta["start"])
    return None


def _error_offset(text: str, error: dict[str, Any]) -> int | None:
    line, col = error.get("line"), error.get("col")
    if not line or not col:
        return None
    lines = text.split("\n")
    if line > len(lines):
        return len(text)
    highlight = str(error.get("highlight") or "")
    start_col = max(int(col) - len(highlight), 0)
    return sum(len(x) + 1 for x in lines[: int(line) - 1]) + start_col


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= 200 else message[:197] + "..."
