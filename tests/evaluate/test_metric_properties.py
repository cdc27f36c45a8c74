"""Properties of the metrics, by Hypothesis: bounds, the values of a perfect prediction,
invariance under reordering, and agreement with the textbook formulas written naively."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridrec.evaluate import (
    RANKING_METRICS,
    REGRESSION_METRICS,
    ranking_metrics,
    regression_metrics,
)

STARS = st.integers(1, 10).map(lambda half_stars: half_stars / 2)
PREDICTIONS = st.floats(-1.0, 7.0, allow_nan=False)


@st.composite
def rating_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    y = draw(st.lists(STARS, min_size=n, max_size=n))
    p = draw(st.lists(PREDICTIONS, min_size=n, max_size=n))
    return np.array(y), np.array(p)


@st.composite
def ranked_lists(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Users' top lists (distinct items, -1 for empty slots) and their relevant items (CSR)."""
    n_items = draw(st.integers(2, 30))
    n_users = draw(st.integers(1, 12))
    width = draw(st.integers(1, min(n_items, 12)))
    k = draw(st.integers(1, width))
    top, indptr, indices = [], [0], []
    for _ in range(n_users):
        row = draw(st.permutations(range(n_items)))[:width]
        blanks = draw(st.integers(0, width))
        top.append(list(row[: width - blanks]) + [-1] * blanks)
        relevant = draw(st.lists(st.integers(0, n_items - 1), unique=True, max_size=n_items))
        indices += relevant
        indptr.append(len(indices))
    return np.array(top), np.array(indptr), np.array(indices, dtype=np.int64), k


def _naive_regression(y: list[float], p: list[float]) -> dict[str, float]:
    err = [a - b for a, b in zip(y, p, strict=True)]
    mse = sum(e * e for e in err) / len(err)
    var_y = statistics.pvariance(y)
    var_err = statistics.pvariance(err)
    log_err = [math.log1p(max(a, 0)) - math.log1p(max(b, 0)) for a, b in zip(y, p, strict=True)]
    return {
        "mean_absolute_error": sum(abs(e) for e in err) / len(err),
        "mean_squared_error": mse,
        "mean_squared_log_error": sum(e * e for e in log_err) / len(err),
        "median_absolute_error": statistics.median(abs(e) for e in err),
        "r2_score": 1 - mse / var_y if var_y > 0 else 0.0,
        "explained_variance": 1 - var_err / var_y if var_y > 0 else 0.0,
        "rmse": math.sqrt(mse),
    }


