"""The workspace session: :class:`Workspace` (load, read-only queries, derived tables) and the
one read-only DuckDB connection per workspace file that its reads share."""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec._core.files import atomic_file
from hybridrec._core.progress import progress_bar
from hybridrec._errors import HybridrecError, NotFoundError
from hybridrec.data import open_layout, resolve_source
from hybridrec.workspace._loader import Loader
from hybridrec.workspace._macros import (
    ML_WEIGHTS_ERROR,
    check_read_only,
    define_macros,
    ml_weights_missing,
    one_line,
    sql_literal,
)

DB_FILE = "workspace.duckdb"
#: The BigQuery dataset name of the loaded tables unless ``load(dataset=...)`` says otherwise.
DEFAULT_DATASET = "movielens"
_DATASET_MACRO = "hybridrec_dataset"
_BUSY_WAIT = 5.0  # seconds a statement waits for another process to release the file
#: Tables written by :meth:`Workspace.load` only.
CORE_TABLES = ("ratings", "movies", "users", "tags")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

log = logging.getLogger(__name__)


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
        dataset: str = DEFAULT_DATASET,
    ) -> LoadSummary:
        """Load a MovieLens source (path or name, see ``resolve_source``), replacing all tables.

        The new database is built in a temporary file next to the old one and renamed over it,
        so on any error the workspace is left exactly as it was. Tables other than the core ones
        (derived from the old data) do not survive a reload; ``models/`` is not touched.
        ``dataset`` is the BigQuery dataset name the tables answer to in BigQuery SQL
        (``movielens.ratings``; see :meth:`dataset`).
        """
        _check_dataset(dataset)
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
                    counts = Loader(con, plan, bar).run()
                    con.execute(f"CREATE MACRO {_DATASET_MACRO}() AS {sql_literal(dataset)}")
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

    def dataset(self) -> str:
        """The BigQuery dataset name of the loaded tables (``hybridrec load --dataset``;
        ``movielens`` for workspaces loaded before the option existed)."""
        with self.connection(write=False) as con:
            found = con.execute(
                "SELECT count(*) FROM duckdb_functions() WHERE function_name = "
                f"'{_DATASET_MACRO}' AND database_name = 'ws'"
            ).fetchall()
            if not found[0][0]:
                return DEFAULT_DATASET
            return str(con.execute(f"SELECT {_DATASET_MACRO}()").fetchall()[0][0])

    @contextmanager
    def connection(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection for the BigQuery SQL face (:mod:`hybridrec.bigquery`), which
        runs its own statements, transactions and error messages on it: the shared read-only one
        (``write=False``) or a read-write one held for the block. A file locked by another
        process is a one-line "workspace busy" :class:`HybridrecError` after ``_BUSY_WAIT``
        seconds of retrying."""
        deadline = time.monotonic() + _BUSY_WAIT
        with ExitStack() as stack:
            while True:
                try:
                    con = stack.enter_context(self._writer() if write else self._reader())
                    break
                except HybridrecError as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    if time.monotonic() > deadline:
                        raise HybridrecError(
                            f"workspace busy: another process is using {self.db_path}; "
                            "try again when it has finished"
                        ) from None
                    time.sleep(0.1)
            yield con

    def close(self) -> None:
        """Release the cached read connection (reopened on demand; a reload also renews it)."""
        with _LOCK:
            _release(self.db_path)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _define_macros(self, con: duckdb.DuckDBPyConnection) -> None:
        define_macros(con, self.models_dir)

    def _run(self, query: str, params: Sequence[Any] | None, fetch: str) -> Any:
        check_read_only(query)
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
            return ml_weights_missing(self.models_dir, Path(missing.group(1)))
        if ML_WEIGHTS_ERROR in text:  # raised by the macro itself (an invalid name)
            return HybridrecError(one_line(text[text.index(ML_WEIGHTS_ERROR) :], 1))
        if isinstance(exc, duckdb.CatalogException):
            return NotFoundError(f"SQL error: {one_line(exc)}")
        return HybridrecError(f"SQL error: {one_line(exc)}")

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
                    f"cannot open workspace {self.db_path} for writing: {one_line(exc)}"
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
        check_read_only(query)
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
        check_read_only(query)
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
        check_read_only(query)
        with atomic_file(path) as tmp, self._reader() as con:
            try:
                # COPY answers with the number of rows written; fetching all of it leaves the
                # shared connection free for the next query.
                copied = con.execute(f"COPY ({query}) TO {sql_literal(str(tmp))} (FORMAT parquet)")
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


def _check_dataset(name: str) -> None:
    if not _NAME.match(name):
        raise HybridrecError(f"invalid dataset name {name!r}: use letters, digits and _")


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
        con.execute(f"ATTACH {sql_literal(db_path)} AS ws (READ_ONLY)")
        con.execute("USE ws")
        define_macros(con)
    except duckdb.Error as exc:
        con.close()
        raise HybridrecError(f"cannot open workspace {db_path}: {one_line(exc)}") from None
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
