"""Id vocabularies: external ids (ints or strings) <-> dense int32 indices."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["IdVocabulary"]


class IdVocabulary:
    """A sorted, immutable mapping between external ids and dense ``int32`` indices.

    Indices never leave the library: every public output uses the external ids.
    """

    def __init__(self, ids: Any) -> None:
        values = pd.Index(pd.unique(np.asarray(ids)))
        if values.hasnans:
            raise ValueError("ids must not be missing")
        self._index = values.sort_values()

    @classmethod
    def from_sorted(cls, ids: Any) -> IdVocabulary:
        """Rebuild a vocabulary from ids already unique and sorted (as saved in an artifact)."""
        vocab = cls.__new__(cls)
        vocab._index = pd.Index(np.asarray(ids))
        return vocab

    def __len__(self) -> int:
        return len(self._index)

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order."""
        return self._index.to_numpy()

    def index_of(self, ids: Any) -> np.ndarray:
        """Indices of ``ids`` as ``int32``; -1 for ids not in the vocabulary."""
        arr = np.asarray(ids)
        if arr.dtype.kind in "iu" and self._index.dtype.kind not in "iu":
            arr = arr.astype(str)
        elif arr.dtype.kind in "OUSf" and self._index.dtype.kind in "iu":
            # Text from a URL or the command line: only exact integers ("903", not "903.5" or
            # "903.0") name an integer id; anything else is unknown.
            as_num = pd.to_numeric(pd.Series(arr.ravel()), errors="coerce")
            text = pd.Series(arr.ravel()).astype(str).str.strip()
            exact = as_num.notna() & (as_num % 1 == 0) & ~text.str.contains(r"[.eE]", regex=True)
            if arr.dtype.kind == "f":
                exact = as_num.notna() & (as_num % 1 == 0)
            arr = np.where(exact, as_num.where(exact, 0), -(2**62)).astype(np.int64)
        return self._index.get_indexer(arr.ravel()).astype(np.int32)

    def index_one(self, external_id: Any) -> int:
        """Index of one id, or -1 when unknown."""
        if (
            isinstance(external_id, int | np.integer)
            and not isinstance(external_id, bool)
            and self._index.dtype.kind in "iu"
            and -(2**63) <= external_id < 2**63
        ):
            # the serving hot path: a binary search instead of a hash-table lookup per call
            sorted_ids = self._index.to_numpy()
            pos = int(np.searchsorted(sorted_ids, external_id))
            return pos if pos < sorted_ids.size and sorted_ids[pos] == external_id else -1
        return int(self.index_of(np.asarray([external_id]))[0])

    def contains(self, external_id: Any) -> bool:
        return self.index_one(external_id) >= 0
