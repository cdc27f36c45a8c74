"""Ranking metrics: a hand-computed case and a plain-NumPy reference on random lists."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.evaluate import RANKING_METRICS, ranking_metrics


def _reference(top: np.ndarray, indptr: np.ndarray, indices: np.ndarray, k: int) -> dict:
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    sums = dict.fromkeys(RANKING_METRICS, 0.0)
    counted = 0
    for u in range(top.shape[0]):
        rel = indices[indptr[u] : indptr[u + 1]]
        if rel.size == 0:
            continue
        counted += 1
        ranked = top[u, :k]
        hits = np.isin(ranked, rel) & (ranked >= 0)
        n_hits = int(hits.sum())
        sums["precision"] += n_hits / k
        sums["recall"] += n_hits / rel.size
        sums["ndcg"] += discounts[: hits.size][hits].sum() / discounts[: min(rel.size, k)].sum()
        if n_hits:
            sums["map"] += (np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)).sum() / min(
                rel.size, k
            )
            sums["hit_rate"] += 1.0
    return {f"{name}@{k}": value / counted for name, value in sums.items()}


def test_hand_computed_case() -> None:
    # user 0: relevant {5, 7}; list 5, 1, 7 → hits at ranks 1 and 3
    # user 1: relevant {2}; list 9, 8, -1 → no hit; user 2: nothing relevant (not counted)
    top = np.array([[5, 1, 7], [9, 8, -1], [1, 2, 3]])
    indptr = np.array([0, 2, 3, 3])
    indices = np.array([7, 5, 2])
    got = ranking_metrics(top, indptr, indices, 3)
    ndcg0 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert got["precision@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert got["recall@3"] == pytest.approx((1 + 0) / 2)
    assert got["ndcg@3"] == pytest.approx(ndcg0 / 2)
    assert got["map@3"] == pytest.approx((1 + 2 / 3) / 2 / 2)
    assert got["hit_rate@3"] == pytest.approx(0.5)


def test_matches_the_numpy_reference_on_random_lists() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items, k = 300, 60, 10
    top = np.stack([rng.permutation(n_items)[:k] for _ in range(n_users)])
    top[rng.random(top.shape) < 0.05] = -1
    counts = rng.integers(0, 8, n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([rng.permutation(n_items)[:c] for c in counts])
    got = ranking_metrics(top, indptr, indices, k)
    want = _reference(top, indptr, indices, k)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_no_relevant_items_gives_nan() -> None:
    got = ranking_metrics(np.array([[1, 2]]), np.array([0, 0]), np.array([], dtype=int), 2)
    assert all(np.isnan(v) for v in got.values())
