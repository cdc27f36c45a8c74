"""Side features for the hybrid model: user and item attributes, and behaviour from ratings.

Everything here is fitted on training data only and is stored in the model artifact as plain
tables, so a saved model rebuilds exactly the same feature vectors at prediction time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._errors import DataError

MAX_CATEGORIES = 25
# Columns that identify rather than describe; never used as features.
_ID_LIKE = {USER_COL, ITEM_COL, "title", "imdbId", "tmdbId", "genres"}


@dataclass
class AttributeEncoder:
    """Encodes an attribute table (users or items) into numeric columns.

    Numeric columns pass through; text columns are one-hot encoded over their
    ``MAX_CATEGORIES`` most frequent values; list columns (genres, or ``"A|B"`` strings in a
    ``genres`` column) become multi-hot; ``zip`` codes are reduced to their first character (a
    US region).

    Fallbacks, the same at training and prediction time, never an error or a NaN:

    - a missing number (NULL, NaN, or text that is not a number) becomes the training mean of
      its column (0 when the whole column is missing);
    - a missing text value, or a category not among the encoded ones (unseen in training, or
      too rare), encodes as all zeros: "no category";
    - missing genres (NULL rather than a list) encode as no genre;
    - an id absent from the table (a user or item added after training, or a new user without
      attributes) gets all of the above: the training means and all-zero one-hots.
    """

    key: str
    numeric: list[str] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    multi_hot: dict[str, list[str]] = field(default_factory=dict)
    table: pd.DataFrame | None = None  # encoded features indexed by the key

    @classmethod
    def fit(cls, frame: pd.DataFrame | None, key: str) -> AttributeEncoder:
        enc = cls(key=key)
        if frame is None or key not in frame.columns or len(frame) == 0:
            return enc
        frame = _prepare(frame.drop_duplicates(key))
        for col in frame.columns:
            if (col in _ID_LIKE and col != "genres") or col == key:
                continue
            values = frame[col]
            if col == "genres" or values.map(lambda v: isinstance(v, list | np.ndarray)).any():
                counts = pd.Series([g for gs in values.dropna() for g in gs]).value_counts()
                enc.multi_hot[col] = sorted(counts.index[:40].astype(str))
            elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                enc.numeric.append(col)
                finite = _numbers(values)
                finite = finite[np.isfinite(finite)]
                enc.means[col] = float(finite.mean()) if finite.size else 0.0
            else:
                top = _text(values).value_counts().index[:MAX_CATEGORIES]
                enc.categories[col] = sorted(top)
        enc.table = enc.transform(frame)
        return enc

    @property
    def columns(self) -> list[str]:
        cols = [f"{self.key}.{c}" for c in self.numeric]
        for col, cats in self.categories.items():
            cols += [f"{self.key}.{col}={c}" for c in cats]
        for col, cats in self.multi_hot.items():
            cols += [f"{self.key}.{col}={c}" for c in cats]
        return cols

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode ``frame`` (must hold the key) into this encoder's columns, indexed by key."""
        frame = _prepare(frame.drop_duplicates(self.key))
        out: dict[str, np.ndarray] = {}
        for col in self.numeric:
            missing = np.full(len(frame), self.means[col])
            values = _numbers(frame[col]) if col in frame else missing
            out[f"{self.key}.{col}"] = np.where(np.isfinite(values), values, self.means[col])
        for col, cats in self.categories.items():
            values = (
                np.asarray(_text(frame[col]), dtype=object)
                if col in frame
                else np.full(len(frame), None, dtype=object)
            )
            for c in cats:
                out[f"{self.key}.{col}={c}"] = (values == c).astype(np.float64)
        for col, cats in self.multi_hot.items():
            lists = frame[col] if col in frame else pd.Series([[]] * len(frame))
            sets = [set(map(str, v)) if isinstance(v, list | np.ndarray) else set() for v in lists]
            for c in cats:
                out[f"{self.key}.{col}={c}"] = np.array([c in s for s in sets], dtype=np.float64)
        return pd.DataFrame(out, index=pd.Index(frame[self.key].to_numpy(), name=self.key))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Feature rows for ``ids``; unknown ids get the training means and all-zero one-hots."""
        cols = self.columns
        if not cols:
            return np.zeros((len(ids), 0))
        assert self.table is not None
        rows = self.table.reindex(ids)
        defaults = pd.Series({f"{self.key}.{c}": m for c, m in self.means.items()})
        return rows.fillna(defaults).fillna(0.0).to_numpy(np.float64)

    def to_meta(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "numeric": self.numeric,
            "means": self.means,
            "categories": self.categories,
            "multi_hot": self.multi_hot,
        }

    def table_arrow(self) -> pa.Table:
        assert self.table is not None
        return pa.Table.from_pandas(self.table.reset_index(), preserve_index=False)

    @classmethod
    def from_meta(cls, meta: dict[str, Any], table: pa.Table | None) -> AttributeEncoder:
        enc = cls(
            key=meta["key"],
            numeric=list(meta["numeric"]),
            means=dict(meta["means"]),
            categories={k: list(v) for k, v in meta["categories"].items()},
            multi_hot={k: list(v) for k, v in meta["multi_hot"].items()},
        )
        if table is not None:
            enc.table = table.to_pandas().set_index(enc.key)
        return enc


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Derived attributes: zip → region (first character); ``"A|B"`` genre strings → lists.
    Missing values stay missing."""
    frame = frame.copy()
    if "zip" in frame.columns:
        frame["zip"] = _text(frame["zip"]).str[:1]
    if "genres" in frame.columns:
        frame["genres"] = [
            [x for x in g.split("|") if x] if isinstance(g, str) else g for g in frame["genres"]
        ]
    return frame


