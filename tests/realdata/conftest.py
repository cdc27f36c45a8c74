"""Real MovieLens 100K, loaded once for every quality floor (the load is the slow part they
share; the data come from the user's cache or the RecBole wheel through pip)."""

from __future__ import annotations

import pytest

from hybridrec.workspace import Workspace


@pytest.fixture(scope="session")
def ml100k(ml100k_source, tmp_path_factory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("real") / "ws")
    summary = ws.load(ml100k_source)
    assert summary.n_ratings == 100_000 and summary.n_users == 943 and summary.n_movies == 1682
    return ws


@pytest.fixture(scope="session")
def ml100k_ranker(ml100k):
    """The default ranking model on MovieLens 100K (protocol ml100k-8020), fitted once for
    the floors that read it (ten base-model fits: the slow part)."""
    from hybridrec.ranking import RankingRecommender

    return RankingRecommender().fit(ml100k.ratings(), ml100k.users(), ml100k.movies())
