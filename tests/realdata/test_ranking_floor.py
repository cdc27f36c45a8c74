"""Ranking quality floors on real MovieLens 100K, protocol ranking-ml100k-8020.

Each model's own hold-out (random 80/20, seed 42); relevant = held-out rating >= 4; items the
user rated in training are never recommended; users without relevant held-out items are not
averaged. Floors sit a little below the values ``benchmarks/ranking_ml100k.py`` measured
(``benchmarks/results/ranking_ml100k.json``: ranker NDCG@10 0.405, P@10 0.291; implicit ALS
NDCG@10 0.385, P@10 0.277) so they catch a regression, not noise; both must also beat
recommending the most-rated movies (NDCG@10 0.176, P@10 0.134 there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridrec.evaluate import ranking_metrics
from hybridrec.mf import ImplicitMatrixFactorization

pytestmark = pytest.mark.realdata

K = 10
FLOORS = {
    "ranker": {"ndcg@10": 0.385, "precision@10": 0.28},
    "implicit": {"ndcg@10": 0.37, "precision@10": 0.265},
}


def popularity_metrics(ratings: pd.DataFrame, held_out: pd.DataFrame) -> dict[str, float]:
    """The most-rated training movies the user has not rated in training, on the same
    hold-out, users and relevant items as the models are scored on."""
    key = ["userId", "movieId"]
    held = held_out.set_index(key).index
    train = ratings[~ratings.set_index(key).index.isin(held)]
    counts = train["movieId"].value_counts(sort=False)
    items = np.sort(counts.index.to_numpy())
    count = counts.reindex(items).to_numpy(dtype=float)
    known = held_out["userId"].isin(train["userId"]) & held_out["movieId"].isin(items)
    relevant = held_out[known & (held_out["rating"] >= 4)]
    seen = train.groupby("userId")["movieId"].apply(lambda s: np.searchsorted(items, s))
    top, indptr, indices = [], [0], []
    for user, liked in relevant.groupby("userId")["movieId"]:
        scores = count.copy()
        scores[seen[user]] = -np.inf
        top.append(np.argsort(-scores, kind="stable")[:K])
        indices.extend(np.searchsorted(items, liked.to_numpy()))
        indptr.append(len(indices))
    return ranking_metrics(np.array(top), np.array(indptr), np.array(indices), K)


def _check(metrics: dict[str, float], floors: dict[str, float], baseline: dict[str, float]):  # type: ignore[no-untyped-def]
    for name, floor in floors.items():
        assert metrics[name] >= floor, (name, metrics[name], floor)
        assert metrics[name] > baseline[name], (name, metrics[name], baseline[name])


@pytest.mark.slow
def test_the_default_ranker_meets_its_floor_and_beats_popularity(ml100k, ml100k_ranker):
    ratings = ml100k.ratings()
    model = ml100k_ranker
    assert model.eval_fraction == 0.2 and model.seed == 42 and model.relevance_threshold == 4
    baseline = popularity_metrics(ratings, model.eval_set_)
    print(f"ranking-ml100k-8020 ranker {model.metrics_}, popularity {baseline}")
    _check(model.metrics_, FLOORS["ranker"], baseline)


def test_default_implicit_als_meets_its_floor_and_beats_popularity(ml100k):
    ratings = ml100k.ratings()
    model = ImplicitMatrixFactorization().fit(ratings, items=ml100k.movies())
    assert model.eval_fraction == 0.2 and model.seed == 42 and model.relevance_threshold == 4
    baseline = popularity_metrics(ratings, model.eval_set_)
    print(f"ranking-ml100k-8020 implicit {model.metrics_}, popularity {baseline}")
    _check(model.metrics_, FLOORS["implicit"], baseline)
