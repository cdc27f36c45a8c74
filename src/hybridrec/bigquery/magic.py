"""``%load_ext hybridrec``: a ``%%bigquery`` cell magic that runs BigQuery SQL on a workspace.

It takes bigquery-magics' arguments, so a BigQuery ML notebook runs with only its set-up cell
changed: an optional destination variable (which receives the DataFrame instead of displaying
it), ``--project`` (accepted, ignored), ``--params`` (a JSON object or Python dict for ``@name``
parameters), ``--max_results N``; Google-only flags are accepted with a one-line note. The
workspace is the one ``%hybridrec_workspace DIR`` set, else ``$HYBRIDREC_WORKSPACE``, else the
current directory when it is a workspace, else ``./hybridrec-workspace``.
Errors are the CLI's one line, ``error: statement N, line L, col C: …``, with no traceback.
The only module of hybridrec that imports IPython.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from hybridrec._errors import HybridrecError

__all__ = ["BigQueryMagics", "load_ipython_extension"]

# Google-only flags that take a value: accepted, ignored with a note
_GOOGLE_VALUE_FLAGS = {
    "--destination_table",
    "--location",
    "--maximum_bytes_billed",
    "--engine",
    "--progress_bar_type",
    "--bigquery_api_endpoint",
    "--bqstorage_api_endpoint",
    "--connection",
}
_VALUE_FLAGS = {"--project", "--params", "--max_results", *_GOOGLE_VALUE_FLAGS}
_IGNORED_WITH_NOTE = {
    "--use_legacy_sql",
    "--dry_run",
    "--use_bqstorage_api",
    "--use_rest_api",
    "--verbose",
    "--no_query_cache",
    *_GOOGLE_VALUE_FLAGS,
}


def parse_line(line: str) -> tuple[str | None, dict[str, Any], list[str]]:
    """(destination variable, options, notes) of a ``%%bigquery`` line."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise HybridrecError(f"%%bigquery: cannot read the arguments ({exc})") from None
    dest: str | None = None
    options: dict[str, Any] = {}
    notes: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        flag, _, inline = word.partition("=")
        if not word.startswith("--"):
            if dest is not None or not word.isidentifier():
                raise HybridrecError(f"%%bigquery: unexpected argument {word!r}")
            dest = word
        elif flag in _VALUE_FLAGS:
            if not inline:
                i += 1
                if i >= len(words):
                    raise HybridrecError(f"%%bigquery: {flag} needs a value")
                inline = words[i]
            options[flag] = inline
        elif flag not in _IGNORED_WITH_NOTE:
            raise HybridrecError(f"%%bigquery: unknown option {flag}")
        if flag in _IGNORED_WITH_NOTE:
            notes.append(f"note: %%bigquery {flag} has no meaning locally; ignored")
        i += 1
    return dest, options, notes


def parse_params(text: str) -> dict[str, Any]:
    """``--params``: a JSON object or a Python dict literal."""
    for reader in (json.loads, ast.literal_eval):
        try:
            value = reader(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return value
    raise HybridrecError("%%bigquery --params must be a JSON object, e.g. '{\"user\": 903}'")


@magics_class
class BigQueryMagics(Magics):
    workspace: str | None = None

    @line_magic
    def hybridrec_workspace(self, line: str) -> None:
        """``%hybridrec_workspace DIR``: the workspace of the following ``%%bigquery`` cells."""
        self.workspace = str(Path(line.strip()).expanduser()) if line.strip() else None
        print(f"hybridrec workspace: {self._workspace_path()}", file=sys.stderr)

    def _workspace_path(self) -> Path:
        if self.workspace:
            return Path(self.workspace)
        if os.environ.get("HYBRIDREC_WORKSPACE"):
            return Path(os.environ["HYBRIDREC_WORKSPACE"])
        if (Path.cwd() / "workspace.duckdb").is_file():
            return Path.cwd()
        return Path("hybridrec-workspace")

    @cell_magic
    def bigquery(self, line: str, cell: str) -> Any:
        from hybridrec.bigquery import sql

        try:
            dest, options, notes = parse_line(line)
            for note in notes:
                print(note, file=sys.stderr)
            params = parse_params(options["--params"]) if "--params" in options else None
            frame = sql(cell, self._workspace_path(), "bigquery", params=params)
            if "--max_results" in options:
                frame = frame.head(int(options["--max_results"]))
        except HybridrecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return None
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return None
        if dest is not None and self.shell is not None:
            self.shell.user_ns[dest] = frame
            return None
        return frame


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(BigQueryMagics)
