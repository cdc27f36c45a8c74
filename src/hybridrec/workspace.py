"""The workspace: one DuckDB file with ``ratings``, ``movies``, ``users`` (and ``tags``), plus a
``models/`` folder. The only module in hybridrec that imports duckdb.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec._core.files import atomic_file
from hybridrec._core.progress import Progress, progress_bar
from hybridrec._errors import DataError, HybridrecError, ModelError, NotFoundError
from hybridrec.data import (
    ML100K_GENRES,
    LayoutPlan,
    TextFile,
    bad_rating_sql,
    open_layout,
    rating_outside,
    resolve_source,
)

__all__ = ["CORE_TABLES", "DB_FILE", "LoadSummary", "Workspace"]

log = logging.getLogger(__name__)

DB_FILE = "workspace.duckdb"
#: Tables written by :meth:`Workspace.load` only.
CORE_TABLES = ("ratings", "movies", "users", "tags")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LoadSummary:
    """What :meth:`Workspace.load` did.

    ``n_users`` and ``n_movies`` count rows of the ``users`` and ``movies`` tables (ml-20m lists
    movies nobody rated); ``source`` is the path actually read (for ``ml-100k`` offline, the
    fetched RecBole wheel).
    """

    source: str
    layout: str
    n_ratings: int
    n_users: int
    n_movies: int
    n_duplicates_dropped: int
    n_tags: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Workspace:
    """A folder holding ``workspace.duckdb`` and ``models/``.

    Schema (MovieLens names whatever the source layout):

    - ``ratings(userId, movieId, rating FLOAT, timestamp BIGINT)`` in file order: ids are
      ``BIGINT`` (``VARCHAR`` for RecBole sources whose ids are not all integers, decided per
      column); ``rating`` is single precision (exact for MovieLens' half stars, half the memory);
      ``timestamp`` is NULL when the source has none. One row per (userId, movieId): duplicates
      keep the latest timestamp, ties the last line.
    - ``movies(movieId, title, genres VARCHAR[], year INTEGER[, imdbId VARCHAR, tmdbId BIGINT])``
      sorted by movieId. Genres use ml-20m's names ("Children's" -> "Children"); "unknown" and
      "(no genres listed)" give an empty list. ``year`` comes from a trailing "(1995)" in the
      title, else ml-100k's release date or RecBole's ``release_year``. ``imdbId`` / ``tmdbId``
      come from ``links.csv`` when present (imdbId keeps its leading zeros).
    - ``users(userId, ...)``: ml-100k and RecBole ``age, gender, occupation, zip``; ml-1m the
      same names, with ``age`` its age-band code and ``occupation`` an integer code; otherwise
      only ``userId``, one row per user who rated.
    - ``tags(userId, movieId, tag, timestamp)`` when the source has tags.

    :meth:`sql` is read-only and knows the table macro ``ml_weights(model_name)``: BigQuery ML's
    ``ML.WEIGHTS`` shape, read from ``models/<model_name>/{users,items}.parquet`` and
    ``meta.json``::

        SELECT * FROM ml_weights('recommender_16') WHERE processed_input = 'movieId'

    It returns ``processed_input`` ('userId', 'movieId' or 'global__intercept__'), ``feature``
    (the id as text; NULL for the global row), ``factor_weights``
    ``STRUCT(factor INTEGER, weight DOUBLE)[]`` with factors numbered from 1 (empty for the global
    row) and ``intercept`` (the global row carries ``meta.json``'s ``global_mean``). It is one
    DuckDB table macro whose file paths are built from its argument, so a model saved after the
    connection was opened is visible at once; an unknown name raises :class:`NotFoundError`, a
    hybrid or ranking model :class:`ModelError` (it serves matrix factorization models only).
    The macro also works in :meth:`create_table` queries.

    Reads share one read-only DuckDB connection per workspace file in the process (queries are
    serialized; results over a million rows release it, so DuckDB's caches do not outlive them);
    :meth:`close` releases it. Every other module reaches DuckDB through this class.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            path = os.environ.get("HYBRIDREC_WORKSPACE") or "hybridrec-workspace"
        self.path = Path(path).expanduser().absolute()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def db_path(self) -> Path:
        return self.path / DB_FILE

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    def exists(self) -> bool:
        """Whether something has been loaded here."""
        return self.db_path.is_file()

    # ----------------------------------------------------------------------------------------
    # loading

    def load(
        self,
        source: str | Path,
        *,
        show_progress: bool = False,
        cache_dir: str | Path | None = None,
    ) -> LoadSummary:
        """Load a MovieLens source (path or name, see ``resolve_source``), replacing all tables.

        The new database is built in a temporary file next to the old one and renamed over it,
        so on any error the workspace is left exactly as it was. Tables other than the core ones
        (derived from the old data) do not survive a reload; ``models/`` is not touched.
        """
        start = time.perf_counter()
        resolved = resolve_source(source, cache_dir=cache_dir, show_progress=show_progress)
        if self.path.exists() and not self.path.is_dir():
            raise HybridrecError(f"workspace path {self.path} is a file, not a folder")
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{DB_FILE}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with (
                open_layout(resolved, tmp_dir=self.path) as plan,
                progress_bar(f"loading {plan.layout}", 6, show=show_progress) as bar,
            ):
                log.info("loading %s (%s layout)", resolved, plan.layout)
                con = duckdb.connect(str(tmp))
                try:
                    counts = _Loader(con, plan, bar).run()
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                with _LOCK:
                    _release(self.db_path)
                    self._install(tmp)
                bar.advance(1, "done")
        except BaseException:
            _remove_db_files(tmp)
            if created:
                _remove_empty_tree(self.path)
            raise
        _remove_db_files(tmp)
        self.models_dir.mkdir(exist_ok=True)
        summary = LoadSummary(
            source=str(resolved),
            layout=plan.layout,
            seconds=round(time.perf_counter() - start, 3),
            **counts,
        )
        log.info("loaded %s", summary)
        return summary

    def _install(self, tmp: Path) -> None:
        # A WAL left by a crashed writer belongs to the file being replaced: it must not be
        # replayed onto the new one.
        self.db_path.with_name(DB_FILE + ".wal").unlink(missing_ok=True)
        os.replace(tmp, self.db_path)

    # ----------------------------------------------------------------------------------------
    # reading

    def _require(self) -> None:
        if not self.exists():
            raise NotFoundError(f"no workspace at {self.path}: run `hybridrec load SOURCE` first")

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The process-wide read-only connection to this workspace, held for one query."""
        with _LOCK:
            yield _reader_for(self.db_path, self._require, self._define_macros)

    def close(self) -> None:
        """Release the cached read connection (reopened on demand; a reload also renews it)."""
        with _LOCK:
            _release(self.db_path)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _define_macros(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define ``ml_weights(model_name)`` (class docstring) on ``con``.

        It serves matrix factorization models only (explicit or implicit): they alone have
        ``users.parquet`` / ``items.parquet`` of factors. A hybrid or ranking model is a
        :class:`ModelError` saying so, not "no model": the weights of the MF inside it come from
        ``hybridrec weights NAME`` (or ``ml_weights`` of the MF it was trained from). Names are
        checked like :func:`hybridrec.models.model_dir` checks them, inside the macro, so
        ``ml_weights('../m')`` is an invalid-name error and never reads outside ``models/``."""
        models = _lit(str(self.models_dir) + "/")
        name = "CAST(model_name AS VARCHAR)"
        folder = (
            f"CASE WHEN regexp_full_match({name}, '{_MODEL_NAME}') AND NOT contains({name}, '..')"
            f" THEN {models} || {name} ELSE error('{_ML_WEIGHTS}invalid model name ' || "
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

    def _run(self, query: str, params: Sequence[Any] | None, fetch: str) -> Any:
        _check_read_only(query)
        with self._reader() as con:
            try:
                result = con.sql(query, params=params)
                out: Any
                if fetch == "df":
                    out = result.df()
                    rows = len(out)
                elif fetch == "arrow":
                    out = result.to_arrow_table()
                    rows = out.num_rows
                else:
                    out = result.fetchnumpy()
                    rows = len(next(iter(out.values()), ()))
            except duckdb.Error as exc:
                raise self._sql_error(exc) from None
            if rows > _BULK_ROWS:
                # DuckDB keeps the blocks and allocations of a bulk read (~0.8 GB after all of
                # ml-20m's ratings); closing gives them back, and reopening costs ~30 ms.
                _release(self.db_path)
            return out

    def _sql_error(self, exc: duckdb.Error) -> HybridrecError:
        text = str(exc)
        missing = re.search(r"No files found that match the pattern \"(.*?)\"", text)
        if missing and missing.group(1).startswith(str(self.models_dir)):
            return _ml_weights_missing(self.models_dir, Path(missing.group(1)))
        if _ML_WEIGHTS in text:  # raised by the macro itself (an invalid name)
            return HybridrecError(_one_line(text[text.index(_ML_WEIGHTS) :], 1))
        if isinstance(exc, duckdb.CatalogException):
            return NotFoundError(f"SQL error: {_one_line(exc)}")
        return HybridrecError(f"SQL error: {_one_line(exc)}")

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Run one read-only ``SELECT`` (``?`` / ``$1`` parameters from ``params``).

        Anything that is not a single SELECT, and any write, raises :class:`HybridrecError`.
        ``ml_weights(model_name)`` is available (see the class docstring).
        """
        df: pd.DataFrame = self._run(query, params, "df")
        return df

    def sql_arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Like :meth:`sql`, as an Arrow table (no pandas conversion; better for large results)."""
        table: pa.Table = self._run(query, params, "arrow")
        return table

    def item_ids_where(self, predicate: str) -> np.ndarray:
        """movieIds (sorted) of the ``movies`` rows matching an SQL predicate.

        Example: ``ws.item_ids_where("list_contains(genres, 'Comedy') AND year >= 1990")``.
        """
        # The newline ends a trailing "--" comment in the predicate.
        query = f"SELECT movieId FROM movies WHERE ({predicate}\n) ORDER BY movieId"
        cols: dict[str, np.ndarray] = self._run(query, None, "numpy")
        return np.asarray(cols["movieId"])

    def ratings(self) -> pd.DataFrame:
        """``userId``, ``movieId`` (int64, or str for string ids), ``rating`` (float32),
        ``timestamp`` (int64; pandas ``Int64`` when the source has no timestamps)."""
        return self.sql("SELECT userId, movieId, rating, timestamp FROM ratings")

    def movies(self) -> pd.DataFrame:
        """One row per movie; ``genres`` holds arrays of str."""
        return self.sql("SELECT * FROM movies ORDER BY movieId")

    def genres(self) -> list[str]:
        """Every genre of the movies, sorted: the hybrid dataset's genre columns."""
        return self.sql("SELECT DISTINCT unnest(genres) AS g FROM movies ORDER BY g")["g"].tolist()

    def users(self) -> pd.DataFrame:
        return self.sql("SELECT * FROM users ORDER BY userId")

    def tags(self) -> pd.DataFrame:
        """The ``tags`` table; :class:`NotFoundError` when the source had none."""
        if "tags" not in self.tables():
            raise NotFoundError(f"workspace {self.path} has no tags (the source had none)")
        return self.sql("SELECT * FROM tags")

    def tables(self) -> list[str]:
        """Names of the tables (and views) in the workspace, sorted."""
        df = self.sql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = 'ws' ORDER BY table_name"
        )
        return [str(name) for name in df["table_name"]]

    # ----------------------------------------------------------------------------------------
    # derived tables

    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self._require()
        with _LOCK:
            # DuckDB refuses a read-write handle on a file this process has attached read-only.
            _release(self.db_path)
            try:
                con = duckdb.connect(str(self.db_path))
            except duckdb.Error as exc:
                raise HybridrecError(
                    f"cannot open workspace {self.db_path} for writing: {_one_line(exc)}"
                ) from None
            try:
                self._define_macros(con)
                yield con
            finally:
                con.close()

    def create_table(self, name: str, query: str) -> int:
        """``CREATE OR REPLACE TABLE name AS query`` (one SELECT); returns the row count.

        For derived tables (e.g. a hybrid dataset built by SQL); the core tables are written by
        :meth:`load` only, and a reload drops derived tables.
        """
        _check_name(name)
        _check_read_only(query)
        with self._writer() as con:
            try:
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {query}').fetchall()
                row = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            except duckdb.Error as exc:
                raise self._sql_error(exc) from None
        return int(row[0]) if row else 0

    def sql_batches(self, query: str, rows_per_batch: int = 500_000) -> Iterator[pa.RecordBatch]:
        """Stream the result of a read-only ``query`` as Arrow record batches, never holding the
        whole result in memory (its own cursor, so other queries can run meanwhile)."""
        _check_read_only(query)
        with self._reader() as con:
            cursor = con.cursor()
        try:
            try:
                cursor.execute("USE ws").fetchall()
                self._define_macros(cursor)
                reader = cursor.sql(query).to_arrow_reader(rows_per_batch)
            except duckdb.Error as exc:
                raise self._sql_error(exc) from None
            yield from reader
        finally:
            cursor.close()

    def export_parquet(self, query: str, path: str | Path) -> int:
        """Stream the result of a read-only ``query`` to a Parquet file (DuckDB ``COPY``, never
        the whole result in memory), atomically; returns the row count."""
        _check_read_only(query)
        with atomic_file(path) as tmp, self._reader() as con:
            try:
                # COPY answers with the number of rows written; fetching all of it leaves the
                # shared connection free for the next query.
                copied = con.execute(f"COPY ({query}) TO {_lit(str(tmp))} (FORMAT parquet)")
                rows = copied.fetchall()
            except duckdb.IOException as exc:
                raise HybridrecError(f"cannot write {path}: {str(exc).splitlines()[0]}") from None
            except duckdb.Error as exc:
                raise self._sql_error(exc) from None
        return int(rows[0][0]) if rows else 0

    def write_table(self, name: str, data: pd.DataFrame | pa.Table) -> int:
        """Store a DataFrame or Arrow table as table ``name`` (replacing it); returns rows."""
        _check_name(name)
        with self._writer() as con:
            con.register("_hybridrec_data", data)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _hybridrec_data')
            con.unregister("_hybridrec_data")
        return len(data)

    def drop_table(self, name: str) -> None:
        """Drop a derived table (no error when it does not exist)."""
        _check_name(name)
        with self._writer() as con:
            con.execute(f'DROP TABLE IF EXISTS "{name}"')


# ------------------------------------------------------------------------------------------------
# SQL helpers

_FACTOR_WEIGHTS = (
    "list_transform(factors, lambda w, i: "
    "{'factor': CAST(i AS INTEGER), 'weight': CAST(w AS DOUBLE)})"
)


_MODEL_NAME = "[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"  # as hybridrec.models.model_dir
_ML_WEIGHTS = "ml_weights: "  # prefix of the errors the ml_weights macro raises


def _ml_weights_missing(models_dir: Path, missing: Path) -> HybridrecError:
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
            f"{_ML_WEIGHTS}{folder.name!r} is a {kind} model; ml_weights needs a matrix "
            f"factorization model (for the weights of the MF inside it: hybridrec weights "
            f"{folder.name})"
        )
    return ModelError(f"model at {folder} is incomplete: {missing.name} is missing")


def _lit(value: object) -> str:
    """An SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _one_line(exc: BaseException | str, max_lines: int = 2) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[:max_lines])
    return text if len(text) <= 300 else text[:297] + "..."


def _check_read_only(query: str) -> None:
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise HybridrecError(f"SQL error: {_one_line(exc)}") from None
    if len(statements) != 1:
        raise HybridrecError(f"expected one SQL statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise HybridrecError(
            f"the workspace is read-only here: {kind.name} statements are not allowed, only SELECT"
        )


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise HybridrecError(f"invalid table name {name!r}: use letters, digits and _")
    if name.lower() in CORE_TABLES:
        raise HybridrecError(f"table {name!r} is written by `hybridrec load` only")


# One read-only connection per workspace file, shared by every Workspace object of the process
# (opening DuckDB costs ~30 ms; a query on an open one ~2 ms). It is renewed when the file changes
# (a reload renames a new file into place) and released before any write to the file. Queries are
# serialized by _LOCK: a DuckDB connection is not thread-safe, and a write must not close the
# connection under a running read.
_LOCK = threading.RLock()
_BULK_ROWS = 1_000_000
_READERS: dict[Path, tuple[duckdb.DuckDBPyConnection, tuple[int, int, int]]] = {}


def _reader_for(
    db_path: Path,
    require: Callable[[], None],
    define_macros: Callable[[duckdb.DuckDBPyConnection], None],
) -> duckdb.DuckDBPyConnection:
    try:
        st = os.stat(db_path)
    except FileNotFoundError:
        _release(db_path)
        require()
        raise
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _READERS.get(db_path)
    if cached is not None and cached[1] == stamp:
        return cached[0]
    _release(db_path)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {_lit(db_path)} AS ws (READ_ONLY)")
        con.execute("USE ws")
        define_macros(con)
    except duckdb.Error as exc:
        con.close()
        raise HybridrecError(f"cannot open workspace {db_path}: {_one_line(exc)}") from None
    _READERS[db_path] = (con, stamp)
    return con


def _release(db_path: Path) -> None:
    cached = _READERS.pop(db_path, None)
    if cached is not None:
        cached[0].close()


def _remove_db_files(db: Path) -> None:
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".tmp"), ignore_errors=True)


def _remove_empty_tree(path: Path) -> None:
    """Undo a folder created by a failed first load, if nothing else was put in it."""
    try:
        for child in path.iterdir():
            if child.is_dir() and not any(child.iterdir()):
                child.rmdir()
        path.rmdir()
    except OSError:
        pass


# ------------------------------------------------------------------------------------------------
# loading


def _read_csv(f: TextFile, encoding: str | None = None) -> str:
    columns = ", ".join(f"{_lit(n)}: {_lit(t)}" for n, t in f.columns)
    return (
        f"read_csv({_lit(f.path)}, delim={_lit(f.delimiter)}, "
        f"header={'true' if f.header_lines else 'false'}, columns={{{columns}}}, "
        f"auto_detect=false, quote={_lit(f.quote)}, escape={_lit(f.quote)}, "
        f"encoding={_lit(encoding or f.encoding)})"
    )


_TYPE_WORDS = {
    "BIGINT": "an integer",
    "INTEGER": "an integer",
    "FLOAT": "a number",
    "DOUBLE": "a number",
}


def _csv_error(f: TextFile, exc: duckdb.Error) -> DataError:
    """Turn DuckDB's multi-line CSV error into one line naming file, line and column."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    where = f"{f.display}: line {line.group(1)}" if line else f.display
    conv = re.search(
        r'converting column "(.*?)"\. Could not convert string "(.*?)" to .(\w+)', text
    )
    if conv:
        col, value, typ = conv.groups()
        what = _TYPE_WORDS.get(typ.upper(), typ)
        return DataError(f"{where}: column {col}: {value!r} is not {what}")
    count = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if count:
        return DataError(
            f"{where}: expected {count.group(1)} {f.delimiter!r}-separated columns, "
            f"found {count.group(2)}"
        )
    if "unicode" in text.lower():
        return DataError(f"{where}: not valid {f.encoding} text")
    return DataError(f"{where}: cannot read ({_one_line(exc, 1)})")


def _line_of(f: TextFile, row: int) -> int:
    """1-based line number of data row ``row`` (0-based), skipping blank lines like DuckDB."""
    seen = -1
    with f.path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number <= f.header_lines or not raw.strip():
                continue
            seen += 1
            if seen == row:
                return number
    return row + 1 + f.header_lines


_GENRE_CLEAN = (
    "list_transform(list_filter({0}, lambda g: g IS NOT NULL AND g NOT IN "
    "('', 'unknown', '(no genres listed)')), "
    "lambda g: CASE WHEN g = 'Children''s' THEN 'Children' ELSE g END)"
)
_TITLE_YEAR = r"TRY_CAST(regexp_extract(title, '\((\d{4})\)\s*$', 1) AS INTEGER)"


class _Loader:
    """Builds the core tables of a fresh database from a :class:`LayoutPlan`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, plan: LayoutPlan, bar: Progress) -> None:
        self.con = con
        self.plan = plan
        self.bar = bar
        # SQL type of each id column, decided from the ratings file.
        self.types = {"userId": plan.id_type, "movieId": plan.id_type}

    def _exec(self, sql: str) -> None:
        self.con.execute(sql)

    def _scalar(self, sql: str) -> Any:
        row = self.con.execute(sql).fetchone()
        return row[0] if row else None

    def _create_from(self, table: str, f: TextFile, select: str = "*") -> None:
        """``CREATE TABLE table AS SELECT select FROM read_csv(f)``, with a latin-1 retry for
        files that turn out not to be UTF-8 (ml-10m's are meant to be)."""
        sql = f"CREATE TABLE {table} AS SELECT {select} FROM {_read_csv(f)}"
        try:
            self.con.execute(sql)
        except duckdb.Error as exc:
            if f.encoding != "utf-8" or "unicode" not in str(exc).lower():
                raise _csv_error(f, exc) from None
            log.warning("%s is not UTF-8: reading it as latin-1", f.display)
            try:
                self.con.execute(
                    f"CREATE TABLE {table} AS SELECT {select} FROM {_read_csv(f, 'latin-1')}"
                )
            except duckdb.Error as exc2:
                raise _csv_error(f, exc2) from None

    def run(self) -> dict[str, int]:
        self.bar.advance(0, "reading ratings")
        self._ratings()
        self.bar.advance(1, "checking ratings")
        self._check_ratings()
        self.bar.advance(1, "dropping duplicates")
        dropped = self._drop_duplicates()
        self.bar.advance(1, "reading movies")
        self._movies()
        self.bar.advance(1, "reading users and tags")
        self._users()
        n_tags = self._tags() if self.plan.tags is not None else 0
        self.bar.advance(1, "writing")
        unknown = self._scalar("SELECT count(*) FROM ratings ANTI JOIN movies USING (movieId)")
        if unknown:
            log.warning("%d ratings are for movies missing from the movies file", unknown)
        return {
            "n_ratings": int(self._scalar("SELECT count(*) FROM ratings")),
            "n_users": int(self._scalar("SELECT count(*) FROM users")),
            "n_movies": int(self._scalar("SELECT count(*) FROM movies")),
            "n_duplicates_dropped": dropped,
            "n_tags": n_tags,
        }

    # ratings ----------------------------------------------------------------------------------

    def _ratings(self) -> None:
        f = self.plan.ratings
        ts = "CAST(timestamp AS BIGINT)" if "timestamp" in f.names else "CAST(NULL AS BIGINT)"
        select = f"userId, movieId, CAST(rating AS FLOAT) AS rating, {ts} AS timestamp"
        self._create_from("ratings", f, select)
        if not self._scalar("SELECT count(*) FROM ratings"):
            raise DataError(f"{f.display}: no ratings (the file is empty)")
        if self.plan.id_type != "auto":
            return
        # RecBole ids are tokens: a column is an integer id only if every value reads back
        # identically as one ("007" stays a string).
        self._check_nulls("ratings", f, ("userId", "movieId"))
        for col in ("userId", "movieId"):
            integral = self._scalar(
                f"SELECT bool_and(CAST(TRY_CAST({col} AS BIGINT) AS VARCHAR) = {col}) FROM ratings"
            )
            self.types[col] = "BIGINT" if integral else "VARCHAR"
            if integral:
                self._exec(f"ALTER TABLE ratings ALTER {col} TYPE BIGINT")

    def _check_nulls(self, table: str, f: TextFile, columns: Sequence[str]) -> None:
        cond = " OR ".join(f"{c} IS NULL" for c in columns)
        row = self.con.execute(
            f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE {cond} ORDER BY rowid LIMIT 1"
        ).fetchone()
        if row is not None:
            col = next(c for c, v in zip(columns, row[1:], strict=True) if v is None)
            raise DataError(f"{f.display}: line {_line_of(f, row[0])}: missing {col}")

    def _check_ratings(self) -> None:
        f = self.plan.ratings
        negative = "".join(
            f" OR {col} < 0" for col in ("userId", "movieId") if self.types[col] == "BIGINT"
        )
        row = self.con.execute(
            "SELECT rowid, userId, movieId, rating FROM ratings WHERE userId IS NULL "
            f"OR movieId IS NULL OR rating IS NULL OR {bad_rating_sql('rating')}"
            f"{negative} ORDER BY rowid LIMIT 1"
        ).fetchone()
        if row is None:
            return
        rowid, user, movie, rating = row
        where = f"{f.display}: line {_line_of(f, rowid)}"
        if user is None or movie is None:
            raise DataError(f"{where}: missing {'userId' if user is None else 'movieId'}")
        if rating is None:
            raise DataError(f"{where}: missing rating")
        for col, value in (("userId", user), ("movieId", movie)):
            if self.types[col] == "BIGINT" and value < 0:
                raise DataError(f"{where}: invalid {col} {value} (ids must be >= 0)")
        raise DataError(f"{where}: {rating_outside(rating)}")

    def _drop_duplicates(self) -> int:
        """Keep one rating per (userId, movieId): the latest timestamp, ties the last line."""
        self._exec(
            "CREATE TEMP TABLE _dups AS SELECT userId, movieId FROM ratings "
            "GROUP BY userId, movieId HAVING count(*) > 1"
        )
        if not self._scalar("SELECT count(*) FROM _dups"):
            self._exec("DROP TABLE _dups")
            return 0
        # rowid follows file order (insertion order is preserved), hence "last in file".
        self._exec(
            "CREATE TEMP TABLE _losers AS SELECT r.rowid AS rid FROM ratings r "
            "SEMI JOIN _dups d USING (userId, movieId) "
            "QUALIFY row_number() OVER (PARTITION BY r.userId, r.movieId "
            "ORDER BY r.timestamp DESC NULLS LAST, r.rowid DESC) > 1"
        )
        dropped = int(self._scalar("SELECT count(*) FROM _losers"))
        self._exec("DELETE FROM ratings WHERE rowid IN (SELECT rid FROM _losers)")
        self._exec("DROP TABLE _dups")
        self._exec("DROP TABLE _losers")
        log.info("dropped %d duplicate (userId, movieId) ratings", dropped)
        return dropped

    # side tables ------------------------------------------------------------------------------

    def _typed_ids(self, table: str, f: TextFile, columns: Sequence[str]) -> None:
        """Check the ids of a side table are present and of the ratings' id type."""
        self._check_nulls(table, f, columns)
        for col in columns:
            if self.types[col] == "BIGINT":
                bad = f"TRY_CAST({col} AS BIGINT) IS NULL OR TRY_CAST({col} AS BIGINT) < 0"
            else:
                bad = f"trim(CAST({col} AS VARCHAR)) = ''"
            row = self.con.execute(
                f"SELECT rowid, {col} FROM {table} WHERE {bad} ORDER BY rowid LIMIT 1"
            ).fetchone()
            if row is not None:
                raise DataError(
                    f"{f.display}: line {_line_of(f, row[0])}: invalid {col} {row[1]!r}"
                )

    def _check_unique(self, table: str, f: TextFile, col: str) -> None:
        row = self.con.execute(
            f"SELECT {col}, list(rowid ORDER BY rowid) FROM {table} GROUP BY {col} "
            "HAVING count(*) > 1 ORDER BY min(rowid) LIMIT 1"
        ).fetchone()
        if row is not None:
            lines = ", ".join(str(_line_of(f, r)) for r in row[1][:2])
            raise DataError(f"{f.display}: {col} {row[0]!r} appears twice (lines {lines})")

    def _movies(self) -> None:
        plan, f = self.plan, self.plan.movies
        if f is None:
            self._exec(
                "CREATE TABLE movies AS SELECT DISTINCT movieId, CAST(NULL AS VARCHAR) AS title, "
                "CAST([] AS VARCHAR[]) AS genres, CAST(NULL AS INTEGER) AS year "
                "FROM ratings ORDER BY movieId"
            )
            return
        self._create_from("_movies", f)
        self._typed_ids("_movies", f, ["movieId"])
        self._check_unique("_movies", f, "movieId")
        names = f.names
        if plan.movies_format == "flags":
            flags = ", ".join(
                f"CASE WHEN g{i} = 1 THEN {_lit(g)} END" for i, g in enumerate(ML100K_GENRES)
            )
            genres = _GENRE_CLEAN.format(f"[{flags}]")
            year = f"coalesce({_TITLE_YEAR}, TRY_CAST(right(release_date, 4) AS INTEGER))"
        elif plan.movies_format == "recbole":
            split = "string_split(genres, ' ')" if "genres" in names else "[]"
            genres = _GENRE_CLEAN.format(f"coalesce({split}, [])")
            release = "TRY_CAST(release_year AS INTEGER)" if "release_year" in names else "NULL"
            year = f"coalesce({release}, {_TITLE_YEAR})" if "title" in names else release
        else:
            genres = _GENRE_CLEAN.format("coalesce(string_split(genres, '|'), [])")
            year = _TITLE_YEAR
        title = "title" if "title" in names else "CAST(NULL AS VARCHAR)"
        links_join, link_cols = "", ""
        if plan.links is not None:
            self._create_from("_links", plan.links)
            self._typed_ids("_links", plan.links, ["movieId"])
            link_names = plan.links.names
            imdb = "any_value(imdbId)" if "imdbId" in link_names else "NULL"
            tmdb = "any_value(tmdbId)" if "tmdbId" in link_names else "NULL"
            links_join = (
                f"LEFT JOIN (SELECT movieId, CAST({imdb} AS VARCHAR) AS imdbId, "
                f"CAST({tmdb} AS BIGINT) AS tmdbId FROM _links GROUP BY movieId) "
                "USING (movieId)"
            )
            link_cols = ", imdbId, tmdbId"
        self._exec(
            f"CREATE TABLE movies AS SELECT CAST(movieId AS {self.types['movieId']}) AS movieId, "
            f"{title} AS title, CAST({genres} AS VARCHAR[]) AS genres, "
            f"CAST({year} AS INTEGER) AS year{link_cols} FROM _movies {links_join} "
            "ORDER BY movieId"
        )
        self._exec("DROP TABLE _movies")
        if plan.links is not None:
            self._exec("DROP TABLE _links")

    def _users(self) -> None:
        f = self.plan.users
        if f is None:
            self._exec("CREATE TABLE users AS SELECT DISTINCT userId FROM ratings ORDER BY userId")
            return
        self._create_from("_users", f)
        self._typed_ids("_users", f, ["userId"])
        self._check_unique("_users", f, "userId")
        # The demographic columns in one order whatever the file's; unknown columns follow.
        known = ("age", "gender", "occupation", "zip")
        types = dict(f.columns)
        ordered = [c for c in known if c in types] + [c for c in types if c not in known]
        others = []
        for name in ordered:
            if name == "userId":
                continue
            if name == "age" and types[name] == "VARCHAR":
                others.append("TRY_CAST(age AS INTEGER) AS age")
            else:
                others.append(f'"{name}"')
        rest = "".join(f", {c}" for c in others)
        self._exec(
            f"CREATE TABLE users AS SELECT CAST(userId AS {self.types['userId']}) AS userId"
            f"{rest} FROM _users ORDER BY userId"
        )
        self._exec("DROP TABLE _users")

    def _tags(self) -> int:
        f = self.plan.tags
        assert f is not None
        ts = "CAST(timestamp AS BIGINT)" if "timestamp" in f.names else "CAST(NULL AS BIGINT)"
        self._create_from(
            "tags",
            f,
            f"CAST(userId AS {self.types['userId']}) AS userId, "
            f"CAST(movieId AS {self.types['movieId']}) AS movieId, "
            f"CAST(tag AS VARCHAR) AS tag, {ts} AS timestamp",
        )
        self._typed_ids("tags", f, ["userId", "movieId"])
        return int(self._scalar("SELECT count(*) FROM tags"))
