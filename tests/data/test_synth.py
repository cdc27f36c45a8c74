"""The seeded synthetic MovieLens generator: exact sizes, invariants, truth, files, determinism."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridrec import HybridrecError, NotFoundError
from hybridrec.data import (
    GENRES,
    SynthConfig,
    SynthConfigError,
    SyntheticData,
    generate,
    load_truth,
    true_ratings,
    write_synthetic,
)

HALF_STARS = np.arange(1, 11) / 2.0
SMALL = SynthConfig(n_users=300, n_items=200, n_ratings=12_000, seed=7)
# Big enough for the distributional checks, still well under a second.
MEDIUM = SynthConfig(n_users=3_000, n_items=2_000, n_ratings=150_000, seed=11)


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    return generate(SMALL)


@pytest.fixture(scope="module")
def medium() -> SyntheticData:
    return generate(MEDIUM)


def _check_invariants(data: SyntheticData, config: SynthConfig) -> None:
    r = data.ratings
    assert list(r.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert len(r) == config.n_ratings
    assert not r.duplicated(["userId", "movieId"]).any()
    assert np.isin(r["rating"].to_numpy(), HALF_STARS).all()
    counts = r.groupby("userId").size()
    assert set(counts.index) == set(range(1, config.n_users + 1))
    expected_min = min(config.min_user_ratings, config.n_ratings // config.n_users, config.n_items)
    assert counts.min() >= expected_min
    assert counts.max() <= config.n_items
    assert r["movieId"].between(1, config.n_items).all()
    if config.cover_items and config.n_ratings >= config.n_items:
        assert r["movieId"].nunique() == config.n_items
    # ml-20m order: by userId, then movieId.
    keys = r["userId"].to_numpy().astype(np.int64) * (config.n_items + 1) + r["movieId"].to_numpy()
    assert (np.diff(keys) > 0).all()
    ts = r["timestamp"].to_numpy()
    assert ts.min() >= config.first_timestamp and ts.max() <= config.last_timestamp
    assert len(data.movies) == config.n_items


def test_small_config_invariants(small: SyntheticData) -> None:
    _check_invariants(small, SMALL)
    assert small.ratings["userId"].dtype == np.int32
    assert small.ratings["timestamp"].dtype == np.int64


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_users=st.integers(1, 25),
    n_items=st.integers(1, 25),
    density=st.floats(0.0, 1.0),
    n_factors=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    min_user_ratings=st.integers(1, 30),
    cover_items=st.booleans(),
)
def test_random_small_configs_keep_invariants(
    n_users: int,
    n_items: int,
    density: float,
    n_factors: int,
    seed: int,
    min_user_ratings: int,
    cover_items: bool,
) -> None:
    lo, hi = n_users, n_users * n_items
    n_ratings = lo + round(density * (hi - lo))
    config = SynthConfig(
        n_users=n_users,
        n_items=n_items,
        n_ratings=n_ratings,
        n_factors=n_factors,
        seed=seed,
        min_user_ratings=min_user_ratings,
        cover_items=cover_items,
    )
    _check_invariants(generate(config), config)


def test_fully_dense_config_has_every_pair() -> None:
    config = SynthConfig(n_users=13, n_items=9, n_ratings=13 * 9, seed=3)
    r = generate(config).ratings
    assert len(r) == 117
    assert (r.groupby("userId").size() == 9).all()
    assert (r.groupby("movieId").size() == 13).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_ratings": 101}, "impossible without duplicate"),  # > n_users * n_items = 100
        ({"n_ratings": 9}, "at least one rating"),  # < n_users = 10
        ({"n_users": 0}, "positive int"),
        ({"n_items": -3}, "positive int"),
        ({"n_factors": 0}, "positive int"),
        ({"noise": -0.1}, "noise"),
        ({"interaction_sd": float("nan")}, "interaction_sd"),
        ({"genres_per_item": 0.5}, "genres_per_item"),
        ({"max_user_share": 0.0}, "max_user_share"),
        ({"first_timestamp": 10, "last_timestamp": 5}, "timestamp"),
    ],
)
def test_impossible_configs_raise_value_error(changes: dict[str, object], message: str) -> None:
    base = {"n_users": 10, "n_items": 10, "n_ratings": 50}
    with pytest.raises(ValueError, match=message) as info:
        SynthConfig(**{**base, **changes})  # type: ignore[arg-type]
    # Also a HybridrecError, so the CLI reports it as bad input (exit code 2).
    assert isinstance(info.value, SynthConfigError)
    assert isinstance(info.value, HybridrecError)


def test_popularity_and_activity_are_long_tailed(medium: SyntheticData) -> None:
    item_counts = np.sort(medium.ratings.groupby("movieId").size().to_numpy())[::-1]
    top = item_counts[: MEDIUM.n_items // 10].sum() / item_counts.sum()
    assert top > 0.4
    assert item_counts[0] > 20 * np.median(item_counts)
    user_counts = medium.ratings.groupby("userId").size().to_numpy()
    assert user_counts.min() == 20
    assert user_counts.max() > 5 * np.median(user_counts)
    # Popular movies (by the true weights) are the most rated ones.
    weights = medium.truth.item_popularity
    counts = medium.ratings.groupby("movieId").size().reindex(range(1, MEDIUM.n_items + 1))
    rho = pd.Series(weights).rank().corr(pd.Series(counts.to_numpy()).rank())
    assert rho > 0.8


def test_ratings_look_like_movielens(medium: SyntheticData) -> None:
    ratings = medium.ratings["rating"].to_numpy(dtype=np.float64)
    assert 3.3 < ratings.mean() < 3.7
    assert 0.85 < ratings.std() < 1.15
    # Every half star occurs; 4.0 is far more common than 1.0.
    freq = pd.Series(ratings).value_counts(normalize=True)
    assert set(freq.index) == set(HALF_STARS)
    assert freq[4.0] > 5 * freq[1.0]


def test_noise_free_ratings_are_rounded_truth() -> None:
    config = dataclasses.replace(SMALL, noise=0.0)
    data = generate(config)
    r = data.ratings
    star = true_ratings(data.truth, r["userId"].to_numpy(), r["movieId"].to_numpy())
    expected = np.clip(np.floor(2 * star + 0.5) / 2, 0.5, 5.0)
    np.testing.assert_array_equal(r["rating"].to_numpy(dtype=np.float64), expected)


def test_noise_changes_only_the_ratings(small: SyntheticData) -> None:
    other = generate(dataclasses.replace(SMALL, noise=0.9))
    pd.testing.assert_frame_equal(
        other.ratings.drop(columns="rating"), small.ratings.drop(columns="rating")
    )
    np.testing.assert_array_equal(other.truth.user_factors, small.truth.user_factors)
    assert not np.array_equal(other.ratings["rating"], small.ratings["rating"])


def test_factors_explain_much_more_than_biases(medium: SyntheticData) -> None:
    r = medium.ratings
    truth = medium.truth
    y = r["rating"].to_numpy(dtype=np.float64)
    full = true_ratings(truth, r["userId"].to_numpy(), r["movieId"].to_numpy(), clip=True)
    u = r["userId"].to_numpy() - 1
    i = r["movieId"].to_numpy() - 1
    biases = np.clip(truth.mu + truth.user_bias[u] + truth.item_bias[i], 0.5, 5.0)
    rmse_full = np.sqrt(np.mean((y - full) ** 2))
    rmse_biases = np.sqrt(np.mean((y - biases) ** 2))
    # Residual sd ≈ sqrt(noise² + rounding); the biases alone leave the p·q part as well.
    assert rmse_full < 0.6
    assert rmse_biases > rmse_full + 0.15
    assert np.sqrt(np.mean((y - y.mean()) ** 2)) > rmse_biases


def test_genres_are_valid_and_correlated_with_factors(medium: SyntheticData) -> None:
    movies = medium.movies
    assert list(movies.columns) == ["movieId", "title", "genres"]
    genre_lists = movies["genres"].str.split("|")
    assert all(1 <= len(g) <= len(GENRES) and set(g) <= set(GENRES) for g in genre_lists)
    assert all(g == sorted(g) for g in genre_lists)
    assert 1.6 < genre_lists.map(len).mean() < 2.4
    years = movies["title"].str.extract(r"^Synthetic Movie (\d+) \((\d{4})\)$")
    assert (years[0].astype(int) == movies["movieId"]).all()
    assert years[1].astype(int).between(1902, 2015).all()

    truth = medium.truth
    z = truth.item_factors @ truth.genre_directions.T / MEDIUM.factor_sd  # (items, genres)
    tested = 0
    for g, name in enumerate(GENRES):
        has = genre_lists.map(lambda gs, name=name: name in gs).to_numpy()
        if has.sum() < 30:
            continue
        tested += 1
        # Items of a genre lean towards its direction: their mean projection is well above the
        # overall mean (0 in expectation), by many standard errors.
        shift = z[has, g].mean() - z[:, g].mean()
        assert shift > 0.3, name
        assert shift > 5 * z[:, g].std() / np.sqrt(has.sum()), name
    assert tested >= 10


def test_genres_without_strength_are_not_correlated() -> None:
    data = generate(dataclasses.replace(MEDIUM, genre_strength=0.0, n_ratings=10_000))
    genre_lists = data.movies["genres"].str.split("|")
    has = genre_lists.map(lambda gs: "Drama" in gs).to_numpy()
    z = data.truth.item_factors @ data.truth.genre_directions.T / MEDIUM.factor_sd
    g = GENRES.index("Drama")
    assert abs(z[has, g].mean() - z[~has, g].mean()) < 0.15


def test_true_ratings_broadcast_clip_and_unknown_ids(small: SyntheticData) -> None:
    truth = small.truth
    items = np.arange(1, SMALL.n_items + 1)
    one_user = true_ratings(truth, 5, items)
    assert one_user.shape == (SMALL.n_items,)
    expected = (
        truth.mu
        + truth.user_bias[4].astype(np.float64)
        + truth.item_bias.astype(np.float64)
        + truth.item_factors.astype(np.float64) @ truth.user_factors[4].astype(np.float64)
    )
    np.testing.assert_allclose(one_user, expected, rtol=0, atol=1e-12)
    grid = true_ratings(truth, np.arange(1, 4)[:, None], items[None, :], clip=True)
    assert grid.shape == (3, SMALL.n_items)
    assert grid.min() >= 0.5 and grid.max() <= 5.0
    with pytest.raises(KeyError, match="userId"):
        true_ratings(truth, [1, SMALL.n_users + 1], [1, 1])
    with pytest.raises(KeyError, match="movieId"):
        true_ratings(truth, 1, 0)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_write_is_deterministic_and_parses(tmp_path: Path, small: SyntheticData) -> None:
    a = write_synthetic(tmp_path / "a", SMALL, show_progress=True)
    write_synthetic(tmp_path / "b", SMALL)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(files_a) == [
        "movies.csv",
        "ratings.csv",
        "truth/genres.parquet",
        "truth/items.parquet",
        "truth/truth.json",
        "truth/users.parquet",
    ]
    assert files_a == files_b
    c = tmp_path / "c"
    write_synthetic(c, dataclasses.replace(SMALL, seed=8))
    assert (c / "ratings.csv").read_bytes() != files_a["ratings.csv"]

    text = files_a["ratings.csv"].decode()
    lines = text.splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp"
    assert len(lines) == SMALL.n_ratings + 1
    line = re.compile(r"^\d+,\d+,(0\.5|[1-4]\.[05]|5\.0),\d+$")
    assert all(line.match(x) for x in lines[1:])

    ratings = pd.read_csv(a.ratings_path)
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    pd.testing.assert_frame_equal(ratings, small.ratings, check_dtype=False)
    movies = pd.read_csv(a.movies_path)
    assert files_a["movies.csv"].decode().splitlines()[0] == "movieId,title,genres"
    pd.testing.assert_frame_equal(movies, small.movies, check_dtype=False)

    assert a.n_ratings == SMALL.n_ratings
    assert a.ratings_mean == pytest.approx(ratings["rating"].mean(), abs=1e-12)
    assert a.ratings_sd == pytest.approx(ratings["rating"].std(ddof=0), abs=1e-12)


def test_truth_round_trips(tmp_path: Path, small: SyntheticData) -> None:
    summary = write_synthetic(tmp_path, SMALL)
    meta = json.loads((summary.truth_dir / "truth.json").read_text())
    assert meta["mu"] == SMALL.mu and meta["noise"] == SMALL.noise
    assert meta["n_ratings"] == SMALL.n_ratings and meta["n_users"] == SMALL.n_users
    assert sum(meta["rating_counts"].values()) == SMALL.n_ratings
    assert SynthConfig.from_dict(meta["config"]) == SMALL

    for where in (tmp_path, summary.truth_dir):
        loaded = load_truth(where)
        assert loaded.config == SMALL
        assert loaded.mu == small.truth.mu
        assert loaded.genres == GENRES
        for name in (
            "user_ids",
            "user_bias",
            "user_factors",
            "item_ids",
            "item_bias",
            "item_factors",
            "item_popularity",
            "genre_directions",
        ):
            got, want = getattr(loaded, name), getattr(small.truth, name)
            assert got.dtype == want.dtype, name
            np.testing.assert_array_equal(got, want, err_msg=name)
    users = pd.read_parquet(summary.truth_dir / "users.parquet")
    assert list(users.columns) == ["userId", "bias", "factors"]
    assert len(users["factors"].iloc[0]) == SMALL.n_factors

    r = small.ratings.head(50)
    np.testing.assert_array_equal(
        true_ratings(load_truth(tmp_path), r["userId"], r["movieId"]),
        true_ratings(small.truth, r["userId"], r["movieId"]),
    )


def test_load_truth_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_truth(tmp_path / "nowhere")
