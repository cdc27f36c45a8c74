"""The hybrid at 20M synthetic ratings: the notebook's dataset + linear regression, the
multi-hot hybrid dataset to Parquet, and the leak-free boosted hybrid on a sample of rows.

    python benchmarks/hybrid_20m.py [--data DIR] [--boosted-rows 2000000]

Each stage runs in its own process (wall, CPU and peak RSS from ``/usr/bin/time -v``) on a
fresh workspace with a 16-factor MF (5 iterations). Writes ``results/hybrid_20m.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from _common import timed, write_result
from run import HYBRIDREC, RATINGS_20M, dataset, load, train_mf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--boosted-rows", type=int, default=2_000_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        results["load"] = load(dataset(args.data_root, RATINGS_20M), ws)
        results["train_mf"] = train_mf(ws, "mf16", 16, 5)
        base = [*HYBRIDREC, "--workspace", str(ws)]
        notebook = timed([*base, "hybrid", "notebook", "--mf", "mf16", "--format", "json"])
        results["notebook_dataset_and_linear"] = {**json.loads(notebook.pop("stdout")), **notebook}
        print("notebook", results["notebook_dataset_and_linear"], flush=True)
        out = Path(tmp) / "hybrid.parquet"
        built = timed([*base, "hybrid", "dataset", "--mf", "mf16", "--out", str(out)])
        built.pop("stdout")
        results["multi_hot_dataset_to_parquet"] = {**built, "bytes": out.stat().st_size}
        print("dataset", results["multi_hot_dataset_to_parquet"], flush=True)
        train = ["train", "hybrid", "--mf", "mf16", "--kind", "boosted", "--name", "hb"]
        sample = ["--max-train-rows", str(args.boosted_rows)]
        boosted = timed([*base, *train, *sample, "--format", "json"])
        boosted.pop("stdout")
        evaluate = timed([*base, "evaluate", "hb", "--format", "json"])
        results["boosted_leak_free"] = {
            **boosted,
            "max_train_rows": args.boosted_rows,
            "metrics": json.loads(evaluate.pop("stdout")),
        }
        mf_metrics = timed([*base, "evaluate", "mf16", "--format", "json"])
        results["mf_metrics"] = json.loads(mf_metrics.pop("stdout"))
        print("boosted", results["boosted_leak_free"], flush=True)
    print(f"wrote {write_result('hybrid_20m', results)}")


if __name__ == "__main__":
    main()
