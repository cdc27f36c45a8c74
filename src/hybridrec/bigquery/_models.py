"""A saved model as the SQL face sees it: the hybridrec model and its BigQuery column names.

``CREATE MODEL`` stores the names it was given under ``meta.json``'s ``bigquery`` key
(``user_col``, ``item_col``, ``rating_col`` of a matrix factorization, ``label`` of a
regressor); a model trained by the CLI has MovieLens' names (``userId``, ``movieId``,
``rating``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec import artifacts
from hybridrec._errors import NotFoundError
from hybridrec.models import load_model, model_dir

__all__ = ["SqlModel", "open_model", "soft_clip"]

#: Room left below the top (above the bottom) of the rating scale for out-of-scale scores.
SOFT_CLIP_WIDTH = 1e-6


@dataclass
class SqlModel:
    name: str
    path: Path
    model: Any
    meta: dict[str, Any]
    columns: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind"))

    @property
    def is_mf(self) -> bool:
        return self.kind.startswith("matrix_factorization")

    @property
    def is_regressor(self) -> bool:
        return self.kind == "feature_regressor"

    @property
    def user_col(self) -> str:
        return str(self.columns.get("user_col", "userId"))

    @property
    def item_col(self) -> str:
        return str(self.columns.get("item_col", "movieId"))

    @property
    def rating_col(self) -> str:
        return str(self.columns.get("rating_col", "rating"))

    @property
    def implicit(self) -> bool:
        return self.kind == "matrix_factorization_implicit"

    @property
    def predicted_col(self) -> str:
        if self.is_regressor:
            return f"predicted_{self.model.label}"
        suffix = "_confidence" if self.implicit else ""
        return f"predicted_{self.rating_col}{suffix}"

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The values ``ML.PREDICT`` / ``ML.RECOMMEND`` return for (user, item) pairs.

        Explicit MF: the model's prediction, which is clipped to the training rating scale,
        except that scores beyond the scale are mapped strictly monotonically into the last
        ``SOFT_CLIP_WIDTH`` of it (:func:`soft_clip`), so that ``ORDER BY predicted_rating``
        ranks pairs as the model's raw scores do instead of tying them at the bound. Other
        kinds: their ``predict``."""
        if not self.is_mf or self.implicit:
            return np.asarray(self.model.predict(users, items), dtype=np.float64)
        raw = np.asarray(self.model.predict(users, items, clip=False), dtype=np.float64)
        low, high = self.model.rating_range_
        return soft_clip(raw, float(low), float(high))


def soft_clip(raw: np.ndarray, low: float, high: float) -> np.ndarray:
    """``raw`` on the scale ``[low, high]``, strictly increasing in ``raw``.

    With ``w = SOFT_CLIP_WIDTH`` and ``t = high − w``: ``raw ≤ t`` is kept, and ``raw > t``
    becomes ``high − w·e^{−(raw − t)}``, which is continuous at ``t``, below ``high`` and
    within ``w`` of the hard clip ``min(raw, high)`` (mirrored at ``low``). Scores up to ~20
    rating points beyond the scale stay distinct in float64."""
    out = np.asarray(raw, dtype=np.float64).copy()
    if not (np.isfinite(low) and np.isfinite(high)) or high - low <= 4 * SOFT_CLIP_WIDTH:
        return np.clip(out, low, high)
    top, bottom = high - SOFT_CLIP_WIDTH, low + SOFT_CLIP_WIDTH
    above, below = out > top, out < bottom
    out[above] = high - SOFT_CLIP_WIDTH * np.exp(-(out[above] - top))
    out[below] = low + SOFT_CLIP_WIDTH * np.exp(-(bottom - out[below]))
    return out


def open_model(models_root: Path, name: str, cache: dict[str, Any]) -> SqlModel:
    """Model ``name`` (loaded once per statement; ``cache`` keeps it)."""
    path = model_dir(models_root, name)
    meta_file = path / artifacts.META_FILE
    if not meta_file.is_file():
        raise NotFoundError(f"unknown model {name}")
    key = f"{name}@{meta_file.stat().st_mtime_ns}"
    if key not in cache:
        meta = artifacts.read_meta(path)
        model = load_model(models_root, name)
        cache[key] = SqlModel(name, path, model, meta, dict(meta.get("bigquery") or {}))
    found: SqlModel = cache[key]
    return found
