"""Tiny MovieLens-like datasets written in every layout the loaders know (never real data).

All layouts hold the same content (:data:`RATINGS`, :data:`MOVIES`, :data:`USERS`) so tests can
check that they load to the same tables. Each writer takes ``ratings=`` to replace the ratings
file's text, for bad-input tests.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

# (userId, movieId, rating, timestamp)
RATINGS = [
    (1, 1, 4, 100),
    (1, 2, 3, 101),
    (1, 3, 5, 102),
    (2, 1, 5, 200),
    (2, 4, 2, 201),
    (3, 2, 1, 300),
    (3, 3, 4, 301),
]

# movieId -> (title as in ml-20m, genres after loading, year)
MOVIES = {
    1: ("Toy Story (1995)", ["Animation", "Children", "Comedy"], 1995),
    2: ("Café, The (1996)", ["Comedy", "Romance"], 1996),
    3: ("Heat (1995)", ["Action", "Crime", "Thriller"], 1995),
    4: ("Untitled", [], None),
}
# genres as the older files spell them
_OLD_GENRES = {
    1: ["Animation", "Children's", "Comedy"],
    2: ["Comedy", "Romance"],
    3: ["Action", "Crime", "Thriller"],
    4: [],
}

# userId -> (age, gender, occupation, zip)
USERS = {
    1: (24, "M", "technician", "85711"),
    2: (53, "F", "other", "05201"),
    3: (23, "M", "writer", "32067"),
}

TAGS = [(1, 1, "pixar", 110), (2, 4, "odd, really", 210)]

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]  # fmt: skip


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _lines(rows: list[str]) -> str:
    return "".join(r + "\n" for r in rows)


def write_ml100k(folder: Path, *, ratings: str | None = None) -> Path:
    """ml-100k: u.data (tab), u.item and u.user ('|', latin-1)."""
    if ratings is None:
        ratings = _lines([f"{u}\t{m}\t{r}\t{t}" for u, m, r, t in RATINGS])
    _write(folder / "u.data", ratings)
    items = []
    for mid, (title, _, year) in MOVIES.items():
        genres = _OLD_GENRES[mid] or ["unknown"]
        flags = "|".join("1" if g in genres else "0" for g in GENRES_100K)
        release = f"01-Jan-{year}" if year else ""
        items.append(f"{mid}|{title}|{release}||http://imdb/{mid}|{flags}")
    _write(folder / "u.item", _lines(items), "latin-1")
    users = [f"{u}|{a}|{g}|{o}|{z}" for u, (a, g, o, z) in USERS.items()]
    _write(folder / "u.user", _lines(users), "latin-1")
    return folder


def write_ml1m(folder: Path, *, ratings: str | None = None) -> Path:
    """ml-1m: ratings.dat, movies.dat, users.dat, '::'-separated, latin-1 ("Café")."""
    if ratings is None:
        ratings = _lines([f"{u}::{m}::{r}::{t}" for u, m, r, t in RATINGS])
    _write(folder / "ratings.dat", ratings)
    movies = [
        f"{mid}::{title}::{'|'.join(_OLD_GENRES[mid]) or '(no genres listed)'}"
        for mid, (title, _, _) in MOVIES.items()
    ]
    _write(folder / "movies.dat", _lines(movies), "latin-1")
    # ml-1m: gender, age band code, occupation code, zip
    users = [f"{u}::{g}::{a}::{i}::{z}" for i, (u, (a, g, _, z)) in enumerate(USERS.items())]
    _write(folder / "users.dat", _lines(users), "latin-1")
    return folder


def write_ml10m(folder: Path, *, ratings: str | None = None) -> Path:
    """ml-10m: ratings.dat, movies.dat, tags.dat, '::'-separated, UTF-8, no users."""
    if ratings is None:
        ratings = _lines([f"{u}::{m}::{r}::{t}" for u, m, r, t in RATINGS])
    _write(folder / "ratings.dat", ratings)
    movies = [
        f"{mid}::{title}::{'|'.join(g) or '(no genres listed)'}"
        for mid, (title, g, _) in MOVIES.items()
    ]
    _write(folder / "movies.dat", _lines(movies))
    _write(folder / "tags.dat", _lines([f"{u}::{m}::{t}::{ts}" for u, m, t, ts in TAGS]))
    return folder


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_ml20m(folder: Path, *, ratings: str | None = None, movies: str | None = None) -> Path:
    """ml-20m: CSVs with headers; quoted title with a comma; tags.csv and links.csv."""
    if ratings is None:
        rows = [f"{u},{m},{float(r)},{t}" for u, m, r, t in RATINGS]
        ratings = _lines(["userId,movieId,rating,timestamp", *rows])
    _write(folder / "ratings.csv", ratings)
    if movies is None:
        rows = [
            f"{mid},{_csv_field(title)},{'|'.join(g) or '(no genres listed)'}"
            for mid, (title, g, _) in MOVIES.items()
        ]
        movies = _lines(["movieId,title,genres", *rows])
    _write(folder / "movies.csv", movies)
    tags = [f"{u},{m},{_csv_field(t)},{ts}" for u, m, t, ts in TAGS]
    _write(folder / "tags.csv", _lines(["userId,movieId,tag,timestamp", *tags]))
    links = [f"{mid},{mid:07d},{100 + mid if mid != 4 else ''}" for mid in MOVIES]
    _write(folder / "links.csv", _lines(["movieId,imdbId,tmdbId", *links]))
    return folder


def write_recbole(folder: Path, *, ratings: str | None = None, name: str = "ml-100k") -> Path:
    """RecBole atomic files: NAME.inter, NAME.item, NAME.user (tab, typed header)."""
    if ratings is None:
        rows = [f"{u}\t{m}\t{r}\t{t}" for u, m, r, t in RATINGS]
        ratings = _lines(["user_id:token\titem_id:token\trating:float\ttimestamp:float", *rows])
    _write(folder / f"{name}.inter", ratings)
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for mid, (title, _, year) in MOVIES.items():
        bare = title.rsplit(" (", 1)[0] if year else title
        genres = " ".join(_OLD_GENRES[mid]) or "unknown"
        items.append(f"{mid}\t{bare}\t{year or ''}\t{genres}")
    _write(folder / f"{name}.item", _lines(items))
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    users += [f"{u}\t{a}\t{g}\t{o}\t{z}" for u, (a, g, o, z) in USERS.items()]
    _write(folder / f"{name}.user", _lines(users))
    return folder


WRITERS = {
    "ml-100k": write_ml100k,
    "ml-1m": write_ml1m,
    "ml-10m": write_ml10m,
    "ml-20m": write_ml20m,
    "recbole": write_recbole,
}


def zip_folder(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    """Zip the files of ``folder`` under ``prefix`` (e.g. ``"ml-1m/"``)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return archive


