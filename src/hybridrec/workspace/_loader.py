"""Loading a MovieLens layout into a new DuckDB file: typed, checked and de-duplicated
``ratings``, ``movies``, ``users`` and ``tags`` tables."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import duckdb

from hybridrec._core.progress import Progress
from hybridrec._errors import DataError
from hybridrec.data import ML100K_GENRES, LayoutPlan, TextFile, bad_rating_sql, rating_outside
from hybridrec.workspace._macros import one_line, sql_literal

log = logging.getLogger(__name__)


def _read_csv(f: TextFile, encoding: str | None = None) -> str:
    columns = ", ".join(f"{sql_literal(n)}: {sql_literal(t)}" for n, t in f.columns)
    return (
        f"read_csv({sql_literal(f.path)}, delim={sql_literal(f.delimiter)}, "
        f"header={'true' if f.header_lines else 'false'}, columns={{{columns}}}, "
        f"auto_detect=false, quote={sql_literal(f.quote)}, escape={sql_literal(f.quote)}, "
        f"encoding={sql_literal(encoding or f.encoding)})"
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
    return DataError(f"{where}: cannot read ({one_line(exc, 1)})")


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


class Loader:
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
                f"CASE WHEN g{i} = 1 THEN {sql_literal(g)} END" for i, g in enumerate(ML100K_GENRES)
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
