"""The reference notebook's hybrid model, exactly: its SQL dataset and a linear regression.

``rows`` encoding (one row per rating and genre), the synthetic ``loyalty`` / ``postcode`` user
table, factors expanded to ``u1..uK`` / ``p1..pK``, and ``linear_reg`` on all of it, streamed
from DuckDB into a ridge regression solved from its normal equations in one pass.

The normal equations use the one-hot structure: of the ``(1 + K + K + 1 + P + G + 1)²`` second
moments only the dense block (intercept, factors, loyalty, rating) needs a matrix product; the
one-hot blocks are per-category sums and counts. The training rows and the hold-out rows get
separate moments, so both RMSEs come from the same single pass (``SSE = cᵀ R c``). Only the
ratings the MF was trained on are used for training; its hold-out ratings are scored, so the
number compares with the MF's and the leak-free hybrid's. The notebook also feeds the title to
the regression (BigQuery one-hot encodes it: one column per movie); that is left out here.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from hybridrec.hybrid._dataset import hybrid_dataset_sql
from hybridrec.hybrid.regressors import LinearRegressor

ROWS_PER_BATCH = 262_144


def notebook_linear(
    workspace: Any, mf_name: str, num_factors: int, *, seed: int = 42
) -> dict[str, Any]:
    """Train the notebook's ``recommender_hybrid`` on the workspace; return rows, RMSEs, seconds."""
    start = time.perf_counter()
    genres = workspace.genres()
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
    moments = NotebookMoments(num_factors, genres, postcodes)
    for batch in workspace.sql_batches(query, rows_per_batch=ROWS_PER_BATCH):
        moments.add(batch)
    model = moments.regressor(l2_reg=1e-6)
    n_train, n_eval = moments.rows
    train_sse, eval_sse = moments.squared_errors(model)
    return {
        "rows_train": n_train,
        "rows_eval": n_eval,
        "rmse_train": float(np.sqrt(train_sse / max(n_train, 1))),
        "rmse_eval": float(np.sqrt(eval_sse / max(n_eval, 1))) if n_eval else float("nan"),
        "features": len(moments.names),
        "seconds": round(time.perf_counter() - start, 2),
    }


