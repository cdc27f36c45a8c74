"""Implicit-feedback ALS on the 20M synthetic set: hybridrec against the ``implicit`` library.

    flock /work/heavy.lock python benchmarks/implicit_speed.py   # results/implicit_speed.json
    python benchmarks/implicit_speed.py --factors 64 --iterations 3 --data /work/data/synth20m

Every (side, factors) pair runs in its own process (peak RSS per side, data loading included):
hybridrec's ``ImplicitMatrixFactorization`` with its default conjugate-gradient solver (4 steps),
with 3 steps (as ``implicit``) and with ``solver='cholesky'``, and
``implicit.cpu.als.AlternatingLeastSquares`` with conjugate gradient (its default, 3 steps) and
with its exact Cholesky solver. Same ratings, same confidence
``c = 1 + wals_alpha · r`` (``implicit`` is given the matrix of ``c``), same ``λ``, all ratings
used for training, 2 threads (Numba / ``implicit``), BLAS limited to 1 thread. Both sides read
the CSV the same way (pyarrow, three typed columns).

Seconds per iteration: the median of the per-iteration times each library reports (hybridrec's
training log; ``implicit``'s callback), both sides of the alternation, no loss evaluation.
The objective ``[Σ_all c (p − x·y)² + λ(|X|² + |Y|²)] / nnz`` of the final factors is computed
by the same code for every side, after the peak RSS is taken, so that the solvers' quality can
be compared too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from _common import timed, write_result

SIDES = ("hybridrec_cg", "hybridrec_cg3", "hybridrec_cholesky", "implicit_cg", "implicit_cholesky")
#: Numba compiles hybridrec's kernels into its on-disk cache here, so no timed run pays for it
WARM_UP = """
import numpy as np, pandas as pd
from hybridrec.mf import ImplicitMatrixFactorization
frame = pd.DataFrame({"userId": [1, 1, 2], "movieId": [1, 2, 2], "rating": [1.0, 2.0, 3.0]})
for solver in ("cg", "cholesky"):
    ImplicitMatrixFactorization(num_factors=4, solver=solver, eval_fraction=0).fit(frame)
"""
THREADS = 2
WALS_ALPHA, L2_REG = 0.6, 30.0  # hybridrec's defaults


def read_ratings(path: Path) -> Any:
    """``(userId int32, movieId int32, rating float32)`` as a pyarrow table."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    types = {"userId": pa.int32(), "movieId": pa.int32(), "rating": pa.float32()}
    options = pcsv.ConvertOptions(include_columns=list(types), column_types=types)
    return pcsv.read_csv(path / "ratings.csv", convert_options=options)


def fit_hybridrec(table: Any, factors: int, iterations: int, variant: str) -> dict[str, Any]:
    from hybridrec.mf import ImplicitMatrixFactorization

    frame = table.to_pandas()
    del table
    model = ImplicitMatrixFactorization(
        num_factors=factors,
        l2_reg=L2_REG,
        wals_alpha=WALS_ALPHA,
        max_iterations=iterations,
        early_stop=False,
        eval_fraction=0,
        solver="cholesky" if variant == "cholesky" else "cg",
        **({"cg_steps": 3} if variant == "cg3" else {}),
    )
    start = time.perf_counter()
    model.fit(frame)
    fit_seconds = time.perf_counter() - start
    seconds = [row["duration_ms"] / 1000 for row in model.training_log_]
    csr = model._train_csr
    return {
        "iteration_seconds": seconds,
        "fit_seconds": fit_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "_objective": (
            csr.indptr,
            csr.indices,
            csr.values,
            model.user_factors_,
            model.item_factors_,
        ),
    }


