"""Scale check for the core: load, ALS and batch recommend on the 20M synthetic set.

Generates the default synthetic ml-20m-sized dataset (138,493 users × 26,744 movies × 20,000,263
ratings) unless it already exists, then measures, each in a fresh subprocess so that peak RSS is
per stage: ``hybridrec load`` (CSV → DuckDB workspace), ALS seconds per iteration at 16 factors
with accuracy against the synthetic ground truth, and ``recommend --all`` top-10 for every user.

    python benchmarks/core_20m.py [--data DIR] [--iterations 5]   # writes results/core_20m.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import timed, write_result

TRAIN_SNIPPET = """
import json, resource, sys, time
import numpy as np
from hybridrec.data import load_truth, true_ratings
from hybridrec.mf import MatrixFactorization
from hybridrec.workspace import Workspace
ws = Workspace(sys.argv[1])
t0 = time.perf_counter()
ratings = ws.ratings()
t_read = time.perf_counter() - t0
model = MatrixFactorization(num_factors=16, max_iterations=int(sys.argv[3]), early_stop=False)
t0 = time.perf_counter()
model.fit(ratings)
t_fit = time.perf_counter() - t0
held = model.eval_set_
truth = true_ratings(load_truth(sys.argv[2]), held["userId"].to_numpy(), held["movieId"].to_numpy())
pred = model.predict(held["userId"].to_numpy(), held["movieId"].to_numpy())
model.save(ws.models_dir / "bench16")
print(json.dumps({
    "read_ratings_seconds": t_read,
    "fit_seconds_total": t_fit,
    "iteration_ms": [row["duration_ms"] for row in model.training_log_],
    "eval_rmse": model.metrics_["rmse"],
    "rmse_vs_truth": float(np.sqrt(np.mean((pred - truth) ** 2))),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "hybridrec-synth20m"
    )
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    hybridrec = [sys.executable, "-m", "hybridrec.cli", "--quiet"]
    results: dict[str, Any] = {"dataset": str(args.data)}
    if not (args.data / "ratings.csv").exists():
        results["synth"] = timed([*hybridrec, "synth", "--out", str(args.data)])
        results["synth"].pop("stdout")
        print("synth", results["synth"])
    with tempfile.TemporaryDirectory() as tmp:
        ws = str(Path(tmp) / "ws")
        load = timed([*hybridrec, "--workspace", ws, "load", str(args.data), "--format", "json"])
        results["load"] = {**json.loads(load.pop("stdout")), **load}
        print("load", results["load"])
        train = timed(
            [sys.executable, "-c", TRAIN_SNIPPET, ws, str(args.data), str(args.iterations)]
        )
        results["als_16"] = {**json.loads(train.pop("stdout")), **train}
        iters = results["als_16"]["iteration_ms"]
        results["als_16"]["seconds_per_iteration"] = round(sum(iters) / len(iters) / 1000, 3)
        print("als", results["als_16"])
        out = str(Path(tmp) / "top10.parquet")
        rec = timed(
            [
                *hybridrec,
                "--workspace",
                ws,
                "recommend",
                "bench16",
                "--all",
                "-n",
                "10",
                "--out",
                out,
            ]
        )
        rec.pop("stdout")
        results["recommend_all_top10"] = rec
        print("recommend --all", rec)
    path = write_result("core_20m", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
