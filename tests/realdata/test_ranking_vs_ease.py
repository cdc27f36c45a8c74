"""Quality floor of the ranker on real MovieLens 100K: above EASE and the models it blends."""

from __future__ import annotations

import pytest

from hybridrec.ranking import EASE

pytestmark = pytest.mark.realdata


def test_ranker_beats_ease_and_its_base_models(ml100k, ml100k_ranker):
    """Protocol ml100k-8020 (seed 42, relevant = rating ≥ 4, training items excluded)."""
    ranker = ml100k_ranker
    ease = EASE().fit(ml100k.ratings(), items=ml100k.movies())
    assert len(ranker.eval_set_) == len(ease.eval_set_)
    ndcg = ranker.metrics_["ndcg@10"]
    assert ndcg >= 1.05 * ease.metrics_["ndcg@10"]
    for base in (ranker.implicit_, ranker.mf_):
        assert ndcg >= base.evaluate(ranker.eval_set_)["ndcg@10"]
    assert ranker.metrics_["precision@10"] >= 0.28
