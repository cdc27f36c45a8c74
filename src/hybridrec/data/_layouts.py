"""MovieLens layouts: find the files of a source, decide its layout, and describe how to read them.

Pure Python (no DuckDB): the result is a :class:`LayoutPlan` that ``workspace.py`` turns into
``read_csv`` calls. A source is a folder (the dataset folder itself or a folder holding one dataset
subfolder) or a ``.zip`` / ``.whl`` archive, whose relevant members are extracted to a temporary
folder for as long as the plan is in use.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hybridrec._errors import DataError, NotFoundError

__all__ = [
    "ARCHIVE_SUFFIXES",
    "LAYOUTS",
    "ML100K_GENRES",
    "LayoutPlan",
    "TextFile",
    "detect_layout",
    "open_layout",
]

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".whl")

#: Layout names, as reported in ``LoadSummary.layout``; ``ml-20m`` also covers ml-25m, ml-32m,
#: ml-latest and ml-latest-small, which share its CSV files.
LAYOUTS = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "recbole")

#: The 19 genre flag columns of ml-100k ``u.item``, in file order.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

_EXPECTED = (
    "u.data (ml-100k), ratings.dat (ml-1m, ml-10m), ratings.csv (ml-20m, ml-25m, ml-32m, "
    "ml-latest) or NAME.inter (RecBole)"
)

# RecBole header names -> MovieLens names.
_RECBOLE_NAMES = {
    "user_id": "userId",
    "item_id": "movieId",
    "rating": "rating",
    "timestamp": "timestamp",
    "movie_title": "title",
    "release_year": "release_year",
    "class": "genres",
    "zip_code": "zip",
}


@dataclass(frozen=True)
class TextFile:
    """One delimited text file and how to read it.

    ``columns`` are ``(name, duckdb_type)`` pairs in file order, named the MovieLens way.
    ``quote`` is ``""`` for the ``::`` / tab / ``|`` files, which are not CSV-quoted (titles there
    may start with a double quote). ``header_lines`` is 1 when the first line holds column names.
    """

    path: Path
    delimiter: str
    columns: tuple[tuple[str, str], ...]
    encoding: str = "utf-8"
    header_lines: int = 0
    quote: str = ""
    label: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def display(self) -> str:
        """How messages name the file: its path, or ``member in archive`` for archives."""
        return self.label or str(self.path)


@dataclass(frozen=True)
class LayoutPlan:
    """What to read for one source.

    ``movies_format`` says how genres are stored: ``"pipe"`` (``Action|Comedy``), ``"flags"``
    (ml-100k's 19 0/1 columns, named ``g0``..``g18``) or ``"recbole"`` (space-separated
    ``class`` tokens, year in ``release_year``). ``id_type`` is ``"BIGINT"`` for GroupLens layouts
    and ``"auto"`` for RecBole, whose ids are tokens: integers when every id parses as one.
    """

    layout: str
    root: Path
    ratings: TextFile
    movies: TextFile | None
    users: TextFile | None = None
    tags: TextFile | None = None
    links: TextFile | None = None
    movies_format: str = "pipe"
    id_type: str = "BIGINT"
    found: tuple[str, ...] = field(default=(), compare=False)


# --------------------------------------------------------------------------------------------
# detection


def _wanted(layout: str, files: set[str]) -> tuple[list[str], list[str]]:
    """(required, optional) file names of ``layout`` given the names in its folder."""
    if layout == "ml-100k":
        return ["u.data", "u.item"], ["u.user"]
    if layout == "ml-1m":
        return ["ratings.dat", "movies.dat", "users.dat"], []
    if layout == "ml-10m":
        return ["ratings.dat", "movies.dat"], ["tags.dat"]
    if layout == "ml-20m":
        return ["ratings.csv", "movies.csv"], ["tags.csv", "links.csv"]
    inter = sorted(f for f in files if f.endswith(".inter"))
    stem = inter[0][: -len(".inter")]
    return [inter[0]], [f"{stem}.item", f"{stem}.user"]


def _layout_of(files: set[str]) -> str | None:
    if "u.data" in files:
        return "ml-100k"
    if "ratings.dat" in files:
        # ml-1m and ml-10m share ratings.dat; only ml-1m has users.dat.
        return "ml-1m" if "users.dat" in files else "ml-10m"
    if "ratings.csv" in files:
        return "ml-20m"
    if any(f.endswith(".inter") for f in files):
        return "recbole"
    return None


def _ignored(path: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


def detect_layout(names: Iterable[str], *, where: str = "source") -> tuple[str, str, list[str]]:
    """Decide the layout from relative file paths (``/``-separated).

    Returns ``(layout, folder, files)``: the layout name, the folder (relative, ``""`` for the
    top) holding the dataset, and the paths of the files to read, relative to the top, required
    ones first. The shallowest folder that holds a dataset wins; two at the same depth, a missing
    required file, or no dataset at all are a :class:`DataError` naming what was found.
    """
    by_dir: dict[str, set[str]] = {}
    all_files: list[str] = []
    for name in names:
        p = PurePosixPath(name)
        if _ignored(p) or not p.name:
            continue
        all_files.append(str(p))
        parent = "" if str(p.parent) == "." else str(p.parent)
        by_dir.setdefault(parent, set()).add(p.name)

    candidates = [(d, layout) for d, files in by_dir.items() if (layout := _layout_of(files))]
    if not candidates:
        shown = ", ".join(sorted(all_files)[:12]) or "no files"
        more = f" and {len(all_files) - 12} more" if len(all_files) > 12 else ""
        raise DataError(f"unknown layout in {where}: found {shown}{more}; expected {_EXPECTED}")

    def depth(d: str) -> int:
        return 0 if d == "" else len(PurePosixPath(d).parts)

    top = min(depth(d) for d, _ in candidates)
    best = sorted((d, layout) for d, layout in candidates if depth(d) == top)
    if len(best) > 1:
        listed = ", ".join(f"{d or '.'} ({layout})" for d, layout in best)
        raise DataError(f"several datasets in {where}: {listed}; pass the path of one of them")
    folder, layout = best[0]
    files = by_dir[folder]
    if layout == "recbole" and sum(f.endswith(".inter") for f in files) > 1:
        inters = ", ".join(sorted(f for f in files if f.endswith(".inter")))
        raise DataError(f"several RecBole datasets in {where}/{folder}: {inters}; pass one folder")
    required, optional = _wanted(layout, files)
    missing = [f for f in required if f not in files]
    if missing:
        place = f"{where}/{folder}" if folder else where
        raise DataError(
            f"{layout} layout in {place}: missing {', '.join(missing)} "
            f"(found {', '.join(sorted(files))})"
        )
    chosen = required + [f for f in optional if f in files]
    prefix = f"{folder}/" if folder else ""
    return layout, folder, [prefix + f for f in chosen]


# --------------------------------------------------------------------------------------------
# plans


def _read_header(path: Path, label: str, delimiter: str) -> list[str]:
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise DataError(f"{label}: cannot read ({exc.strerror})") from None
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise DataError(f"{label}: line 1: empty file or missing header line")
    return [c.strip().strip('"') for c in text.split(delimiter)]


def _csv_with_header(
    path: Path,
    label: str,
    required: dict[str, str],
    optional: dict[str, str] | None = None,
) -> TextFile:
    """A ``,``-separated MovieLens CSV whose header is checked against ``required`` names."""
    header = _read_header(path, label, ",")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{label}: line 1: missing column(s) {', '.join(missing)} (header: {','.join(header)})"
        )
    types = {**required, **(optional or {})}
    columns = tuple((name, types.get(name, "VARCHAR")) for name in header)
    return TextFile(path, ",", columns, "utf-8", header_lines=1, quote='"', label=label)


def _recbole_file(path: Path, label: str, required: list[str], types: dict[str, str]) -> TextFile:
    """A RecBole atomic file: tab-separated, header ``name:type``, renamed to MovieLens names."""
    header = _read_header(path, label, "\t")
    columns: list[tuple[str, str]] = []
    for raw in header:
        base, _, kind = raw.partition(":")
        name = _RECBOLE_NAMES.get(base, base)
        default = "DOUBLE" if kind == "float" else "VARCHAR"
        columns.append((name, types.get(name, default)))
    names = [n for n, _ in columns]
    missing = [r for r in required if r not in names]
    if missing:
        wanted = {v: k for k, v in _RECBOLE_NAMES.items()}
        shown = ", ".join(wanted.get(m, m) for m in missing)
        raise DataError(f"{label}: line 1: missing column(s) {shown} (header: {' '.join(header)})")
    return TextFile(path, "\t", tuple(columns), "utf-8", header_lines=1, quote="", label=label)


_RATINGS = (
    ("userId", "BIGINT"),
    ("movieId", "BIGINT"),
    ("rating", "FLOAT"),
    ("timestamp", "BIGINT"),
)


def _plan(
    layout: str, root: Path, files: list[str], found: tuple[str, ...], archive: Path | None
) -> LayoutPlan:
    by_name = {PurePosixPath(f).name: f for f in files}

    def label(rel: str) -> str:
        return f"{rel} in {archive}" if archive is not None else str(root / rel)

    def text(name: str, delimiter: str, columns: tuple[tuple[str, str], ...], enc: str) -> TextFile:
        rel = by_name[name]
        return TextFile(root / rel, delimiter, columns, enc, label=label(rel))

    def csv(
        name: str, required: dict[str, str], optional: dict[str, str] | None = None
    ) -> TextFile:
        rel = by_name[name]
        return _csv_with_header(root / rel, label(rel), required, optional)

    def recbole(name: str, required: list[str], types: dict[str, str]) -> TextFile:
        rel = by_name[name]
        return _recbole_file(root / rel, label(rel), required, types)

    if layout == "ml-100k":
        flags = tuple((f"g{i}", "INTEGER") for i in range(len(ML100K_GENRES)))
        item_cols = (
            ("movieId", "BIGINT"),
            ("title", "VARCHAR"),
            ("release_date", "VARCHAR"),
            ("video_release_date", "VARCHAR"),
            ("imdb_url", "VARCHAR"),
            *flags,
        )
        user_cols = (
            ("userId", "BIGINT"),
            ("age", "INTEGER"),
            ("gender", "VARCHAR"),
            ("occupation", "VARCHAR"),
            ("zip", "VARCHAR"),
        )
        return LayoutPlan(
            layout,
            root,
            ratings=text("u.data", "\t", _RATINGS, "utf-8"),
            movies=text("u.item", "|", item_cols, "latin-1"),
            users=text("u.user", "|", user_cols, "latin-1") if "u.user" in by_name else None,
            movies_format="flags",
            found=found,
        )
    if layout in ("ml-1m", "ml-10m"):
        # ml-1m is latin-1; ml-10m is UTF-8.
        enc = "latin-1" if layout == "ml-1m" else "utf-8"
        movie_cols = (("movieId", "BIGINT"), ("title", "VARCHAR"), ("genres", "VARCHAR"))
        user_cols = (
            ("userId", "BIGINT"),
            ("gender", "VARCHAR"),
            ("age", "INTEGER"),
            ("occupation", "INTEGER"),
            ("zip", "VARCHAR"),
        )
        tag_cols = (
            ("userId", "BIGINT"),
            ("movieId", "BIGINT"),
            ("tag", "VARCHAR"),
            ("timestamp", "BIGINT"),
        )
        return LayoutPlan(
            layout,
            root,
            ratings=text("ratings.dat", "::", _RATINGS, enc),
            movies=text("movies.dat", "::", movie_cols, enc),
            users=text("users.dat", "::", user_cols, enc) if "users.dat" in by_name else None,
            tags=text("tags.dat", "::", tag_cols, enc) if "tags.dat" in by_name else None,
            found=found,
        )
    if layout == "ml-20m":
        ids = {"userId": "BIGINT", "movieId": "BIGINT"}
        ratings = csv("ratings.csv", {**ids, "rating": "FLOAT"}, {"timestamp": "BIGINT"})
        movies = csv("movies.csv", {"movieId": "BIGINT", "title": "VARCHAR", "genres": "VARCHAR"})
        tags = (
            csv("tags.csv", {**ids, "tag": "VARCHAR"}, {"timestamp": "BIGINT"})
            if "tags.csv" in by_name
            else None
        )
        links = (
            csv("links.csv", {"movieId": "BIGINT"}, {"imdbId": "VARCHAR", "tmdbId": "BIGINT"})
            if "links.csv" in by_name
            else None
        )
        return LayoutPlan(layout, root, ratings, movies, tags=tags, links=links, found=found)

    # RecBole: ids are tokens (strings in general), typed once the ratings are read.
    inter = next(name for name in by_name if name.endswith(".inter"))
    stem = inter[: -len(".inter")]
    item, user = f"{stem}.item", f"{stem}.user"
    return LayoutPlan(
        layout,
        root,
        ratings=recbole(
            inter, ["userId", "movieId", "rating"], {"rating": "FLOAT", "timestamp": "DOUBLE"}
        ),
        movies=recbole(item, ["movieId"], {}) if item in by_name else None,
        users=recbole(user, ["userId"], {}) if user in by_name else None,
        movies_format="recbole",
        id_type="auto",
        found=found,
    )


def _dir_names(folder: Path) -> list[str]:
    """Files in ``folder`` and in its direct subfolders, relative and ``/``-separated."""
    names: list[str] = []
    for child in sorted(folder.iterdir()):
        if child.is_file():
            names.append(child.name)
        elif child.is_dir() and not child.name.startswith("."):
            names.extend(f"{child.name}/{c.name}" for c in sorted(child.iterdir()) if c.is_file())
    return names


def _extract(archive: Path, members: list[str], into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in members:
                target = into / name
                # A member named "../x" must not land outside the scratch folder.
                if ".." in PurePosixPath(name).parts or name.startswith("/"):
                    raise DataError(f"{archive}: unsafe member path {name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{archive}: truncated or corrupt archive ({reason})") from None


def _archive_names(archive: Path) -> list[str]:
    try:
        with zipfile.ZipFile(archive) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{archive}: not a readable zip archive ({reason})") from None


@contextmanager
def open_layout(source: str | Path, *, tmp_dir: str | Path | None = None) -> Iterator[LayoutPlan]:
    """Yield the :class:`LayoutPlan` of a folder or ``.zip``/``.whl`` archive.

    Archive members are extracted under ``tmp_dir`` (the system temp dir by default) and removed
    when the context exits. Raises :class:`NotFoundError` for a missing path and
    :class:`DataError` for an unknown layout, a missing file or column, or a corrupt archive.
    """
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        names = _dir_names(path)
        layout, _folder, files = detect_layout(names, where=str(path))
        log.debug("%s: %s layout, files %s", path, layout, files)
        yield _plan(layout, path, files, tuple(names), None)
        return
    if path.suffix.lower() not in ARCHIVE_SUFFIXES:
        raise DataError(
            f"{path}: not a folder nor a .zip/.whl archive; pass the dataset folder or archive"
        )
    names = _archive_names(path)
    layout, _folder, files = detect_layout(names, where=str(path))
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".hybridrec-extract-", dir=tmp_dir))
    try:
        log.info("extracting %s from %s", ", ".join(files), path)
        _extract(path, files, workdir)
        yield _plan(layout, workdir, files, tuple(names), path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
