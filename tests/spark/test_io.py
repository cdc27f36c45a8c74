"""Reading ratings into Spark: MovieLens layouts, files, missing columns."""

from __future__ import annotations

import pandas as pd
import pytest
from _support.spark import require_spark

pytestmark = pytest.mark.spark


require_spark()


from hybridrec.spark import (  # noqa: E402
    read_ratings,
)


def test_read_ratings_reads_movielens_layouts_and_files(spark, tmp_path):
    from _support.data import RATINGS, write_ml20m, write_ml100k

    for folder in (write_ml100k(tmp_path / "ml-100k"), write_ml20m(tmp_path / "ml-20m")):
        frame = read_ratings(spark, folder)
        rows = frame.select("userId", "movieId", "rating").orderBy("userId", "movieId").collect()
        assert [(r.userId, r.movieId, r.rating) for r in rows] == [
            (u, m, float(r)) for u, m, r, _ in RATINGS
        ]
    parquet = tmp_path / "r.parquet"
    pd.DataFrame(RATINGS, columns=["userId", "movieId", "rating", "timestamp"]).to_parquet(parquet)
    assert read_ratings(spark, parquet).count() == len(RATINGS)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,3\n")
    from hybridrec import DataError

    with pytest.raises(DataError, match="missing userId, movieId"):
        read_ratings(spark, bad)
