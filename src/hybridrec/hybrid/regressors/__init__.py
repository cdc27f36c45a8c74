"""Regressors of the hybrid model: dense float features → rating.

Three kinds share one small protocol (:class:`Regressor`):

* ``linear`` — :class:`LinearRegressor`, ridge regression solved from normal equations that are
  accumulated in float64 in one streamed pass (``partial_fit`` per batch, then ``finalize``).
* ``boosted`` — :class:`BoostedRegressor`, LightGBM gradient-boosted trees (native API).
* ``dnn`` — :class:`DnnRegressor`, a PyTorch multi-layer perceptron trained on the CPU.

Predictions are raw float64 (not clipped to the rating scale): clipping is the caller's job,
because only the caller knows the scale. Feature contributions follow one convention for every
kind: ``contributions(X)[:, :d]`` per feature and ``contributions(X)[:, d]`` a bias column, the
model's output at the "average" input; rows sum to the prediction (exactly for ``linear`` and
``boosted``; for ``dnn`` up to float32 rounding, and the attribution is approximate).

One module per kind. Heavy libraries (LightGBM in ``_boosted``, PyTorch in ``_dnn``) are imported
inside methods, so importing hybridrec never imports them. Nothing is pickled: arrays go to
``.npz`` files read with ``allow_pickle=False``, LightGBM models to its own text format,
everything else into the returned JSON-able metadata.
"""

from hybridrec.hybrid.regressors._base import REGRESSOR_KINDS, Regressor
from hybridrec.hybrid.regressors._boosted import BoostedRegressor
from hybridrec.hybrid.regressors._dnn import DnnRegressor
from hybridrec.hybrid.regressors._factory import load_regressor, make_regressor, search_space
from hybridrec.hybrid.regressors._linear import LinearRegressor
from hybridrec.hybrid.regressors._tree_ensemble import TreeEnsembleRegressor

__all__ = [
    "REGRESSOR_KINDS",
    "BoostedRegressor",
    "DnnRegressor",
    "LinearRegressor",
    "Regressor",
    "TreeEnsembleRegressor",
    "load_regressor",
    "make_regressor",
    "search_space",
]
