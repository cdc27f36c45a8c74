"""Running a BigQuery script on a workspace, statement by statement.

Each statement takes full effect or none: a write runs in one DuckDB transaction (rolled back on
any error) and a model is written by the artifact writer, which renames a finished directory
into place. The statements before a failing one keep their effects, as in BigQuery.
A statement holds the workspace file only while it runs (a read-write handle for writes, the
shared read-only one for queries); training holds nothing while it computes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from hybridrec._errors import HybridrecError
from hybridrec.bigquery import _ddl
from hybridrec.bigquery._dialect import MLCall
from hybridrec.bigquery._rewrite import Names, to_duckdb
from hybridrec.bigquery._script import SqlError, Statement, split_script

__all__ = ["Session"]

log = logging.getLogger(__name__)

DUCKDB_MEMORY = "3GB"


class Session:
    """BigQuery SQL on one workspace. TEMP functions live as long as the session."""

    def __init__(self, workspace: Any, *, params: dict[str, Any] | None = None) -> None:
        self.workspace = workspace
        self.params = dict(params or {})
        self.temp_functions: dict[str, str] = {}
        self._names: Names | None = None
        self._registered: list[str] = []
        self.model_cache: dict[str, Any] = {}

    @property
    def names(self) -> Names:
        if self._names is None:
            self._names = Names(self.workspace.dataset())
        return self._names

    def run(self, script: str) -> pd.DataFrame | None:
        """Run every statement of ``script``; return the last result (None if it has none)."""
        statements = split_script(script)
        if not statements:
            raise SqlError("statement 1, line 1, col 1: the script has no statement")
        result: pd.DataFrame | None = None
        for statement in statements:
            result = self.run_statement(statement)
        return result

    def run_statement(self, statement: Statement) -> pd.DataFrame | None:
        tree = statement.parse()
        _ = self.names  # read before any connection is held: it queries the workspace itself
        _substitute_params(tree, self.params, statement)
        try:
            return _ddl.dispatch(self, statement, tree)
        except SqlError:
            raise
        except (HybridrecError, ValueError) as exc:
            # an estimator's parameter check raises ValueError: bad input too
            raise statement.error(str(exc).splitlines()[0] if str(exc) else repr(exc)) from None
        finally:
            self.workspace.close()

    # ------------------------------------------------------------------ connections
    @contextmanager
    def connection(self, *, write: bool) -> Iterator[Any]:
        """A workspace connection with this session's TEMP functions defined; for writes, one
        transaction committed when the block ends and rolled back if it raises."""
        with self.workspace.connection(write=write) as con:
            self._registered = []
            try:
                _quiet(con)
                for ddl in self.temp_functions.values():
                    con.execute(ddl)
                if write:
                    con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    if write:
                        con.execute("ROLLBACK")
                    raise
                if write:
                    con.execute("COMMIT")
            finally:
                for name in self._registered:
                    con.unregister(name)
                self._registered = []

    def duckdb_sql(
        self,
        con: Any,
        statement: Statement,
        tree: exp.Expression,
        ml_table: Callable[[Any, Statement, MLCall], Any],
    ) -> str:
        """DuckDB SQL for ``tree``: every ``ML.*`` call computed (innermost first) by
        ``ml_table`` and registered on ``con`` under a temporary name."""
        tree = tree.copy()
        for call in list(tree.find_all(MLCall)):
            if call.find_ancestor(MLCall) is not None:
                continue  # computed with the input query of the call around it
            holder = call.parent
            table = ml_table(con, statement, call)
            name = f"__hybridrec_ml_{len(self._registered)}"
            con.register(name, table)
            self._registered.append(name)
            replacement = exp.Table(this=exp.to_identifier(name, quoted=True))
            if isinstance(holder, exp.Table):
                if holder.args.get("alias") is not None:
                    replacement.set("alias", holder.args["alias"])
                holder.replace(replacement)
            else:
                raise statement.error(f"ML.{call.function} is a table function: use it in FROM")
        try:
            return to_duckdb(tree, self.names).sql(
                dialect="duckdb", unsupported_level=ErrorLevel.RAISE
            )
        except UnsupportedError as exc:
            message = str(exc).splitlines()[0] if str(exc) else "an unsupported construct"
            raise statement.error(f"not supported locally: {message}", tree) from None

    def query(self, con: Any, statement: Statement, sql: str, node: exp.Expression) -> Any:
        """Run ``sql`` on ``con``, DuckDB's errors as one-line :class:`SqlError`s."""
        try:
            return con.sql(sql)
        except Exception as exc:
            raise self.database_error(exc, statement, node) from None

    def database_error(self, exc: Exception, statement: Statement, node: exp.Expression) -> Any:
        if not _is_duckdb_error(exc):
            raise exc
        return statement.error(*_explain(str(exc), node, self.names))


def _quiet(con: Any) -> None:
    """No DuckDB progress bar on the user's terminal (in Jupyter, DuckDB refuses to change the
    setting without ipywidgets; then there is none to hide), and DuckDB's buffer pool capped at
    ``DUCKDB_MEMORY``: by default it may grow to 80 % of the machine, which a 40M-row
    ``CREATE TABLE … AS`` fills with cached pages; beyond the cap it spills to disk."""
    for setting in ("enable_progress_bar = false", f"memory_limit = '{DUCKDB_MEMORY}'"):
        try:
            con.execute(f"SET {setting}")
        except Exception as exc:
            if not _is_duckdb_error(exc):
                raise


def _is_duckdb_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb")


_MISSING_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")
_MISSING_SCHEMA = re.compile(r'Schema with name "?([^"\s!]+)"? does not exist')
_MISSING_FUNCTION = re.compile(
    r"(?:Scalar Function|Table Function|Macro Function|Function)"
    r" with name \"?([^\"\s!(]+)\"? does not exist"
)


def _explain(text: str, node: exp.Expression, names: Names) -> tuple[str, exp.Expression | None]:
    """A one-line message for DuckDB's error ``text`` and the node it is about."""
    first = " ".join(text.split("\n")[0].split())
    for pattern, what in (
        (_MISSING_COLUMN, "unknown column"),
        (_MISSING_TABLE, "unknown table"),
        (_MISSING_SCHEMA, "unknown dataset"),
        (_MISSING_FUNCTION, "unknown function"),
    ):
        found = pattern.search(first)
        if found:
            name = found.group(1).strip('"!')
            if what == "unknown table" and name.startswith("__hybridrec"):
                break
            return f"{what} {name}", _named(node, name)
    first = re.sub(r"^[A-Za-z ]+Error: ", "", first)
    return f"{first[:250]}", None


def _named(node: exp.Expression, name: str) -> exp.Expression | None:
    for ident in node.find_all(exp.Identifier):
        if ident.name.lower() == name.lower():
            return ident
    return None


def _substitute_params(tree: exp.Expression, params: dict[str, Any], statement: Statement) -> None:
    """``@name`` query parameters (``%%bigquery --params``) as literals."""
    for param in list(tree.find_all(exp.Parameter)):
        name = param.name
        if name not in params:
            raise statement.error(f"unknown query parameter @{name}", param)
        param.replace(_literal(params[name]))


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if value is None:
        return exp.Null()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[_literal(v) for v in value])
    return exp.Literal.string(str(value))
