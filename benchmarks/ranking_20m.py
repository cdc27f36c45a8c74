"""EASE and the ranker at scale: the default 20M synthetic set (138,493 users × 26,744 movies).

Each stage runs in a fresh subprocess under ``/usr/bin/time`` (wall seconds, peak RSS):
``hybridrec load``, ``hybridrec train ease`` on the full catalogue (the item × item matrix at
its largest), ``hybridrec train ranker`` end to end (the acceptance goal: ≤ 10 minutes, peak RSS
≤ 12 GB), and the latency of ``recommend`` for one user by the ranker (goal ≤ 20 ms; the model
is loaded once, then users are asked one at a time). Run it under the heavy-job lock:

    flock /work/heavy.lock python benchmarks/ranking_20m.py --data /work/data/synth20m \\
        --workspace /work/data/ranker/ws20m        # writes results/ranking_20m.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import timed, write_result

LATENCY_SNIPPET = """
import json, sys, time
import numpy as np
from hybridrec.models import load_model
t0 = time.perf_counter()
model = load_model(sys.argv[1], sys.argv[2])
load_seconds = time.perf_counter() - t0
ids = model.user_vocab_.ids
rng = np.random.default_rng(0)
users = rng.choice(ids, 200, replace=False)
model.recommend(users[0], 10)  # warm-up: JIT and caches
times = []
for user in users[1:]:
    t0 = time.perf_counter()
    model.recommend(user, 10)
    times.append((time.perf_counter() - t0) * 1000)
new_user = {int(i): 5.0 for i in model.item_vocab_.ids[:20]}
model.recommend_new_user(new_user, 10)
new_times = []
for _ in range(20):
    t0 = time.perf_counter()
    model.recommend_new_user(new_user, 10)
    new_times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({
    "load_seconds": load_seconds,
    "users_timed": len(times),
    "recommend_ms_median": float(np.median(times)),
    "recommend_ms_p95": float(np.percentile(times, 95)),
    "new_user_ms_median": float(np.median(new_times)),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/synth20m"))
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ease", "ranker"])
    parser.add_argument("--note", default=None, help="what is special about this run")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "hybridrec.cli", "--quiet", "--workspace", str(args.workspace)]
    results: dict[str, Any] = {"dataset": str(args.data), "note": args.note}
    if not (args.workspace / "workspace.duckdb").exists():
        results["load"] = _stage([*cli, "load", str(args.data), "--format", "json"])
    if "ranker" not in args.skip:
        results["train_ranker"] = _stage(
            [*cli, "train", "ranker", "--name", "ranker20m", "--format", "json"]
        )
        if "failed" not in results["train_ranker"]:
            latency = timed(
                [sys.executable, "-c", LATENCY_SNIPPET, str(args.workspace / "models"), "ranker20m"]
            )
            results["recommend_one_user"] = {**json.loads(latency.pop("stdout")), **latency}
            print("recommend", results["recommend_one_user"], flush=True)
        write_result("ranking_20m", results)  # in case the next stage does not finish
    if "ease" not in args.skip:
        results["train_ease"] = _stage(
            [*cli, "train", "ease", "--name", "ease20m", "--format", "json"]
        )
    results["goals"] = {
        "train_ranker_seconds_max": 600,
        "train_ranker_peak_rss_mb_max": 12 * 1024,
        "recommend_ms_max": 20,
    }
    path = write_result("ranking_20m", results)
    print(f"wrote {path}")


def _stage(cmd: list[str]) -> dict[str, Any]:
    try:
        result = timed(cmd)
    except SystemExit as failed:  # keep the other stages' results
        print(failed, flush=True)
        return {"failed": str(failed)[-2000:]}
    out = result.pop("stdout")
    try:
        result["output"] = json.loads(out)
    except json.JSONDecodeError:
        result["output"] = out[-2000:]
    print(cmd[6:9], result, flush=True)
    return result


if __name__ == "__main__":
    main()
