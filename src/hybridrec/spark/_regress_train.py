"""The hybrid's regressor on Spark: ``pyspark.ml`` ridge or GBT trained on the feature rows,
and exported as the local model's :class:`LinearRegressor` / :class:`TreeEnsembleRegressor`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.ml.regression import GBTRegressor, LinearRegression
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec._core.params import check_number
from hybridrec._errors import DataError, ModelError
from hybridrec.hybrid import LinearRegressor, TreeEnsembleRegressor
from hybridrec.spark._io import RATING_COL
from hybridrec.spark._regress_features import FEATURES, VAL_COL

#: Spark's GBTRegressor settings used unless ``regressor_params`` overrides them.
GBT_DEFAULTS: dict[str, Any] = {
    "maxDepth": 5,
    "maxIter": 100,
    "stepSize": 0.1,
    "subsamplingRate": 1.0,
    "minInstancesPerNode": 50,
    "maxBins": 32,
    "validationTol": 0.001,
}
GBT_PARAMS = {
    "max_depth": "maxDepth",
    "n_estimators": "maxIter",
    "learning_rate": "stepSize",
    "subsample": "subsamplingRate",
    "min_child_samples": "minInstancesPerNode",
    "max_bins": "maxBins",
    "validation_tol": "validationTol",
}
LINEAR_PARAMS = ("l2_reg",)


def train_linear(
    frame: DataFrame, l2_reg: float, feature_names: list[str]
) -> tuple[LinearRegressor, Any, dict[str, Any]]:
    """Ridge by Spark's normal-equation solver, as the local :class:`LinearRegressor`: Spark
    standardises the label too, so ``regParam = l2_reg · σ_y`` gives the same objective."""
    check_number("l2_reg", l2_reg, low=0)
    fit_rows = frame.filter(~F.col(VAL_COL))
    row = fit_rows.select(
        Summarizer.metrics("mean", "variance", "count").summary(F.col(FEATURES)).alias("s"),
        F.avg(RATING_COL).alias("y_mean"),
        F.stddev_pop(RATING_COL).alias("y_sd"),
    ).first()
    if row is None or row["y_mean"] is None:
        raise DataError("no training rows for the linear regressor")
    n = int(row["s"]["count"])
    mean = np.asarray(row["s"]["mean"].toArray(), dtype=np.float64)
    # Summarizer's variance is the sample variance; the local model keeps the population one.
    variance = np.asarray(row["s"]["variance"].toArray(), dtype=np.float64) * (n - 1) / max(n, 1)
    y_sd = float(row["y_sd"] or 0.0)
    regression = LinearRegression(
        featuresCol=FEATURES,
        labelCol=RATING_COL,
        regParam=l2_reg * y_sd,
        elasticNetParam=0.0,
        standardization=True,
        fitIntercept=True,
        solver="normal",
    )
    model = regression.fit(fit_rows)
    coef = np.asarray(model.coefficients.toArray(), dtype=np.float64)
    regressor = LinearRegressor.from_coefficients(
        coef,
        float(model.intercept),
        mean=mean,
        scale=np.sqrt(np.clip(variance, 0.0, None)),
        y_mean=float(row["y_mean"]),
        n_samples=n,
        feature_names=feature_names,
        l2_reg=l2_reg,
    )
    settings = {"class": "pyspark.ml.regression.LinearRegression", "regParam": l2_reg * y_sd}
    settings.update({"solver": "normal", "standardization": True, "elasticNetParam": 0.0})
    return regressor, model, settings


def train_gbt(
    frame: DataFrame,
    params: dict[str, Any],
    seed: int,
    validate: bool,
    feature_names: list[str],
) -> tuple[TreeEnsembleRegressor, Any, dict[str, Any]]:
    options = dict(params)
    if validate:
        options["validationIndicatorCol"] = VAL_COL
    else:
        options.pop("validationTol", None)
    try:
        gbt = GBTRegressor(
            featuresCol=FEATURES,
            labelCol=RATING_COL,
            lossType="squared",
            featureSubsetStrategy="all",
            seed=seed,
            **options,
        )
    except TypeError as exc:  # pragma: no cover - guarded by _check_params
        raise ModelError(f"bad GBT parameter: {exc}") from None
    model = gbt.fit(frame)
    sample = frame.select(FEATURES).limit(50_000).toArrow()
    regressor = _export_trees(model, feature_names, sample)
    settings = {"class": "pyspark.ml.regression.GBTRegressor", **options}
    settings["n_trees"] = len(model.treeWeights)
    return regressor, model, settings


# ---------------------------------------------------------------------- GBT export
_SPLIT = re.compile(r"^If \(feature (\d+) <= (\S+)\)$")
_ELSE = re.compile(r"^Else \(feature (\d+) > (\S+)\)$")
_LEAF = re.compile(r"^Predict: (\S+)$")


def _parse_tree(lines: Iterator[str]) -> dict[str, list[Any]]:
    """One tree of Spark's ``toDebugString`` → flat node arrays (node 0 is the root)."""
    nodes: dict[str, list[Any]] = {"feature": [], "threshold": [], "left": [], "right": []}
    nodes["value"] = []

    def add() -> int:
        for column, default in (
            ("feature", -1),
            ("threshold", 0.0),
            ("left", -1),
            ("right", -1),
            ("value", 0.0),
        ):
            nodes[column].append(default)
        return len(nodes["feature"]) - 1

    def parse() -> int:
        line = next(lines).strip()
        here = add()
        leaf = _LEAF.match(line)
        if leaf:
            nodes["value"][here] = float(leaf.group(1))
            return here
        split = _SPLIT.match(line)
        if not split:
            raise ModelError(f"cannot export Spark's GBT: unexpected tree line {line!r}")
        nodes["feature"][here] = int(split.group(1))
        nodes["threshold"][here] = float(split.group(2))
        nodes["left"][here] = parse()
        other = next(lines).strip()
        if not _ELSE.match(other):
            raise ModelError(f"cannot export Spark's GBT: unexpected tree line {other!r}")
        nodes["right"][here] = parse()
        return here

    parse()
    return nodes


