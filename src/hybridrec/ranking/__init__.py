"""Ranking: implicit-feedback candidates re-ranked by a learned ranker."""

from hybridrec.ranking._model import RankingRecommender

__all__ = ["RankingRecommender"]
