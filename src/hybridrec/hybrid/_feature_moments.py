"""The normal equations of a linear regression on dense + one-hot columns, from counts.

For ``z = [x, y]`` with ``x`` = dense columns ``D`` and one-hot columns ``O`` (one block per
string column), the second moments ``Σ zzᵀ`` need a matrix product only for the dense block:
``DᵀO`` is a per-category sum of ``D``'s rows, ``OᵀO`` a per-pair count of categories, and a
block's diagonal its category counts. So a batch costs ``O(n·(p² + p·s))`` for ``p`` dense and
``s`` string columns instead of ``O(n·d²)`` for ``d`` encoded columns (hundreds with one-hot).
Dense columns are shifted by the encoder's training means before squaring, which keeps the
centred moments free of cancellation; the result is what
:meth:`LinearRegressor.from_moments` solves.
"""

from __future__ import annotations

import numpy as np

from hybridrec.hybrid._feature_model import EncodedParts

__all__ = ["OneHotMoments"]


class OneHotMoments:
    """Accumulates ``n``, the column sums and ``Σ zzᵀ`` of ``z = [x − shift, y]``."""

    def __init__(self, n_features: int, shift: np.ndarray) -> None:
        self.d = n_features
        self.shift = np.asarray(shift, dtype=np.float64)  # per design column (0 for one-hot)
        self.n = 0
        self.sums = np.zeros(n_features + 1)
        self.raw = np.zeros((n_features + 1, n_features + 1))

    def add(self, parts: EncodedParts, y: np.ndarray) -> None:
        d, idx = self.d, parts.dense_index
        z = np.empty((len(y), idx.size + 1))
        np.subtract(parts.dense, self.shift[idx], out=z[:, :-1])
        z[:, -1] = y
        zi = np.append(idx, d)
        self.n += len(y)
        self.sums[zi] += z.sum(axis=0)
        self.raw[np.ix_(zi, zi)] += z.T @ z
        for k, (offset, width, code) in enumerate(parts.codes):
            valid = code >= 0
            c = code[valid]
            cols = offset + np.arange(width)
            counts = np.bincount(c, minlength=width).astype(np.float64)
            self.sums[cols] += counts
            self.raw[cols, cols] += counts
            zc = z[valid]
            cross = np.stack(
                [np.bincount(c, weights=zc[:, j], minlength=width) for j in range(z.shape[1])],
                axis=1,
            )
            self.raw[np.ix_(cols, zi)] += cross
            self.raw[np.ix_(zi, cols)] += cross.T
            for offset2, width2, code2 in parts.codes[k + 1 :]:
                both = valid & (code2 >= 0)
                pairs = np.bincount(
                    code[both] * width2 + code2[both], minlength=width * width2
                ).reshape(width, width2)
                cols2 = offset2 + np.arange(width2)
                self.raw[np.ix_(cols, cols2)] += pairs
                self.raw[np.ix_(cols2, cols)] += pairs.T

    def centred(self) -> tuple[int, np.ndarray, np.ndarray]:
        """``(n, mean of [x, y], Σ (z − mean)(z − mean)ᵀ)`` in the unshifted units."""
        mean_shifted = self.sums / max(self.n, 1)
        comoment = self.raw - self.n * np.outer(mean_shifted, mean_shifted)
        mean = mean_shifted + np.append(self.shift, 0.0)
        return self.n, mean, comoment
