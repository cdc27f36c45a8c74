"""Scenario ``spark-als``: the Spark engine against the local engine, same data, same run.

1. Parity on MovieLens 100K, protocol ``ml100k-8020`` (random 80/20, seed 42; both engines hold
   out the same ratings): hold-out RMSE of the local defaults, of the local engine on the Spark
   engine's loss, and of the Spark engine; and how far the saved Spark model's predictions,
   served by the local engine, are from Spark's own.
2. Speed on synthetic ratings (1M by default, 16 factors as the notebook): seconds per ALS
   iteration, local (Numba) vs Spark on ``--master`` (``local[2]`` by default). Spark's ALS is
   timed at two iteration counts; the difference divided by the extra iterations is the cost of
   one iteration without Spark's fixed job overheads ("marginal"); total / iterations is
   "amortised".

    python benchmarks/spark_als.py                  # writes benchmarks/results/spark_als.json
    python benchmarks/spark_als.py --ratings 200000 --skip-parity
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import peak_rss_mb, write_result

from hybridrec.data import SynthConfig, generate
from hybridrec.mf import MatrixFactorization
from hybridrec.spark import SparkMatrixFactorization, spark_session
from hybridrec.workspace import Workspace


def parity(spark: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.load("ml-100k")
        ratings, movies = ws.ratings(), ws.movies()
        ws.close()

        start = time.perf_counter()
        local = MatrixFactorization().fit(ratings, items=movies)
        local_seconds = time.perf_counter() - start

        start = time.perf_counter()
        on_spark = SparkMatrixFactorization().fit(ratings, items=movies, spark=spark)
        spark_seconds = time.perf_counter() - start
        same_loss = MatrixFactorization(**on_spark.local_params()).fit(ratings)

        path = Path(tmp) / "spark_model"
        on_spark.save(path)
        served = MatrixFactorization.load(path)
        pairs = pd.concat(
            [on_spark.eval_set_[["userId", "movieId"]], ratings[["userId", "movieId"]].head(5000)],
            ignore_index=True,
        ).drop_duplicates()
        by_spark = (
            on_spark.transform(spark.createDataFrame(pairs))
            .select("userId", "movieId", "predicted_rating")
            .toArrow()
            .to_pandas()
        )
        merged = pairs.merge(by_spark, on=["userId", "movieId"])
        by_local = served.predict(merged["userId"].to_numpy(), merged["movieId"].to_numpy())
        diff = np.abs(by_local - merged["predicted_rating"].to_numpy())
    same_split = bool(
        on_spark.eval_set_[["userId", "movieId"]]
        .reset_index(drop=True)
        .equals(local.eval_set_[["userId", "movieId"]].reset_index(drop=True))
    )
    return {
        "protocol": "ml100k-8020",
        "same_hold_out": same_split,
        "local_defaults": {
            "params": local.get_params(),
            "rmse": local.metrics_["rmse"],
            "iterations": len(local.training_log_),
            "fit_seconds": local_seconds,
        },
        "local_on_spark_loss": {
            "params": same_loss.get_params(),
            "rmse": same_loss.metrics_["rmse"],
        },
        "spark": {
            "params": on_spark.get_params(),
            "rmse": on_spark.metrics_["rmse"],
            "fit_seconds": spark_seconds,
            "timings_ms": on_spark.timings_,
        },
        "rmse_gap_spark_minus_local": on_spark.metrics_["rmse"] - local.metrics_["rmse"],
        "served_vs_spark_predictions": {
            "pairs": int(diff.size),
            "max_abs_diff": float(diff.max()),
            "mean_abs_diff": float(diff.mean()),
        },
    }


def speed(spark: Any, args: argparse.Namespace) -> dict[str, Any]:
    config = SynthConfig(
        n_users=args.users, n_items=args.items, n_ratings=args.ratings, seed=args.seed
    )
    ratings = generate(config).ratings[["userId", "movieId", "rating"]]
    few, many = args.iterations

    MatrixFactorization(num_factors=args.factors, max_iterations=1).fit(ratings.head(1000))
    start = time.perf_counter()
    local = MatrixFactorization(
        num_factors=args.factors, max_iterations=many, early_stop=False
    ).fit(ratings)
    local_wall = time.perf_counter() - start
    per_iteration = [row["duration_ms"] / 1000 for row in local.training_log_]

    spark_runs = {}
    for n in (few, many):
        start = time.perf_counter()
        model = SparkMatrixFactorization(num_factors=args.factors, max_iterations=n).fit(
            ratings, spark=spark
        )
        spark_runs[n] = {
            "fit_seconds": time.perf_counter() - start,
            "als_seconds": model.timings_["als_ms"] / 1000,
            "timings_ms": model.timings_,
            "rmse": model.metrics_["rmse"],
        }
    marginal = (spark_runs[many]["als_seconds"] - spark_runs[few]["als_seconds"]) / (many - few)
    amortised = spark_runs[many]["als_seconds"] / many
    local_median = statistics.median(per_iteration)
    return {
        "data": {
            "synthetic": {"n_users": args.users, "n_items": args.items, "n_ratings": args.ratings},
            "seed": args.seed,
        },
        "num_factors": args.factors,
        "local": {
            "iterations": many,
            "seconds_per_iteration_median": local_median,
            "seconds_per_iteration": per_iteration,
            "fit_seconds": local_wall,
            "rmse": local.metrics_["rmse"],
        },
        "spark": {
            "master": spark.sparkContext.master,
            "runs": {str(n): run for n, run in spark_runs.items()},
            "seconds_per_iteration_marginal": marginal,
            "seconds_per_iteration_amortised": amortised,
        },
        "spark_over_local_per_iteration": marginal / local_median if local_median else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--factors", type=int, default=16)
    parser.add_argument("--iterations", type=int, nargs=2, default=(5, 10))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--name", default="spark_als", help="results/<name>.json")
    args = parser.parse_args()

    cores = str(os.cpu_count() or 2)
    spark = spark_session(
        args.master,
        {
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": cores,
            "spark.driver.memory": "4g",
        },
        app_name="hybridrec-benchmark",
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()
    try:
        # warm the JVM (class loading, code generation) so neither section pays for it
        warm = generate(SynthConfig(n_users=100, n_items=50, n_ratings=2000, seed=1)).ratings
        SparkMatrixFactorization(num_factors=4, max_iterations=2).fit(
            warm[["userId", "movieId", "rating"]], spark=spark
        )
        payload: dict[str, Any] = {"scenario": "spark-als", "spark_version": spark.version}
        if not args.skip_parity:
            payload["parity_ml100k"] = parity(spark)
            print("parity:", payload["parity_ml100k"]["rmse_gap_spark_minus_local"])
        payload["speed"] = speed(spark, args)
    finally:
        spark.stop()
    payload["wall_seconds"] = time.perf_counter() - started
    payload["driver_peak_rss_mb"] = peak_rss_mb()
    path = write_result(args.name, payload)
    speed_part = payload["speed"]
    print(
        f"local {speed_part['local']['seconds_per_iteration_median']:.3f} s/iteration, "
        f"spark {speed_part['spark']['seconds_per_iteration_marginal']:.3f} s/iteration "
        f"(marginal), {speed_part['spark']['seconds_per_iteration_amortised']:.3f} (amortised)"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
