"""Properties of the splits, by Hypothesis: the seeded hold-out every model makes, and the
cold-start scenarios and folds of ``hybridrec compare`` — disjoint, complete, the same under
the same seed, and of the asked size."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridrec import MatrixFactorization
from hybridrec.data import holdout_mask

# the scenarios have no public name yet; compare_models is their only caller
from hybridrec.hybrid._compare import partition_scenario, split_scenario

KEY = ["userId", "movieId"]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def ratings(draw: st.DrawFn, min_size: int = 30, max_size: int = 300) -> pd.DataFrame:
    """Distinct (user, item) pairs with half-star ratings."""
    n_users = draw(st.integers(3, 30))
    n_items = draw(st.integers(3, 30))
    n = draw(st.integers(min(min_size, n_users * n_items), min(max_size, n_users * n_items)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    return pd.DataFrame(
        {
            "userId": cells // n_items + 1,
            "movieId": cells % n_items + 101,
            "rating": rng.integers(1, 11, n) / 2,
        }
    )


def _rows(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(map(tuple, frame[KEY].to_numpy().tolist()))


def _fit(frame: pd.DataFrame, fraction: float, seed: int) -> MatrixFactorization:
    """A one-sweep MF: its ``eval_set_`` is the hold-out every model makes with this seed."""
    model = MatrixFactorization(num_factors=1, max_iterations=1, eval_fraction=fraction, seed=seed)
    return model.fit(frame)


# ---------------------------------------------------------------------- the hold-out
@settings(max_examples=10, deadline=None)
@given(ratings(), st.floats(0.05, 0.5), st.integers(0, 2**31 - 1))
def test_the_hold_out_is_disjoint_complete_and_seeded(frame, fraction, seed) -> None:
    model = _fit(frame, fraction, seed)
    held = model.eval_set_
    assert len(held) == len(_rows(held)) and _rows(held) <= _rows(frame)
    # the training part is the rest: exactly its users and items are in the vocabularies
    train = frame[~frame.set_index(KEY).index.isin(held.set_index(KEY).index)]
    assert len(train) + len(held) == len(frame)
    assert model.user_vocab_.ids.tolist() == sorted(train["userId"].unique())
    assert model.item_vocab_.ids.tolist() == sorted(train["movieId"].unique())
    # held-out rows keep their ratings
    joined = held.merge(frame, on=KEY, suffixes=("", "_given"))
    assert (joined["rating"] == joined["rating_given"]).all()
    pd.testing.assert_frame_equal(_fit(frame, fraction, seed).eval_set_, held)
    # the one hold-out function is the one the model used
    assert _rows(held) == _rows(frame[holdout_mask(len(frame), fraction, seed)])


@settings(max_examples=8, deadline=None)
@given(st.floats(0.05, 0.5), st.integers(0, 2**31 - 1))
def test_the_hold_out_fraction_is_respected_and_the_seed_matters(fraction, seed) -> None:
    """Each rating is held out independently with probability ``fraction``: the count is
    binomial, within 5 standard deviations of ``fraction * n``."""
    n = 4000
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "userId": np.arange(n) // 40 + 1,
            "movieId": np.arange(n) % 40 + 1,
            "rating": rng.integers(1, 11, n) / 2,
        }
    )
    held = _fit(frame, fraction, seed).eval_set_
    assert abs(len(held) - fraction * n) <= 5 * np.sqrt(n * fraction * (1 - fraction))
    assert _rows(held) != _rows(_fit(frame, fraction, seed + 1).eval_set_)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 5000), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_holdout_mask_is_seeded_and_of_the_asked_size(n, fraction, seed) -> None:
    mask = holdout_mask(n, fraction, seed)
    assert mask.shape == (n,) and mask.dtype == bool
    assert np.array_equal(mask, holdout_mask(n, fraction, seed))
    spread = 5 * np.sqrt(n * fraction * (1 - fraction)) + 1
    assert abs(int(mask.sum()) - fraction * n) <= spread
    if fraction == 0.0:
        assert not mask.any()


# ---------------------------------------------------------------------- scenarios and folds
@SETTINGS
@given(ratings(), st.sampled_from(["warm", "cold-user", "cold-item"]), st.integers(0, 2**31 - 1))
def test_a_scenario_split_is_disjoint_complete_and_seeded(frame, scenario, seed) -> None:
    train, test = split_scenario(frame, scenario, seed)
    assert not _rows(train) & _rows(test)
    assert _rows(train) | _rows(test) == _rows(frame) and len(train) + len(test) == len(frame)
    _, again_test = split_scenario(frame, scenario, seed)
    pd.testing.assert_frame_equal(again_test, test)
    if scenario != "warm":
        key = "userId" if scenario == "cold-user" else "movieId"
        cold = set(test[key])
        assert not cold & set(train[key])  # every rating of a cold id is held out
        assert len(cold) == max(1, frame[key].nunique() // 10)


@SETTINGS
@given(ratings(), st.sampled_from(["cold-user", "cold-item"]), st.integers(0, 2**31 - 1), st.data())
def test_folds_partition_the_ids_and_the_ratings(frame, scenario, seed, data) -> None:
    key = "userId" if scenario == "cold-user" else "movieId"
    n_ids = frame[key].nunique()
    n_folds = data.draw(st.integers(2, min(n_ids, 8)), label="n_folds")
    folds = list(partition_scenario(frame, scenario, n_folds, seed))
    assert [f for f, _, _ in folds] == list(range(n_folds))
    tested: list[tuple[int, int]] = []
    cold_ids: list[int] = []
    for _, train, test in folds:
        assert _rows(train) | _rows(test) == _rows(frame) and not _rows(train) & _rows(test)
        assert not set(test[key]) & set(train[key])
        tested += list(_rows(test))
        cold_ids += sorted(set(test[key]))
    # every rating tested once; every id cold in exactly one fold; folds differ by one id
    assert sorted(tested) == sorted(_rows(frame))
    assert sorted(cold_ids) == sorted(frame[key].unique())
    sizes = [test[key].nunique() for _, _, test in folds]
    assert max(sizes) - min(sizes) <= 1
    again = list(partition_scenario(frame, scenario, n_folds, seed))
    for (_, _, test), (_, _, test_again) in zip(folds, again, strict=True):
        pd.testing.assert_frame_equal(test, test_again)
