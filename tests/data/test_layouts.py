"""Layout detection and plans (pure Python, no DuckDB)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from _support.data import WRITERS, write_ml1m, write_ml20m, write_recbole, zip_folder

from hybridrec import DataError, NotFoundError
from hybridrec.data._layouts import detect_layout, open_layout


@pytest.mark.parametrize(
    ("names", "layout", "files"),
    [
        (["u.data", "u.item", "u.user", "u1.base"], "ml-100k", ["u.data", "u.item", "u.user"]),
        (["u.data", "u.item"], "ml-100k", ["u.data", "u.item"]),
        (
            ["ratings.dat", "movies.dat", "users.dat", "README"],
            "ml-1m",
            ["ratings.dat", "movies.dat", "users.dat"],
        ),
        (
            ["ratings.dat", "movies.dat", "tags.dat"],
            "ml-10m",
            ["ratings.dat", "movies.dat", "tags.dat"],
        ),
        (
            ["ratings.csv", "movies.csv", "links.csv", "genome-scores.csv"],
            "ml-20m",
            ["ratings.csv", "movies.csv", "links.csv"],
        ),
        (["x.inter", "x.item", "x.kg"], "recbole", ["x.inter", "x.item"]),
    ],
)
def test_detect_each_layout(names: list[str], layout: str, files: list[str]) -> None:
    assert detect_layout(names) == (layout, "", files)


def test_detect_in_subfolder_and_deep_archive_paths() -> None:
    assert detect_layout(["ml-1m/ratings.dat", "ml-1m/movies.dat", "ml-1m/users.dat"])[:2] == (
        "ml-1m",
        "ml-1m",
    )
    wheel = [
        "recbole/__init__.py",
        "recbole/dataset_example/ml-100k/ml-100k.inter",
        "recbole/dataset_example/ml-100k/ml-100k.item",
        "recbole/dataset_example/ml-100k/ml-100k.user",
        "recbole/dataset_example/ml-100k/ml-100k.kg",
        "recbole-1.2.1.dist-info/RECORD",
    ]
    layout, folder, files = detect_layout(wheel)
    assert (layout, folder) == ("recbole", "recbole/dataset_example/ml-100k")
    assert [f.rsplit("/", 1)[1] for f in files] == ["ml-100k.inter", "ml-100k.item", "ml-100k.user"]


def test_shallowest_dataset_wins_and_junk_is_ignored() -> None:
    names = ["ratings.csv", "movies.csv", "old/u.data", "old/u.item", "__MACOSX/ratings.dat"]
    assert detect_layout(names)[:2] == ("ml-20m", "")


def test_two_datasets_at_same_depth_is_an_error() -> None:
    names = ["a/ratings.csv", "a/movies.csv", "b/u.data", "b/u.item"]
    with pytest.raises(DataError, match=r"several datasets in src: a \(ml-20m\), b \(ml-100k\)"):
        detect_layout(names, where="src")


def test_unknown_layout_lists_what_was_found() -> None:
    with pytest.raises(DataError) as err:
        detect_layout(["notes.txt", "data/scores.csv"], where="/some/dir")
    msg = str(err.value)
    assert "unknown layout in /some/dir" in msg
    assert "data/scores.csv, notes.txt" in msg
    assert "ratings.csv" in msg and "\n" not in msg


def test_missing_required_file_is_named() -> None:
    with pytest.raises(DataError, match=r"ml-20m layout in src: missing movies\.csv"):
        detect_layout(["ratings.csv", "tags.csv"], where="src")
    with pytest.raises(DataError, match=r"missing u\.item"):
        detect_layout(["u.data"], where="src")


def test_several_recbole_inter_files_is_an_error() -> None:
    with pytest.raises(DataError, match=r"several RecBole datasets.*a\.inter, b\.inter"):
        detect_layout(["a.inter", "b.inter"])


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_open_layout_on_each_fixture_folder(tmp_path: Path, layout: str) -> None:
    folder = WRITERS[layout](tmp_path / "data")
    with open_layout(folder) as plan:
        assert plan.layout == layout
        assert plan.ratings.path.is_file()
        assert plan.ratings.names[:3] == ("userId", "movieId", "rating")
        assert plan.movies is not None and plan.movies.path.is_file()
        assert str(folder) in plan.ratings.display


def test_plan_details(tmp_path: Path) -> None:
    with open_layout(write_ml1m(tmp_path / "a")) as plan:
        assert plan.ratings.delimiter == "::" and plan.ratings.encoding == "latin-1"
        assert plan.users is not None and plan.tags is None
    with open_layout(write_ml20m(tmp_path / "b")) as plan:
        assert plan.ratings.header_lines == 1 and plan.ratings.quote == '"'
        assert plan.links is not None and plan.tags is not None
    with open_layout(write_recbole(tmp_path / "c")) as plan:
        assert plan.id_type == "auto" and plan.movies_format == "recbole"
        assert plan.users is not None
        assert plan.users.names == ("userId", "age", "gender", "occupation", "zip")


def test_missing_header_column_names_file_and_line(tmp_path: Path) -> None:
    folder = write_ml20m(tmp_path / "d", ratings="userId,itemId,rating,timestamp\n1,2,3,4\n")
    with pytest.raises(DataError) as err, open_layout(folder):
        pass
    assert str(err.value) == (
        f"{folder / 'ratings.csv'}: line 1: missing column(s) movieId "
        "(header: userId,itemId,rating,timestamp)"
    )


def test_recbole_without_rating_column(tmp_path: Path) -> None:
    folder = write_recbole(tmp_path / "d", ratings="user_id:token\titem_id:token\n1\t2\n")
    expected = r"ml-100k\.inter: line 1: missing column\(s\) rating"
    with pytest.raises(DataError, match=expected), open_layout(folder):
        pass


def test_zip_is_extracted_then_cleaned_up(tmp_path: Path) -> None:
    archive = zip_folder(write_ml1m(tmp_path / "src"), tmp_path / "ml-1m.zip", prefix="ml-1m/")
    scratch = tmp_path / "scratch"
    with open_layout(archive, tmp_dir=scratch) as plan:
        assert plan.layout == "ml-1m"
        assert plan.ratings.path.is_file() and scratch in plan.ratings.path.parents
        assert plan.ratings.display == f"ml-1m/ratings.dat in {archive}"
    assert list(scratch.iterdir()) == []


def test_missing_path_and_plain_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file or folder"), open_layout(tmp_path / "x"):
        pass
    plain = tmp_path / "ratings.txt"
    plain.write_text("1,2,3\n")
    with (
        pytest.raises(DataError, match=r"ratings\.txt: not a folder nor a \.zip"),
        open_layout(plain),
    ):
        pass


def test_truncated_and_corrupt_archives(tmp_path: Path) -> None:
    archive = zip_folder(write_ml20m(tmp_path / "src"), tmp_path / "a.zip")
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err, open_layout(truncated):
        pass
    assert str(err.value).startswith(f"{truncated}: not a readable zip archive")

    # Same directory, damaged member data: fails on extraction (bad CRC or bad deflate stream).
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("ratings.csv")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged = bytearray(data)
    for i in range(start, start + min(info.compress_size, 40)):
        damaged[i] ^= 0x5A
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(damaged))
    with pytest.raises(DataError) as err, open_layout(corrupt, tmp_dir=tmp_path / "scratch"):
        pass
    assert str(err.value).startswith(f"{corrupt}: truncated or corrupt archive")
    assert "\n" not in str(err.value)
    assert list((tmp_path / "scratch").iterdir()) == []


def test_archive_member_outside_the_folder_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../ratings.csv", "userId,movieId,rating\n1,1,4\n")
        zf.writestr("../movies.csv", "movieId,title,genres\n1,A,Drama\n")
    with (
        pytest.raises(DataError, match="unknown layout"),
        open_layout(archive, tmp_dir=tmp_path / "s"),
    ):
        pass
    assert not (tmp_path / "ratings.csv").exists()
