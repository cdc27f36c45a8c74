"""A matrix factorization as a model directory (Parquet tables + ``meta.json``) and back.

The tables: ``users`` and ``items`` (id, intercept, factors as a list column; items also keep
titles and genres), ``seen`` and ``train`` (user and item index pairs) and ``eval`` (the
hold-out ratings). The Spark engine writes the same directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from hybridrec import artifacts
from hybridrec._core.columns import ITEM_COL, USER_COL
from hybridrec._core.sparse import csr_from_table
from hybridrec._errors import ModelError
from hybridrec.data import IdVocabulary

if TYPE_CHECKING:
    from hybridrec.mf._model import MatrixFactorization

__all__ = ["load_mf", "save_mf"]

M = TypeVar("M", bound="MatrixFactorization")


def save_mf(
    model: MatrixFactorization, path: str | Path, *, extra_meta: dict[str, Any] | None = None
) -> None:
    """Write ``model`` as a directory (Parquet tables + ``meta.json``), atomically.

    ``extra_meta`` is merged into ``meta.json`` (e.g. the Spark engine's description)."""
    model._require_fitted()
    k = model.num_factors
    users = pa.table(
        {
            USER_COL: pa.array(model.user_vocab_.ids),
            "intercept": pa.array(model.user_bias_),
            "factors": _fixed_list(model.user_factors_, k),
        }
    )
    items_cols: dict[str, Any] = {
        ITEM_COL: pa.array(model.item_vocab_.ids),
        "intercept": pa.array(model.item_bias_),
        "factors": _fixed_list(model.item_factors_, k),
    }
    for col in model.items_meta_.columns:
        items_cols[col] = pa.array(model.items_meta_[col].tolist())
    seen_rows = np.repeat(
        np.arange(len(model.seen_.indptr) - 1, dtype=np.int32), np.diff(model.seen_.indptr)
    )
    train_rows = np.repeat(
        np.arange(len(model._train_csr.indptr) - 1, dtype=np.int32),
        np.diff(model._train_csr.indptr),
    )
    meta = {
        "kind": model.kind,
        "params": model.get_params(),
        "global_mean": model.global_mean_,
        "rating_range": [x if np.isfinite(x) else None for x in model.rating_range_],
        "n_users": len(model.user_vocab_),
        "n_items": len(model.item_vocab_),
        "n_train_ratings": int(model._train_csr.indices.size),
        "n_eval_ratings": len(model.eval_set_),
        "training_log": model.training_log_,
        "data_fingerprint": model.data_fingerprint_,
        "metrics": model.metrics_,
        "tuning_trials": model.tuning_trials_,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra_meta or {}),
    }
    artifacts.write_artifact(
        path,
        meta,
        {
            "users": users,
            "items": pa.table(items_cols),
            "seen": pa.table(
                {"user_index": seen_rows, "item_index": model.seen_.indices.astype(np.int32)}
            ),
            "train": pa.table(
                {
                    "user_index": train_rows,
                    "item_index": model._train_csr.indices.astype(np.int32),
                }
            ),
            "eval": pa.Table.from_pandas(model.eval_set_, preserve_index=False),
        },
    )


def load_mf(cls: type[M], path: str | Path) -> M:
    """A ``cls`` model from a directory written by :func:`save_mf` (or the Spark engine)."""
    meta = artifacts.read_meta(path)
    if meta.get("kind") != cls.kind:
        raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {cls.kind}")
    params = meta["params"]
    model = cls(**params)
    users = artifacts.read_table(path, "users")
    items = artifacts.read_table(path, "items")
    model.user_vocab_ = IdVocabulary.from_sorted(users[USER_COL].to_numpy())
    model.item_vocab_ = IdVocabulary.from_sorted(items[ITEM_COL].to_numpy())
    k = int(params["num_factors"])
    for name, table in (("users", users), ("items", items)):
        artifacts.check_list_width(path, name, table, "factors", k)
    model.user_factors_ = _unfixed_list(users["factors"], k)
    model.item_factors_ = _unfixed_list(items["factors"], k)
    model.user_bias_ = users["intercept"].to_numpy().astype(np.float64)
    model.item_bias_ = items["intercept"].to_numpy().astype(np.float64)
    model.global_mean_ = float(meta["global_mean"])
    low, high = meta["rating_range"]
    model.rating_range_ = (
        -np.inf if low is None else float(low),
        np.inf if high is None else float(high),
    )
    model.training_log_ = list(meta["training_log"])
    model.data_fingerprint_ = meta["data_fingerprint"]
    model.metrics_ = dict(meta.get("metrics", {}))
    model.tuning_trials_ = list(meta.get("tuning_trials", []))
    meta_cols = [c for c in items.column_names if c not in (ITEM_COL, "intercept", "factors")]
    model.items_meta_ = (
        items.select(meta_cols).to_pandas()
        if meta_cols
        else pd.DataFrame(index=range(items.num_rows))
    )
    n_users = len(model.user_vocab_)
    model.seen_ = csr_from_table(artifacts.read_table(path, "seen"), n_users)
    model._train_csr = csr_from_table(artifacts.read_table(path, "train"), n_users)
    model.eval_set_ = artifacts.read_table(path, "eval").to_pandas()
    return model


def _fixed_list(factors: np.ndarray, k: int) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(factors, dtype=np.float32).ravel())
    return pa.ListArray.from_arrays(
        pa.array(np.arange(0, factors.shape[0] * k + 1, k, dtype=np.int32)), flat
    )


def _unfixed_list(column: pa.ChunkedArray, k: int) -> np.ndarray:
    flat = (
        pa.concat_arrays([chunk.flatten() for chunk in column.chunks])
        if column.num_chunks
        else pa.array([], pa.float32())
    )
    return np.ascontiguousarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(
        -1, k
    )
