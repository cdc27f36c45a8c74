"""The reference notebook's hybrid model, exactly: its SQL dataset and a linear regression.

``rows`` encoding (one row per rating and genre), the synthetic ``loyalty`` / ``postcode`` user
table, factors expanded to ``u1..uK`` / ``p1..pK``, and ``linear_reg`` on all of it, streamed
from DuckDB into a ridge regression solved from its normal equations in one pass. Only the
ratings the MF was trained on are used for training; its hold-out ratings are scored, so the
number compares with the MF's and the leak-free hybrid's. The notebook also feeds the title to
the regression (BigQuery one-hot encodes it: one column per movie); that is left out here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from hybridrec.hybrid._dataset import hybrid_dataset_sql
from hybridrec.hybrid._regressors import LinearRegressor


def notebook_linear(
    workspace: Any, mf_name: str, num_factors: int, *, seed: int = 42
) -> dict[str, Any]:
    """Train the notebook's ``recommender_hybrid`` on the workspace; return rows, RMSEs, seconds."""
    start = time.perf_counter()
    genres = workspace.sql("SELECT DISTINCT unnest(genres) AS g FROM movies ORDER BY g")[
        "g"
    ].tolist()
    dataset = hybrid_dataset_sql(mf_name, num_factors, genres, [], encoding="rows", seed=seed)
    eval_file = workspace.models_dir / mf_name / "eval.parquet"
    query = f"""
        SELECT d.*, e.userId IS NOT NULL AS is_eval
        FROM ({dataset}) d
        LEFT JOIN read_parquet('{str(eval_file).replace("'", "''")}') e
          ON e.userId = d.userId AND e.movieId = d.movieId
    """
    postcodes = workspace.sql(
        "SELECT DISTINCT substr(CAST(userId AS VARCHAR), 1, 2) AS p FROM ratings ORDER BY p"
    )["p"].tolist()
    encode = _Encoder(num_factors, genres, postcodes)
    model = LinearRegressor(l2_reg=1e-6)
    n_train = 0
    for x, y, is_eval in _batches(workspace, query, encode):
        if (~is_eval).any():
            model.partial_fit(x[~is_eval], y[~is_eval], feature_names=encode.names)
            n_train += int((~is_eval).sum())
    model.finalize()
    train_sse = eval_sse = 0.0
    n_eval = 0
    for x, y, is_eval in _batches(workspace, query, encode):
        err = y - model.predict(x)
        train_sse += float(np.sum(err[~is_eval] ** 2))
        eval_sse += float(np.sum(err[is_eval] ** 2))
        n_eval += int(is_eval.sum())
    return {
        "rows_train": n_train,
        "rows_eval": n_eval,
        "rmse_train": float(np.sqrt(train_sse / max(n_train, 1))),
        "rmse_eval": float(np.sqrt(eval_sse / max(n_eval, 1))) if n_eval else float("nan"),
        "features": len(encode.names),
        "seconds": round(time.perf_counter() - start, 2),
    }


class _Encoder:
    """Numeric matrix of a batch: u1..uK, p1..pK, loyalty, one-hot postcode and genre."""

    def __init__(self, num_factors: int, genres: list[str], postcodes: list[str]) -> None:
        self.factor_cols = [f"u{k}" for k in range(1, num_factors + 1)]
        self.factor_cols += [f"p{k}" for k in range(1, num_factors + 1)]
        self.genres = {g: j for j, g in enumerate(genres)}
        self.postcodes = {p: j for j, p in enumerate(postcodes)}
        self.names = [*self.factor_cols, "loyalty"]
        self.names += [f"postcode={p}" for p in postcodes] + [f"g={g}" for g in genres]

    def __call__(self, batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = batch.num_rows
        numeric = [
            batch.column(c).to_numpy(zero_copy_only=False) for c in [*self.factor_cols, "loyalty"]
        ]
        x = np.zeros((n, len(self.names)))
        x[:, : len(numeric)] = np.column_stack(numeric)
        offset = len(numeric)
        codes = [self.postcodes.get(p, -1) for p in batch.column("postcode").to_pylist()]
        _one_hot(x, offset, np.asarray(codes))
        offset += len(self.postcodes)
        codes = [self.genres.get(g, -1) for g in batch.column("g").to_pylist()]
        _one_hot(x, offset, np.asarray(codes))
        y = batch.column("rating").to_numpy(zero_copy_only=False).astype(np.float64)
        return x, y, batch.column("is_eval").to_numpy(zero_copy_only=False).astype(bool)


def _one_hot(x: np.ndarray, offset: int, codes: np.ndarray) -> None:
    rows = np.flatnonzero(codes >= 0)
    x[rows, offset + codes[rows]] = 1.0


def _batches(
    workspace: Any, query: str, encode: _Encoder
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for batch in workspace.sql_batches(query, rows_per_batch=500_000):
        yield encode(batch)
