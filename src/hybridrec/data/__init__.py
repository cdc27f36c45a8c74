"""Data: MovieLens sources and layouts, the synthetic generator, id vocabularies, the
ratings as arrays and the hold-out split."""

from hybridrec.data._arrays import fingerprint, ratings_arrays
from hybridrec.data._layouts import LAYOUTS, LayoutPlan, open_layout
from hybridrec.data._sources import DATASETS, default_cache_dir, resolve_source
from hybridrec.data._splits import holdout_mask
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
    "fingerprint",
    "generate",
    "holdout_mask",
    "load_truth",
    "open_layout",
    "ratings_arrays",
    "resolve_source",
    "true_ratings",
    "write_synthetic",
]
