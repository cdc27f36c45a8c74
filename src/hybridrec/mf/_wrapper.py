"""What every model built around an explicit MF shares with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from hybridrec.mf._model import MatrixFactorization


class WrapsMatrixFactorization:
    """Vocabularies, ``ML.WEIGHTS`` and ``ML.TRAINING_INFO`` come from the wrapped ``mf_``."""

    mf_: MatrixFactorization

    def _require_fitted(self) -> None:
        raise NotImplementedError

    @property
    def user_vocab_(self) -> Any:
        """The known users (those of the MF): what serving reports as known."""
        return self.mf_.user_vocab_

    @property
    def item_vocab_(self) -> Any:
        return self.mf_.item_vocab_

    def weights(
        self, users: Sequence[Any] | None = None, items: Sequence[Any] | None = None
    ) -> pd.DataFrame:
        """The MF part's weights in ``ML.WEIGHTS`` shape."""
        self._require_fitted()
        return self.mf_.weights(users=users, items=items)

    def weights_table(
        self, users: Sequence[Any] | None = None, items: Sequence[Any] | None = None
    ) -> Any:
        """The MF part's weights as an Arrow table."""
        self._require_fitted()
        return self.mf_.weights_table(users=users, items=items)

    def training_info(self) -> pd.DataFrame:
        """The MF part's per-iteration log."""
        self._require_fitted()
        return self.mf_.training_info()
