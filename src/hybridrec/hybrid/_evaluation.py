"""Ranking metrics of a fitted hybrid, scored by its regressor over users × items."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from hybridrec._core.sparse import rows_of, top_n
from hybridrec.evaluate import ranking_metrics, relevant_rows

if TYPE_CHECKING:
    from hybridrec.hybrid._model import HybridRecommender

log = logging.getLogger(__name__)

#: users × items pairs the regressor scores for ranking metrics before users are sampled
RANKING_PAIRS = 2_000_000
RANKING_MIN_USERS = 100


def ranking_metrics_of(
    model: HybridRecommender,
    users_ext: np.ndarray,
    items_ext: np.ndarray,
    values: np.ndarray,
    k: int,
    threshold: float,
) -> dict[str, float]:
    """Ranking metrics of the hybrid over every item a user did not rate in training, for the
    users with relevant hold-out ratings (a seeded sample of them when scoring them all would
    exceed :data:`RANKING_PAIRS` users × items pairs)."""
    mf = model.mf_
    u = mf.user_vocab_.index_of(users_ext)
    i = mf.item_vocab_.index_of(items_ext)
    found = relevant_rows(u, i, values, threshold, len(mf.user_vocab_))
    if found is None:
        return {}
    rel, eval_users = found
    n_items = len(mf.item_vocab_)
    budget = max(RANKING_MIN_USERS, RANKING_PAIRS // max(n_items, 1))
    if eval_users.size > budget:
        rng = np.random.default_rng([model.seed, 7])
        eval_users = np.sort(rng.choice(eval_users, budget, replace=False))
        log.info("ranking metrics on a sample of %d users", budget)
    train = mf._train_csr
    # the relevant hold-out items of each evaluated user, as CSR rows in eval_users' order
    eval_rel = rows_of(rel, eval_users)
    top = np.full((eval_users.size, k), -1, dtype=np.int32)
    block = max(1, 200_000 // max(n_items, 1))
    for start in range(0, eval_users.size, block):
        chunk = eval_users[start : start + block]
        x = model.features(
            np.repeat(mf.user_vocab_.ids[chunk], n_items),
            np.tile(mf.item_vocab_.ids, chunk.size),
        )
        scores = model.regressor_.predict(x).reshape(chunk.size, n_items)
        for row, uu in enumerate(chunk):
            s = scores[row].copy()
            s[train.indices[train.indptr[uu] : train.indptr[uu + 1]]] = -np.inf
            best = top_n(s, k)
            top[start + row, : best.size] = best
    return ranking_metrics(
        top, eval_rel.indptr, eval_rel.indices, k, item_popularity=mf.item_popularity()
    )
