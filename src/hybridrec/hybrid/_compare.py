"""One table comparing baselines, MF and hybrid models on warm and cold-start test sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._errors import DataError
from hybridrec.data import holdout_mask
from hybridrec.evaluate import ranking_metrics, regression_metrics
from hybridrec.hybrid._model import HybridRecommender
from hybridrec.mf import MatrixFactorization

SCENARIOS = ("warm", "cold-user", "cold-item")


def split_scenario(
    ratings: pd.DataFrame, scenario: str, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``warm``: random 20 % of ratings; ``cold-user`` / ``cold-item``: every rating of a random
    10 % of users / items (the model never sees them)."""
    rng = np.random.default_rng(seed)
    if scenario == "warm":
        test = holdout_mask(len(ratings), 0.2, rng)
    else:
        key = USER_COL if scenario == "cold-user" else ITEM_COL
        ids = ratings[key].unique()
        cold = rng.choice(ids, size=max(1, len(ids) // 10), replace=False)
        test = ratings[key].isin(cold).to_numpy()
    return ratings.loc[~test].reset_index(drop=True), ratings.loc[test].reset_index(drop=True)


def partition_scenario(
    ratings: pd.DataFrame, scenario: str, n_folds: int, seed: int
) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame]]:
    """``cold-user`` / ``cold-item`` as a partition: the users (items) are dealt into
    ``n_folds`` random groups and fold ``f`` holds out every rating of group ``f`` (with
    ``n_folds=10`` each fold is the "10 % held out entirely" protocol, and every user (item)
    is cold exactly once). Yields ``(fold, train, test)``."""
    if scenario not in ("cold-user", "cold-item"):
        raise DataError(f"scenario must be cold-user or cold-item, got {scenario!r}")
    key = USER_COL if scenario == "cold-user" else ITEM_COL
    ids = np.sort(ratings[key].unique())
    if n_folds < 2 or n_folds > ids.size:
        raise DataError(
            f"n_folds must be between 2 and the number of ids ({ids.size}), got {n_folds}"
        )
    group = pd.Series(np.random.default_rng(seed).permutation(ids.size) % n_folds, index=ids)
    of_row = group.reindex(ratings[key].to_numpy()).to_numpy()
    for fold in range(n_folds):
        test = of_row == fold
        yield (
            fold,
            ratings.loc[~test].reset_index(drop=True),
            ratings.loc[test].reset_index(drop=True),
        )


class _GlobalMean:
    def fit(self, train: pd.DataFrame) -> _GlobalMean:
        self.mean_ = float(train[RATING_COL].mean())
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.mean_)

    def recommend(self, user: Any, n: int, **_: Any) -> pd.DataFrame:
        return pd.DataFrame({ITEM_COL: [], "predicted_rating": []})


def compare_models(
    ratings: pd.DataFrame,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
    *,
    kinds: Sequence[str] = ("linear", "boosted", "dnn"),
    scenarios: Sequence[str] = SCENARIOS,
    mf_params: dict[str, Any] | None = None,
    k: int = 10,
    seed: int = 42,
    show_progress: bool = False,
) -> pd.DataFrame:
    """Train every model on each scenario's training part; one row per (scenario, model)."""
    rows = []
    ratings = ratings[[USER_COL, ITEM_COL, RATING_COL]]
    for scenario in scenarios:
        train, test = split_scenario(ratings, scenario, seed)
        if len(train) == 0 or len(test) == 0:
            raise DataError(
                f"too few ratings to compare models: the {scenario} split of {len(ratings)} "
                f"ratings leaves {len(train)} to train on and {len(test)} to test on"
            )
        mf_common = {**(mf_params or {}), "eval_fraction": 0.0, "seed": seed}
        mf = MatrixFactorization(**mf_common).fit(train, items=items)
        biases = MatrixFactorization(
            **{**mf_common, "num_factors": 1, "l2_reg": 1e6, "l2_reg_item": 1e6}
        )
        candidates: list[tuple[str, Any]] = [
            ("global mean", _GlobalMean().fit(train)),
            ("biases only", biases.fit(train, items=items)),
            ("MF", mf),
        ]
        for kind in kinds:
            hybrid = HybridRecommender(
                kind, mf_params=mf_common, eval_fraction=0.0, seed=seed, show_progress=show_progress
            )
            candidates.append((f"hybrid {kind}", hybrid.fit(train, users, items, mf=mf)))
        for name, model in candidates:
            rows.append(
                {"scenario": scenario, "model": name, **_score(model, train, test, k, scenario)}
            )
    return pd.DataFrame(rows)


def _score(
    model: Any, train: pd.DataFrame, test: pd.DataFrame, k: int, scenario: str
) -> dict[str, float]:
    pred = model.predict(test[USER_COL].to_numpy(), test[ITEM_COL].to_numpy())
    reg = regression_metrics(test[RATING_COL].to_numpy(), pred)
    out = {"rmse": reg["rmse"], "mae": reg["mean_absolute_error"], "r2": reg["r2_score"]}
    if scenario == "cold-item" or isinstance(model, _GlobalMean):
        # cold items are outside every model's catalogue, and a constant has no ranking
        return {**out, f"precision@{k}": float("nan"), f"ndcg@{k}": float("nan")}
    ranking = _ranking_by_recommend(model, train, test, k)
    return {**out, f"precision@{k}": ranking[f"precision@{k}"], f"ndcg@{k}": ranking[f"ndcg@{k}"]}


def _ranking_by_recommend(
    model: Any, train: pd.DataFrame, test: pd.DataFrame, k: int
) -> dict[str, float]:
    """Ranking metrics from each test user's ``recommend`` list (training items excluded)."""
    relevant = test[test[RATING_COL] >= 4]
    users = relevant[USER_COL].unique()
    catalogue = pd.Index(train[ITEM_COL].unique())
    top = np.full((users.size, k), -1, dtype=np.int64)
    indptr = [0]
    indices = []
    for row, user in enumerate(users):
        recs = model.recommend(user, k)[ITEM_COL].to_numpy()
        top[row, : recs.size] = catalogue.get_indexer(recs)
        rel = catalogue.get_indexer(relevant.loc[relevant[USER_COL] == user, ITEM_COL].to_numpy())
        rel = np.sort(rel[rel >= 0])
        indices.append(rel)
        indptr.append(indptr[-1] + rel.size)
    return ranking_metrics(top, np.asarray(indptr), np.concatenate(indices), k)
