"""The recommender contract: what every model kind promises, checked the same way for each.

A kind joins the suite with one subclass in ``tests/contract/`` (named ``Test…``) that says how
to build an unfitted model with tiny settings (:meth:`RecommenderContract.make`), how to fit it
(:meth:`RecommenderContract.fit`) and what its documented fallback for unknown ids is
(:meth:`RecommenderContract.check_unknown_ids`). Kinds trained elsewhere (Spark) are checked
through their local form (:meth:`RecommenderContract.served`), the object that predicts and
recommends after training and that ``load`` returns.

The checks:

* ``fit`` returns the model itself and leaves the constructor's parameters as given;
* predictions are finite and, for rating models, inside the training rating range;
* ``recommend`` skips every item the user rated and keeps only the asked genre;
* unknown users and items get the kind's documented fallback;
* an unfitted model raises :class:`~hybridrec.ModelError` saying so;
* ``save`` then ``load`` predicts and recommends the same;
* the same parameters (seed included) give the same model;
* ``get_params`` round-trips through the constructor.

A kind that genuinely cannot satisfy a check overrides the test with a ``pytest.skip`` /
``xfail`` that says why; none is silently left out.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hybridrec import ModelError

UNKNOWN_USER = 10**6
UNKNOWN_ITEM = 10**6 + 1
GENRE = "Comedy"


@dataclass(frozen=True)
class ContractData:
    """Tiny ratings where taste drives what users watch, with user and item attribute tables."""

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame

    @property
    def rating_bounds(self) -> tuple[float, float]:
        return float(self.ratings["rating"].min()), float(self.ratings["rating"].max())

    def some_users(self, n: int = 5) -> list[Any]:
        return sorted(self.ratings["userId"].unique())[:n]

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (known user, known item) pair of the first users, plus unknown ids."""
        users = np.array([*self.some_users(8), UNKNOWN_USER])
        items = np.array([*sorted(self.ratings["movieId"].unique()), UNKNOWN_ITEM])
        u, i = np.meshgrid(users, items, indexing="ij")
        return u.ravel(), i.ravel()


def contract_data(seed: int = 3) -> ContractData:
    """60 users x 40 movies, 15 ratings each; genres Comedy / Drama / Comedy+Romance."""
    from _support.data import taste_driven_ratings

    n_users, n_items = 60, 40
    ratings = taste_driven_ratings(n_users, n_items, per_user=15, seed=seed)
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "userId": np.arange(1, n_users + 1),
            "age": rng.integers(18, 70, n_users).astype(float),
            "gender": rng.choice(["F", "M"], n_users).astype(object),
        }
    )
    cycle = [["Comedy"], ["Drama"], ["Comedy", "Romance"]]
    items = pd.DataFrame(
        {
            "movieId": np.arange(1, n_items + 1),
            "title": [f"Movie {i}" for i in range(1, n_items + 1)],
            "genres": [cycle[i % 3] for i in range(n_items)],
        }
    )
    return ContractData(ratings, users, items)


