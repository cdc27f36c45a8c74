"""``tree_ensemble``: regression trees trained elsewhere (Spark's GBT), evaluated with NumPy."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from hybridrec._core.params import constructor_params
from hybridrec._errors import DataError, ModelError
from hybridrec.artifacts import RETRAIN
from hybridrec.hybrid.regressors._base import (
    CHUNK_ROWS,
    FILE_FORMAT,
    as_matrix,
    check_meta,
    column_names,
    load_npz,
    meta_value,
    npz_array,
    require_file,
)

log = logging.getLogger(__name__)


class TreeEnsembleRegressor:
    """A sum of weighted regression trees trained elsewhere (e.g. Spark's ``GBTRegressor``),
    evaluated with NumPy: ``ŷ = Σ_t w_t tree_t(x)``; a row goes left when
    ``x[feature] <= threshold``.

    Trees are flat arrays in one table (``feature`` −1 at leaves, ``threshold``, ``left``,
    ``right`` as node numbers within the tree, ``value``: the leaf value, and at internal nodes
    the cover-weighted mean of its leaves) with per-tree ``offsets`` and ``weights``.
    ``contributions`` follow each row's path (Saabas): a split's feature gets the change of node
    value it causes, the bias column is ``Σ_t w_t value(root_t)``; rows sum to the prediction
    exactly. ``feature_importance`` is given at import (Spark's ``featureImportances``).
    It cannot be trained locally (``fit`` refuses); it is saved as ``.npz``.
    """

    kind = "tree_ensemble"
    feature_: np.ndarray
    threshold_: np.ndarray
    left_: np.ndarray
    right_: np.ndarray
    value_: np.ndarray
    offsets_: np.ndarray
    weights_: np.ndarray
    importance_: np.ndarray
    n_features_: int
    feature_names_: list[str]

    def __init__(self, source: str = "") -> None:
        self.source = source

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    @classmethod
    def from_arrays(
        cls,
        *,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        value: np.ndarray,
        offsets: np.ndarray,
        weights: np.ndarray,
        importance: np.ndarray,
        feature_names: Sequence[str],
        source: str = "",
    ) -> Self:
        model = cls(source=source)
        model.feature_ = np.asarray(feature, dtype=np.int32)
        model.threshold_ = np.asarray(threshold, dtype=np.float64)
        model.left_ = np.asarray(left, dtype=np.int32)
        model.right_ = np.asarray(right, dtype=np.int32)
        model.value_ = np.asarray(value, dtype=np.float64)
        model.offsets_ = np.asarray(offsets, dtype=np.int64)
        model.weights_ = np.asarray(weights, dtype=np.float64)
        model.importance_ = np.asarray(importance, dtype=np.float64)
        model.n_features_ = int(model.importance_.shape[0])
        model.feature_names_ = column_names(feature_names, model.n_features_)
        n_nodes = model.feature_.shape[0]
        if model.offsets_.shape != (model.weights_.shape[0] + 1,) or model.offsets_[-1] != n_nodes:
            raise ModelError("tree ensemble: offsets and weights do not match the node table")
        if model.feature_.max(initial=-1) >= model.n_features_:
            raise ModelError("tree ensemble: a split uses a feature the model does not have")
        return model

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        feature_names: Sequence[str] = (),
    ) -> Self:
        raise ModelError("a tree ensemble is imported (e.g. from Spark), not trained locally")

    def _require_fitted(self) -> None:
        if not hasattr(self, "feature_"):
            raise ModelError("the tree ensemble is empty")

    def _walk(self, X: np.ndarray, contributions: np.ndarray | None) -> np.ndarray:
        out = np.zeros(X.shape[0])
        rows = np.arange(X.shape[0])
        for t, weight in enumerate(self.weights_):
            lo, hi = int(self.offsets_[t]), int(self.offsets_[t + 1])
            feature, threshold = self.feature_[lo:hi], self.threshold_[lo:hi]
            left, right, value = self.left_[lo:hi], self.right_[lo:hi], self.value_[lo:hi]
            node = np.zeros(X.shape[0], dtype=np.int64)
            if contributions is not None:
                contributions[:, -1] += weight * value[0]
            for _ in range(hi - lo):
                f = feature[node]
                inner = f >= 0
                if not inner.any():
                    break
                x = X[rows[inner], f[inner]]
                here = node[inner]
                nxt = np.where(x <= threshold[here], left[here], right[here])
                if contributions is not None:
                    np.add.at(
                        contributions,
                        (rows[inner], f[inner]),
                        weight * (value[nxt] - value[here]),
                    )
                node[inner] = nxt
            out += weight * value[node]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], CHUNK_ROWS):
            block = np.asarray(X[start : start + CHUNK_ROWS], dtype=np.float64)
            out[start : start + CHUNK_ROWS] = self._walk(block, None)
        return out

    def contributions(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        X = as_matrix(X, "X", self.n_features_, allow_empty=True)
        out = np.zeros((X.shape[0], self.n_features_ + 1))
        self._walk(np.asarray(X, dtype=np.float64), out)
        return out

    def feature_importance(self) -> dict[str, float]:
        self._require_fitted()
        return {n: float(v) for n, v in zip(self.feature_names_, self.importance_, strict=True)}

    _FILE = "regressor_trees.npz"

    def save(self, directory: Path) -> dict[str, Any]:
        self._require_fitted()
        np.savez(
            Path(directory) / self._FILE,
            feature=self.feature_,
            threshold=self.threshold_,
            left=self.left_,
            right=self.right_,
            value=self.value_,
            offsets=self.offsets_,
            weights=self.weights_,
            importance=self.importance_,
        )
        return {
            "kind": self.kind,
            "regressor_format": FILE_FORMAT,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "n_trees": int(self.weights_.shape[0]),
            "files": [self._FILE],
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Self:
        check_meta(meta, cls.kind, directory)
        file = require_file(directory, cls._FILE)
        arrays = load_npz(file)
        names = ("feature", "threshold", "left", "right", "value", "offsets", "weights")
        tables = {name: npz_array(arrays, name, file, 1) for name in (*names, "importance")}
        feature_names = list(meta_value(meta, "feature_names", directory, list))
        source = str(meta_value(meta, "params", directory, dict).get("source", ""))
        try:
            return cls.from_arrays(**tables, feature_names=feature_names, source=source)
        except (DataError, ModelError) as exc:  # from_arrays' checks do not know the file
            raise ModelError(f"{file}: {exc}; {RETRAIN}") from None
