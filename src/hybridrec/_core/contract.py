"""The model contract: the one :class:`Recommender` protocol every model kind implements, and
the one registry of model kinds (:data:`KINDS`).

Adding a model kind: write its class (with ``kind = <its ModelKind>.name``), add one
:class:`ModelKind` to :data:`KINDS`, and one subclass of the contract test suite
(``tests/contract/``). Loading (:func:`hybridrec.artifacts.load_model`), the checks of
``meta.json`` and the messages that name a kind all read this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

__all__ = [
    "EASE_KIND",
    "FEATURE_REGRESSOR",
    "HYBRID",
    "KINDS",
    "MATRIX_FACTORIZATION",
    "MATRIX_FACTORIZATION_IMPLICIT",
    "NUMBER",
    "RANKING",
    "ModelKind",
    "Recommender",
    "describe",
    "is_kind",
    "model_class",
    "model_genres",
    "unknown_genre",
]


class Recommender(Protocol):
    """What the server (and every face) needs from a model; every registered kind has it.

    ``user_vocab_`` / ``item_vocab_`` are :class:`~hybridrec.data.IdVocabulary`-like objects
    (``ids``, ``index_of``). Frames returned by the ``recommend*`` methods have ``movieId``
    (or ``userId``), optionally ``title``, ``predicted_rating`` and, for models that clip
    their predictions to the rating scale, ``score`` (the unclipped value that orders the
    list), best first. A model may name its unknown-user answer in an
    ``unknown_user_fallback`` attribute.
    """

    user_vocab_: Any
    item_vocab_: Any

    def predict(self, users: Any, items: Any) -> np.ndarray: ...

    def recommend(
        self, user: Any, n: int = 10, *, genre: str | None = None, exclude_seen: bool = True
    ) -> pd.DataFrame: ...

    def recommend_users(
        self, item: Any, n: int = 10, *, exclude_seen: bool = True
    ) -> pd.DataFrame: ...

    def recommend_new_user(
        self,
        ratings: dict[Any, float],
        n: int = 10,
        *,
        genre: str | None = None,
        exclude_seen: bool = True,
    ) -> pd.DataFrame: ...

    def weights(
        self, users: Sequence[Any] | None = None, items: Sequence[Any] | None = None
    ) -> pd.DataFrame: ...


#: the JSON type "a number" in :attr:`ModelKind.meta_keys` (a bool is not one)
NUMBER = (int, float)


@dataclass(frozen=True)
class ModelKind:
    """One kind of model: its ``meta.json`` name, where its class lives, how messages name it,
    and the JSON types of the ``meta.json`` keys its ``load`` reads (checked when present)."""

    name: str
    module: str
    class_name: str
    description: str
    meta_keys: Mapping[str, Any] = field(default_factory=dict)
    #: whether it is a :class:`Recommender` (predicts and recommends by user and item ids);
    #: the regressors ``CREATE MODEL`` trains on a query's columns are not
    recommends: bool = True


_MF_KEYS: Mapping[str, Any] = {
    "params": dict,
    "global_mean": NUMBER,
    "rating_range": list,
    "training_log": list,
}

MATRIX_FACTORIZATION = ModelKind(
    "matrix_factorization",
    "hybridrec.mf",
    "MatrixFactorization",
    "a matrix factorization",
    _MF_KEYS,
)
MATRIX_FACTORIZATION_IMPLICIT = ModelKind(
    "matrix_factorization_implicit",
    "hybridrec.mf",
    "ImplicitMatrixFactorization",
    "an implicit-feedback matrix factorization",
    _MF_KEYS,
)
RANKING = ModelKind(
    "ranking", "hybridrec.ranking", "RankingRecommender", "a ranking", {"params": dict}
)
HYBRID = ModelKind(
    "hybrid",
    "hybridrec.hybrid",
    "HybridRecommender",
    "a hybrid",
    {
        "params": dict,
        "regressor": dict,
        "feature_names": list,
        "user_encoder": dict,
        "item_encoder": dict,
        "stats_global_mean": list,
        "rating_range": list,
    },
)

FEATURE_REGRESSOR = ModelKind(
    "feature_regressor",
    "hybridrec.hybrid",
    "FeatureRegressor",
    "a regressor on a query's columns (CREATE MODEL … input_label_cols)",
    {"params": dict, "encoder": list, "regressor": dict},
    recommends=False,
)
EASE_KIND = ModelKind(
    "ease", "hybridrec.ranking", "EASE", "an EASE", {"params": dict, "l2_reg": NUMBER}
)

#: every kind a saved model may have, by its ``meta.json`` name
KINDS: Mapping[str, ModelKind] = {
    kind.name: kind
    for kind in (
        MATRIX_FACTORIZATION,
        MATRIX_FACTORIZATION_IMPLICIT,
        RANKING,
        HYBRID,
        FEATURE_REGRESSOR,
        EASE_KIND,
    )
}


def model_class(kind: ModelKind) -> Any:
    """The class of ``kind`` (imported on first use: the registry sits below the models)."""
    return getattr(importlib.import_module(kind.module), kind.class_name)


def is_kind(model: Any, kind: ModelKind) -> bool:
    """Whether ``model`` is exactly of ``kind``: its class, not a subclass (the implicit MF
    subclasses the explicit one but predicts preference, not ratings)."""
    return type(model) is model_class(kind)


def describe(model: Any) -> str:
    """How messages name ``model``'s kind ("a hybrid"); ``a <class name>`` for other objects."""
    name = type(model).__name__
    known = [kind.description for kind in KINDS.values() if kind.class_name == name]
    return known[0] if known else f"a {name}"


def model_genres(model: Any) -> list[str]:
    """The genres of a loaded model's movies, sorted (empty when it has no genre metadata);
    a hybrid or ranking model answers with its matrix factorization's."""
    mf = model if hasattr(model, "genres") else getattr(model, "mf_", None)
    return mf.genres() if mf is not None else []


def unknown_genre(label: str, genre: str, known: list[str]) -> str | None:
    """The one-line error for a ``genre`` filter that no movie of the model has (``known``: its
    genres), or None when it is fine. The library answers an unknown genre with no items; the
    CLI (``label`` ``--genre``) and the server (``genre``) name it instead, with a hint when
    only the case differs."""
    if not known or genre in known:
        return None
    close = [g for g in known if g.lower() == genre.lower()]
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{label} {genre!r}: no movie of the model has it; {hint}genres: {', '.join(known)}"
