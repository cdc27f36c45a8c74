"""Bad data through the Python API: tiny or degenerate ratings, non-finite values, memory limits."""

from __future__ import annotations

import pandas as pd
import pytest
from _support.data import random_ratings

from hybridrec import DataError
from hybridrec.hybrid import HybridRecommender
from hybridrec.mf import MatrixFactorization
from hybridrec.mf import _memory as mf_memory
from hybridrec.ranking import RankingRecommender


def test_memory_estimate_refuses_before_allocating(monkeypatch):
    monkeypatch.setattr(mf_memory, "available_memory", lambda: 1024)
    with pytest.raises(
        DataError, match=r"num_factors=8 on 8 users .* MiB of memory .* lower num_factors"
    ):
        MatrixFactorization(num_factors=8).fit(random_ratings())


def test_perfect_fit_stops_instead_of_dividing_by_zero():
    ratings = pd.DataFrame({"userId": [1, 2], "movieId": [1, 1], "rating": [4.0, 4.0]})
    model = MatrixFactorization(num_factors=2, eval_fraction=0.0).fit(ratings)
    assert model.training_log_[-1]["loss"] == pytest.approx(0.0, abs=1e-6)
    assert len(model.training_log_) < model.max_iterations


def test_too_few_ratings_in_the_python_api():
    tiny = random_ratings(1)
    with pytest.raises(DataError, match="validation split"):
        HybridRecommender("linear", eval_fraction=0.0).fit(tiny)
    with pytest.raises(DataError, match="validation split"):
        RankingRecommender(eval_fraction=0.0).fit(tiny)


def test_python_api_ratings_checks():
    bad = random_ratings()
    bad["userId"] = [[u] for u in bad["userId"]]
    with pytest.raises(DataError, match=r"^row 0: column userId holds a list \(\[\d\]\)"):
        MatrixFactorization(num_factors=2).fit(bad)
    huge = random_ratings()
    huge.loc[7, "rating"] = 1e308
    with pytest.raises(DataError, match=r"^row 7: rating 1e\+308 is not a finite number"):
        MatrixFactorization(num_factors=2).fit(huge)
    text = random_ratings().astype({"rating": object})
    text.loc[3, "rating"] = "abc"
    with pytest.raises(DataError, match=r"^row 3: column rating: 'abc' is not a number"):
        MatrixFactorization(num_factors=2).fit(text)
