"""A regressor on a table of arbitrary feature columns: BigQuery ML's ``linear_reg``,
``boosted_tree_regressor`` and ``dnn_regressor`` over any query.

Every column but the label is an input, encoded as BigQuery ML does: numbers as they are
(NULL → the training mean), booleans as 0/1, strings one-hot (one 0/1 column per category seen
in training; NULL and unseen categories are all zeros), arrays of numbers expanded to one
column per position (``name_1 … name_K``, K the longest array in training). One-hot is limited
to the ``max_categories`` most frequent categories of a column (the rest are all zeros), so that
a column such as a title cannot make the design matrix as wide as the catalogue.

The regressors are the hybrid model's (:mod:`hybridrec.hybrid.regressors`); ``linear`` is fitted
by streaming its normal equations over Arrow batches, the others on the whole encoded matrix.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hybridrec import artifacts
from hybridrec._errors import DataError, ModelError
from hybridrec.evaluate import regression_metrics
from hybridrec.hybrid.regressors import LinearRegressor, load_regressor, make_regressor

__all__ = ["FeatureEncoder", "FeatureRegressor"]

KIND = "feature_regressor"
_SAMPLE_ROWS = 200_000  # training rows kept to report the training loss; eval rows kept at most
_MAX_MATRIX_BYTES = 4 << 30  # boosted / dnn fit on the whole matrix: refuse beyond this


class FeatureEncoder:
    """Columns → a dense float64 design matrix (see the module docstring).

    ``columns`` holds one dict per input column: ``name``, ``type`` (``number``, ``string``,
    ``array``), and ``mean`` (numbers), ``categories`` (strings) or ``width`` and ``means``
    (arrays)."""

    def __init__(self, columns: Sequence[dict[str, Any]]) -> None:
        self.columns = [dict(c) for c in columns]

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            if col["type"] == "string":
                names += [f"{col['name']}={c}" for c in col["categories"]]
            elif col["type"] == "array":
                names += [f"{col['name']}_{k}" for k in range(1, col["width"] + 1)]
            else:
                names.append(col["name"])
        return names

    def groups(self) -> list[tuple[str, slice]]:
        """Each input column's slice of the encoded columns."""
        out, start = [], 0
        for col in self.columns:
            width = {"string": len(col.get("categories", [])), "array": col.get("width", 0)}.get(
                col["type"], 1
            )
            out.append((col["name"], slice(start, start + width)))
            start += width
        return out

    def parts(self, data: pa.Table | pa.RecordBatch) -> EncodedParts:
        """The encoded columns without materialising the one-hot ones: the numbers and array
        positions as one dense block, and each string column's category codes (-1: none)."""
        names = {c.lower(): c for c in data.schema.names}
        dense: list[np.ndarray] = []
        index: list[int] = []
        codes: list[tuple[int, int, np.ndarray]] = []
        for col, (_, cols) in zip(self.columns, self.groups(), strict=True):
            found = names.get(col["name"].lower())
            if found is None:
                raise DataError(f"the input has no column {col['name']} (a feature of the model)")
            values = data.column(found)
            if col["type"] == "number":
                dense.append(_numbers(values, col["mean"])[:, None])
                index.append(cols.start)
            elif col["type"] == "string":
                found_codes = pc.index_in(
                    pc.cast(values, pa.string()), value_set=pa.array(col["categories"], pa.string())
                )
                code = pc.fill_null(found_codes, -1).to_numpy(zero_copy_only=False)
                codes.append((cols.start, cols.stop - cols.start, code.astype(np.int64)))
            else:
                dense.append(_expand(values, col["width"], np.asarray(col["means"])))
                index.extend(range(cols.start, cols.stop))
        block = np.hstack(dense) if dense else np.zeros((data.num_rows, 0))
        return EncodedParts(block, np.asarray(index, dtype=np.int64), codes)

    def shift(self) -> np.ndarray:
        """The training mean of each dense design column (0 for one-hot columns)."""
        out = np.zeros(len(self.feature_names))
        for col, (_, cols) in zip(self.columns, self.groups(), strict=True):
            if col["type"] == "number":
                out[cols.start] = col["mean"]
            elif col["type"] == "array":
                out[cols] = col["means"]
        return out

    def encode(self, data: pa.Table | pa.RecordBatch) -> np.ndarray:
        """The design matrix (one-hot columns as 0/1)."""
        return self.design(self.parts(data))

    def design(self, parts: EncodedParts) -> np.ndarray:
        """The design matrix of encoded parts."""
        groups = self.groups()
        n = parts.dense.shape[0]
        X = np.zeros((n, groups[-1][1].stop if groups else 0), dtype=np.float64)
        X[:, parts.dense_index] = parts.dense
        for offset, _, code in parts.codes:
            rows = np.flatnonzero(code >= 0)
            X[rows, offset + code[rows]] = 1.0
        return X


