"""Ranking on MovieLens 100K: random 80/20 split (seed 42), relevant = held-out rating >= 4,
items rated in training excluded. Popularity, explicit MF ranked by predicted rating, implicit
ALS, the blended ranker (hybridrec's default for ranking models) and LightFM WARP where it
installs, all on the same split in one run.

    python benchmarks/ranking_ml100k.py      # writes results/ranking_ml100k.json
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import write_result
from mf_ml100k import load_ml100k

from hybridrec._core.sparse import Csr
from hybridrec.evaluate import ranking_metrics
from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization
from hybridrec.ranking import RankingRecommender

K = 10
KEYS = (
    "precision@10",
    "recall@10",
    "ndcg@10",
    "map@10",
    "hit_rate@10",
    "coverage@10",
    "novelty@10",
)


def popularity(mf: MatrixFactorization) -> dict[str, float]:
    """Most-rated unseen items first, for every user, evaluated like the models."""
    train = mf._train_csr
    counts = np.bincount(train.indices, minlength=len(mf.item_vocab_)).astype(np.float64)
    held = mf.eval_set_
    u = mf.user_vocab_.index_of(held["userId"].to_numpy())
    i = mf.item_vocab_.index_of(held["movieId"].to_numpy())
    rel = (held["rating"].to_numpy() >= 4) & (u >= 0) & (i >= 0)
    relevant = Csr.build(
        u[rel], i[rel], np.ones(int(rel.sum()), np.float32), len(mf.user_vocab_), sort_cols=True
    )
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    top = np.full((users.size, K), -1)
    for row, user in enumerate(users):
        scores = counts.copy()
        scores[train.indices[train.indptr[user] : train.indptr[user + 1]]] = -np.inf
        top[row] = np.argsort(-scores, kind="stable")[:K]
    counts_rel = np.diff(relevant.indptr)[users]
    indptr = np.concatenate([[0], np.cumsum(counts_rel)])
    indices = np.concatenate(
        [relevant.indices[relevant.indptr[x] : relevant.indptr[x + 1]] for x in users]
    )
    return ranking_metrics(top, indptr, indices, K, item_popularity=mf._item_popularity())


def main() -> None:
    ratings, users, items = load_ml100k()
    rows: list[dict[str, Any]] = []

    def record(name: str, metrics: dict[str, float], seconds: float) -> None:
        rows.append(
            {"model": name, **{k: metrics.get(k) for k in KEYS}, "fit_seconds": round(seconds, 2)}
        )
        print(rows[-1], flush=True)

    start = time.perf_counter()
    mf = MatrixFactorization().fit(ratings, items=items)
    mf_seconds = time.perf_counter() - start
    record("popularity", popularity(mf), 0.0)
    record("explicit MF, ranked by predicted rating", mf.metrics_, mf_seconds)
    start = time.perf_counter()
    implicit = ImplicitMatrixFactorization().fit(ratings, items=items)
    record("implicit ALS", implicit.metrics_, time.perf_counter() - start)
    start = time.perf_counter()
    ranker = RankingRecommender().fit(ratings, users, items)
    record("hybridrec ranker (default)", ranker.metrics_, time.perf_counter() - start)
    try:
        import lightfm  # noqa: F401

        lightfm_note = "installed but not wired: add it here"
    except ImportError:
        lightfm_note = "lightfm 1.17 does not build on this machine (no wheel for Python 3.11)"
    rows.append({"model": "LightFM WARP", "skipped": lightfm_note})
    print(rows[-1])
    path = write_result(
        "ranking_ml100k",
        {
            "protocol": "ml100k 80/20 random split seed 42; relevant = held-out rating >= 4; "
            "training items excluded",
            "rows": rows,
            "user_903_comedy_top5": {
                "ranker": ranker.recommend(903, 5, genre="Comedy").to_dict(orient="records"),
                "by_predicted_rating": ranker.recommend(
                    903, 5, genre="Comedy", rank_by="predicted_rating"
                ).to_dict(orient="records"),
            },
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
