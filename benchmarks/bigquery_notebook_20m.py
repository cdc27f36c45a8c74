"""The reference notebook as BigQuery SQL on the 20M synthetic set, and `train mf` beside it.

The workspace is loaded from the synthetic ml-20m layout (the notebook's `bq load`, timed apart);
then one process runs the notebook's statements through ``hybridrec.sql``: the companion's
``CREATE MODEL recommender_16`` (16 factors, l2_reg 0.2), the ML.PREDICT Comedy top-5, ML.WEIGHTS,
the ``users`` and ``hybrid_dataset`` tables, the two UDFs, the ``linear_reg`` hybrid, plus
ML.PREDICT over every one of the 20M (user, movie) pairs. Another process runs
``hybridrec train mf`` with the same options on the same data. Peak RSS per process from
``/usr/bin/time -v``. Run it under the heavy-job lock:

    flock /work/heavy.lock python benchmarks/bigquery_notebook_20m.py --data DIR --work DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS, timed, write_result

NOTEBOOK = Path(__file__).resolve().parents[1] / "tests"

RUN_SNIPPET = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from _support.notebook import SETUP, notebook_cells
import hybridrec
from hybridrec.workspace import Workspace
ws = Workspace(sys.argv[1])
steps = [("create_model_recommender_16", SETUP)]
names = ["predict_comedy_top5", "weights_two_rows", "users_table", "user_features",
         "product_features", "hybrid_dataset", "hybrid_dataset_row", "udf_users", "udf_demo",
         "udf_products", "create_model_linear_reg"]
steps += list(zip(names, [sql for _, sql in notebook_cells()], strict=True))
steps.append(("predict_all_pairs",
    "SELECT count(*) AS n, avg(predicted_rating) AS mean FROM ML.PREDICT("
    "MODEL movielens.recommender_16, (SELECT userId, movieId FROM movielens.ratings))"))
out = {}
for name, sql in steps:
    start = time.perf_counter()
    frame = hybridrec.sql(sql, ws)
    out[name] = {"seconds": round(time.perf_counter() - start, 2), "rows": len(frame)}
    if name == "predict_all_pairs":
        out[name].update(pairs=int(frame["n"].iloc[0]), mean=float(frame["mean"].iloc[0]))
    print(name, out[name], file=sys.stderr, flush=True)
rows = hybridrec.sql("SELECT count(*) AS n FROM movielens.hybrid_dataset", ws)["n"].iloc[0]
out["hybrid_dataset_rows"] = int(rows)
print(json.dumps(out))
"""


CREATE_MODEL = (
    "CREATE OR REPLACE MODEL movielens.sql16 OPTIONS(model_type='matrix_factorization', "
    "user_col='userId', item_col='movieId', rating_col='rating', l2_reg=0.2, num_factors=16) "
    "AS SELECT userId, movieId, rating FROM movielens.ratings"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/synth20m"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bq20m")
    parser.add_argument(
        "--stages", default="load,notebook,compare", help="comma-separated; others are kept"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    ws = args.work / "ws"
    cli = [sys.executable, "-m", "hybridrec.cli", "--quiet", "--workspace", str(ws)]
    previous = RESULTS / "bigquery_notebook_20m.json"
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    results.pop("machine", None)
    results["dataset"] = str(args.data)
    if "load" in stages:
        results["load"] = _strip(timed([*cli, "load", str(args.data)]))
    if "notebook" in stages:
        notebook = timed([sys.executable, "-c", RUN_SNIPPET, str(ws), str(NOTEBOOK)])
        steps = json.loads(notebook.pop("stdout").strip().splitlines()[-1])
        results["notebook_sql"] = {**notebook, "steps": steps}
        results["notebook_seconds_without_load"] = notebook["wall_seconds"]
    if "compare" in stages:
        results["create_model_vs_train_mf"] = _compare(cli, args.repeats)
    path = write_result("bigquery_notebook_20m", results)
    print(json.dumps(results, indent=2))
    print(f"wrote {path}", file=sys.stderr)


def _compare(cli: list[str], repeats: int) -> dict[str, Any]:
    """``CREATE MODEL`` through ``hybridrec sql`` and ``hybridrec train mf`` with the same
    options, each a fresh process, alternately ``repeats`` times; the best of each."""
    fraction = str(10_000 / 20_000_263)  # what CREATE MODEL's AUTO_SPLIT holds out
    train = [
        *cli,
        "train",
        "mf",
        "--name",
        "cli16",
        "--num-factors",
        "16",
        "--l2-reg",
        "0.2",
        "--eval-fraction",
        fraction,
        "--format",
        "json",
    ]
    create = [*cli, "sql", "--dialect", "bigquery", CREATE_MODEL]
    runs: dict[str, list[dict[str, Any]]] = {"create_model": [], "train_mf": []}
    for _ in range(repeats):
        runs["create_model"].append(_strip(timed(create)))
        runs["train_mf"].append(_strip(timed(train)))
    best = {k: min(r["wall_seconds"] for r in v) for k, v in runs.items()}
    return {
        "runs": runs,
        "best_seconds": best,
        "ratio": round(best["create_model"] / best["train_mf"], 3),
    }


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    result.pop("stdout", None)
    return result


if __name__ == "__main__":
    main()
