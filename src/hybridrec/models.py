"""Saved models by name (kept for its import path: they live in :mod:`hybridrec.artifacts`)."""

from hybridrec.artifacts import list_models, load_model, model_dir

__all__ = ["list_models", "load_model", "model_dir"]
