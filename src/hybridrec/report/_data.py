"""What the report shows, gathered from the models: the subject model and its data, every
model's evaluation on the subject's hold-out, activity bins and genres."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.progress import Progress
from hybridrec._errors import HybridrecError
from hybridrec.evaluate import regression_metrics

BASELINE = "global mean"
# Bins of a user's number of training ratings: (low, high) inclusive, high None = no limit.
ACTIVITY_BINS: tuple[tuple[int, int | None], ...] = (
    (0, 0),
    (1, 5),
    (6, 10),
    (11, 20),
    (21, 50),
    (51, 100),
    (101, 200),
    (201, 500),
    (501, None),
)
MAX_MAP_ITEMS = 3000  # the most-rated items drawn on the factor map
N_LABELS = 10  # popular titles labelled on the factor map
MIN_MAP_RATINGS = 10  # items with fewer training ratings are left off the map
MIN_BIN_RATINGS = 30  # activity bins with fewer hold-out ratings are not charted
N_GENRES = 8  # genres with their own colour on the factor map
N_FEATURES = 15  # bars in a feature-importance chart


def mf_of(model: Any) -> Any:
    """The matrix factorization inside ``model`` (itself for an MF, ``mf_`` for a hybrid)."""
    return model.mf_ if is_hybrid(model) else model


def is_hybrid(model: Any) -> bool:
    return hasattr(model, "regressor_") and hasattr(model, "feature_importance")


def kind_label(model: Any) -> str:
    if is_hybrid(model):
        style = "" if getattr(model, "leak_free", True) else ", notebook-style"
        return f"hybrid {model.kind}{style}"
    if hasattr(model, "num_factors"):
        return f"matrix factorization, {model.num_factors} factors"
    return type(model).__name__


@dataclass
class Subject:
    """The first model: its hold-out, and what its MF knows about users and items."""

    name: str
    model: Any
    mf: Any
    eval_set: pd.DataFrame
    user_train_counts: np.ndarray  # training ratings per user index
    item_train_counts: np.ndarray  # training ratings per item index

    @classmethod
    def build(cls, name: str, model: Any) -> Subject:
        mf = mf_of(model)
        eval_set = model.eval_set_
        if eval_set is None or len(eval_set) == 0:
            raise HybridrecError(
                f"model {name!r} has no hold-out (trained with eval_fraction 0): "
                "the report evaluates on the first model's hold-out"
            )
        csr = mf._train_csr
        return cls(
            name=name,
            model=model,
            mf=mf,
            eval_set=eval_set,
            user_train_counts=np.diff(csr.indptr).astype(np.int64),
            item_train_counts=np.bincount(csr.indices, minlength=len(mf.item_vocab_)),
        )

    @property
    def n_train(self) -> int:
        return int(self.user_train_counts.sum())

    def activity(self) -> np.ndarray:
        """Training ratings of the user of each hold-out rating (0 for users the MF lacks)."""
        u = self.mf.user_vocab_.index_of(self.eval_set[USER_COL].to_numpy())
        counts = np.zeros(u.size, dtype=np.int64)
        counts[u >= 0] = self.user_train_counts[u[u >= 0]]
        return counts


@dataclass
class Evaluation:
    """Every model's metrics and predictions on the subject's hold-out."""

    subject: Subject
    k: int
    actual: np.ndarray
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def run(cls, models: Mapping[str, Any], subject: Subject, k: int, bar: Progress) -> Evaluation:
        held = subject.eval_set
        users, items = held[USER_COL].to_numpy(), held[ITEM_COL].to_numpy()
        actual = held[RATING_COL].to_numpy(np.float64)
        result = cls(subject, k, actual)
        mean = float(subject.mf.global_mean_)
        result.metrics[BASELINE] = regression_metrics(actual, np.full(actual.size, mean))
        result.kinds[BASELINE] = f"μ = {mean:.4f}, the training mean"
        result.notes[BASELINE] = "a constant ranks nothing: no ranking metrics"
        for name, model in models.items():
            bar.advance(0, f"report: evaluating {name}")
            same = name == subject.name or _same_frame(model.eval_set_, held)
            # The very call `hybridrec evaluate NAME` makes (the model's own hold-out), whenever
            # that hold-out is this one.
            result.metrics[name] = model.evaluate(None if same else held, k=k)
            result.predictions[name] = np.asarray(model.predict(users, items), dtype=np.float64)
            result.kinds[name] = kind_label(model)
            if name == subject.name:
                result.notes[name] = "its own hold-out"
            elif same:
                result.notes[name] = f"the same hold-out as {subject.name}"
            else:
                leaked = _share_in_training(mf_of(model), held)
                result.notes[name] = (
                    f"trained on a different split: {leaked:.1%} of these hold-out ratings were "
                    "in its training data"
                    + (", so its numbers are optimistic" if leaked > 0 else "")
                )
            bar.advance(1)
        return result

    @property
    def names(self) -> list[str]:
        return list(self.predictions)

    def metric_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for values in self.metrics.values():
            seen.update(dict.fromkeys(values))
        return list(seen)


def _same_frame(a: pd.DataFrame | None, b: pd.DataFrame) -> bool:
    if a is None or len(a) != len(b):
        return False
    try:
        return all(
            np.array_equal(a[c].to_numpy(), b[c].to_numpy()) for c in (USER_COL, ITEM_COL)
        ) and np.allclose(a[RATING_COL].to_numpy(np.float64), b[RATING_COL].to_numpy(np.float64))
    except (KeyError, TypeError, ValueError):
        return False


def _share_in_training(mf: Any, held: pd.DataFrame) -> float:
    """Share of ``held`` (user, item) pairs that are among ``mf``'s training ratings."""
    u = mf.user_vocab_.index_of(held[USER_COL].to_numpy()).astype(np.int64)
    i = mf.item_vocab_.index_of(held[ITEM_COL].to_numpy()).astype(np.int64)
    known = (u >= 0) & (i >= 0)
    csr = mf._train_csr
    n_items = max(len(mf.item_vocab_), 1)
    rows = np.repeat(np.arange(len(csr.indptr) - 1, dtype=np.int64), np.diff(csr.indptr))
    train_keys = rows * n_items + csr.indices.astype(np.int64)
    inside = np.isin(u[known] * n_items + i[known], train_keys)
    return float(inside.sum() / max(len(held), 1))


