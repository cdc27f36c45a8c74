"""Explicit and implicit matrix factorization under the recommender contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _support.contract import (
    UNKNOWN_ITEM,
    UNKNOWN_USER,
    ContractData,
    RecommenderContract,
    check_intercept_fallback,
)

from hybridrec import MatrixFactorization
from hybridrec.mf import ImplicitMatrixFactorization


class TestMatrixFactorization(RecommenderContract):
    def make(self, **params: Any) -> MatrixFactorization:
        return MatrixFactorization(**{"num_factors": 4, "max_iterations": 5, **params})

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        return model.fit(data.ratings, items=data.items)

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        check_intercept_fallback(model, data)


class TestImplicitMatrixFactorization(RecommenderContract):
    def make(self, **params: Any) -> ImplicitMatrixFactorization:
        base = {"num_factors": 4, "l2_reg": 5.0, "max_iterations": 5}
        return ImplicitMatrixFactorization(**{**base, **params})

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        return model.fit(data.ratings, items=data.items)

    def test_predictions_are_clipped_to_the_training_rating_range(self, model, data):
        pytest.skip(
            "implicit scores are preference confidences x_u·y_i (about 0-1), not ratings: "
            "documented as neither offset nor clipped (rating_range_ is unbounded)"
        )

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        """No offsets (μ = 0, no intercepts): nothing is known of an unknown id, so its score
        is 0 — no preference either way."""
        user, item = data.ratings["userId"].iloc[0], data.ratings["movieId"].iloc[0]
        got = model.predict([UNKNOWN_USER, user, UNKNOWN_USER], [item, UNKNOWN_ITEM, UNKNOWN_ITEM])
        np.testing.assert_array_equal(got, np.zeros(3))
        assert model.rating_range_ == (-np.inf, np.inf)
