"""Every recommender kind in the registry is checked by a contract subclass in this folder (the
SQL face's regressors on a query's columns are not recommenders: tests/bigquery checks them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.contract import RecommenderContract

from hybridrec._core.contract import KINDS


def test_every_registered_model_kind_has_a_contract_subclass(request) -> None:
    here = Path(__file__).resolve().parent
    local_modules = {p for p in here.glob("test_*.py") if "spark" not in p.name}
    items = request.session.items
    if not local_modules <= {Path(item.path).resolve() for item in items}:
        pytest.skip("needs the whole tests/contract folder collected")
    covered = {
        type(item.cls().make()).__name__
        for item in items
        if isinstance(item.cls, type) and issubclass(item.cls, RecommenderContract)
    }
    recommenders = {kind.class_name for kind in KINDS.values() if kind.recommends}
    missing = sorted(recommenders - covered)
    assert not missing, f"model kinds without a RecommenderContract subclass: {missing}"
