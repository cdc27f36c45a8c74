"""Ranking: implicit-ALS and EASE candidates re-ranked by a learned ranker; EASE on its own."""

from hybridrec.ranking._ease import EASE
from hybridrec.ranking._model import RankingRecommender

__all__ = ["EASE", "RankingRecommender"]