class NotebookMoments:
    """Raw second moments ``R = Σ z zᵀ`` of ``z = [1, u1..uK, p1..pK, loyalty, one-hot postcode,
    one-hot genre, rating]``, one ``R`` for training rows and one for hold-out rows.

    A postcode or genre not in the lists given at construction is an all-zero one-hot.
    """

    def __init__(self, num_factors: int, genres: list[str], postcodes: list[str]) -> None:
        self.numeric = [f"u{k}" for k in range(1, num_factors + 1)]
        self.numeric += [f"p{k}" for k in range(1, num_factors + 1)] + ["loyalty"]
        self.postcodes, self.genres = (
            pa.array(postcodes, pa.string()),
            pa.array(genres, pa.string()),
        )
        self.names = [*self.numeric]
        self.names += [f"postcode={p}" for p in postcodes] + [f"g={g}" for g in genres]
        m = len(self.numeric) + 2  # [1, numeric..., rating]
        n_p, n_g = len(postcodes), len(genres)
        self.dense = np.zeros((2, m, m))
        self.dense_by_postcode = np.zeros((2, m, n_p))
        self.dense_by_genre = np.zeros((2, m, n_g))
        self.postcode_by_genre = np.zeros((2, n_p, n_g))

    @property
    def rows(self) -> tuple[int, int]:
        """(training rows, hold-out rows) seen so far."""
        return int(self.dense[0, 0, 0]), int(self.dense[1, 0, 0])

    def add(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        d = np.empty((n, len(self.numeric) + 2))
        d[:, 0] = 1.0
        for j, name in enumerate(self.numeric, start=1):
            d[:, j] = batch.column(name).to_numpy(zero_copy_only=False)
        d[:, -1] = batch.column("rating").to_numpy(zero_copy_only=False)
        postcode = _codes(batch.column("postcode"), self.postcodes)
        genre = _codes(batch.column("g"), self.genres)
        is_eval = batch.column("is_eval").to_numpy(zero_copy_only=False).astype(bool)
        for part, rows in enumerate((~is_eval, is_eval)):
            if rows.all():
                block = d
            elif rows.any():
                block = d[rows]
            else:
                continue
            self.dense[part] += block.T @ block
        _category_sums(
            d,
            postcode,
            genre,
            is_eval.astype(np.int64),
            self.dense_by_postcode,
            self.dense_by_genre,
            self.postcode_by_genre,
        )

    def raw_moments(self, part: int) -> np.ndarray:
        """The full ``R`` of training rows (``part=0``) or hold-out rows (``part=1``), in the
        order ``[1, numeric..., one-hot postcode..., one-hot genre..., rating]``."""
        dense = self.dense[part]
        m = dense.shape[0] - 1  # without the rating
        n_p, n_g = self.dense_by_postcode.shape[2], self.dense_by_genre.shape[2]
        size = m + n_p + n_g + 1
        r = np.zeros((size, size))
        x_dense = np.r_[np.arange(m), size - 1]  # positions of [1, numeric, rating]
        p_at, g_at = slice(m, m + n_p), slice(m + n_p, m + n_p + n_g)
        r[np.ix_(x_dense, x_dense)] = dense
        r[x_dense, p_at] = self.dense_by_postcode[part]
        r[p_at, x_dense] = self.dense_by_postcode[part].T
        r[x_dense, g_at] = self.dense_by_genre[part]
        r[g_at, x_dense] = self.dense_by_genre[part].T
        r[p_at, g_at] = self.postcode_by_genre[part]
        r[g_at, p_at] = self.postcode_by_genre[part].T
        # a one-hot column squared is itself: its count, the row of the intercept
        r[np.arange(m, m + n_p), np.arange(m, m + n_p)] = self.dense_by_postcode[part][0]
        r[np.arange(m + n_p, size - 1), np.arange(m + n_p, size - 1)] = self.dense_by_genre[part][0]
        return r

    def regressor(self, l2_reg: float) -> LinearRegressor:
        """The ridge regression on the training rows, from their moments."""
        r = self.raw_moments(0)
        n = r[0, 0]
        if n == 0:
            raise ValueError("no training rows")
        mean = r[0, 1:] / n
        comoment = r[1:, 1:] - n * np.outer(mean, mean)
        return LinearRegressor.from_moments(
            int(n), mean, comoment, l2_reg=l2_reg, feature_names=self.names
        )

    def squared_errors(self, model: LinearRegressor) -> tuple[float, float]:
        """Sum of squared errors of ``model`` on the training rows and on the hold-out rows."""
        c = np.r_[-model.intercept_, -model.coef_, 1.0]
        train, held_out = (max(float(c @ self.raw_moments(part) @ c), 0.0) for part in (0, 1))
        return train, held_out


def _codes(column: pa.Array | pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Position of each value in ``values``; -1 for a null or a value not in the list."""
    return pc.fill_null(pc.index_in(column, value_set=values), -1).to_numpy(zero_copy_only=False)


@njit(cache=True)
def _category_sums(
    d: np.ndarray,
    postcode: np.ndarray,
    genre: np.ndarray,
    part: np.ndarray,
    dense_by_postcode: np.ndarray,
    dense_by_genre: np.ndarray,
    postcode_by_genre: np.ndarray,
) -> None:
    """Add each row of ``d`` to its postcode's and genre's column sums, and count the
    (postcode, genre) pairs, separately per ``part`` (0 training, 1 hold-out)."""
    m = d.shape[1]
    for i in range(d.shape[0]):
        a, g, e = postcode[i], genre[i], part[i]
        if a >= 0:
            for j in range(m):
                dense_by_postcode[e, j, a] += d[i, j]
        if g >= 0:
            for j in range(m):
                dense_by_genre[e, j, g] += d[i, j]
        if a >= 0 and g >= 0:
            postcode_by_genre[e, a, g] += 1.0
