"""The regressor on arbitrary columns: structured moments equal the dense normal equations."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from hybridrec.hybrid import FeatureEncoder, FeatureRegressor, LinearRegressor


def _table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    cats = np.array(["a", "b", "c", None], dtype=object)
    return pa.table(
        {
            "x": rng.normal(size=n) + 1000.0,  # a large mean: no cancellation allowed
            "s": pa.array(cats[rng.integers(0, 4, n)]),
            "t": pa.array(cats[rng.integers(0, 3, n)]),
            "v": pa.array([list(rng.normal(size=2)) for _ in range(n)]),
            "y": rng.normal(size=n),
        }
    )


ENCODER = [
    {"name": "x", "type": "number", "mean": 1000.0},
    {"name": "s", "type": "string", "categories": ["a", "b"]},
    {"name": "t", "type": "string", "categories": ["c", "a", "b"]},
    {"name": "v", "type": "array", "width": 2, "means": [0.0, 0.0]},
]


def test_one_hot_moments_equal_dense_partial_fit() -> None:
    table = _table(5000, 1)
    encoder = FeatureEncoder(ENCODER)
    model = FeatureRegressor(label="y", regressor="linear", eval_fraction=0.0)
    model.fit(table.to_batches(max_chunksize=700), encoder)
    dense = LinearRegressor().fit(encoder.encode(table), table.column("y").to_numpy())
    np.testing.assert_allclose(model.regressor_.coef_, dense.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.regressor_.intercept_, dense.intercept_, rtol=1e-9)
    assert encoder.feature_names == ["x", "s=a", "s=b", "t=c", "t=a", "t=b", "v_1", "v_2"]