def _naive_ranking(top, indptr, indices, k) -> dict[str, float]:
    sums = dict.fromkeys(RANKING_METRICS, 0.0)
    users = 0
    for u, row in enumerate(top.tolist()):
        relevant = set(indices[indptr[u] : indptr[u + 1]].tolist())
        if not relevant:
            continue
        users += 1
        hits = [item in relevant for item in row[:k]]
        dcg = sum(1 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
        precisions = [sum(hits[: rank + 1]) / (rank + 1) for rank, hit in enumerate(hits) if hit]
        sums["precision"] += sum(hits) / k
        sums["recall"] += sum(hits) / len(relevant)
        sums["ndcg"] += dcg / ideal
        sums["map"] += sum(precisions) / min(len(relevant), k)
        sums["hit_rate"] += any(hits)
    nan = float("nan")
    return {f"{name}@{k}": value / users if users else nan for name, value in sums.items()}


# ---------------------------------------------------------------------- regression metrics
@settings(max_examples=200, deadline=None)
@given(rating_pairs())
def test_regression_metrics_agree_with_the_formulas_and_their_bounds(pair) -> None:
    y, p = pair
    got = regression_metrics(y, p)
    assert list(got) == list(REGRESSION_METRICS)
    want = _naive_regression(y.tolist(), p.tolist())
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    assert got["mean_absolute_error"] >= 0 and got["mean_squared_log_error"] >= 0
    assert got["median_absolute_error"] <= np.abs(y - p).max() + 1e-12
    assert got["mean_absolute_error"] <= got["rmse"] + 1e-12  # Jensen
    assert got["r2_score"] <= 1 and got["explained_variance"] <= 1
    assert got["explained_variance"] >= got["r2_score"] - 1e-12  # var(err) <= mean(err²)


@settings(max_examples=100, deadline=None)
@given(st.lists(STARS, min_size=1, max_size=60))
def test_a_perfect_prediction_has_no_error(stars) -> None:
    y = np.array(stars)
    got = regression_metrics(y, y.copy())
    for name in ("mean_absolute_error", "mean_squared_error", "mean_squared_log_error", "rmse"):
        assert got[name] == 0.0, name
    assert got["median_absolute_error"] == 0.0
    expected = 1.0 if np.var(y) > 0 else 0.0  # documented: 0 when the truth is constant
    assert got["r2_score"] == expected and got["explained_variance"] == expected


@settings(max_examples=100, deadline=None)
@given(rating_pairs(), st.randoms(use_true_random=False))
def test_regression_metrics_ignore_the_order_of_the_pairs(pair, random) -> None:
    y, p = pair
    order = list(range(y.size))
    random.shuffle(order)
    got, shuffled = regression_metrics(y, p), regression_metrics(y[order], p[order])
    for name in REGRESSION_METRICS:
        assert shuffled[name] == pytest.approx(got[name], rel=1e-9, abs=1e-12), name


# ---------------------------------------------------------------------- ranking metrics
@settings(max_examples=200, deadline=None)
@given(ranked_lists())
def test_ranking_metrics_agree_with_the_formulas_and_lie_in_0_1(lists) -> None:
    top, indptr, indices, k = lists
    got = ranking_metrics(top, indptr, indices, k)
    want = _naive_ranking(top, indptr, indices, k)
    assert set(got) == set(want)
    for name, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
            assert 0.0 <= got[name] <= 1.0 + 1e-12, name


@settings(max_examples=100, deadline=None)
@given(ranked_lists())
def test_a_list_of_the_relevant_items_first_is_perfect(lists) -> None:
    _, indptr, indices, k = lists
    n_users = indptr.size - 1
    top = np.full((n_users, k), -1)
    for u in range(n_users):
        relevant = indices[indptr[u] : indptr[u + 1]][:k]
        top[u, : relevant.size] = relevant
    got = ranking_metrics(top, indptr, indices, k)
    counts = np.diff(indptr)
    counted = counts > 0
    if not counted.any():
        assert all(math.isnan(v) for v in got.values())
        return
    assert got[f"ndcg@{k}"] == pytest.approx(1.0)
    assert got[f"map@{k}"] == pytest.approx(1.0)
    assert got[f"hit_rate@{k}"] == 1.0
    shown = np.minimum(counts[counted], k)
    assert got[f"precision@{k}"] == pytest.approx(np.mean(shown / k))
    assert got[f"recall@{k}"] == pytest.approx(np.mean(shown / counts[counted]))


@settings(max_examples=100, deadline=None)
@given(ranked_lists(), st.randoms(use_true_random=False))
def test_ranking_metrics_ignore_the_order_of_users_and_of_relevant_items(lists, random) -> None:
    top, indptr, indices, k = lists
    rows = [indices[indptr[u] : indptr[u + 1]].tolist() for u in range(top.shape[0])]
    order = list(range(top.shape[0]))
    random.shuffle(order)
    shuffled_rows = []
    for u in order:
        row = list(rows[u])
        random.shuffle(row)
        shuffled_rows.append(row)
    new_indptr = np.concatenate([[0], np.cumsum([len(r) for r in shuffled_rows])])
    new_indices = np.array([i for r in shuffled_rows for i in r], dtype=np.int64)
    got = ranking_metrics(top, indptr, indices, k)
    shuffled = ranking_metrics(top[order], new_indptr, new_indices, k)
    for name, value in got.items():
        assert shuffled[name] == pytest.approx(value, rel=1e-12, nan_ok=True), name


@settings(max_examples=50, deadline=None)
@given(ranked_lists())
def test_users_without_relevant_items_do_not_count(lists) -> None:
    top, indptr, indices, k = lists
    extra = np.vstack([top, top[:1]])  # one more user, nothing relevant
    got = ranking_metrics(top, indptr, indices, k)
    with_extra = ranking_metrics(extra, np.append(indptr, indptr[-1]), indices, k)
    for name, value in got.items():
        assert with_extra[name] == pytest.approx(value, rel=1e-12, nan_ok=True), name
