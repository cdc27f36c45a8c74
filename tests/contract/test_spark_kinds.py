"""The Spark-trained models under the recommender contract, through their local form.

A Spark model is fitted on ``local[2]`` and then used as the local engine uses it: ``to_local()``
(the same object ``save`` writes and ``MatrixFactorization.load`` / ``HybridRecommender.load``
read back) predicts and recommends; ``fit``, the unfitted error and ``get_params`` are the Spark
classes' own. Skipped, with the reason, without PySpark or Java.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from _support.contract import (
    ContractData,
    RecommenderContract,
    check_cold_start_rows,
    check_intercept_fallback,
    check_training_ratings_skipped,
)
from _support.spark import require_spark

from hybridrec import HybridRecommender, MatrixFactorization

pytestmark = pytest.mark.spark
require_spark()

from hybridrec.spark import SparkHybridRecommender, SparkMatrixFactorization  # noqa: E402

TINY_MF = {"num_factors": 4, "max_iterations": 4, "bias_iterations": 2, "num_blocks": 2}


class SparkContract(RecommenderContract):
    local_class: ClassVar[type]

    @pytest.fixture(scope="class")
    def engine(self, spark: Any) -> Any:
        return spark

    def served(self, fitted: Any) -> Any:
        return fitted.to_local()

    def load(self, fitted: Any, path: Path) -> Any:
        fitted.save(path)
        return self.local_class.load(path)

    def unfitted_calls(self, model: Any, tmp_path: Path) -> dict[str, Any]:
        return {"to_local": model.to_local, "save": lambda: model.save(tmp_path / "unfitted")}


class TestSparkMatrixFactorization(SparkContract):
    local_class = MatrixFactorization

    def make(self, **params: Any) -> SparkMatrixFactorization:
        return SparkMatrixFactorization(**{**TINY_MF, **params})

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        return model.fit(data.ratings, data.items, spark=engine)

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        check_intercept_fallback(model, data)


class SparkHybridContract(SparkContract):
    local_class = HybridRecommender
    kind: ClassVar[str]
    regressor_params: ClassVar[dict[str, Any] | None] = None

    def make(self, **params: Any) -> SparkHybridRecommender:
        # leak_free=False: the leak-free model fits n_folds more MFs on Spark, seconds each
        tiny = {"mf_params": TINY_MF, "regressor_params": self.regressor_params}
        return SparkHybridRecommender(**{"kind": self.kind, **tiny, "leak_free": False, **params})

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        return model.fit(data.ratings, data.users, data.items, spark=engine)

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        check_cold_start_rows(model, data)

    def test_recommend_skips_the_training_ratings(self, model, data):
        check_training_ratings_skipped(model, data, model.eval_set_)


class TestSparkLinearHybrid(SparkHybridContract):
    kind = "linear"


class TestSparkBoostedHybrid(SparkHybridContract):
    kind = "boosted"
    regressor_params: ClassVar[dict[str, Any] | None] = {"n_estimators": 4, "max_depth": 3}