def _text(values: pd.Series) -> pd.Series:
    """Values as text; missing ones (None, NaN, NA, empty text) stay missing (never "None")."""
    out = values.astype(object).where(values.notna(), None)
    out = out.map(lambda v: None if v is None else str(v).strip() or None)
    return out.astype(object)


def _numbers(values: pd.Series) -> np.ndarray:
    """Values as float64, with NaN for missing or non-numeric ones (nullable dtypes included)."""
    numeric = pd.to_numeric(values, errors="coerce")
    return np.asarray(pd.Series(numeric).to_numpy(dtype=np.float64, na_value=np.nan))


def notebook_user_attributes(ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The reference notebook's synthetic user table, for data without user attributes:
    ``loyalty = RAND() * COUNT(rating)`` and ``postcode = first two characters of userId``."""
    counts = ratings.groupby(USER_COL, sort=True)[RATING_COL].size()
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            USER_COL: counts.index.to_numpy(),
            "loyalty": rng.random(len(counts)) * counts.to_numpy(),
            "postcode": [str(u)[:2] for u in counts.index],
        }
    )


def has_attributes(frame: pd.DataFrame | None, key: str) -> bool:
    return frame is not None and any(c not in _ID_LIKE and c != key for c in frame.columns)


BEHAVIOUR = ("n_log", "mean", "std")


@dataclass
class RatingStats:
    """Per-user or per-item behaviour from ratings: log count, mean and spread of ratings."""

    key: str
    table: pd.DataFrame  # indexed by key, columns BEHAVIOUR
    global_mean: float

    @classmethod
    def fit(cls, ratings: pd.DataFrame, key: str) -> RatingStats:
        grouped = ratings.groupby(key, sort=True)[RATING_COL]
        count = grouped.size()
        mean = grouped.mean()
        # Damped mean (shrunk toward the global mean by 5 pseudo-ratings): stable for rare ids.
        global_mean = float(ratings[RATING_COL].mean())
        damped = (mean * count + 5 * global_mean) / (count + 5)
        table = pd.DataFrame(
            {
                "n_log": np.log1p(count.to_numpy(float)),
                "mean": damped.to_numpy(float),
                "std": grouped.std().fillna(0.0).to_numpy(float),
            },
            index=count.index,
        )
        return cls(key, table, global_mean)

    @property
    def columns(self) -> list[str]:
        prefix = "user" if self.key == USER_COL else "item"
        return [f"{prefix}.{c}" for c in BEHAVIOUR]

    def unknown(self, n: int) -> np.ndarray:
        """Rows for ``n`` ids with no ratings."""
        return np.tile([0.0, self.global_mean, 0.0], (n, 1))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        rows = self.table.reindex(ids)
        rows = rows.fillna({"n_log": 0.0, "mean": self.global_mean, "std": 0.0})
        return rows.to_numpy(np.float64)


def check_attribute_table(
    frame: pd.DataFrame | None, key: str, name: str, ratings: pd.DataFrame
) -> None:
    """An attribute table that cannot be joined to the ratings is a mistake, not "no data"."""
    if frame is None or len(frame) == 0:
        return
    if key not in frame.columns:
        raise DataError(
            f"the {name} table has no {key} column (columns: {', '.join(map(str, frame.columns))})"
        )
    if key in ratings.columns and not frame[key].isin(ratings[key].unique()).any():
        raise DataError(
            f"no {key} of the {name} table appears in the ratings (types {frame[key].dtype} "
            f"vs {ratings[key].dtype}?): its attributes would never be used"
        )