def fit_implicit(table: Any, factors: int, iterations: int, use_cg: bool) -> dict[str, Any]:
    import numpy as np
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix

    users = table["userId"].to_numpy()
    items = table["movieId"].to_numpy()
    strength = table["rating"].to_numpy()
    del table
    _, user_index = np.unique(users, return_inverse=True)
    _, item_index = np.unique(items, return_inverse=True)
    del users, items
    confidence = (1.0 + WALS_ALPHA * strength).astype(np.float32)
    matrix = csr_matrix((confidence, (user_index.astype(np.int32), item_index.astype(np.int32))))
    del user_index, item_index, confidence
    seconds: list[float] = []
    model = AlternatingLeastSquares(
        factors=factors,
        regularization=L2_REG,
        alpha=1.0,
        iterations=iterations,
        use_cg=use_cg,
        num_threads=THREADS,
        random_state=42,
    )
    start = time.perf_counter()
    model.fit(
        matrix, show_progress=False, callback=lambda _it, elapsed, _loss: seconds.append(elapsed)
    )
    fit_seconds = time.perf_counter() - start
    matrix.data = ((matrix.data - 1.0) / WALS_ALPHA).astype(np.float32)  # back to ratings
    return {
        "iteration_seconds": seconds,
        "fit_seconds": fit_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "_objective": (
            matrix.indptr,
            matrix.indices,
            matrix.data,
            model.user_factors,
            model.item_factors,
        ),
    }


def objective(indptr: Any, indices: Any, values: Any, x: Any, y: Any) -> float:
    """``[Σ_all c (p − x·y)² + λ(|X|² + |Y|²)] / nnz``, the quantity both libraries minimise."""
    import numpy as np

    from hybridrec.mf._implicit_kernels import rated_loss_sum

    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    all_pairs = float(np.sum((x64.T @ x64) * (y64.T @ y64)))
    rated = rated_loss_sum(indptr, indices, values, x, y, WALS_ALPHA)
    reg = L2_REG * (float(np.sum(x64**2)) + float(np.sum(y64**2)))
    return (all_pairs + rated + reg) / values.size


def worker(side: str, data: Path, factors: int, iterations: int) -> None:
    start = time.perf_counter()
    table = read_ratings(data)
    load_seconds = time.perf_counter() - start
    if side.startswith("hybridrec"):
        out = fit_hybridrec(table, factors, iterations, side.removeprefix("hybridrec_"))
    else:
        out = fit_implicit(table, factors, iterations, use_cg=side == "implicit_cg")
    out["objective"] = objective(*out.pop("_objective"))
    seconds = sorted(out["iteration_seconds"])
    out["seconds_per_iteration"] = seconds[len(seconds) // 2]
    out["load_seconds"] = load_seconds
    print(json.dumps(out))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(side: str, data: Path, factors: int, iterations: int) -> dict[str, Any]:
    """One side in a fresh process (the thread limits are in the inherited environment)."""
    cmd = [sys.executable, __file__, "--worker", side, "--data", str(data)]
    cmd += ["--factors", str(factors), "--iterations", str(iterations)]
    load_before = os.getloadavg()[0]
    result = timed(cmd)
    inner = json.loads(result.pop("stdout"))
    # other helpers' unlocked jobs share the 2 cores: say how busy the machine was
    loads = {"load_average_1min_before_after": [load_before, os.getloadavg()[0]]}
    return {"side": side, "factors": factors, **inner, "process": result, **loads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/synth20m"))
    parser.add_argument("--factors", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.factors[0], args.iterations)
        return
    # before any library starts its thread pools: here, and so in every worker
    os.environ.update(
        {
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "NUMBA_NUM_THREADS": str(THREADS),
        }
    )
    subprocess.run([sys.executable, "-c", WARM_UP], check=True)
    runs = []
    for factors in args.factors:
        for side in args.sides:
            runs.append(run(side, args.data, factors, args.iterations))
            print(json.dumps(runs[-1]), flush=True)
    path = write_result(
        "implicit_speed",
        {
            "dataset": str(args.data),
            "protocol": (
                f"all ratings trained; confidence 1 + {WALS_ALPHA}·rating; lambda {L2_REG}; "
                f"{args.iterations} iterations; {THREADS} threads; BLAS 1 thread; "
                "seconds_per_iteration = median of the reported iteration times; peak RSS "
                "includes reading the CSV; objective per rated pair by the same code"
            ),
            "implicit_version": metadata.version("implicit"),
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