def taste_driven_ratings(n_users: int, n_items: int, per_user: int, seed: int):  # type: ignore[no-untyped-def]
    """Ratings where users choose what to watch by taste and like what they choose.

    The synthetic ml-20m generator draws items by popularity alone, which leaves implicit and
    ranking models nothing personal to learn; this one does not.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    p = rng.normal(0, 1, (n_users, 3))
    q = rng.normal(0, 1, (n_items, 3))
    frames = []
    for u in range(n_users):
        affinity = q @ p[u]
        weights = np.exp(1.5 * affinity)
        chosen = rng.choice(n_items, size=per_user, replace=False, p=weights / weights.sum())
        noise = rng.normal(0, 0.5, per_user)
        stars = np.clip(np.round(2 * (3.2 + 0.6 * affinity[chosen] + noise)) / 2, 0.5, 5)
        frames.append(pd.DataFrame({"userId": u + 1, "movieId": chosen + 1, "rating": stars}))
    return pd.concat(frames, ignore_index=True)


def comedy_drama_movies(n_items: int):  # type: ignore[no-untyped-def]
    """Movies 1..``n_items`` of :func:`taste_driven_ratings`: odd ids are Comedy, even Drama."""
    import numpy as np
    import pandas as pd

    ids = np.arange(1, n_items + 1)
    return pd.DataFrame(
        {
            "movieId": ids,
            "title": [f"Movie {i}" for i in ids],
            "genres": [["Comedy"] if i % 2 else ["Drama"] for i in ids],
        }
    )


def random_ratings(n: int = 40, seed: int = 0):  # type: ignore[no-untyped-def]
    """``n`` random half-star ratings of 8 users on 12 movies (duplicates possible)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "userId": rng.integers(1, 9, n),
            "movieId": rng.integers(1, 13, n),
            "rating": rng.integers(1, 11, n) / 2,
        }
    )
