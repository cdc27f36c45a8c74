"""The reference notebook's ``hybrid_dataset``, built by SQL in the workspace (DuckDB).

The notebook joins ``ML.WEIGHTS`` user factors and per-genre product factors with the ratings,
then needs a hand-written UDF per factor count to turn the arrays into columns ``u1..u16`` and
``p1..p16``. Here the column list is generated for any K, and the ``multi-hot`` encoding keeps
one row per rating (a 0/1 column per genre) instead of one row per (rating, genre).
"""

from __future__ import annotations

from typing import Any

ENCODINGS = ("multi-hot", "rows")


def hybrid_dataset_sql(
    model: str,
    num_factors: int,
    genres: list[str],
    user_columns: list[str],
    *,
    encoding: str = "multi-hot",
    seed: int = 42,
) -> str:
    """SQL for the hybrid dataset of MF model ``model`` over the workspace's tables.

    ``user_columns``: attribute columns of ``users`` besides ``userId``; when empty the
    notebook's synthetic ``loyalty`` and ``postcode`` are computed (``loyalty`` from a hash of
    the id and ``seed``, so the table is reproducible).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    model_lit = _lit(model)
    u_cols = ", ".join(f"uf[{k}] AS u{k}" for k in range(1, num_factors + 1))
    p_cols = ", ".join(f"pf[{k}] AS p{k}" for k in range(1, num_factors + 1))
    if user_columns:
        user_select = ", ".join(f'u."{c}"' for c in user_columns)
        users_cte = f"SELECT userId, {', '.join(_q(c) for c in user_columns)} FROM users"
    else:
        user_select = "u.loyalty, u.postcode"
        users_cte = (
            "SELECT userId, "
            f"(hash(userId, {int(seed)}) % 1000000) / 1000000.0 * COUNT(rating) AS loyalty, "
            "substr(CAST(userId AS VARCHAR), 1, 2) AS postcode "
            "FROM ratings GROUP BY userId"
        )
    weights = f"ml_weights({model_lit})"
    user_factors = (
        "SELECT CAST(feature AS VARCHAR) AS feature, "
        "[fw.weight FOR fw IN factor_weights] AS uf "
        f"FROM {weights} WHERE processed_input = 'userId'"
    )
    item_factors = (
        "SELECT CAST(feature AS VARCHAR) AS feature, "
        "[fw.weight FOR fw IN factor_weights] AS pf "
        f"FROM {weights} WHERE processed_input = 'movieId'"
    )
    if encoding == "rows":
        genre_select = "g"
        movie_rows = "SELECT m.*, unnest(m.genres) AS g FROM movies m"
    else:
        genre_select = ", ".join(
            f"CAST(list_contains(p.genres, {_lit(g)}) AS TINYINT) AS {_q('genre_' + g)}"
            for g in genres
        )
        movie_rows = "SELECT m.* FROM movies m"
    return f"""
WITH userFeatures AS (
    SELECT u.*, w.uf FROM ({users_cte}) u
    JOIN ({user_factors}) w ON w.feature = CAST(u.userId AS VARCHAR)
),
productFeatures AS (
    SELECT p.*, w.pf FROM ({movie_rows}) p
    JOIN ({item_factors}) w ON w.feature = CAST(p.movieId AS VARCHAR)
)
SELECT
    r.userId, r.movieId, p.title, p.year, {genre_select},
    {user_select},
    {u_cols},
    {p_cols},
    r.rating
FROM ratings r
JOIN userFeatures u ON u.userId = r.userId
JOIN productFeatures p ON p.movieId = r.movieId
""".strip()


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
