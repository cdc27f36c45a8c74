"""What the hybrid skips as "seen": its MF may be fitted on the training part only, so the MF's
seen pairs miss the ratings the hybrid held out. A user who rated an item, in training or in the
hold-out, is never recommended it (as MatrixFactorization and RankingRecommender do)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, USER_COL
from hybridrec._core.sparse import Csr


def seen_items(model: Any, user: int) -> np.ndarray:
    """Item indices user index ``user`` rated: the MF's seen pairs plus the hybrid's hold-out."""
    return np.concatenate([_row(model.mf_.seen_, user), _row(_views(model)[0], user)])


def seen_users(model: Any, item: int) -> np.ndarray:
    """User indices who rated item index ``item``, in the MF's data or the hybrid's hold-out."""
    return np.concatenate([model.mf_.users_who_saw(item), _row(_views(model)[1], item)])


def drop_held_out(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``userId``, ``movieId``, …) without the pairs of the hybrid's hold-out."""
    held = model.eval_set_
    if not len(held) or not len(frame):
        return frame
    pairs = pd.MultiIndex.from_arrays([held[USER_COL].to_numpy(), held[ITEM_COL].to_numpy()])
    keys = pd.MultiIndex.from_arrays([frame[USER_COL].to_numpy(), frame[ITEM_COL].to_numpy()])
    return frame[~keys.isin(pairs)].copy()


def _row(csr: Csr, r: int) -> np.ndarray:
    return csr.indices[csr.indptr[r] : csr.indptr[r + 1]]


def _views(model: Any) -> tuple[Csr, Csr]:
    """(user → items, item → users) of the hold-out, in the MF's indices; built once per fit or
    load (keyed by the hold-out table itself), never saved."""
    held = model.eval_set_
    cached = getattr(model, "_held_out_views", None)
    if cached is None or cached[0] is not held:
        mf = model.mf_
        users = mf.user_vocab_.index_of(held[USER_COL].to_numpy())
        items = mf.item_vocab_.index_of(held[ITEM_COL].to_numpy())
        known = (users >= 0) & (items >= 0)
        users, items = users[known].astype(np.int32), items[known].astype(np.int32)
        ones = np.ones(users.size, dtype=np.float32)
        cached = (
            held,
            Csr.build(users, items, ones, len(mf.user_vocab_), sort_cols=False),
            Csr.build(items, users, ones, len(mf.item_vocab_), sort_cols=False),
        )
        model._held_out_views = cached
    return cached[1], cached[2]
