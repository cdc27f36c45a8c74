"""Whether a hybrid fitted on Spark can reuse an MF fitted before (``train hybrid --mf``)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame

from hybridrec import hybrid
from hybridrec.spark._regress import data_fingerprint

log = logging.getLogger(__name__)


def reusable_mf(mf: Any, ratings: DataFrame | pd.DataFrame) -> Any | None:
    """``mf`` (local or Spark) when it was trained on exactly ``ratings`` (pandas, or a Spark
    DataFrame compared by :func:`data_fingerprint`), else None after a warning: the hybrid
    then refits the MF on Spark."""
    if isinstance(ratings, pd.DataFrame):
        return hybrid.reusable_mf(mf, ratings)
    if data_fingerprint(ratings) == mf.data_fingerprint_:
        return mf
    log.warning("the MF was not trained on these ratings: refitting it on Spark")
    return None
