"""MF accuracy on MovieLens 100K, protocol ``ml100k-8020`` (random 80/20 split, seed 42).

Reports hybridrec's default MF, the tuning table that chose the defaults, and Surprise's SVD and
BaselineOnly on the same split in the same run (``pip install scikit-surprise`` for those).

    python benchmarks/mf_ml100k.py            # writes benchmarks/results/mf_ml100k.json
    python benchmarks/mf_ml100k.py --quick    # default model and peers only, no tuning grid
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import rmse, write_result

from hybridrec.mf import MatrixFactorization
from hybridrec.workspace import Workspace

SEED = 42
EVAL_FRACTION = 0.2


def load_ml100k() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ratings, users and movies of the real MovieLens 100K (cached download or recbole wheel)."""
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(tmp)
        ws.load("ml-100k")
        tables = ws.ratings(), ws.users(), ws.movies()
        ws.close()
    return tables


def split(ratings: pd.DataFrame) -> np.ndarray:
    """The same hold-out mask MatrixFactorization draws for ``seed=42, eval_fraction=0.2``."""
    return np.random.default_rng(SEED).random(len(ratings)) < EVAL_FRACTION


def run_mf(ratings: pd.DataFrame, **params: Any) -> dict[str, Any]:
    start = time.perf_counter()
    model = MatrixFactorization(seed=SEED, eval_fraction=EVAL_FRACTION, **params).fit(ratings)
    seconds = time.perf_counter() - start
    log = model.training_info()
    return {
        "params": params,
        "rmse": model.metrics_["rmse"],
        "mae": model.metrics_["mean_absolute_error"],
        "ndcg@10": model.metrics_["ndcg@10"],
        "precision@10": model.metrics_["precision@10"],
        "iterations": len(log),
        "best_iteration_rmse": float(np.sqrt(log["eval_loss"].min())),
        "fit_seconds": round(seconds, 3),
    }


def run_surprise(ratings: pd.DataFrame, held_out: np.ndarray) -> list[dict[str, Any]]:
    try:
        import surprise
    except ImportError:
        return [{"model": "surprise", "skipped": "scikit-surprise is not installed"}]
    reader = surprise.Reader(rating_scale=(1, 5))
    train = ratings[~held_out][["userId", "movieId", "rating"]]
    test = ratings[held_out][["userId", "movieId", "rating"]]
    trainset = surprise.Dataset.load_from_df(train, reader).build_full_trainset()
    testset = list(test.itertuples(index=False, name=None))
    results = []
    algos = {
        "surprise.BaselineOnly": surprise.BaselineOnly(verbose=False),
        "surprise.SVD": surprise.SVD(random_state=SEED),
        "surprise.SVDpp": surprise.SVDpp(random_state=SEED),
    }
    for name, algo in algos.items():
        start = time.perf_counter()
        algo.fit(trainset)
        predictions = algo.test(testset)
        seconds = time.perf_counter() - start
        est = np.array([p.est for p in predictions])
        results.append(
            {"model": name, "rmse": rmse(test["rating"], est), "fit_seconds": round(seconds, 3)}
        )
    return results


def tuning_grid() -> list[dict[str, Any]]:
    grid: list[dict[str, Any]] = []
    # 1. BigQuery-style plain L2 and plain weighted-λ ALS, for reference.
    for k, reg in itertools.product((16, 64), (0.05, 0.1, 0.2)):
        grid.append(
            {"num_factors": k, "l2_reg": reg, "l2_reg_item": None, "item_reg_exponent": None,
             "l2_reg_bias": reg, "reg_bias_exponent": 1.0}
        )  # fmt: skip
    # 2. Damped (unscaled) intercepts.
    for k, bias in itertools.product((16, 64, 128), (0.3, 1.0, 3.0)):
        grid.append(
            {"num_factors": k, "l2_reg": 0.12, "l2_reg_item": None, "item_reg_exponent": None,
             "l2_reg_bias": bias, "reg_bias_exponent": 0.0}
        )  # fmt: skip
    # 3. A softer count exponent on the item side.
    for k, item_exp, item_reg in itertools.product((32, 64, 128), (0.5, 0.6), (0.7, 1.0)):
        grid.append({"num_factors": k, "item_reg_exponent": item_exp, "l2_reg_item": item_reg})
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the tuning grid")
    args = parser.parse_args()
    ratings, _, _ = load_ml100k()
    held_out = split(ratings)
    default = run_mf(ratings)
    print(f"hybridrec default MF: RMSE {default['rmse']:.4f} in {default['fit_seconds']} s")
    peers = run_surprise(ratings, held_out)
    for peer in peers:
        print(peer)
    tuning = []
    if not args.quick:
        for params in tuning_grid():
            row = run_mf(ratings, **params)
            print(f"{row['rmse']:.4f} {params}")
            tuning.append(row)
        tuning.sort(key=lambda r: r["rmse"])
    path = write_result(
        "mf_ml100k",
        {
            "protocol": "ml100k-8020: random 80/20 split of ratings, seed 42",
            "n_test": int(held_out.sum()),
            "hybridrec_default": default,
            "peers": peers,
            "tuning": tuning,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
