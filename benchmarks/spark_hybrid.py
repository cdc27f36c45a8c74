"""Scenario ``spark-hybrid``: hybrid regressors on Spark against the local engine.

MovieLens 100K, protocol ``ml100k-8020`` (random 80/20, seed 42; both engines hold out the same
ratings). For each setting, the hold-out RMSE of the local hybrid (local MF, local regressor)
and of the Spark hybrid (Spark MF, ``pyspark.ml`` regressor), plus the Spark regressor on the
*local* MF, which isolates the regressor from the MF:

* linear, notebook-style features (one MF) and leak-free (5 out-of-fold MFs);
* boosted, notebook-style (LightGBM locally, Spark's GBTRegressor on Spark).

    python benchmarks/spark_hybrid.py             # writes benchmarks/results/spark_hybrid.json
    python benchmarks/spark_hybrid.py --skip-leak-free
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import peak_rss_mb, write_result

from hybridrec.hybrid import HybridRecommender
from hybridrec.mf import MatrixFactorization
from hybridrec.spark import SparkHybridRecommender, SparkMatrixFactorization, spark_session
from hybridrec.workspace import Workspace


def _timed(fit: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - start


def run(spark: Any, leak_free: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.load("ml-100k")
        ratings, users, movies = ws.ratings(), ws.users(), ws.movies()
        ws.close()
        local_mf = MatrixFactorization().fit(ratings, items=movies)
        spark_mf = SparkMatrixFactorization().fit(ratings, items=movies, spark=spark)
        out: dict[str, Any] = {
            "protocol": "ml100k-8020",
            "mf_rmse": {"local": local_mf.metrics_["rmse"], "spark": spark_mf.metrics_["rmse"]},
        }
        settings = [("linear", False), ("boosted", False)]
        if leak_free:
            settings.insert(1, ("linear", True))
        for kind, stacked in settings:
            key = f"{kind}_{'leak_free' if stacked else 'notebook_style'}"
            local, local_s = _timed(
                lambda kind=kind, stacked=stacked: HybridRecommender(
                    kind, mf_params=local_mf.get_params(), leak_free=stacked
                ).fit(ratings, users, movies, mf=local_mf)
            )
            on_spark, spark_s = _timed(
                lambda kind=kind, stacked=stacked: SparkHybridRecommender(
                    kind, mf_params=spark_mf.get_params(), leak_free=stacked
                ).fit(ratings, users, movies, mf=spark_mf, spark=spark)
            )
            row: dict[str, Any] = {
                "local": {"rmse": local.metrics_["rmse"], "fit_seconds": local_s},
                "spark": {
                    "rmse": on_spark.metrics_["rmse"],
                    "fit_seconds": spark_s,
                    "regressor": on_spark.spark_regressor_,
                },
                "rmse_gap_spark_minus_local": on_spark.metrics_["rmse"] - local.metrics_["rmse"],
            }
            if not stacked:
                same_mf = SparkHybridRecommender(kind, leak_free=False).fit(
                    ratings, users, movies, mf=local_mf, spark=spark
                )
                row["spark_regressor_on_local_mf"] = {"rmse": same_mf.metrics_["rmse"]}
                if kind == "linear":
                    row["spark_regressor_on_local_mf"]["max_abs_coef_diff"] = float(
                        np.abs(same_mf.regressor_.coef_ - local.regressor_.coef_).max()
                    )
            out[key] = row
            print(key, {k: v for k, v in row.items() if k != "spark"}, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--skip-leak-free", action="store_true")
    parser.add_argument("--name", default="spark_hybrid", help="results/<name>.json")
    args = parser.parse_args()
    spark = spark_session(
        args.master,
        {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"},
        app_name="hybridrec-benchmark",
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()
    try:
        payload: dict[str, Any] = {"scenario": "spark-hybrid", "spark_version": spark.version}
        payload["master"] = spark.sparkContext.master
        payload["parity_ml100k"] = run(spark, not args.skip_leak_free)
    finally:
        spark.stop()
    payload["wall_seconds"] = time.perf_counter() - started
    payload["driver_peak_rss_mb"] = peak_rss_mb()
    print(f"wrote {write_result(args.name, payload)}")


if __name__ == "__main__":
    main()
