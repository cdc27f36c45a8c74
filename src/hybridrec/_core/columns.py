"""The column names of the ratings (MovieLens' ml-20m names, kept by every layout)."""

from __future__ import annotations

__all__ = ["ITEM_COL", "RATING_COL", "USER_COL"]

USER_COL, ITEM_COL, RATING_COL = "userId", "movieId", "rating"
