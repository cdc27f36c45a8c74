"""Implicit-feedback ALS: kernel vs reference, ranking quality, BigQuery ML metric names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.data import taste_driven_ratings

from hybridrec._core.sparse import Csr
from hybridrec.data import SynthConfig, generate
from hybridrec.evaluate import ranking_metrics
from hybridrec.mf import ImplicitMatrixFactorization, _kernels
from hybridrec.mf._implicit_kernels import rated_loss_sum, solve_side_cg, solve_side_cholesky
from hybridrec.mf._reference import solve_side_implicit_reference


def _random_system(k: int, n_rows: int = 40, n_cols: int = 300, nnz: int = 3000):
    """A CSR of ratings (the first row dense enough for several 256-rating blocks, the last
    row empty) and random column factors."""
    rng = np.random.default_rng(k)
    rows = np.r_[np.zeros(n_cols, dtype=np.int64), rng.integers(1, n_rows - 1, nnz)]
    cols = np.r_[np.arange(n_cols), rng.integers(0, n_cols, nnz)]
    frame = pd.DataFrame({"r": rows, "c": cols}).drop_duplicates()
    values = rng.uniform(0, 5, len(frame)).astype(np.float32)
    csr = Csr.build(frame["r"].to_numpy(), frame["c"].to_numpy(), values, n_rows, sort_cols=False)
    y = rng.normal(0, 0.3, (n_cols, k)).astype(np.float32)
    return csr, y, y.T.astype(np.float64) @ y.astype(np.float64)


@pytest.mark.parametrize("k", [1, 4, 9, 37])
def test_cholesky_kernel_matches_dense_reference(k):
    csr, y, gram = _random_system(k)
    out = np.full((len(csr.indptr) - 1, k), 7, dtype=np.float32)
    solve_side_cholesky(csr.indptr, csr.indices, csr.values, y, gram, 0.8, 2.0, out)
    ref = solve_side_implicit_reference(csr.indptr, csr.indices, csr.values, y, 0.8, 2.0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert np.all(out[-1] == 0)


def test_narrow_simd_cholesky_kernel_matches_reference(tmp_path):
    """The 8-lane Gram and Cholesky (AVX2 machines) on this machine, with a fresh cache."""
    code = (
        "import test_implicit\n"
        "from hybridrec.mf import _simd\n"
        "assert _simd.LANES == 8, _simd.LANES\n"
        "for k in (4, 37):\n"
        "    test_implicit.test_cholesky_kernel_matches_dense_reference(k)\n"
    )
    here = Path(__file__).parent
    paths = [str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "HYBRIDREC_SIMD_LANES": "8",
        "NUMBA_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("k", [1, 4, 9, 37])
def test_cg_kernel_reaches_the_exact_solution_in_k_steps(k):
    csr, y, gram = _random_system(k)
    out = np.full((len(csr.indptr) - 1, k), 0.1, dtype=np.float32)
    gram32 = gram.astype(np.float32)
    solve_side_cg(csr.indptr, csr.indices, csr.values, y, gram32, 0.8, 2.0, k + 5, out)
    ref = solve_side_implicit_reference(csr.indptr, csr.indices, csr.values, y, 0.8, 2.0)
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-5)
    assert np.all(out[-1] == 0)


def test_cg_steps_from_a_warm_start_approach_the_solution():
    k = 16
    csr, y, gram = _random_system(k)
    ref = solve_side_implicit_reference(csr.indptr, csr.indices, csr.values, y, 0.8, 2.0)
    rng = np.random.default_rng(0)
    start = (ref + rng.normal(0, 0.05, ref.shape)).astype(np.float32)
    start[-1] = 0
    errors = []
    for steps in (1, 2, 3):
        out = start.copy()
        args = (csr.indptr, csr.indices, csr.values, y, gram.astype(np.float32), 0.8, 2.0)
        solve_side_cg(*args, steps, out)
        errors.append(np.abs(out - ref).max())
    assert errors[0] < np.abs(start - ref).max()
    assert errors[2] < errors[1] < errors[0]


def test_rated_loss_matches_numpy():
    csr, y, _ = _random_system(6)
    x = np.random.default_rng(1).normal(0, 0.3, (len(csr.indptr) - 1, 6)).astype(np.float32)
    rows = np.repeat(np.arange(len(csr.indptr) - 1), np.diff(csr.indptr))
    s = np.einsum("ij,ij->i", x[rows].astype(np.float64), y[csr.indices].astype(np.float64))
    expected = np.sum((1 + 0.8 * csr.values) * (1 - s) ** 2 - s**2)
    got = rated_loss_sum(csr.indptr, csr.indices, csr.values, x, y, 0.8)
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def synthetic():
    """Users choose what to watch by taste (see ``taste_driven_ratings``)."""
    n_items = 200
    ratings = taste_driven_ratings(400, n_items, per_user=40, seed=3)
    items = generate(SynthConfig(n_users=10, n_items=n_items, n_ratings=400, seed=1)).movies
    return ratings, items.assign(genres=items["genres"].str.split("|"))


@pytest.fixture(scope="module")
def implicit(synthetic) -> ImplicitMatrixFactorization:
    ratings, items = synthetic
    return ImplicitMatrixFactorization(num_factors=8, l2_reg=5.0, max_iterations=8).fit(
        ratings, items=items
    )


def test_reports_bigquery_implicit_metric_names(implicit):
    metrics = implicit.metrics_
    for name in (
        "mean_average_precision",
        "normalized_discounted_cumulative_gain",
        "average_rank",
        "mean_squared_error",
        "precision@10",
        "coverage@10",
        "novelty@10",
    ):
        assert name in metrics, name
    assert 0 <= metrics["average_rank"] < 0.5, "held-out items must rank better than chance"
    assert metrics["mean_average_precision"] == metrics["map@10"]


def test_average_rank_matches_a_direct_count(implicit):
    """Percentile rank among unseen items, counted user by user with NumPy."""
    held = implicit.eval_set_
    u = implicit.user_vocab_.index_of(held["userId"])
    i = implicit.item_vocab_.index_of(held["movieId"])
    w = held["rating"].to_numpy()
    known = (u >= 0) & (i >= 0)
    u, i, w = u[known], i[known], w[known]
    train = implicit._train_csr
    ranks = np.empty(u.size)
    for e in range(u.size):
        row = implicit.item_factors_ @ implicit.user_factors_[u[e]]
        row[train.indices[train.indptr[u[e]] : train.indptr[u[e] + 1]]] = -np.inf
        unseen = np.isfinite(row).sum()
        ranks[e] = (row > row[i[e]]).sum() / (unseen - 1)
    expected = np.sum(w * ranks) / np.sum(w)
    assert implicit._average_rank(u, i, w) == pytest.approx(expected, rel=1e-6)
    assert implicit.metrics_["average_rank"] == pytest.approx(expected, rel=1e-6)


def test_ranks_better_than_popularity(implicit):
    held = implicit.eval_set_
    model_p10 = implicit.metrics_["precision@10"]
    # popularity baseline on the same split and exclusions
    train = implicit._train_csr
    pop = np.bincount(train.indices, minlength=len(implicit.item_vocab_)).astype(np.float32)
    n_users = len(implicit.user_vocab_)
    scores = np.tile(pop, (n_users, 1))
    top, _ = _kernels.top_n_rows(scores, 0, train.indptr, train.indices, 10)
    u = implicit.user_vocab_.index_of(held["userId"])
    i = implicit.item_vocab_.index_of(held["movieId"])
    rel = (held["rating"].to_numpy() >= 4) & (u >= 0) & (i >= 0)
    relevant = Csr.build(u[rel], i[rel], np.ones(rel.sum(), np.float32), n_users, sort_cols=True)
    pop_p10 = ranking_metrics(top, relevant.indptr, relevant.indices, 10)["precision@10"]
    assert model_p10 > pop_p10


def test_scores_are_confidences_not_ratings(implicit):
    recs = implicit.recommend(implicit.user_vocab_.ids[0], 5)
    assert "predicted_rating_confidence" in recs.columns
    assert recs["predicted_rating_confidence"].is_monotonic_decreasing
    w = implicit.weights(users=[implicit.user_vocab_.ids[0]])
    assert w["intercept"].iloc[0] == 0.0


def test_save_load_round_trip(implicit, tmp_path):
    implicit.save(tmp_path / "imp")
    loaded = ImplicitMatrixFactorization.load(tmp_path / "imp")
    user = implicit.user_vocab_.ids[1]
    pd.testing.assert_frame_equal(loaded.recommend(user, 5), implicit.recommend(user, 5))
    assert loaded.get_params() == implicit.get_params()


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_fit_is_deterministic_under_a_seed(synthetic, solver):
    ratings, _ = synthetic
    fits = [
        ImplicitMatrixFactorization(num_factors=8, l2_reg=5.0, max_iterations=4, solver=solver).fit(
            ratings
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].user_factors_, fits[1].user_factors_)
    np.testing.assert_array_equal(fits[0].item_factors_, fits[1].item_factors_)
    assert fits[0].training_log_[-1]["loss"] == fits[1].training_log_[-1]["loss"]


def test_cg_reaches_the_exact_solvers_objective(synthetic):
    """The per-iteration log is the objective; CG steps track the exact ALS to within 1 %."""
    ratings, _ = synthetic
    params = {"num_factors": 8, "l2_reg": 5.0, "max_iterations": 10, "early_stop": False}
    exact = ImplicitMatrixFactorization(solver="cholesky", **params).fit(ratings)
    cg = ImplicitMatrixFactorization(solver="cg", **params).fit(ratings)
    losses = [row["loss"] for row in cg.training_log_]
    assert losses == sorted(losses, reverse=True), "each CG sweep lowers the objective"
    assert cg.training_log_[-1]["loss"] == pytest.approx(exact.training_log_[-1]["loss"], rel=0.01)


def test_logged_loss_is_the_objective_per_rated_pair(implicit):
    """The last logged loss, recomputed densely from the final factors."""
    train = implicit._train_csr
    x = implicit.user_factors_.astype(np.float64)
    y = implicit.item_factors_.astype(np.float64)
    confidence = np.ones((x.shape[0], y.shape[0]))
    preference = np.zeros_like(confidence)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(train.indptr))
    confidence[rows, train.indices] = 1 + implicit.wals_alpha * train.values
    preference[rows, train.indices] = 1
    dense = np.sum(confidence * (preference - x @ y.T) ** 2) / train.indices.size
    assert implicit.training_log_[-1]["loss"] == pytest.approx(dense, rel=1e-6)


@pytest.mark.parametrize(
    ("params", "name"), [({"solver": "lu"}, "solver"), ({"cg_steps": 0}, "cg_steps")]
)
def test_bad_solver_options_are_named(params, name):
    frame = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [1.0, 2.0]})
    with pytest.raises(ValueError, match=name):
        ImplicitMatrixFactorization(**params).fit(frame)


def test_negative_strengths_are_rejected():
    from hybridrec import DataError

    frame = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [1.0, -1.0]})
    with pytest.raises(DataError, match=">= 0"):
        ImplicitMatrixFactorization().fit(frame)
