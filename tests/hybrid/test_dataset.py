"""The hybrid dataset SQL: one row per rating, any factor width, built by DuckDB."""

from __future__ import annotations

import pandas as pd
import pytest

from hybridrec.hybrid import hybrid_dataset_sql
from hybridrec.mf import MatrixFactorization


def test_hybrid_dataset_sql_expands_any_width(workspace, tmp_path):
    ratings = workspace.ratings()
    mf = MatrixFactorization(num_factors=3, max_iterations=2, eval_fraction=0).fit(ratings)
    mf.save(workspace.models_dir / "m3")
    genres = workspace.sql("SELECT DISTINCT unnest(genres) AS g FROM movies ORDER BY g")[
        "g"
    ].tolist()
    multi = workspace.sql(hybrid_dataset_sql("m3", 3, genres, []))
    assert len(multi) == len(ratings)
    for col in ("u1", "u2", "u3", "p1", "p3", "loyalty", "postcode", "rating", "genre_Comedy"):
        assert col in multi.columns
    assert "u4" not in multi.columns
    rows = workspace.sql(hybrid_dataset_sql("m3", 3, genres, [], encoding="rows"))
    movies = workspace.movies().set_index("movieId")
    expected = sum(len(movies.loc[m, "genres"]) for m in ratings["movieId"])
    assert len(rows) == expected and "g" in rows.columns
    w = mf.weights(users=[int(ratings["userId"].iloc[0])])
    first = multi[multi["userId"] == ratings["userId"].iloc[0]].iloc[0]
    assert first["u2"] == pytest.approx(w["factor_weights"].iloc[0][1]["weight"], rel=1e-6)
    out = tmp_path / "hd.parquet"
    assert workspace.export_parquet(hybrid_dataset_sql("m3", 3, genres, []), out) == len(ratings)
    assert pd.read_parquet(out).shape == multi.shape
