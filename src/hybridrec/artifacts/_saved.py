"""Saved models by name: where they live in a workspace and how to load any kind of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hybridrec._core.contract import KINDS, model_class
from hybridrec._errors import HybridrecError, ModelError, NotFoundError, first_line
from hybridrec.artifacts._directory import META_FILE, read_meta

__all__ = ["list_models", "load_model", "model_dir"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def model_dir(models_root: str | Path, name: str) -> Path:
    """The directory of model ``name``; names are plain words so no path escapes the root."""
    if not _NAME.match(name) or ".." in name:
        raise HybridrecError(
            f"invalid model name {name!r}: "
            "use letters, digits, '_', '-' or '.', up to 100 characters"
        )
    return Path(models_root) / name


def list_models(models_root: str | Path) -> list[dict[str, Any]]:
    """Name, kind, training time and headline metric of every model under ``models_root``."""
    root = Path(models_root)
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.name.startswith(".") or not (path / META_FILE).is_file():
            continue
        try:
            meta = read_meta(path)
        except HybridrecError as exc:
            found.append(
                {"name": path.name, "kind": "unreadable", "trained_at": None, "rmse": None}
            )
            found[-1]["error"] = str(exc)
            continue
        found.append(
            {
                "name": path.name,
                "kind": meta.get("kind"),
                "trained_at": meta.get("trained_at"),
                "rmse": meta.get("metrics", {}).get("rmse"),
            }
        )
    return found


def load_model(models_root: str | Path, name: str) -> Any:
    """Load model ``name`` whatever its kind.

    Files that do not fit together in a way the checks of ``meta.json`` and the checksums do not
    catch (a model saved before checksums existed, edited by hand) are a :class:`ModelError`
    naming the model directory, never a bare ``KeyError`` or ``ValueError``."""
    path = model_dir(models_root, name)
    if not path.is_dir():
        known = ", ".join(m["name"] for m in list_models(models_root)) or "none yet"
        raise NotFoundError(f"no model named {name!r} (models: {known})")
    meta = read_meta(path)
    kind = meta.get("kind")
    if kind not in KINDS:
        raise NotFoundError(f"model {name!r} has kind {kind!r}, which this hybridrec cannot load")
    loader = model_class(KINDS[str(kind)])
    try:
        return loader.load(path)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        detail = first_line(exc)
        if isinstance(exc, KeyError) and exc.args:  # str() of a KeyError is its key's repr
            key = exc.args[0]
            detail = key if isinstance(key, str) and " " in key else f"missing {key!r}"
        raise ModelError(
            f"{path}: the model's files do not fit together ({detail}); retrain the model"
        ) from exc
