"""Saved models: the model directory (Parquet tables + ``meta.json``, written atomically, read
checked), the rules ``meta.json`` follows, the readers of native model files, and the saved
models of a workspace by name (loaded whatever their kind, through the registry of
:mod:`hybridrec._core.contract`)."""

from hybridrec.artifacts._directory import (
    FORMAT_VERSION,
    META_FILE,
    check_list_width,
    file_checksums,
    move_into_place,
    read_meta,
    read_table,
    verify_file,
    write_artifact,
)
from hybridrec.artifacts._native import read_lightgbm, read_npz
from hybridrec.artifacts._saved import list_models, load_model, model_dir
from hybridrec.artifacts._schema import CHECKSUMS, RETRAIN, MetaDict, check_meta_keys, json_type

__all__ = [
    "CHECKSUMS",
    "FORMAT_VERSION",
    "META_FILE",
    "RETRAIN",
    "MetaDict",
    "check_list_width",
    "check_meta_keys",
    "file_checksums",
    "json_type",
    "list_models",
    "load_model",
    "model_dir",
    "move_into_place",
    "read_lightgbm",
    "read_meta",
    "read_npz",
    "read_table",
    "verify_file",
    "write_artifact",
]
