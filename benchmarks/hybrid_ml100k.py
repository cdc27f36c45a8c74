"""Hybrid vs MF on MovieLens 100K, protocol ``ml100k-cv5`` (5 random folds of ratings, seed 42).

For every fold: the default MF, the leak-free hybrids (linear, boosted, dnn) and the
notebook-style (leaky) boosted hybrid, all trained on the other four folds and scored on the
fold. Also the cold-user / cold-item comparison table of ``hybridrec compare`` (one split,
seed 42); the cold-user protocol over a 10-fold partition of the users is
``benchmarks/cold_start_ml100k.py``.

    python benchmarks/hybrid_ml100k.py [--kinds linear,boosted,dnn] [--no-compare]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import rmse, write_result
from mf_ml100k import load_ml100k

from hybridrec.hybrid import HybridRecommender
from hybridrec.hybrid._compare import compare_models
from hybridrec.mf import MatrixFactorization

SEED = 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="linear,boosted,dnn")
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    ratings, users, items = load_ml100k()
    ratings = ratings[["userId", "movieId", "rating"]]
    folds = np.random.default_rng(SEED).permutation(len(ratings)) % 5
    rows: list[dict[str, Any]] = []
    for fold in range(args.folds):
        train = ratings[folds != fold].reset_index(drop=True)
        test = ratings[folds == fold].reset_index(drop=True)
        y = test["rating"].to_numpy()
        u, i = test["userId"].to_numpy(), test["movieId"].to_numpy()
        start = time.perf_counter()
        mf = MatrixFactorization(eval_fraction=0.0, seed=SEED).fit(train, items=items)
        rows.append({"fold": fold, "model": "MF", "rmse": rmse(y, mf.predict(u, i)),
                     "seconds": time.perf_counter() - start})  # fmt: skip
        variants = [(kind, True) for kind in kinds] + [("boosted", False)]
        for kind, leak_free in variants:
            start = time.perf_counter()
            model = HybridRecommender(kind, leak_free=leak_free, eval_fraction=0.0, seed=SEED)
            model.fit(train, users, items, mf=mf)
            name = f"hybrid {kind}" + ("" if leak_free else " (notebook-style, leaky)")
            rows.append({"fold": fold, "model": name, "rmse": rmse(y, model.predict(u, i)),
                         "seconds": time.perf_counter() - start})  # fmt: skip
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("model")["rmse"].agg(["mean", "std", "min", "max"]).reset_index()
    per_fold = table.pivot(index="fold", columns="model", values="rmse")
    leak_free_cols = [c for c in per_fold.columns if c.startswith("hybrid") and "leaky" not in c]
    best = per_fold[leak_free_cols].min(axis=1)
    print(summary.to_string(index=False))
    payload: dict[str, Any] = {
        "protocol": "ml100k-cv5: 5 random folds of ratings, seed 42",
        "per_fold": table.to_dict(orient="records"),
        "summary": summary.to_dict(orient="records"),
        "best_hybrid_beats_mf_every_fold": bool((best < per_fold["MF"]).all()),
        "best_hybrid_mean_rmse": float(best.mean()),
    }
    if not args.no_compare:
        comparison = compare_models(ratings, users, items, kinds=kinds, seed=SEED)
        print(comparison.to_string(index=False))
        payload["compare"] = comparison.to_dict(orient="records")
    path = write_result("hybrid_ml100k", payload)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
