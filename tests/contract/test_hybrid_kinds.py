"""The hybrid recommender, each regressor kind, under the recommender contract."""

from __future__ import annotations

from typing import Any, ClassVar

from _support.contract import (
    ContractData,
    RecommenderContract,
    check_cold_start_rows,
    check_training_ratings_skipped,
)

from hybridrec import HybridRecommender

TINY_MF = {"num_factors": 4, "max_iterations": 4}


class HybridContract(RecommenderContract):
    kind: ClassVar[str]
    regressor_params: ClassVar[dict[str, Any] | None] = None

    def make(self, **params: Any) -> HybridRecommender:
        tiny = {"mf_params": TINY_MF, "regressor_params": self.regressor_params, "n_folds": 2}
        return HybridRecommender(**{"kind": self.kind, **tiny, **params})

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        check_cold_start_rows(model, data)

    def test_recommend_skips_the_training_ratings(self, model, data):
        check_training_ratings_skipped(model, data, model.eval_set_)


class TestLinearHybrid(HybridContract):
    kind = "linear"


class TestBoostedHybrid(HybridContract):
    kind = "boosted"
    regressor_params: ClassVar[dict[str, Any] | None] = {
        "n_estimators": 20,
        "num_leaves": 7,
        "min_child_samples": 5,
    }


class TestDnnHybrid(HybridContract):
    kind = "dnn"
    regressor_params: ClassVar[dict[str, Any] | None] = {
        "hidden": (8,),
        "epochs": 2,
        "batch_size": 256,
    }
