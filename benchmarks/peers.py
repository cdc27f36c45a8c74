"""The ``peers`` scenario of ``run.py``: hybridrec's MF, Surprise SVD and LensKit's biased ALS on
the same 80/20 split (seed 42) of one ratings file, fit seconds and test RMSE in the same run.

LensKit needs pandas < 3, so it runs in a Python of its own (``--lenskit-python``; make one with
``python -m venv --system-site-packages VENV && VENV/bin/pip install lenskit==2025.8.1``).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import rmse

from hybridrec.mf import MatrixFactorization

SEED = 42
TEST_FRACTION = 0.2

LENSKIT_SNIPPET = """
import json, sys, time
import numpy as np, pandas as pd
from lenskit.als import BiasedMFScorer
from lenskit.batch import predict
from lenskit.data import from_interactions_df
from lenskit.pipeline import predict_pipeline
train = pd.read_parquet(sys.argv[1]).rename(columns={"userId": "user_id", "movieId": "item_id"})
test = pd.read_parquet(sys.argv[2]).rename(columns={"userId": "user_id", "movieId": "item_id"})
start = time.perf_counter()
pipe = predict_pipeline(BiasedMFScorer(embedding_size=int(sys.argv[3]), epochs=10))
pipe.train(from_interactions_df(train))
fit = time.perf_counter() - start
start = time.perf_counter()
scores = predict(pipe, test[["user_id", "item_id"]]).to_df()
seconds = time.perf_counter() - start
merged = test.merge(scores, on=["user_id", "item_id"], how="left")
err = merged["rating"] - merged["score"].fillna(train["rating"].mean())
import lenskit
print(json.dumps({"model": f"lenskit {lenskit.__version__} BiasedMFScorer",
                  "rmse": float(np.sqrt(np.mean(err**2))), "fit_seconds": round(fit, 2),
                  "predict_seconds": round(seconds, 2)}))
"""


def split(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hold-out ``MatrixFactorization(seed=42, eval_fraction=0.2)`` makes: same draws."""
    held = np.random.default_rng(SEED).random(len(ratings)) < TEST_FRACTION
    return ratings[~held].reset_index(drop=True), ratings[held].reset_index(drop=True)


def run_hybridrec(train: pd.DataFrame, test: pd.DataFrame, factors: int) -> dict[str, Any]:
    start = time.perf_counter()
    model = MatrixFactorization(num_factors=factors, eval_fraction=0.0).fit(train)
    fit = time.perf_counter() - start
    pred = model.predict(test["userId"].to_numpy(), test["movieId"].to_numpy())
    return {
        "model": f"hybridrec MF ({factors} factors, defaults otherwise)",
        "rmse": rmse(test["rating"], pred),
        "fit_seconds": round(fit, 2),
        "iterations": len(model.training_log_),
    }


def run_hybridrec_tuned(
    train: pd.DataFrame, test: pd.DataFrame, trials: int = 10
) -> dict[str, Any]:
    """``--tune``: random search on a validation split of the training ratings, then a refit."""
    from hybridrec.mf import tune_mf, tuned_params

    start = time.perf_counter()
    model = tune_mf(train, trials, MatrixFactorization(eval_fraction=0.0)).fit(train)
    best = tuned_params(model)
    fit = time.perf_counter() - start
    pred = model.predict(test["userId"].to_numpy(), test["movieId"].to_numpy())
    return {
        "model": f"hybridrec MF, --tune {trials} (validation split of the training part)",
        "rmse": rmse(test["rating"], pred),
        "fit_seconds": round(fit, 2),
        "chosen": best,
    }


def run_surprise(train: pd.DataFrame, test: pd.DataFrame, factors: int) -> dict[str, Any]:
    from surprise import SVD, Dataset, Reader

    reader = Reader(rating_scale=(float(train["rating"].min()), float(train["rating"].max())))
    data = Dataset.load_from_df(train[["userId", "movieId", "rating"]], reader)
    start = time.perf_counter()
    algo = SVD(n_factors=factors, random_state=SEED).fit(data.build_full_trainset())
    fit = time.perf_counter() - start
    pred = [algo.predict(u, i).est for u, i in zip(test["userId"], test["movieId"], strict=True)]
    return {
        "model": f"surprise SVD ({factors} factors, 20 epochs)",
        "rmse": rmse(test["rating"], pred),
        "fit_seconds": round(fit, 2),
    }


def run_lenskit(
    train: pd.DataFrame, test: pd.DataFrame, factors: int, python: str | None, tmp: Path
) -> dict[str, Any]:
    if python is None:
        return {"model": "lenskit BiasedMFScorer", "skipped": "no --lenskit-python given"}
    train.to_parquet(tmp / "train.parquet")
    test.to_parquet(tmp / "test.parquet")
    files = [str(tmp / "train.parquet"), str(tmp / "test.parquet")]
    proc = subprocess.run(
        [python, "-c", LENSKIT_SNIPPET, *files, str(factors)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return {"model": "lenskit BiasedMFScorer", "failed": proc.stderr.strip()[-500:]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_peers(data: Path, tmp: Path, lenskit_python: str | None) -> dict[str, Any]:
    ratings = pd.read_csv(data / "ratings.csv", usecols=["userId", "movieId", "rating"])
    train, test = split(ratings)
    factors = 50  # LensKit's default embedding size; Surprise's default is 100
    results = [
        run_hybridrec(train, test, factors),
        run_hybridrec_tuned(train, test),
        run_surprise(train, test, factors),
        run_lenskit(train, test, factors, lenskit_python, tmp),
    ]
    for row in results:
        print(row, flush=True)
    ours = results[0]
    for row in results[1:]:
        if "rmse" in row and row is not results[1]:
            row["time_ratio_vs_hybridrec"] = round(row["fit_seconds"] / ours["fit_seconds"], 1)
            row["rmse_minus_hybridrec"] = round(row["rmse"] - ours["rmse"], 4)
    return {
        "dataset": str(data),
        "ratings": len(ratings),
        "split": "random 80/20, seed 42",
        "factors": factors,
        "results": results,
    }
