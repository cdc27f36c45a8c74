"""The served model and its reloads: load a model directory, warm it up, swap it atomically.

Readers take :attr:`ModelHolder.current` once per request and keep that object, so a reload
never changes the model under a running request.
"""

import asyncio
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from hybridrec import artifacts
from hybridrec._core.contract import model_genres
from hybridrec._errors import ModelError, NotFoundError

log = logging.getLogger("hybridrec.serve")

#: What a model must have to be served (:class:`hybridrec._core.contract.Recommender`).
SERVABLE_ATTRIBUTES = (
    "predict",
    "recommend",
    "recommend_users",
    "recommend_new_user",
    "weights",
    "user_vocab_",
    "item_vocab_",
)


@dataclass(frozen=True)
class ServedModel:
    """One loaded model and what the API reports about it. Never mutated: reload replaces it."""

    model: Any
    name: str
    kind: str
    version: str
    meta: dict[str, Any]
    loaded_at: str
    signature: tuple[int, int, int] | None
    user_ids: np.ndarray  # the model's external ids, sorted, for fast membership tests
    item_ids: np.ndarray
    rating_range: tuple[float, float] | None
    fallback: str = field(default="item_intercepts")
    genres: tuple[str, ...] = ()  # of the model's movies, to name an unknown genre filter

    @property
    def user_ids_int(self) -> bool:
        return self.user_ids.dtype.kind in "iu"

    @property
    def item_ids_int(self) -> bool:
        return self.item_ids.dtype.kind in "iu"

    def known_users(self, ids: np.ndarray) -> np.ndarray:
        return _member(self.user_ids, ids)

    def known_items(self, ids: np.ndarray) -> np.ndarray:
        return _member(self.item_ids, ids)


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``sorted_ids`` (a binary search: microseconds per id)."""
    if sorted_ids.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return np.asarray(sorted_ids[pos] == ids, dtype=bool)


def _meta_signature(path: Path) -> tuple[int, int, int] | None:
    """Identity of ``meta.json`` (inode, mtime, size); artifacts are replaced by rename."""
    try:
        st = (path / artifacts.META_FILE).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_meta_bytes(path: Path) -> bytes:
    try:
        return (path / artifacts.META_FILE).read_bytes()
    except OSError:
        raise NotFoundError(f"no model at {path} (missing {artifacts.META_FILE})") from None


def load_served(path: str | Path, name: str | None = None) -> ServedModel:
    """Load the model directory ``path`` (any kind :func:`hybridrec.models.load_model` knows)."""
    from hybridrec.models import load_model

    path = Path(path)
    if not path.is_dir():
        load_model(path.parent, path.name)  # raises its "no model named ..." error
        raise NotFoundError(f"no model at {path}")
    for _ in range(3):
        signature = _meta_signature(path)
        before = _read_meta_bytes(path)
        model = load_model(path.parent, path.name)
        after = _read_meta_bytes(path)
        if before == after:
            break
    else:
        raise ModelError(f"the model at {path} kept changing while it was being loaded")
    missing = [attr for attr in SERVABLE_ATTRIBUTES if not hasattr(model, attr)]
    meta: dict[str, Any] = json.loads(after)
    kind = str(meta.get("kind"))
    if missing:
        raise ModelError(f"a {kind} model cannot be served: it has no {', '.join(missing)}")
    _warm_up(model)
    low_high = getattr(model, "rating_range_", None)
    return ServedModel(
        model=model,
        name=name or path.name,
        kind=kind,
        version=hashlib.blake2b(after, digest_size=6).hexdigest(),
        meta=meta,
        loaded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        signature=signature,
        user_ids=np.sort(np.asarray(model.user_vocab_.ids)),
        item_ids=np.sort(np.asarray(model.item_vocab_.ids)),
        rating_range=(float(low_high[0]), float(low_high[1])) if low_high is not None else None,
        fallback=str(getattr(model, "unknown_user_fallback", "item_intercepts")),
        genres=tuple(model_genres(model)),
    )


def _warm_up(model: Any) -> None:
    """Call each model path once, so that JIT compilation or cache loading happens before the
    model is served (and before a reload swaps it in), not in the first requests."""
    user = model.user_vocab_.ids[:1]
    item = model.item_vocab_.ids[:1]
    if len(user) and len(item):
        model.predict(user, item)
        model.recommend(user[0], 1)
        model.recommend_users(item[0], 1)
        low_high = getattr(model, "rating_range_", (1.0, 1.0))
        model.recommend_new_user({item[0]: float(low_high[1])}, 1)


class ModelHolder:
    """The served model, swapped atomically on reload.

    Readers take :attr:`current` once per request (one attribute read, no lock) and use that
    object to the end, so a reload never changes the model under a running request. Reloads
    are serialised by a lock; the new model is fully loaded before the reference is swapped,
    and a failed load leaves the old model in place.
    """

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name
        self._lock = threading.Lock()
        self._current = load_served(self.path, self.name)
        self.reloads = 0

    @property
    def current(self) -> ServedModel:
        return self._current

    def reload(self) -> tuple[ServedModel, ServedModel]:
        """Load the model directory again and swap it in; returns (old, new)."""
        with self._lock:
            new = load_served(self.path, self.name)
            old, self._current = self._current, new
            self.reloads += 1
        log.info("reloaded model %s: version %s -> %s", self.name, old.version, new.version)
        return old, new

    def changed_on_disk(self) -> bool:
        signature = _meta_signature(self.path)
        return signature is not None and signature != self._current.signature


async def watch(holder: ModelHolder, interval: float) -> None:
    """Reload whenever the model's ``meta.json`` is replaced (a new save)."""
    failed: tuple[int, int, int] | None = None
    while True:
        await asyncio.sleep(interval)
        signature = _meta_signature(holder.path)
        if not holder.changed_on_disk() or signature == failed:
            continue
        try:
            await anyio.to_thread.run_sync(holder.reload)
            failed = None
        except Exception as exc:
            failed = signature
            log.warning("the model %s changed on disk but cannot be loaded: %s", holder.name, exc)
