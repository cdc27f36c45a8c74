"""Errors a user can act on.

Every exception raised for bad input derives from :class:`HybridrecError`; its message is one line
that names the problem (file, line, column or id). The CLI prints it and exits with code 2; any
other exception is a bug and exits with code 1.
"""

from __future__ import annotations

__all__ = ["DataError", "HybridrecError", "ModelError", "NotFoundError", "first_line"]


class HybridrecError(Exception):
    """Base class: bad input from the user, reported as one line, exit code 2."""


class DataError(HybridrecError):
    """Input data that cannot be read or is invalid (missing columns, bad values, bad layout)."""


class ModelError(HybridrecError):
    """A model that cannot be used: unfitted, unknown format version, wrong kind."""


class NotFoundError(HybridrecError):
    """A named thing (model, table, source, workspace) that does not exist."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type name when the message is empty): what a
    one-line error shows of a library's multi-line exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
