"""Saving and loading a :class:`~hybridrec.hybrid.HybridRecommender`: one artifact directory
with ``meta.json``, the side-feature tables, the MF (``mf/``) and the regressor (``regressor/``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from hybridrec import artifacts
from hybridrec._core.contract import HYBRID
from hybridrec._errors import ModelError
from hybridrec.hybrid._features import ITEM_COL, USER_COL, AttributeEncoder, RatingStats
from hybridrec.hybrid._stacking import BaseFeatures, NewUserRidge
from hybridrec.hybrid.regressors import load_regressor
from hybridrec.mf import MatrixFactorization

if TYPE_CHECKING:
    from hybridrec.hybrid._model import HybridRecommender

KIND = HYBRID.name
MF_DIR = "mf"
REGRESSOR_DIR = "regressor"


def save_hybrid(model: HybridRecommender, path: str | Path) -> None:
    """Write the model directory: ``meta.json``, side-feature tables, the MF (``mf/``) and
    the regressor's own files (``regressor/``), atomically."""
    model._require_fitted()
    path = Path(path)
    staging = path.parent / f".{path.name}.parts-{time.time_ns()}"
    try:
        model.mf_.save(staging / MF_DIR)
        (staging / REGRESSOR_DIR).mkdir(parents=True)
        regressor_meta = model.regressor_.save(staging / REGRESSOR_DIR)
        tables = {
            "user_stats": pa.Table.from_pandas(model.base_.user_stats.table.reset_index()),
            "item_stats": pa.Table.from_pandas(model.base_.item_stats.table.reset_index()),
            "eval": pa.Table.from_pandas(model.eval_set_, preserve_index=False),
        }
        if model.user_encoder_.table is not None:
            tables["user_attributes"] = model.user_encoder_.table_arrow()
        if model.item_encoder_.table is not None:
            tables["item_attributes"] = model.item_encoder_.table_arrow()
        params = model.get_params()
        # kept out of "params" so that releases without the new-user model still load it
        new_user_model = params.pop("new_user_model")
        meta = {
            "kind": KIND,
            "params": params,
            "new_user_model": new_user_model,
            "new_user": None if model.new_user_ is None else model.new_user_.to_meta(),
            "regressor": {"kind": model.kind, **regressor_meta},
            "feature_names": model.feature_names_,
            "user_encoder": model.user_encoder_.to_meta(),
            "item_encoder": model.item_encoder_.to_meta(),
            "stats_global_mean": [
                model.base_.user_stats.global_mean,
                model.base_.item_stats.global_mean,
            ],
            "rating_range": list(model.rating_range_),
            "mf_num_factors": int(model.mf_.user_factors_.shape[1]),
            "mf_fingerprint": getattr(model.mf_, "data_fingerprint_", None),
            "metrics": model.metrics_,
            "tuning_trials": model.tuning_trials_,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        artifacts.write_artifact(
            path, meta, tables, extra_dirs=[staging / MF_DIR, staging / REGRESSOR_DIR]
        )
    finally:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)


def load_hybrid(cls: type[HybridRecommender], path: str | Path) -> HybridRecommender:
    meta = artifacts.read_meta(path)
    if meta.get("kind") != KIND:
        raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {KIND} model")
    path = Path(path)
    model = cls(**meta["params"], new_user_model=bool(meta.get("new_user_model", True)))
    mf = MatrixFactorization.load(path / MF_DIR)
    g_user, g_item = meta["stats_global_mean"]
    model.base_ = BaseFeatures(
        mf,
        _stats(artifacts.read_table(path, "user_stats"), USER_COL, g_user),
        _stats(artifacts.read_table(path, "item_stats"), ITEM_COL, g_item),
    )
    model.user_encoder_ = AttributeEncoder.from_meta(
        meta["user_encoder"], _optional_table(path, "user_attributes")
    )
    model.item_encoder_ = AttributeEncoder.from_meta(
        meta["item_encoder"], _optional_table(path, "item_attributes")
    )
    model.items_meta_ = mf.items_meta_
    model.feature_names_ = list(meta["feature_names"])
    model.regressor_ = load_regressor(path / REGRESSOR_DIR, meta["regressor"])
    new_user = meta.get("new_user")
    try:
        model.new_user_ = None if not new_user else NewUserRidge.from_meta(new_user)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: meta.json has a malformed new-user model ({exc})") from None
    check_loaded(model, meta, path)
    low, high = meta["rating_range"]
    model.rating_range_ = (float(low), float(high))
    model.metrics_ = dict(meta.get("metrics", {}))
    model.tuning_trials_ = list(meta.get("tuning_trials", []))
    model.eval_set_ = artifacts.read_table(path, "eval").to_pandas()
    return model


def check_loaded(model: HybridRecommender, meta: dict[str, Any], path: Path) -> None:
    """The parts of a saved hybrid model must fit together: the MF under ``mf/`` is the one
    the regressor was trained with, and the feature rows are as wide as the regressor's."""
    mf = model.mf_
    width, saved = int(mf.user_factors_.shape[1]), meta.get("mf_num_factors")
    if saved is not None and int(saved) != width:
        raise ModelError(
            f"{path}: mismatched factor widths: the hybrid was trained with a {saved}-factor MF "
            f"but {MF_DIR}/ holds a {width}-factor MF; retrain the hybrid"
        )
    fingerprint = meta.get("mf_fingerprint")
    if fingerprint is not None and fingerprint != getattr(mf, "data_fingerprint_", fingerprint):
        raise ModelError(
            f"{path}: {MF_DIR}/ holds another MF than the one the hybrid was trained with "
            f"(different training data); retrain the hybrid"
        )
    for enc, table in (
        (model.user_encoder_, "user_attributes"),
        (model.item_encoder_, "item_attributes"),
    ):
        if enc.columns and enc.table is None:
            raise ModelError(f"model at {path} is incomplete: {table}.parquet is missing")
    built = len(model.base_.columns) + len(model.user_encoder_.columns)
    built += len(model.item_encoder_.columns)
    expected = getattr(model.regressor_, "n_features_", len(model.feature_names_))
    if not built == len(model.feature_names_) == expected:
        raise ModelError(
            f"{path}: mismatched feature widths: the side tables build {built} features, "
            f"meta.json names {len(model.feature_names_)}, the regressor expects {expected}"
        )
    new_user = model.new_user_
    if new_user is not None and (
        new_user.user_columns != model.user_encoder_.columns
        or new_user.item_columns != model.item_encoder_.columns
        or not set(new_user.base_columns) <= set(model.base_.columns)
        or not set(new_user.interact) <= set(new_user.item_columns)
        or not new_user.n_features == new_user.coef.size == new_user.mean.size
    ):
        raise ModelError(
            f"{path}: the new-user model does not match the side tables "
            f"({new_user.coef.size} coefficients for {new_user.n_features} features); "
            f"retrain the hybrid"
        )


def _stats(table: pa.Table, key: str, global_mean: float) -> RatingStats:
    return RatingStats(key, table.to_pandas().set_index(key), global_mean)


def _optional_table(path: Path, name: str) -> pa.Table | None:
    return artifacts.read_table(path, name) if (path / f"{name}.parquet").is_file() else None
