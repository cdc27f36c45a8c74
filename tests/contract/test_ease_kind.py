"""EASE (item-item closed form) under the contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _support.contract import UNKNOWN_ITEM, UNKNOWN_USER, ContractData, RecommenderContract

from hybridrec.ranking import EASE


class TestEase(RecommenderContract):
    def make(self, **params: Any) -> EASE:
        return EASE(**{"l2_reg": 20.0, **params})

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        return model.fit(data.ratings, items=data.items)

    def test_predictions_are_clipped_to_the_training_rating_range(self, model, data):
        pytest.skip("EASE scores (x_u B)_i rank items; they are not ratings and not clipped")

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        """Unknown users get the most rated items; unknown ids score 0."""
        top = model.recommend(UNKNOWN_USER, 3)
        assert list(top["score"]) == sorted(model.item_counts_, reverse=True)[:3]
        user, item = data.ratings["userId"].iloc[0], data.ratings["movieId"].iloc[0]
        scores = model.predict(np.array([UNKNOWN_USER, user]), np.array([item, UNKNOWN_ITEM]))
        np.testing.assert_array_equal(scores, [0.0, 0.0])
