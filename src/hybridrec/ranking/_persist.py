"""Saving and loading a ranking model: its three base models, the ranker and the item
statistics, in one checksummed model directory (no pickle)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec import artifacts
from hybridrec._core.contract import RANKING
from hybridrec._errors import ModelError
from hybridrec.artifacts import RETRAIN, read_lightgbm
from hybridrec.mf import ImplicitMatrixFactorization, MatrixFactorization
from hybridrec.ranking._ease import EASE
from hybridrec.ranking._features import FEATURES, ItemStats
from hybridrec.ranking._ranker import RANKER_FILE, lightgbm
from hybridrec.ranking._stats import genre_matrix

KIND = RANKING.name
ITEM_COLUMNS = ("popularity_log", "mean_rating", "recent_share", "age_years", "first_rated")


def save_ranking(model: Any, path: str | Path) -> None:
    """Write ``model`` (a fitted RankingRecommender) as a directory at ``path``, atomically."""
    import pyarrow as pa

    path = Path(path)
    staging = path.parent / f".{path.name}.parts-{time.time_ns()}"
    try:
        model.mf_.save(staging / "mf")
        model.implicit_.save(staging / "implicit")
        model.ease_.save(staging / "ease")
        (staging / "ranker").mkdir(parents=True)
        model.ranker_.save_model(str(staging / "ranker" / RANKER_FILE))
        stats = model.item_stats_
        item_table = pa.table(
            {
                "movieId": pa.array(model.mf_.item_vocab_.ids),
                **{name: getattr(stats, name) for name in ITEM_COLUMNS},
            }
        )
        meta = {
            "kind": KIND,
            "params": model.get_params(),
            "features": list(FEATURES),
            "metrics": model.metrics_,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        user_table = pa.table(
            {
                "userId": pa.array(model.mf_.user_vocab_.ids),
                "first_rated": model.user_first_,
                "last_rated": model.user_last_,
            }
        )
        tables = {
            "item_stats": item_table,
            "user_stats": user_table,
            "eval": pa.Table.from_pandas(model.eval_set_, preserve_index=False),
        }
        parts = [staging / name for name in ("mf", "implicit", "ease", "ranker")]
        artifacts.write_artifact(path, meta, tables, extra_dirs=parts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_ranking(cls: Any, path: str | Path) -> Any:
    """A RankingRecommender (``cls``) from a directory :func:`save_ranking` wrote."""
    meta = artifacts.read_meta(path)
    if meta.get("kind") != KIND:
        raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {KIND} model")
    path = Path(path)
    if list(meta.get("features", [])) != list(FEATURES):
        raise ModelError(
            f"{path}: the ranker was trained on other features than this hybridrec computes; "
            f"{RETRAIN}"
        )
    model = cls(**meta["params"])
    model.mf_ = MatrixFactorization.load(path / "mf")
    model.implicit_ = ImplicitMatrixFactorization.load(path / "implicit")
    model.ease_ = EASE.load(path / "ease")
    ranker_file = path / "ranker" / RANKER_FILE
    if not ranker_file.is_file():
        raise ModelError(f"model at {path} is incomplete: ranker/{RANKER_FILE} is missing")
    model.ranker_ = read_lightgbm(ranker_file, lightgbm())
    if model.ranker_.num_feature() != len(FEATURES):
        raise ModelError(
            f"{ranker_file}: the ranker uses {model.ranker_.num_feature()} features, "
            f"this hybridrec computes {len(FEATURES)}; {RETRAIN}"
        )
    n_items = len(model.mf_.item_vocab_)
    for other in (model.implicit_, model.ease_):
        if len(other.item_vocab_) != n_items:
            raise ModelError(f"{path}: the base models disagree on the catalogue; {RETRAIN}")
    items = artifacts.read_table(path, "item_stats")
    file = path / "item_stats.parquet"
    columns = {name: _column(items, name, file) for name in ITEM_COLUMNS}
    if any(values.shape != (n_items,) for values in columns.values()):
        raise ModelError(
            f"{file}: {items.num_rows} rows but mf/ knows {n_items}; the files do not belong "
            f"together ({RETRAIN})"
        )
    model.item_stats_ = ItemStats(**columns, genres=genre_matrix(model.mf_.items_meta_, n_items))
    model.user_n_ = np.diff(model.mf_._train_csr.indptr).astype(np.float64)
    model.user_first_, model.user_last_ = _user_activity(path, len(model.mf_.user_vocab_))
    model.metrics_ = dict(meta.get("metrics", {}))
    model.eval_set_ = artifacts.read_table(path, "eval").to_pandas()
    return model


def _user_activity(path: Path, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """The users' first and last rating times saved beside the models."""
    users = artifacts.read_table(path, "user_stats")
    file = path / "user_stats.parquet"
    first, last = (_column(users, name, file) for name in ("first_rated", "last_rated"))
    if first.shape != (n_users,):
        raise ModelError(
            f"{file}: {users.num_rows} rows but mf/ knows {n_users} users; the files do not "
            f"belong together ({RETRAIN})"
        )
    return first, last


def _column(table: Any, name: str, file: Path) -> np.ndarray:
    """Numeric column ``name`` of a loaded stats table, as float64."""
    if name not in table.column_names:
        raise ModelError(f"{file}: no {name!r} column; {RETRAIN}")
    values = table[name].to_numpy()
    if values.dtype.kind not in "fiu":
        raise ModelError(f"{file}: {name!r} holds {values.dtype}, not numbers; {RETRAIN}")
    return np.asarray(values, dtype=np.float64)
