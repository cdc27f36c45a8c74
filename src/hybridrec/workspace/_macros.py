"""The workspace's SQL: the ``ml_weights`` table macro, its errors, and the checks and
literals every workspace query goes through."""

from __future__ import annotations

from pathlib import Path

import duckdb

from hybridrec._errors import HybridrecError, ModelError, NotFoundError

_FACTOR_WEIGHTS = (
    "list_transform(factors, lambda w, i: "
    "{'factor': CAST(i AS INTEGER), 'weight': CAST(w AS DOUBLE)})"
)


_MODEL_NAME = "[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"  # as hybridrec.models.model_dir
ML_WEIGHTS_ERROR = "ml_weights: "  # prefix of the errors the ml_weights macro raises


def ml_weights_missing(models_dir: Path, missing: Path) -> HybridrecError:
    """Why ``ml_weights`` found no ``missing`` file in a model folder: no such model, a model
    of another kind (hybrid, ranking: no factor tables of their own) or an incomplete one."""
    from hybridrec import artifacts

    folder = missing.parent
    if not (folder / artifacts.META_FILE).is_file():
        return NotFoundError(f"no model {folder.name!r} in {models_dir}")
    try:
        kind = artifacts.read_meta(folder).get("kind")
    except HybridrecError as exc:
        return exc
    if kind in ("hybrid", "ranking"):
        return ModelError(
            f"{ML_WEIGHTS_ERROR}{folder.name!r} is a {kind} model; ml_weights needs a matrix "
            f"factorization model (for the weights of the MF inside it: hybridrec weights "
            f"{folder.name})"
        )
    return ModelError(f"model at {folder} is incomplete: {missing.name} is missing")


def sql_literal(value: object) -> str:
    """An SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def one_line(exc: BaseException | str, max_lines: int = 2) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[:max_lines])
    return text if len(text) <= 300 else text[:297] + "..."


def check_read_only(query: str) -> None:
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise HybridrecError(f"SQL error: {one_line(exc)}") from None
    if len(statements) != 1:
        raise HybridrecError(f"expected one SQL statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise HybridrecError(
            f"the workspace is read-only here: {kind.name} statements are not allowed, only SELECT"
        )


def define_macros(con: duckdb.DuckDBPyConnection, models_dir: Path) -> None:
    """Define ``ml_weights(model_name)`` (see :class:`Workspace`) on ``con``, reading the models
    under ``models_dir``.

    It serves matrix factorization models only (explicit or implicit): they alone have
    ``users.parquet`` / ``items.parquet`` of factors. A hybrid or ranking model is a
    :class:`ModelError` saying so, not "no model": the weights of the MF inside it come from
    ``hybridrec weights NAME`` (or ``ml_weights`` of the MF it was trained from). Names are
    checked like :func:`hybridrec.models.model_dir` checks them, inside the macro, so
    ``ml_weights('../m')`` is an invalid-name error and never reads outside ``models/``."""
    models = sql_literal(str(models_dir) + "/")
    name = "CAST(model_name AS VARCHAR)"
    folder = (
        f"CASE WHEN regexp_full_match({name}, '{_MODEL_NAME}') AND NOT contains({name}, '..')"
        f" THEN {models} || {name} ELSE error('{ML_WEIGHTS_ERROR}invalid model name ' || "
        f"coalesce('''' || {name} || '''', 'NULL') || ': use letters, digits, ''_'', ''-'' "
        "or ''.'', up to 100 characters') END"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO ml_weights(model_name) AS TABLE
        SELECT * FROM (
            SELECT 'userId' AS processed_input, CAST(userId AS VARCHAR) AS feature,
                   {_FACTOR_WEIGHTS} AS factor_weights, CAST(intercept AS DOUBLE) AS intercept
            FROM read_parquet({folder} || '/users.parquet')
            UNION ALL
            SELECT 'movieId', CAST(movieId AS VARCHAR), {_FACTOR_WEIGHTS},
                   CAST(intercept AS DOUBLE)
            FROM read_parquet({folder} || '/items.parquet')
            UNION ALL
            SELECT 'global__intercept__', NULL,
                   CAST([] AS STRUCT(factor INTEGER, weight DOUBLE)[]),
                   CAST(global_mean AS DOUBLE)
            FROM read_json_auto({folder} || '/meta.json')
        )
        """
    ).fetchall()
