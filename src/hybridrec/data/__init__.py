"""Data: MovieLens sources and layouts, the synthetic generator, id vocabularies and splits."""

from hybridrec.data._layouts import LAYOUTS, LayoutPlan, open_layout
from hybridrec.data._sources import DATASETS, default_cache_dir, resolve_source
from hybridrec.data._synth import (
    GENRES,
    SynthConfig,
    SynthConfigError,
    SyntheticData,
    SyntheticTruth,
    SynthSummary,
    generate,
    load_truth,
    true_ratings,
    write_synthetic,
)
from hybridrec.data._vocab import IdVocabulary

__all__ = [
    "DATASETS",
    "GENRES",
    "LAYOUTS",
    "IdVocabulary",
    "LayoutPlan",
    "SynthConfig",
    "SynthConfigError",
    "SynthSummary",
    "SyntheticData",
    "SyntheticTruth",
    "default_cache_dir",
    "generate",
    "load_truth",
    "open_layout",
    "resolve_source",
    "true_ratings",
    "write_synthetic",
]
