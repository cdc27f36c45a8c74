"""Quality floors and the demo on real MovieLens 100K (from the RecBole wheel, through pip)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hybridrec.cli import main
from hybridrec.hybrid import HybridRecommender
from hybridrec.mf import MatrixFactorization

pytestmark = pytest.mark.realdata


def test_default_mf_meets_the_accuracy_floor(ml100k):
    """Protocol ml100k-8020: random 80/20 split, seed 42 (the model's own hold-out)."""
    model = MatrixFactorization().fit(ml100k.ratings(), items=ml100k.movies())
    assert model.eval_fraction == 0.2 and model.seed == 42
    assert len(model.eval_set_) == pytest.approx(20_000, rel=0.02)
    assert model.metrics_["rmse"] <= 0.910
    recs = model.recommend(903, 5, genre="Comedy")
    assert len(recs) == 5 and recs["predicted_rating"].between(1, 5).all()


def test_demo_runs_end_to_end(tmp_path):
    result = CliRunner().invoke(main, ["--workspace", str(tmp_path / "ws"), "demo"])
    assert result.exit_code == 0, result.output
    for expected in (
        "ML.TRAINING_INFO",
        "Top-5 Comedy for user 903",
        "global__intercept__",
        "rmse",
        "hybrid_dataset",
        "recommender_hybrid",
        "a new user with no ratings",
    ):
        assert expected in result.stdout
    # the last line names the report, the thing to open next
    last = result.stdout.rstrip().splitlines()[-1]
    assert last == f"report: {tmp_path / 'ws' / 'report.html'}"
    # the leak-free hybrid is saved, and beats the MF it is built on
    hybrid = HybridRecommender.load(tmp_path / "ws" / "models" / "hybrid_gbm")
    mf = MatrixFactorization.load(tmp_path / "ws" / "models" / "recommender_16")
    assert hybrid.metrics_["rmse"] < mf.metrics_["rmse"]
