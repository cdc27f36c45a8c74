"""Whether a hybrid fitted on some ratings can reuse an MF fitted before (``train hybrid --mf``)."""

from __future__ import annotations

import logging

import pandas as pd

from hybridrec.mf import MatrixFactorization

log = logging.getLogger(__name__)


def reusable_mf(mf: MatrixFactorization, ratings: pd.DataFrame) -> MatrixFactorization | None:
    """``mf`` when it was trained on exactly ``ratings`` (then a hybrid with its split reuses its
    fitted factors), else None after a warning: the hybrid refits the MF on these ratings."""
    if mf.trained_on(ratings):
        return mf
    log.warning("ratings changed since the MF was trained: refitting it")
    return None
