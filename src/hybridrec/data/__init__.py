"""Data: MovieLens sources and layouts, the synthetic generator, id vocabularies, the
ratings as arrays and the hold-out split."""

from hybridrec.data._arrays import fingerprint, ratings_arrays
from hybridrec.data._files import read_frame, read_new_user_ratings, read_ratings
from hybridrec.data._layouts import (
    ARCHIVE_SUFFIXES,
    LAYOUTS,
    ML100K_GENRES,
    LayoutPlan,
    TextFile,
    open_layout,
)
from hybridrec.data._ratings import (
    bad_rating_sql,
    check_scalar_ids,
    frame_rows,
    new_user_ratings,
    rating_outside,
)
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
    "ARCHIVE_SUFFIXES",
    "DATASETS",
    "GENRES",
    "LAYOUTS",
    "ML100K_GENRES",
    "IdVocabulary",
    "LayoutPlan",
    "SynthConfig",
    "SynthConfigError",
    "SynthSummary",
    "SyntheticData",
    "SyntheticTruth",
    "TextFile",
    "bad_rating_sql",
    "check_scalar_ids",
    "default_cache_dir",
    "fingerprint",
    "frame_rows",
    "generate",
    "holdout_mask",
    "load_truth",
    "new_user_ratings",
    "open_layout",
    "rating_outside",
    "ratings_arrays",
    "read_frame",
    "read_new_user_ratings",
    "read_ratings",
    "resolve_source",
    "true_ratings",
    "write_synthetic",
]