class RecommenderContract:
    """The checks every model kind passes; subclass it once per kind (see the module doc)."""

    # ------------------------------------------------------------------ hooks per kind
    def make(self, **params: Any) -> Any:
        """An unfitted model with tiny, fast settings (``params`` override them)."""
        raise NotImplementedError

    def fit(self, model: Any, data: ContractData, engine: Any) -> Any:
        """Fit ``model`` on ``data``; return what ``fit`` returned."""
        return model.fit(data.ratings, data.users, data.items)

    def served(self, fitted: Any) -> Any:
        """The object that predicts and recommends after training (itself, locally)."""
        return fitted

    def load(self, fitted: Any, path: Path) -> Any:
        """``save`` the fitted model to ``path`` and ``load`` it back."""
        fitted.save(path)
        return type(self.served(fitted)).load(path)

    def unfitted_calls(self, model: Any, tmp_path: Path) -> dict[str, Any]:
        """What must refuse to run before ``fit``: name -> zero-argument call."""
        return {
            "predict": lambda: model.predict([1], [1]),
            "recommend": lambda: model.recommend(1, 3),
            "save": lambda: model.save(tmp_path / "unfitted"),
        }

    def check_unknown_ids(self, model: Any, data: ContractData) -> None:
        """Assert the kind's documented fallback for unknown users and items."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture(scope="class")
    def engine(self) -> Any:
        """What ``fit`` needs besides the data (a SparkSession for Spark kinds)."""
        return None

    @pytest.fixture(scope="class")
    def data(self) -> ContractData:
        return contract_data()

    @pytest.fixture(scope="class")
    def trained(self, data: ContractData, engine: Any) -> tuple[Any, Any]:
        """(model, what its ``fit`` returned)."""
        model = self.make()
        return model, self.fit(model, data, engine)

    @pytest.fixture(scope="class")
    def model(self, trained: tuple[Any, Any]) -> Any:
        return self.served(trained[0])

    # ------------------------------------------------------------------ the contract
    def test_fit_returns_self_and_keeps_the_given_parameters(self, trained):
        model, returned = trained
        assert returned is model
        assert model.get_params() == self.make().get_params()

    def test_predictions_are_finite(self, model, data):
        users, items = data.grid()
        predicted = np.asarray(model.predict(users, items), dtype=float)
        assert predicted.shape == users.shape
        assert np.isfinite(predicted).all()

    def test_predictions_are_clipped_to_the_training_rating_range(self, model, data):
        users, items = data.grid()
        predicted = np.asarray(model.predict(users, items), dtype=float)
        low, high = data.rating_bounds
        assert low <= predicted.min() and predicted.max() <= high

    def test_recommend_skips_every_item_the_user_rated(self, model, data):
        n_items = data.ratings["movieId"].nunique()
        for user in data.some_users():
            rated = set(data.ratings.loc[data.ratings["userId"] == user, "movieId"])
            recs = model.recommend(user, n_items)
            assert len(recs) > 0 and not rated & set(recs["movieId"]), user
            assert len(recs) == len(set(recs["movieId"]))

    def test_recommend_keeps_only_the_asked_genre(self, model, data):
        genres = data.items.set_index("movieId")["genres"]
        for user in data.some_users():
            recs = model.recommend(user, 5, genre=GENRE)
            assert len(recs) > 0
            assert all(GENRE in genres[item] for item in recs["movieId"]), user

    def test_unknown_ids_get_the_documented_fallback(self, model, data):
        recs = model.recommend(UNKNOWN_USER, 5)
        assert len(recs) == 5 and set(recs["movieId"]) <= set(data.items["movieId"])
        self.check_unknown_ids(model, data)

    def test_an_unfitted_model_says_so(self, tmp_path):
        for name, call in self.unfitted_calls(self.make(), tmp_path).items():
            with pytest.raises(ModelError, match="not fitted"):
                call()
            assert not (tmp_path / "unfitted").exists(), name

    def test_save_then_load_predicts_and_recommends_the_same(self, trained, model, data, tmp_path):
        loaded = self.load(trained[0], tmp_path / "saved")
        assert type(loaded) is type(model)
        assert _as_json(loaded.get_params()) == _as_json(model.get_params())
        users, items = data.grid()
        np.testing.assert_allclose(loaded.predict(users, items), model.predict(users, items))
        for user in [*data.some_users(3), UNKNOWN_USER]:
            pd.testing.assert_frame_equal(loaded.recommend(user, 5), model.recommend(user, 5))

    def test_the_same_parameters_and_seed_give_the_same_model(self, trained, model, data, engine):
        again = self.make(**trained[0].get_params())
        self.fit(again, data, engine)
        refitted = self.served(again)
        users, items = data.grid()
        np.testing.assert_array_equal(refitted.predict(users, items), model.predict(users, items))
        for user in data.some_users(3):
            pd.testing.assert_frame_equal(refitted.recommend(user, 5), model.recommend(user, 5))

    def test_get_params_round_trips_through_the_constructor(self, trained):
        fitted = trained[0]
        params = fitted.get_params()
        init = inspect.signature(type(fitted).__init__).parameters
        assert set(params) == set(init) - {"self", "show_progress"}
        assert type(fitted)(**params).get_params() == params


def _as_json(params: dict[str, Any]) -> Any:
    """Parameters as the artifact's meta.json holds them (a tuple comes back as a list)."""
    return json.loads(json.dumps(params, sort_keys=True))


# ---------------------------------------------------------------------- fallbacks shared by kinds
def check_intercept_fallback(model: Any, data: ContractData) -> None:
    """Matrix factorization (``r̂ = μ + b_u + b_i + p_u·q_i``): an unknown user is predicted
    ``μ + b_i``, an unknown item ``μ + b_u``, both ``μ``, clipped; an unknown user's list is
    the items by ``μ + b_i``."""
    user, item = data.ratings["userId"].iloc[0], data.ratings["movieId"].iloc[0]
    u, i = model.user_vocab_.index_one(user), model.item_vocab_.index_one(item)
    mean, low, high = model.global_mean_, *model.rating_range_
    got = model.predict([UNKNOWN_USER, user, UNKNOWN_USER], [item, UNKNOWN_ITEM, UNKNOWN_ITEM])
    expected = [mean + model.item_bias_[i], mean + model.user_bias_[u], mean]
    np.testing.assert_allclose(got, np.clip(expected, low, high), rtol=1e-5)
    intercepts = mean + np.asarray(model.item_bias_, dtype=float)
    best = model.item_vocab_.ids[np.argsort(-intercepts, kind="stable")[:5]]
    assert model.recommend(UNKNOWN_USER, 5)["movieId"].tolist() == best.tolist()


def check_cold_start_rows(model: Any, data: ContractData) -> None:
    """Hybrid: an unknown user (or item) is a cold start whose features hold no id, so any two
    unknown users get the same predictions and the same list."""
    items = np.array(sorted(data.ratings["movieId"].unique()))
    one = model.predict(np.full(items.size, UNKNOWN_USER), items)
    other = model.predict(np.full(items.size, UNKNOWN_USER + 7), items)
    np.testing.assert_array_equal(one, other)
    users = np.array(data.some_users())
    one = model.predict(users, np.full(users.size, UNKNOWN_ITEM))
    other = model.predict(users, np.full(users.size, UNKNOWN_ITEM + 7))
    np.testing.assert_array_equal(one, other)
    pd.testing.assert_frame_equal(
        model.recommend(UNKNOWN_USER, 5), model.recommend(UNKNOWN_USER + 7, 5)
    )


def check_training_ratings_skipped(model: Any, data: ContractData, held_out: pd.DataFrame) -> None:
    """What the hybrid's ``recommend`` does skip: every item the user rated in training."""
    for user in data.some_users():
        rated = set(data.ratings.loc[data.ratings["userId"] == user, "movieId"])
        rated -= set(held_out.loc[held_out["userId"] == user, "movieId"])
        recs = model.recommend(user, data.ratings["movieId"].nunique())
        assert len(recs) > 0 and not rated & set(recs["movieId"]), user