@dataclass
class EncodedParts:
    """A batch encoded by :meth:`FeatureEncoder.parts`: ``dense[:, j]`` is design column
    ``dense_index[j]``; ``codes`` holds ``(first column, number of categories, code per row)``."""

    dense: np.ndarray
    dense_index: np.ndarray
    codes: list[tuple[int, int, np.ndarray]]

    def rows(self, mask: np.ndarray) -> EncodedParts:
        return EncodedParts(
            self.dense[mask], self.dense_index, [(o, w, c[mask]) for o, w, c in self.codes]
        )


def _numbers(values: Any, fill: float) -> np.ndarray:
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    if values.type != pa.float64():
        values = pc.cast(values, pa.float64())
    arr = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    if values.null_count:
        arr = np.where(np.isnan(arr), fill, arr)
    return arr


def _expand(values: Any, width: int, means: np.ndarray) -> np.ndarray:
    """A list column as ``width`` columns (short or NULL lists padded with the means)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    out = np.tile(means.astype(np.float64), (n, 1))
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy().astype(np.int64)
    flat = pc.cast(pc.list_flatten(values), pa.float64()).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(n), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.arange(flat.size) - starts
    keep = (pos < width) & ~np.isnan(flat)
    out[rows[keep], pos[keep]] = flat[keep]
    return out


class FeatureRegressor:
    """Predicts ``label`` from every other column of a table (module docstring).

    ``regressor`` is ``linear``, ``boosted`` or ``dnn``; ``params`` go to its constructor.
    A seeded random ``eval_fraction`` of the rows is held out for :meth:`evaluate_table`'s
    default and the training log."""

    kind = KIND

    def __init__(
        self,
        label: str = "label",
        regressor: str = "linear",
        params: dict[str, Any] | None = None,
        eval_fraction: float = 0.2,
        seed: int = 42,
    ) -> None:
        self.label = label
        self.regressor = regressor
        self.params = dict(params or {})
        self.eval_fraction = eval_fraction
        self.seed = seed

    def fit(self, batches: Iterable[pa.RecordBatch], encoder: FeatureEncoder) -> Self:
        """Fit on a stream of batches holding the encoder's columns and ``label``."""
        from hybridrec.hybrid._feature_moments import OneHotMoments

        self.encoder_ = encoder
        rng = np.random.default_rng(self.seed)
        model = make_regressor(self.regressor, **self.params)
        train_x: list[np.ndarray] = []
        train_y: list[np.ndarray] = []
        eval_parts: list[tuple[np.ndarray, np.ndarray]] = []
        start = time.perf_counter()
        n_rows = n_eval = 0
        linear = isinstance(model, LinearRegressor)
        moments = OneHotMoments(len(encoder.feature_names), encoder.shift()) if linear else None
        for batch in batches:
            y = self._labels(batch)
            held = rng.random(len(y)) < self.eval_fraction
            n_rows += len(y)
            parts = encoder.parts(batch)
            if held.any() and n_eval < _SAMPLE_ROWS:
                eval_parts.append((encoder.design(parts.rows(held)), y[held]))
                n_eval += int(held.sum())
            train = parts.rows(~held) if held.any() else parts
            if moments is not None:
                moments.add(train, y[~held])
                if sum(len(t) for t in train_y) >= _SAMPLE_ROWS:
                    continue  # the rows kept to report the training loss
            train_x.append(
                encoder.design(train).astype(np.float64 if linear else np.float32, copy=False)
            )
            train_y.append(y[~held])
            if sum(x.nbytes for x in train_x) > _MAX_MATRIX_BYTES:
                raise DataError(
                    f"{self.regressor} regressors train on the whole encoded matrix, over "
                    f"{_MAX_MATRIX_BYTES >> 30} GB here: use linear_reg, or fewer rows"
                )
        if n_rows == 0:
            raise DataError("CREATE MODEL's query returned no rows")
        X_tr = np.concatenate(train_x) if train_x else np.zeros((0, len(encoder.feature_names)))
        y_tr = np.concatenate(train_y) if train_y else np.zeros(0)
        held_out = (
            (np.concatenate([e[0] for e in eval_parts]), np.concatenate([e[1] for e in eval_parts]))
            if eval_parts
            else None
        )
        if moments is not None:
            n, mean, comoment = moments.centred()
            if n == 0:
                raise DataError("no training rows left after the evaluation split")
            model = LinearRegressor.from_moments(
                n, mean, comoment, **model.get_params(), feature_names=encoder.feature_names
            )
        else:
            X_ev, y_ev = held_out if held_out is not None else (None, None)
            model.fit(X_tr, y_tr, X_val=X_ev, y_val=y_ev, feature_names=encoder.feature_names)
        self.regressor_ = model
        loss = float(np.mean((model.predict(X_tr) - y_tr) ** 2)) if len(y_tr) else float("nan")
        eval_loss: float | None = None
        self.metrics_: dict[str, float] = {}
        if held_out is not None:
            eval_pred = model.predict(held_out[0])
            eval_loss = float(np.mean((eval_pred - held_out[1]) ** 2))
            self.metrics_ = regression_metrics(held_out[1], eval_pred)
        self.training_log_ = [
            {
                "iteration": 0,
                "loss": loss,
                "eval_loss": eval_loss,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            }
        ]
        self.n_rows_ = n_rows
        return self

    # ------------------------------------------------------------------ not by ids
    # The commands that work on (user, item) ids (recommend, predict, evaluate --data, report,
    # serve) cannot feed this model: its inputs are a query's columns. They get one line.
    def _by_ids(self, *args: Any, **kwargs: Any) -> Any:
        raise ModelError(
            f"this is a {self.regressor} regressor on a query's columns (CREATE MODEL … "
            "input_label_cols): it predicts from those columns, not from user and item ids; "
            "use ML.PREDICT / ML.EVALUATE in `hybridrec sql --dialect bigquery`"
        )

    recommend = recommend_users = recommend_all = recommend_new_user = predict = _by_ids
    predict_frame = explain = feature_importance = _by_ids

    @property
    def eval_set_(self) -> Any:
        return self._by_ids()

    @property
    def mf_(self) -> Any:
        return self._by_ids()

    def evaluate(self, data: Any = None, **kwargs: Any) -> dict[str, float]:
        """The hold-out metrics (``hybridrec evaluate NAME``); other data goes through SQL."""
        if data is not None:
            return dict(self._by_ids())
        return self.evaluate_table(None)

    def _labels(self, batch: Any) -> np.ndarray:
        names = {c.lower(): c for c in batch.schema.names}
        if self.label.lower() not in names:
            raise DataError(f"no label column {self.label}")
        y = pc.cast(batch.column(names[self.label.lower()]), pa.float64()).to_numpy(
            zero_copy_only=False
        )
        if np.isnan(y).any():
            raise DataError(f"the label column {self.label} has NULL values")
        return y

    def _require_fitted(self) -> None:
        if not hasattr(self, "regressor_"):
            raise ModelError("this FeatureRegressor is not fitted: call fit() first")

    def predict_table(self, data: pa.Table) -> np.ndarray:
        self._require_fitted()
        return np.asarray(self.regressor_.predict(self.encoder_.encode(data)), np.float64)

    def contributions_table(self, data: pa.Table) -> tuple[list[str], np.ndarray]:
        """Per input column contributions (one-hot and array columns summed) and, last, the
        baseline column; rows sum to the prediction."""
        self._require_fitted()
        raw = self.regressor_.contributions(self.encoder_.encode(data))
        groups = self.encoder_.groups()
        out = np.stack([raw[:, s].sum(axis=1) for _, s in groups] + [raw[:, -1]], axis=1)
        return [g for g, _ in groups], out

    def global_importance(self) -> dict[str, float]:
        """The regressor's feature importance summed per input column."""
        self._require_fitted()
        per_feature = self.regressor_.feature_importance()
        names = self.encoder_.feature_names
        out = {}
        for group, cols in self.encoder_.groups():
            out[group] = float(
                sum(per_feature.get(names[j], 0.0) for j in range(cols.start, cols.stop))
            )
        return out

    def evaluate_table(self, data: pa.Table | None = None) -> dict[str, float]:
        """BigQuery ML's regression metrics on ``data`` (default: the hold-out)."""
        self._require_fitted()
        if data is None:
            if not self.metrics_:
                raise ModelError("the model has no hold-out rows: evaluate it on a query")
            return dict(self.metrics_)
        y = self._labels(data)
        return regression_metrics(y, self.predict_table(data))

    def training_info(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            self.training_log_, columns=["iteration", "loss", "eval_loss", "duration_ms"]
        )

    def weights_table(self) -> pa.Table:
        """``ML.WEIGHTS`` of a linear model: ``processed_input``, ``weight`` (numbers),
        ``category_weights`` (strings and arrays: ``{category, weight}``), ``__INTERCEPT__``."""
        self._require_fitted()
        if not isinstance(self.regressor_, LinearRegressor):
            raise ModelError("ML.WEIGHTS of boosted and dnn regressors is not supported")
        coef = np.asarray(self.regressor_.coef_, np.float64)
        names: list[str] = []
        weights: list[float | None] = []
        categories: list[list[dict[str, Any]]] = []
        for col, (name, cols) in zip(self.encoder_.columns, self.encoder_.groups(), strict=True):
            names.append(name)
            if col["type"] == "number":
                weights.append(float(coef[cols.start]))
                categories.append([])
            else:
                labels = (
                    col["categories"]
                    if col["type"] == "string"
                    else [str(k) for k in range(1, col["width"] + 1)]
                )
                weights.append(None)
                categories.append(
                    [
                        {"category": c, "weight": float(w)}
                        for c, w in zip(labels, coef[cols], strict=True)
                    ]
                )
        names.append("__INTERCEPT__")
        weights.append(float(self.regressor_.intercept_))
        categories.append([])
        return pa.table(
            {
                "processed_input": names,
                "weight": pa.array(weights, pa.float64()),
                "category_weights": pa.array(
                    categories,
                    pa.list_(pa.struct([("category", pa.string()), ("weight", pa.float64())])),
                ),
            }
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra_meta: dict[str, Any] | None = None) -> None:
        self._require_fitted()
        path = Path(path)
        staging = path.parent / f".{path.name}.parts-{time.time_ns()}"
        try:
            (staging / "regressor").mkdir(parents=True)
            regressor_meta = self.regressor_.save(staging / "regressor")
            meta = {
                "kind": KIND,
                "params": {
                    "label": self.label,
                    "regressor": self.regressor,
                    "params": self.params,
                    "eval_fraction": self.eval_fraction,
                    "seed": self.seed,
                },
                "encoder": self.encoder_.columns,
                "regressor": {"kind": self.regressor, **regressor_meta},
                "training_log": self.training_log_,
                "metrics": self.metrics_,
                "n_rows": self.n_rows_,
                "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **(extra_meta or {}),
            }
            artifacts.write_artifact(path, meta, {}, extra_dirs=[staging / "regressor"])
        finally:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, path: str | Path) -> FeatureRegressor:
        meta = artifacts.read_meta(path)
        if meta.get("kind") != KIND:
            raise ModelError(f"model at {path} is a {meta.get('kind')!r}, not a {KIND} model")
        model = cls(**meta["params"])
        model.encoder_ = FeatureEncoder(meta["encoder"])
        model.regressor_ = load_regressor(Path(path) / "regressor", meta["regressor"])
        model.training_log_ = list(meta.get("training_log", []))
        model.metrics_ = dict(meta.get("metrics", {}))
        model.n_rows_ = int(meta.get("n_rows", 0))
        return model
