"""A self-contained HTML report on trained models: plots and tables in one file.

The report holds the training curves (``ML.TRAINING_INFO``), the evaluation of every model on
the first model's hold-out (the numbers of ``hybridrec evaluate``, computed by the same
``model.evaluate()``), calibration, error by user activity, a 2-D map of the item factors,
feature importance of hybrid models and a summary of the data. Images are PNGs embedded as
``data:`` URIs and the CSS is inline, so the file opens anywhere without a network.

This is the only package that imports matplotlib (in ``_plots``), lazily and through its Agg
canvas (no pyplot, no global state, no display needed).
"""

from hybridrec.report._data import ACTIVITY_BINS, BASELINE
from hybridrec.report._write import write_report

__all__ = ["ACTIVITY_BINS", "BASELINE", "write_report"]
