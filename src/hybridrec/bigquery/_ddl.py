"""One statement of each kind: queries, CREATE / DROP, INSERT and other DML, LOAD DATA, UDFs.

``CREATE MODEL`` goes to :mod:`hybridrec.bigquery._train`; ``ML.*`` table functions to
:mod:`hybridrec.bigquery._ml`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlglot import exp

from hybridrec.bigquery import _ml, _train
from hybridrec.bigquery._script import Statement
from hybridrec.models import model_dir

if TYPE_CHECKING:
    from hybridrec.bigquery._session import Session

__all__ = ["dispatch"]

_DML = (exp.Insert, exp.Delete, exp.Update, exp.Merge)
_REFUSED = {
    exp.Declare: "DECLARE (BigQuery scripting) is not supported",
    exp.Set: "SET (BigQuery scripting) is not supported",
    exp.Export: "EXPORT DATA / EXPORT MODEL are not supported: use hybridrec's --out options",
    exp.Command: "this statement is not supported",
}


def dispatch(session: Session, st: Statement, tree: exp.Expression) -> pd.DataFrame | None:
    """Run one parsed statement; a query returns its rows."""
    if isinstance(tree, exp.Query):
        return run_query(session, st, tree)
    if isinstance(tree, exp.Create):
        _create(session, st, tree)
        return None
    if isinstance(tree, exp.Drop):
        _drop(session, st, tree)
        return None
    if isinstance(tree, _DML):
        with session.connection(write=True) as con:
            sql = session.duckdb_sql(con, st, tree, _ml_table(session))
            session.query(con, st, sql, tree)
        return None
    if isinstance(tree, exp.LoadData):
        _load_data(session, st, tree)
        return None
    for kind, message in _REFUSED.items():
        if isinstance(tree, kind):
            word = tree.name.split()[0].upper() if isinstance(tree, exp.Command) else ""
            raise st.error(f"{word} statements are not supported" if word else message)
    raise st.error(f"{type(tree).__name__.upper()} statements are not supported")


def _ml_table(session: Session) -> Any:
    return lambda con, st, call: _ml.ml_table(session, con, st, call)


def run_query(session: Session, st: Statement, tree: exp.Expression) -> pd.DataFrame:
    with session.connection(write=False) as con:
        sql = session.duckdb_sql(con, st, tree, _ml_table(session))
        relation = session.query(con, st, sql, tree)
        try:
            return relation.df()
        except Exception as exc:
            raise session.database_error(exc, st, tree) from None


def query_arrow(session: Session, con: Any, st: Statement, tree: exp.Expression) -> Any:
    """The rows of the query ``tree`` as an Arrow table, on ``con``."""
    sql = session.duckdb_sql(con, st, tree, _ml_table(session))
    relation = session.query(con, st, sql, tree)
    try:
        return relation.to_arrow_table()
    except Exception as exc:
        raise session.database_error(exc, st, tree) from None


# ---------------------------------------------------------------------- CREATE
def _create(session: Session, st: Statement, tree: exp.Create) -> None:
    kind = str(tree.args.get("kind") or "").upper()
    if kind == "MODEL":
        _train.create_model(session, st, tree)
        return None
    if kind == "FUNCTION":
        return _create_function(session, st, tree)
    if kind not in ("TABLE", "VIEW", "SCHEMA"):
        raise st.error(f"CREATE {kind} is not supported")
    props = tree.args.get("properties")
    temporary = props is not None and any(
        isinstance(p, exp.TemporaryProperty) for p in props.expressions
    )
    if kind == "VIEW" and any(True for _ in tree.find_all(_ml.MLCall)):
        raise st.error("ML functions inside a view are not supported: use CREATE TABLE … AS")
    if kind == "SCHEMA":
        schema = session.names.schema(_schema_name(tree.this))
        if schema is None:
            return None  # the load dataset always exists
        tree = exp.Create(
            this=exp.to_identifier(schema, quoted=True),
            kind="SCHEMA",
            exists=tree.args.get("exists"),
        )
    elif temporary:
        raise st.error(f"CREATE TEMP {kind} is not supported: create a table and drop it")
    with session.connection(write=True) as con:
        sql = session.duckdb_sql(con, st, tree, _ml_table(session))
        session.query(con, st, sql, tree)
    return None


def _schema_name(node: exp.Expression) -> str | None:
    """The dataset of ``CREATE / DROP SCHEMA [project.]dataset``."""
    if isinstance(node, exp.Table):
        return node.db or node.name or None
    return node.name if node is not None else None


def _create_function(session: Session, st: Statement, tree: exp.Create) -> None:
    udf = tree.this
    if not isinstance(udf, exp.UserDefinedFunction) or not isinstance(udf.this, exp.Table):
        raise st.error("CREATE TABLE FUNCTION is not supported", tree)
    props = tree.args.get("properties")
    items = props.expressions if props is not None else []
    for prop in items:
        if isinstance(prop, exp.LanguageProperty):
            language = prop.name.lower()
            what = "JavaScript" if language in ("js", "javascript") else language
            raise st.error(f"{what} UDFs are not supported (SQL UDFs are)", prop)
    body = tree.expression
    if body is None or isinstance(body, exp.Literal):
        raise st.error("only SQL function bodies AS (expression) are supported", tree)
    if any(True for _ in body.find_all(_ml.MLCall)):
        raise st.error("ML functions inside a UDF are not supported", body)
    returns = next((p.this for p in items if isinstance(p, exp.ReturnsProperty)), None)
    temporary = any(isinstance(p, exp.TemporaryProperty) for p in items)
    name = udf.this
    schema = None if temporary else session.names.schema(name.db or None)
    params = [p.name for p in udf.expressions]
    macro = _macro_body(body, returns)
    from hybridrec.bigquery._rewrite import to_duckdb

    body_sql = to_duckdb(macro, session.names).sql(dialect="duckdb")
    qualified = f'"{schema}"."{name.name}"' if schema else f'"{name.name}"'
    replace = "OR REPLACE " if tree.args.get("replace") or temporary else ""
    ddl = (
        f"CREATE {replace}{'TEMP ' if temporary else ''}MACRO {qualified}"
        f"({', '.join(params)}) AS ({body_sql})"
    )
    if temporary:
        session.temp_functions[name.name] = ddl
    with session.connection(write=not temporary) as con:
        session.query(con, st, ddl, tree)
    return None


def _macro_body(body: exp.Expression, returns: exp.Expression | None) -> exp.Expression:
    """The UDF's body with its declared return type: a ``STRUCT<a T, b U>`` return names the
    fields of an unnamed ``STRUCT(x, y)`` body (sqlglot would name them ``_0, _1``)."""
    inner = body.this if isinstance(body, exp.Paren) else body
    if not isinstance(returns, exp.DataType):
        return inner
    if returns.is_type(exp.DataType.Type.STRUCT) and isinstance(inner, exp.Struct):
        values = [
            e.this if isinstance(e, exp.Alias | exp.PropertyEQ) else e for e in inner.expressions
        ]
        inner = exp.Anonymous(this="ROW", expressions=values)
    return exp.Cast(this=inner, to=returns)


# ---------------------------------------------------------------------- DROP
def _drop(session: Session, st: Statement, tree: exp.Drop) -> None:
    kind = str(tree.args.get("kind") or "").upper()
    exists = bool(tree.args.get("exists"))
    tables = tree.args.get("tables") or []
    target = tables[0] if tables else tree.this
    if kind == "MODEL":
        if not isinstance(target, exp.Table):
            raise st.error("DROP MODEL needs a model name", tree)
        name = session.names.model_name(target)
        path = model_dir(session.workspace.models_dir, name)
        if not path.is_dir():
            if exists:
                return None
            raise st.error(f"unknown model {name}", target)
        _remove_model(path)
        return None
    if kind == "FUNCTION":
        name = target.name
        if name in session.temp_functions:
            session.temp_functions.pop(name)
            return None
        schema = session.names.schema(target.db or None) if isinstance(target, exp.Table) else None
        qualified = f'"{schema}"."{name}"' if schema else f'"{name}"'
        sql = f"DROP MACRO {'IF EXISTS ' if exists else ''}{qualified}"
    elif kind in ("TABLE", "VIEW", "SCHEMA"):
        if kind == "SCHEMA" and session.names.schema(_schema_name(target)) is None:
            raise st.error(
                f"the dataset {target.name} holds the loaded tables: it cannot be "
                "dropped (hybridrec load replaces them)",
                target,
            )
        if kind == "SCHEMA":
            tree = exp.Drop(
                this=exp.to_identifier(_schema_name(target), quoted=True),
                kind="SCHEMA",
                exists=exists,
                cascade=tree.args.get("cascade"),
            )
        sql = None
    else:
        raise st.error(f"DROP {kind} is not supported", tree)
    with session.connection(write=True) as con:
        if sql is None:
            sql = session.duckdb_sql(con, st, tree, _ml_table(session))
        session.query(con, st, sql, tree)
    return None


def _remove_model(path: Path) -> None:
    """Rename the model aside first, so that a crash leaves either all of it or none."""
    aside = path.with_name(f".{path.name}.dropped")
    shutil.rmtree(aside, ignore_errors=True)
    path.rename(aside)
    shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------------- LOAD DATA
def _load_data(session: Session, st: Statement, tree: exp.LoadData) -> None:
    """``LOAD DATA {OVERWRITE | INTO} ds.t FROM FILES(format=…, uris=[…])`` from local files."""
    options: dict[str, exp.Expression] = {}
    files = tree.args.get("files")
    for prop in files.expressions if files is not None else []:
        if isinstance(prop, exp.FileFormatProperty):
            options["format"] = prop.this
        elif isinstance(prop, exp.Property):
            options[prop.name.lower()] = prop.args["value"]
    fmt = options.pop("format", None)
    uris = options.pop("uris", None)
    if fmt is None or uris is None:
        raise st.error("LOAD DATA needs FROM FILES(format = …, uris = […])", tree)
    paths = [u.name for u in (uris.expressions if isinstance(uris, exp.Array) else [uris])]
    for uri in paths:
        if "://" in uri and not uri.startswith("file://"):
            raise st.error(f"cannot read {uri}: only local files are supported", uris)
    paths = [p.removeprefix("file://") for p in paths]
    reader = _reader(st, fmt.name.upper(), paths, options, tree)
    target = session.names.table(tree.this)
    with session.connection(write=True) as con:
        name = target.sql(dialect="duckdb")
        exists = _table_exists(con, target)
        if tree.args.get("overwrite") or not exists:
            sql = f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {reader}"
        else:
            sql = f"INSERT INTO {name} BY NAME SELECT * FROM {reader}"
        session.query(con, st, sql, tree)
    return None


def _reader(st: Statement, fmt: str, paths: list[str], options: dict[str, Any], node: Any) -> str:
    listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    for path in paths:
        if "*" not in path and not Path(path).is_file():
            raise st.error(f"no file {path}", node)
    if fmt == "PARQUET":
        return f"read_parquet({listed})"
    if fmt != "CSV":
        raise st.error(f"LOAD DATA format {fmt!r} is not supported (CSV, PARQUET)", node)
    args = [listed]
    skip = options.pop("skip_leading_rows", None)
    args.append(f"header = {'true' if skip is not None and skip.name != '0' else 'false'}")
    delimiter = options.pop("field_delimiter", None)
    if delimiter is not None:
        args.append("delim = '" + delimiter.name.replace("'", "''") + "'")
    if options:
        raise st.error(f"unknown LOAD DATA option {sorted(options)[0]}", node)
    return f"read_csv({', '.join(args)})"


def _table_exists(con: Any, table: exp.Table) -> bool:
    schema = table.db or "main"
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND "
        "table_name = ? AND table_catalog = current_database()",
        [schema, table.name],
    ).fetchall()
    return bool(row and row[0][0])
