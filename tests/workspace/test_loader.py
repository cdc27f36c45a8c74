"""Loading every layout into a workspace: schema, parsing, validation, atomicity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.data import (
    MOVIES,
    RATINGS,
    USERS,
    WRITERS,
    write_ml1m,
    write_ml10m,
    write_ml20m,
    write_ml100k,
    write_recbole,
    zip_folder,
)

from hybridrec import DataError, NotFoundError
from hybridrec.workspace import LoadSummary, Workspace


def _load(tmp_path: Path, writer: Callable[..., Path], **kwargs: str) -> LoadSummary:
    folder = writer(tmp_path / "data", **kwargs)
    return Workspace(tmp_path / "ws").load(folder)


def _error(tmp_path: Path, writer: Callable[..., Path], **kwargs: str) -> str:
    with pytest.raises(DataError) as err:
        _load(tmp_path, writer, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_every_layout_loads_to_the_same_schema(tmp_path: Path, layout: str) -> None:
    folder = WRITERS[layout](tmp_path / "data")
    ws = Workspace(tmp_path / "ws")
    summary = ws.load(folder)
    assert summary.layout == layout
    assert (summary.n_ratings, summary.n_users, summary.n_movies) == (7, 3, 4)
    assert summary.n_duplicates_dropped == 0
    assert summary.source == str(folder)
    assert summary.n_tags == (2 if layout in ("ml-10m", "ml-20m") else 0)

    ratings = ws.ratings()
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert ratings.dtypes.astype(str).tolist() == ["int64", "int64", "float32", "int64"]
    got = sorted(ratings.itertuples(index=False, name=None))
    assert got == sorted((u, m, float(r), t) for u, m, r, t in RATINGS)

    movies = ws.movies()
    assert list(movies.columns[:4]) == ["movieId", "title", "genres", "year"]
    assert movies["movieId"].tolist() == sorted(MOVIES)
    for row in movies.itertuples(index=False):
        title, genres, year = MOVIES[row.movieId]
        assert list(row.genres) == genres
        assert (None if pd.isna(row.year) else int(row.year)) == year
        # RecBole titles carry no "(year)": the year has its own column there.
        assert row.title == (title.rsplit(" (", 1)[0] if layout == "recbole" and year else title)

    users = ws.users()
    assert users["userId"].tolist() == [1, 2, 3]
    if layout in ("ml-100k", "ml-1m", "recbole"):
        assert list(users.columns) == ["userId", "age", "gender", "occupation", "zip"]
        assert users["zip"].tolist() == [z for _, _, _, z in USERS.values()]
        assert users["gender"].tolist() == [g for _, g, _, _ in USERS.values()]
    else:
        assert list(users.columns) == ["userId"]
    assert set(ws.tables()) >= {"ratings", "movies", "users"}


def test_sql_types_of_the_core_tables(workspace: Workspace) -> None:
    types = workspace.sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = 'ws' AND table_name IN ('ratings', 'movies', 'tags')"
    )
    found = {(t, c): d for t, c, d in types.itertuples(index=False, name=None)}
    assert found[("ratings", "userId")] == "BIGINT"
    assert found[("ratings", "rating")] == "FLOAT"
    assert found[("ratings", "timestamp")] == "BIGINT"
    assert found[("movies", "genres")] == "VARCHAR[]"
    assert found[("movies", "year")] == "INTEGER"
    assert found[("movies", "imdbId")] == "VARCHAR"
    assert found[("tags", "tag")] == "VARCHAR"


def test_csv_details_links_and_tags(workspace: Workspace) -> None:
    movies = workspace.movies().set_index("movieId")
    assert movies.loc[2, "title"] == "Café, The (1996)"  # quoted, with a comma
    assert movies.loc[1, "imdbId"] == "0000001"  # leading zeros kept
    assert movies.loc[1, "tmdbId"] == 101 and pd.isna(movies.loc[4, "tmdbId"])
    tags = workspace.tags()
    assert tags.sort_values("userId")["tag"].tolist() == ["pixar", "odd, really"]


def test_ml1m_latin1_title_and_codes(tmp_path: Path) -> None:
    write_ml1m(tmp_path / "data")
    ws = Workspace(tmp_path / "ws")
    ws.load(tmp_path / "data")
    assert ws.sql("SELECT title FROM movies WHERE movieId = 2")["title"][0] == "Café, The (1996)"
    assert ws.users()["occupation"].tolist() == [0, 1, 2]


def test_zip_source_with_subfolder(tmp_path: Path) -> None:
    archive = zip_folder(write_ml10m(tmp_path / "src"), tmp_path / "ml-10m.zip", prefix="ml-10M/")
    ws = Workspace(tmp_path / "ws")
    summary = ws.load(archive)
    assert (summary.layout, summary.n_ratings, summary.n_tags) == ("ml-10m", 7, 2)
    assert summary.source == str(archive)
    # extraction happened inside the workspace folder and was cleaned up
    assert sorted(p.name for p in ws.path.iterdir()) == ["models", "workspace.duckdb"]


def test_string_ids_in_recbole_stay_strings(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\trating:float\nu1\t1\t4\nu2\t2\t3.5\n"
    folder = write_recbole(tmp_path / "data", ratings=inter)
    (folder / "ml-100k.user").unlink()
    ws = Workspace(tmp_path / "ws")
    summary = ws.load(folder)
    assert summary.n_users == 2
    ratings = ws.ratings()
    assert ratings["userId"].tolist() == ["u1", "u2"]
    assert ratings["movieId"].dtype == np.int64
    assert ratings["timestamp"].isna().all()
    assert ws.users()["userId"].tolist() == ["u1", "u2"]


def test_genre_and_year_parsing_edge_cases(tmp_path: Path) -> None:
    movies = (
        "movieId,title,genres\n"
        '1,"Fawlty Towers (1975-1979)",Comedy\n'
        "2,Babylon 5 (1994) ,Children's|Sci-Fi\n"
        "3,2001 (1968),\n"
        "4,Seven (a.k.a. Se7en) (1995),(no genres listed)\n"
    )
    ratings = "userId,movieId,rating,timestamp\n1,1,4,1\n"
    write_ml20m(tmp_path / "data", ratings=ratings, movies=movies)
    ws = Workspace(tmp_path / "ws")
    ws.load(tmp_path / "data")
    m = ws.movies().set_index("movieId")
    assert pd.isna(m.loc[1, "year"]) and m.loc[2, "year"] == 1994
    assert m.loc[3, "year"] == 1968 and m.loc[4, "year"] == 1995
    assert list(m.loc[2, "genres"]) == ["Children", "Sci-Fi"]
    assert list(m.loc[3, "genres"]) == [] and list(m.loc[4, "genres"]) == []


def test_duplicates_keep_latest_timestamp_then_last_line(tmp_path: Path) -> None:
    ratings = (
        "userId,movieId,rating,timestamp\n"
        "1,1,1.0,50\n"
        "1,1,2.0,70\n"  # latest timestamp: kept
        "1,1,3.0,60\n"
        "2,1,1.5,10\n"
        "2,1,4.5,10\n"  # tie on timestamp: the last in the file is kept
        "3,2,5.0,5\n"
    )
    summary = _load(tmp_path, write_ml20m, ratings=ratings)
    assert (summary.n_ratings, summary.n_duplicates_dropped) == (3, 3)
    got = Workspace(tmp_path / "ws").sql("SELECT userId, rating FROM ratings ORDER BY userId")
    assert got["rating"].tolist() == [2.0, 4.5, 5.0]


def test_non_numeric_rating(tmp_path: Path) -> None:
    ratings = "userId,movieId,rating,timestamp\n1,1,4,1\n1,2,abc,1\n"
    msg = _error(tmp_path, write_ml20m, ratings=ratings)
    assert (
        msg == f"{tmp_path / 'data' / 'ratings.csv'}: line 3: column rating: 'abc' is not a number"
    )


def test_non_numeric_id(tmp_path: Path) -> None:
    msg = _error(tmp_path, write_ml1m, ratings="1::1::4::1\n1::x7::4::1\n")
    assert msg.endswith("ratings.dat: line 2: column movieId: 'x7' is not an integer")


def test_wrong_number_of_columns(tmp_path: Path) -> None:
    msg = _error(tmp_path, write_ml100k, ratings="1\t1\t4\t1\n\n2\t2\t4\n")
    assert msg.endswith("u.data: line 3: expected 4 '\\t'-separated columns, found 3")


@pytest.mark.parametrize("text", ["", "userId,movieId,rating,timestamp\n"])
def test_empty_ratings_file(tmp_path: Path, text: str) -> None:
    if text:
        msg = _error(tmp_path, write_ml20m, ratings=text)
        assert msg.endswith("ratings.csv: no ratings (the file is empty)")
    else:
        msg = _error(tmp_path, write_ml20m, ratings=text)
        assert msg.endswith("ratings.csv: line 1: empty file or missing header line")


def test_empty_headerless_ratings_file(tmp_path: Path) -> None:
    msg = _error(tmp_path, write_ml1m, ratings="")
    assert msg.endswith("ratings.dat: no ratings (the file is empty)")


def test_rating_out_of_range_names_the_line(tmp_path: Path) -> None:
    # the blank line counts: messages give the line number an editor shows
    msg = _error(tmp_path, write_ml10m, ratings="1::1::4::1\n\n1::2::11::1\n")
    assert msg.endswith("ratings.dat: line 3: rating 11.0 is outside 0-10")
    msg = _error(tmp_path, write_ml10m, ratings="1::1::-1::1\n")
    assert msg.endswith("ratings.dat: line 1: rating -1.0 is outside 0-10")


def test_missing_rating_and_missing_id(tmp_path: Path) -> None:
    msg = _error(tmp_path, write_ml20m, ratings="userId,movieId,rating,timestamp\n1,1,,5\n")
    assert msg.endswith("ratings.csv: line 2: missing rating")
    msg = _error(tmp_path, write_ml20m, ratings="userId,movieId,rating,timestamp\n,1,3,5\n")
    assert msg.endswith("ratings.csv: line 2: missing userId")


def test_negative_id(tmp_path: Path) -> None:
    msg = _error(tmp_path, write_ml100k, ratings="1\t1\t4\t1\n-3\t1\t4\t1\n")
    assert msg.endswith("u.data: line 2: invalid userId -3 (ids must be >= 0)")


def test_nan_rating(tmp_path: Path) -> None:
    msg = _error(tmp_path, write_ml20m, ratings="userId,movieId,rating,timestamp\n1,1,nan,5\n")
    assert msg.endswith("ratings.csv: line 2: rating nan is outside 0-10")


def test_recbole_missing_id(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\trating:float\n1\t\t4\n"
    msg = _error(tmp_path, write_recbole, ratings=inter)
    assert msg.endswith("ml-100k.inter: line 2: missing movieId")


def test_duplicate_movie_id_in_movies_file(tmp_path: Path) -> None:
    movies = "movieId,title,genres\n1,A (1990),Drama\n2,B (1991),Drama\n1,C (1992),Drama\n"
    msg = _error(tmp_path, write_ml20m, movies=movies)
    assert msg.endswith("movies.csv: movieId 1 appears twice (lines 2, 4)")


def test_missing_file_and_unknown_layout(tmp_path: Path) -> None:
    folder = write_ml20m(tmp_path / "data")
    (folder / "movies.csv").unlink()
    with pytest.raises(DataError, match=r"ml-20m layout in .*data: missing movies\.csv"):
        Workspace(tmp_path / "ws").load(folder)
    other = tmp_path / "other"
    other.mkdir()
    (other / "scores.txt").write_text("1 2 3\n")
    with pytest.raises(DataError, match=r"unknown layout in .*other: found scores\.txt"):
        Workspace(tmp_path / "ws").load(other)
    with pytest.raises(NotFoundError, match="no such file or folder"):
        Workspace(tmp_path / "ws").load(tmp_path / "nope")


def test_corrupt_zip(tmp_path: Path) -> None:
    bad = tmp_path / "ml-1m.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"ml-1m\.zip: not a readable zip archive"):
        Workspace(tmp_path / "ws").load(bad)


def test_failed_load_leaves_the_workspace_as_it_was(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.load(write_ml20m(tmp_path / "good"))
    ws.create_table("derived", "SELECT userId FROM ratings")
    before = ws.ratings()
    files_before = sorted(p.name for p in ws.path.iterdir())
    bad = write_ml1m(tmp_path / "bad", ratings="1::1::4::1\n2::2::oops::1\n")
    with pytest.raises(DataError):
        ws.load(bad)
    pd.testing.assert_frame_equal(ws.ratings(), before)
    assert "derived" in ws.tables() and "tags" in ws.tables()
    assert sorted(p.name for p in ws.path.iterdir()) == files_before


def test_failed_first_load_creates_nothing(tmp_path: Path) -> None:
    bad = write_ml1m(tmp_path / "bad", ratings="1::1::99::1\n")
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(DataError):
        ws.load(bad)
    assert not ws.path.exists()


def test_reload_replaces_everything(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.load(write_ml20m(tmp_path / "a"))
    ws.create_table("derived", "SELECT 1 AS x")
    summary = ws.load(write_ml1m(tmp_path / "b"))
    assert summary.layout == "ml-1m"
    assert ws.tables() == ["movies", "ratings", "users"]
    assert list(ws.users().columns) == ["userId", "age", "gender", "occupation", "zip"]
