"""Ranking on MovieLens 100K: random 80/20 split (seed 42), relevant = held-out rating >= 4,
items rated in training excluded. Popularity, explicit MF ranked by predicted rating, implicit
ALS, EASE, the `implicit` library's ALS (same confidence 1 + alpha * rating, same factors and
penalty), the blended ranker (hybridrec's default for ranking models) and LightFM WARP where it
installs, all on the same split in one run, through the same metric code.

    python benchmarks/ranking_ml100k.py      # writes results/ranking_ml100k.json

The same comparison on another dataset (any layout ``hybridrec load`` reads), to check that the
defaults generalise to another shape:

    python benchmarks/ranking_ml100k.py --data DIR --name synth2m   # results/ranking_synth2m.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import write_result
from mf_ml100k import load_ml100k

from hybridrec._core.sparse import rows_of
from hybridrec.evaluate import ranking_metrics, relevant_rows
from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization
from hybridrec.ranking import EASE, RankingRecommender
from hybridrec.workspace import Workspace

K = 10
PROTOCOL = "80/20 random split seed 42; relevant = held-out rating >= 4; training items excluded"
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
    users, indptr, indices = _relevant(mf)
    top = np.full((users.size, K), -1)
    for row, user in enumerate(users):
        scores = counts.copy()
        scores[train.indices[train.indptr[user] : train.indptr[user + 1]]] = -np.inf
        top[row] = np.argsort(-scores, kind="stable")[:K]
    return ranking_metrics(top, indptr, indices, K, item_popularity=mf.item_popularity())


def _relevant(mf: MatrixFactorization) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users with a relevant held-out item, CSR indptr and indices of those items)."""
    held = mf.eval_set_
    u = mf.user_vocab_.index_of(held["userId"].to_numpy())
    i = mf.item_vocab_.index_of(held["movieId"].to_numpy())
    found = relevant_rows(u, i, held["rating"].to_numpy(), 4, len(mf.user_vocab_))
    assert found is not None, "no relevant held-out rating"
    relevant, users = found
    rows = rows_of(relevant, users)
    return users, rows.indptr, rows.indices


def implicit_library_als(
    mf: MatrixFactorization, implicit: ImplicitMatrixFactorization
) -> tuple[dict[str, float], float]:
    """`implicit`'s ALS (conjugate gradient, its default) on hybridrec's training ratings with
    the same confidence (1 + alpha * rating), factors, penalty and iterations."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    train = implicit._train_csr  # the same split as the MF's (same seed and eval_fraction)
    x = sp.csr_matrix(
        (train.values.astype(np.float32), train.indices, train.indptr),
        shape=(len(mf.user_vocab_), len(mf.item_vocab_)),
    )
    model = AlternatingLeastSquares(
        factors=implicit.num_factors,
        regularization=implicit.l2_reg,
        alpha=implicit.wals_alpha,
        iterations=implicit.max_iterations,
        random_state=42,
        num_threads=2,
    )
    start = time.perf_counter()
    with threadpool_limits(1, "blas"):
        model.fit(x, show_progress=False)
    seconds = time.perf_counter() - start
    users, indptr, indices = _relevant(mf)
    top, _ = model.recommend(users, x[users], N=K, filter_already_liked_items=True)
    metrics = ranking_metrics(top, indptr, indices, K, item_popularity=mf.item_popularity())
    return metrics, seconds


def load(data: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ratings, users and movies of any dataset ``hybridrec load`` reads."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(tmp)
        ws.load(data)
        tables = ws.ratings(), ws.users(), ws.movies()
        ws.close()
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="another dataset [default: MovieLens 100K]")
    parser.add_argument("--name", default="ml100k", help="results/ranking_NAME.json")
    args = parser.parse_args()
    ratings, users, items = load_ml100k() if args.data is None else load(args.data)
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
    ease = EASE().fit(ratings, items=items)
    record(
        f"EASE (l2_reg {ease.l2_reg_:g}, chosen on a validation split)",
        ease.metrics_,
        time.perf_counter() - start,
    )
    library, seconds = implicit_library_als(mf, implicit)
    record("implicit 0.7.3 ALS (same confidence, factors, penalty)", library, seconds)
    start = time.perf_counter()
    ranker = RankingRecommender().fit(ratings, users, items)
    record("hybridrec ranker (default)", ranker.metrics_, time.perf_counter() - start)
    if args.data is not None:
        path = write_result(
            f"ranking_{args.name}",
            {"dataset": args.data, "protocol": PROTOCOL, "rows": rows},
        )
        print(f"wrote {path}")
        return
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
            "protocol": f"ml100k {PROTOCOL}",
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
