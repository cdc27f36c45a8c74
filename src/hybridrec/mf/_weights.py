"""A matrix factorization's learned weights in BigQuery ML's ``ML.WEIGHTS`` shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from hybridrec._core.columns import ITEM_COL, USER_COL
from hybridrec._errors import DataError
from hybridrec.data import IdVocabulary

if TYPE_CHECKING:
    from hybridrec.mf._model import MatrixFactorization

__all__ = ["weights_table"]


def weights_table(
    model: MatrixFactorization,
    users: Sequence[Any] | None = None,
    items: Sequence[Any] | None = None,
) -> pa.Table:
    """``model``'s :meth:`~hybridrec.mf.MatrixFactorization.weights` as an Arrow table (no
    per-row Python objects: for export)."""
    model._require_fitted()
    parts: list[pa.Table] = []
    selective = users is not None or items is not None
    for name, vocab, factors, bias, wanted in (
        (USER_COL, model.user_vocab_, model.user_factors_, model.user_bias_, users),
        (ITEM_COL, model.item_vocab_, model.item_factors_, model.item_bias_, items),
    ):
        if selective and wanted is None:
            continue
        rows = np.arange(len(vocab)) if wanted is None else _known_rows(vocab, wanted, name)
        parts.append(_weights_table(name, vocab.ids[rows], factors[rows], bias[rows]))
    if not selective:
        parts.append(
            _weights_table(
                "global__intercept__", None, np.zeros((1, 0)), np.array([model.global_mean_])
            )
        )
    return pa.concat_tables(parts)


def _known_rows(vocab: IdVocabulary, wanted: Sequence[Any], name: str) -> np.ndarray:
    idx = vocab.index_of(np.asarray(list(wanted)))
    if (idx < 0).any():
        unknown = np.asarray(list(wanted))[idx < 0][0]
        raise DataError(f"{name} {unknown} is not in the model")
    return idx


def _weights_table(
    processed_input: str, ids: np.ndarray | None, factors: np.ndarray, bias: np.ndarray
) -> pa.Table:
    n, k = factors.shape
    factor_numbers = np.tile(np.arange(1, k + 1, dtype=np.int64), n)
    structs = pa.StructArray.from_arrays(
        [pa.array(factor_numbers), pa.array(factors.astype(np.float64).ravel())],
        names=["factor", "weight"],
    )
    offsets = (
        pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
        if k
        else pa.array(np.zeros(n + 1, dtype=np.int32))
    )
    feature = (
        pa.array([None] * n, type=pa.string()) if ids is None else pa.array([str(x) for x in ids])
    )
    return pa.table(
        {
            "processed_input": pa.array([processed_input] * n),
            "feature": feature,
            "factor_weights": pa.ListArray.from_arrays(offsets, structs),
            "intercept": pa.array(bias.astype(np.float64)),
        }
    )
