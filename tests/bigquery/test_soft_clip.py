"""ML.PREDICT's scores: on the rating scale, strictly increasing, within 1e-6 of the clip."""

from __future__ import annotations

import numpy as np

from hybridrec.bigquery._models import SOFT_CLIP_WIDTH, soft_clip


def test_soft_clip_is_increasing_on_scale_and_close_to_the_clip() -> None:
    raw = np.sort(np.concatenate([np.linspace(-3, 9, 10_001), [5.0, 5.0 - 1e-7, 5 + 1e-9]]))
    out = soft_clip(raw, 0.5, 5.0)
    assert (out >= 0.5).all() and (out <= 5.0).all()
    assert (np.diff(out)[np.diff(raw) > 0] > 0).all()
    assert np.abs(out - np.clip(raw, 0.5, 5.0)).max() <= SOFT_CLIP_WIDTH
    inside = (raw > 0.5 + SOFT_CLIP_WIDTH) & (raw < 5.0 - SOFT_CLIP_WIDTH)
    np.testing.assert_array_equal(out[inside], raw[inside])