def _export_trees(model: Any, feature_names: list[str], sample: pa.Table) -> TreeEnsembleRegressor:
    """Spark's GBT as a NumPy :class:`TreeEnsembleRegressor`: trees parsed from
    ``toDebugString`` (thresholds print as exact doubles), weights from ``treeWeights``,
    internal node values as the cover-weighted means of their leaves over a training sample
    (they only matter for ``contributions``)."""
    lines = [line for line in model.toDebugString.splitlines()[1:] if line.strip()]
    trees: list[dict[str, list[Any]]] = []
    it = iter(lines)
    for line in it:
        if not line.strip().startswith("Tree "):
            raise ModelError(f"cannot export Spark's GBT: unexpected line {line.strip()!r}")
        trees.append(_parse_tree(it))
    weights = np.asarray(model.treeWeights, dtype=np.float64)
    if len(trees) != weights.size:
        raise ModelError(f"cannot export Spark's GBT: {len(trees)} trees, {weights.size} weights")
    x = _sample_matrix(sample, len(feature_names))
    columns: dict[str, list[np.ndarray]] = {
        c: [] for c in ("feature", "threshold", "left", "right", "value")
    }
    offsets = [0]
    for tree in trees:
        arrays = {c: np.asarray(v) for c, v in tree.items()}
        arrays["value"] = _internal_values(arrays, x)
        for c in columns:
            columns[c].append(arrays[c])
        offsets.append(offsets[-1] + arrays["feature"].size)
    return TreeEnsembleRegressor.from_arrays(
        **{c: np.concatenate(v) for c, v in columns.items()},
        offsets=np.asarray(offsets),
        weights=weights,
        importance=np.asarray(model.featureImportances.toArray(), dtype=np.float64),
        feature_names=feature_names,
        source="pyspark.ml.regression.GBTRegressor",
    )


def _sample_matrix(sample: pa.Table, d: int) -> np.ndarray:
    if sample.num_rows == 0:
        return np.zeros((0, d))
    vectors = sample.column(0).to_pylist()
    rows = []
    for v in vectors:  # VectorUDT as a struct: type 1 dense (values), type 0 sparse
        dense = np.zeros(d)
        if v["type"] == 1:
            dense[:] = v["values"]
        else:
            dense[np.asarray(v["indices"], dtype=np.int64)] = v["values"]
        rows.append(dense)
    return np.vstack(rows)


def _internal_values(tree: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    feature, threshold = tree["feature"], tree["threshold"]
    left, right, value = tree["left"], tree["right"], tree["value"].astype(np.float64)
    count = np.zeros(feature.size)
    node = np.zeros(x.shape[0], dtype=np.int64)
    np.add.at(count, node, 1.0)
    for _ in range(feature.size):
        inner = feature[node] >= 0
        if not inner.any():
            break
        rows = np.flatnonzero(inner)
        here = node[rows]
        node[rows] = np.where(x[rows, feature[here]] <= threshold[here], left[here], right[here])
        np.add.at(count, node[rows], 1.0)
    # Children come after their parent (pre-order), so a reverse pass sees them first.
    for n in range(feature.size - 1, -1, -1):
        if feature[n] >= 0:
            lc, rc = count[left[n]], count[right[n]]
            total = lc + rc
            if total > 0:
                value[n] = (lc * value[left[n]] + rc * value[right[n]]) / total
            else:
                value[n] = 0.5 * (value[left[n]] + value[right[n]])
    return value
