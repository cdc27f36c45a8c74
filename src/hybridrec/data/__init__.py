"""Data: MovieLens sources and layouts, the synthetic generator, id vocabularies and splits."""

from hybridrec.data._vocab import IdVocabulary

__all__ = ["IdVocabulary"]