def fingerprint_of(ratings: pd.DataFrame) -> str | None:
    from hybridrec.data import fingerprint as _fingerprint
    from hybridrec.data import ratings_arrays as _ratings_arrays

    try:
        return str(_fingerprint(*_ratings_arrays(ratings)))
    except HybridrecError:
        return None


def check_comparison(frame: pd.DataFrame) -> None:
    missing = [c for c in ("scenario", "model", "rmse") if c not in frame.columns]
    if missing or frame.empty:
        raise HybridrecError(
            "the comparison table needs rows and the columns scenario, model, rmse (the output "
            f"of hybridrec compare --format csv); missing: {', '.join(missing) or 'rows'}"
        )


def activity_bins(activity: np.ndarray) -> tuple[list[str], np.ndarray]:
    labels, which = [], np.full(activity.size, -1)
    for index, (lo, hi) in enumerate(ACTIVITY_BINS):
        inside = (activity >= lo) & (activity <= (hi if hi is not None else np.inf))
        which[inside] = index
        labels.append("0 (unknown)" if hi == 0 else f"{lo}+" if hi is None else f"{lo}–{hi}")
    return labels, which


def genres_of(value: Any) -> list[str]:
    """An item's genres, whether stored as a list/array or as a ``'|'``-separated string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    parts = value.split("|") if isinstance(value, str) else [str(g) for g in list(value)]
    return [g for g in parts if g and g != "(no genres listed)"]
