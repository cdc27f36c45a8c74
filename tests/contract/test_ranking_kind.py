"""The ranking recommender (implicit candidates, LambdaRank order) under the contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from _support.contract import (
    UNKNOWN_ITEM,
    UNKNOWN_USER,
    ContractData,
    RecommenderContract,
    check_intercept_fallback,
)

from hybridrec.ranking import RankingRecommender

TINY = {
    "mf_params": {"num_factors": 4, "max_iterations": 4},
    "implicit_params": {"num_factors": 4, "l2_reg": 5.0, "max_iterations": 5},
    "ranker_params": {"num_boost_round": 20},
    "n_candidates": 20,
}


class TestRankingRecommender(RecommenderContract):
    def make(self, **params: Any) -> RankingRecommender:
        return RankingRecommender(**{**TINY, **params})

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        return model.fit(data.ratings, items=data.items)

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        """Documented: an unknown user gets the explicit MF's list (highest intercepts), and
        predicted ratings are always the explicit MF's."""
        pd.testing.assert_frame_equal(
            model.recommend(UNKNOWN_USER, 5), model.mf_.recommend(UNKNOWN_USER, 5)
        )
        users = np.array([UNKNOWN_USER, data.some_users(1)[0], UNKNOWN_USER])
        items = np.array([data.items["movieId"].iloc[0], UNKNOWN_ITEM, UNKNOWN_ITEM])
        np.testing.assert_array_equal(model.predict(users, items), model.mf_.predict(users, items))
        check_intercept_fallback(model.mf_, data)
