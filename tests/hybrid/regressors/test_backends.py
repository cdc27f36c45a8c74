"""Every regressor backend (linear, boosted, dnn): round trips, contributions, seeds, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hybridrec._errors import DataError, ModelError
from hybridrec.hybrid.regressors import (
    REGRESSOR_KINDS,
    BoostedRegressor,
    DnnRegressor,
    LinearRegressor,
    Regressor,
    load_regressor,
    make_regressor,
    search_space,
)

pytest.importorskip("lightgbm")


pytest.importorskip("torch")


# Small, fast settings: the defaults are sized for millions of rows. One thread: on tiny data
# (and on a shared machine) OpenMP synchronisation costs far more than a second core gives.
FAST: dict[str, dict[str, Any]] = {
    "linear": {},
    "boosted": {
        "n_estimators": 300,
        "num_leaves": 15,
        "learning_rate": 0.1,
        "early_stopping_rounds": 20,
        "n_jobs": 1,
    },
    "dnn": {
        "hidden": (64, 32),
        "batch_size": 128,
        "epochs": 30,
        "patience": 4,
        "lr": 3e-3,
        "n_jobs": 1,
    },
}


def _nonlinear(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] * (X[:, 3] > 0)
    return X, y + 0.05 * rng.normal(size=n)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    return float(1 - np.mean((y - pred) ** 2) / np.var(y))


@pytest.fixture(scope="module")
def nonlinear() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    X, y = _nonlinear(rng, 3000)
    Xv, yv = _nonlinear(rng, 800)
    Xt, yt = _nonlinear(rng, 800)
    return {"X": X, "y": y, "Xv": Xv, "yv": yv, "Xt": Xt, "yt": yt}


@pytest.fixture(scope="module")
def fitted(nonlinear: dict[str, np.ndarray]) -> dict[str, Regressor]:
    names = [f"feat_{j}" for j in range(5)]
    return {
        kind: make_regressor(kind, **FAST[kind]).fit(
            nonlinear["X"],
            nonlinear["y"],
            X_val=nonlinear["Xv"],
            y_val=nonlinear["yv"],
            feature_names=names,
        )
        for kind in REGRESSOR_KINDS
    }


def test_protocol_and_factory(fitted: dict[str, Regressor]) -> None:
    for kind, model in fitted.items():
        assert isinstance(model, Regressor)
        assert model.kind == kind
        assert model.get_params() == {**make_regressor(kind).get_params(), **FAST[kind]}
    assert isinstance(make_regressor("boosted"), BoostedRegressor)
    assert isinstance(make_regressor("dnn"), DnnRegressor)
    with pytest.raises(ModelError, match="unknown regressor kind"):
        make_regressor("forest")
    with pytest.raises(ModelError, match="unknown parameter"):
        make_regressor("linear", alpha=1.0)


def test_nonlinear_target(fitted: dict[str, Regressor], nonlinear: dict[str, np.ndarray]) -> None:
    r2 = {k: _r2(nonlinear["yt"], m.predict(nonlinear["Xt"])) for k, m in fitted.items()}
    assert r2["linear"] < 0.5, r2
    assert r2["boosted"] > 0.9, r2
    assert r2["dnn"] > 0.9, r2
    for model in fitted.values():
        pred = model.predict(nonlinear["Xt"])
        assert pred.dtype == np.float64 and pred.shape == (800,)
        assert model.predict(nonlinear["Xt"][:0]).shape == (0,)
    boosted = fitted["boosted"]
    assert isinstance(boosted, BoostedRegressor)
    # early stopping keeps the round with the lowest validation RMSE
    assert 10 < boosted.best_iteration_ <= 300
    assert boosted.best_iteration_ == int(np.argmin(boosted.val_rmse_)) + 1
    dnn = fitted["dnn"]
    assert isinstance(dnn, DnnRegressor)
    val_rmse = [row["val_rmse"] for row in dnn.training_log_]
    assert dnn.best_epoch_ == int(np.argmin(val_rmse)) + 1
    assert _r2(nonlinear["yv"], dnn.predict(nonlinear["Xv"])) == pytest.approx(
        1 - min(val_rmse) ** 2 / np.var(nonlinear["yv"]), rel=1e-5
    )


@pytest.mark.parametrize("kind", REGRESSOR_KINDS)
def test_contributions_sum_to_prediction(
    kind: str, fitted: dict[str, Regressor], nonlinear: dict[str, np.ndarray]
) -> None:
    model = fitted[kind]
    X = nonlinear["Xt"][:200]
    contrib = model.contributions(X)
    assert contrib.shape == (200, 6)
    tol = 1e-5 if kind == "dnn" else 1e-6  # dnn: float32 network vs float64 attribution
    np.testing.assert_allclose(contrib.sum(axis=1), model.predict(X), atol=tol)
    assert np.ptp(contrib[:, -1]) == 0.0  # one bias for every row
    imp = model.feature_importance()
    assert list(imp) == [f"feat_{j}" for j in range(5)]
    # feat_4 is pure noise: each model ranks the features it can use above it (a linear model
    # cannot use feat_1, which enters as feat_1²)
    strong = ["feat_0", "feat_2"] if kind == "linear" else ["feat_0", "feat_1"]
    assert min(imp[f] for f in strong) > imp["feat_4"], imp


@pytest.mark.parametrize("kind", REGRESSOR_KINDS)
def test_save_load_round_trip(
    kind: str, fitted: dict[str, Regressor], nonlinear: dict[str, np.ndarray], tmp_path: Path
) -> None:
    model = fitted[kind]
    meta = model.save(tmp_path)
    meta = json.loads(json.dumps(meta))  # JSON-able, and survives the trip through meta.json
    assert meta["kind"] == kind
    assert all((tmp_path / f).is_file() for f in meta["files"])
    assert not any(f.endswith((".pkl", ".pickle", ".pt")) for f in meta["files"])
    loaded = load_regressor(tmp_path, meta)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    X = nonlinear["Xt"]
    if kind == "dnn":
        np.testing.assert_allclose(loaded.predict(X), model.predict(X), atol=1e-6, rtol=0)
    else:
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.contributions(X[:20]), model.contributions(X[:20]))
    assert loaded.feature_importance() == pytest.approx(model.feature_importance())


def test_load_errors(fitted: dict[str, Regressor], tmp_path: Path) -> None:
    meta = fitted["boosted"].save(tmp_path)
    with pytest.raises(ModelError, match="not 'linear'"):
        LinearRegressor.load(tmp_path, meta)
    with pytest.raises(ModelError, match="format"):
        BoostedRegressor.load(tmp_path, {**meta, "regressor_format": 99})
    with pytest.raises(ModelError, match="missing"):
        load_regressor(tmp_path / "elsewhere", meta)
    with pytest.raises(ModelError, match="not fitted"):
        DnnRegressor().predict(np.zeros((2, 3)))


@pytest.mark.parametrize("kind", ["boosted", "dnn"])
def test_deterministic_under_seed(kind: str, nonlinear: dict[str, np.ndarray]) -> None:
    X, y = nonlinear["X"][:1000], nonlinear["y"][:1000]
    params = {**FAST[kind], "epochs": 4} if kind == "dnn" else {**FAST[kind], "n_estimators": 40}
    a = make_regressor(kind, **params).fit(X, y, X_val=nonlinear["Xv"], y_val=nonlinear["yv"])
    b = make_regressor(kind, **params).fit(X, y, X_val=nonlinear["Xv"], y_val=nonlinear["yv"])
    c = make_regressor(kind, **{**params, "seed": 1}).fit(X, y)
    np.testing.assert_array_equal(a.predict(nonlinear["Xt"]), b.predict(nonlinear["Xt"]))
    assert not np.array_equal(a.predict(nonlinear["Xt"]), c.predict(nonlinear["Xt"]))


def test_dnn_leaves_global_torch_state_alone(nonlinear: dict[str, np.ndarray]) -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    model = DnnRegressor(hidden=(8,), epochs=2, batch_size=512, n_jobs=1)
    model.fit(nonlinear["X"], nonlinear["y"], X_val=nonlinear["Xv"], y_val=nonlinear["yv"])
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert [row["epoch"] for row in model.training_log_] == [1.0, 2.0]
    assert all(row["val_rmse"] > 0 for row in model.training_log_)


@pytest.mark.parametrize("kind", REGRESSOR_KINDS)
def test_bad_inputs_raise_data_error(kind: str) -> None:
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    model = make_regressor(kind, **FAST[kind])
    X_nan = X.copy()
    X_nan[7, 1] = np.nan
    y_inf = y.copy()
    y_inf[3] = np.inf
    cases: list[tuple[dict[str, Any], str]] = [
        ({"X": X_nan, "y": y}, r"X contains NaN or infinite values \(first at row 7, column 1\)"),
        ({"X": X, "y": y_inf}, r"y contains NaN or infinite values \(first at row 3\)"),
        ({"X": X, "y": y[:-1]}, "49 values but X has 50 rows"),
        ({"X": X[:, 0], "y": y}, "2-D"),
        ({"X": X[:0], "y": y[:0]}, "empty"),
        ({"X": X, "y": y, "X_val": X}, "given together"),
        ({"X": X, "y": y, "X_val": X[:, :2], "y_val": y}, "X_val has 2 features"),
        ({"X": X, "y": y, "feature_names": ["a", "b"]}, "2 feature names for 3"),
        ({"X": X, "y": y, "feature_names": ["a", "a", "b"]}, "unique"),
        ({"X": [["a", "b", "c"]] * 50, "y": y}, "numeric"),
    ]
    for kwargs, message in cases:
        with pytest.raises(DataError, match=message) as info:
            model.fit(**kwargs)
        assert "\n" not in str(info.value)
    cheap = {**FAST[kind], "epochs": 1} if kind == "dnn" else FAST[kind]
    fitted = make_regressor(kind, **cheap).fit(X, y)
    with pytest.raises(DataError, match="has 2 features; the model was fitted on 3"):
        fitted.predict(X[:, :2])
    with pytest.raises(DataError, match="NaN"):
        fitted.contributions(X_nan)


@pytest.mark.parametrize("kind", REGRESSOR_KINDS)
def test_search_space_samples_valid_params(kind: str) -> None:
    rng = np.random.default_rng(0)
    space = search_space(kind)
    defaults = make_regressor(kind).get_params()
    assert space and set(space) <= set(defaults)
    samples = [{name: draw(rng) for name, draw in space.items()} for _ in range(30)]
    json.dumps(samples)
    for params in samples:
        assert make_regressor(kind, **params).get_params() == {**defaults, **params}
    # draws vary and respect their ranges
    for name in space:
        assert len({json.dumps(s[name]) for s in samples}) > 1, name
    if kind == "boosted":
        assert all(5 <= s["min_child_samples"] <= 200 for s in samples)
        assert all(0.5 <= s["feature_fraction"] <= 1.0 for s in samples)
    if kind == "dnn":
        assert all(0.0 <= s["dropout"] < 0.3 for s in samples)
    # one sampled configuration trains
    X, y = _nonlinear(np.random.default_rng(1), 300)
    quick = {
        "boosted": {"n_estimators": 20, "n_jobs": 1},
        "dnn": {"epochs": 2, "n_jobs": 1},
        "linear": {},
    }[kind]
    model = make_regressor(kind, **{**samples[0], **quick}).fit(X, y)
    assert np.isfinite(model.predict(X)).all()
    with pytest.raises(ModelError):
        search_space("forest")


def test_dnn_divergence_is_a_clear_error() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(2000, 4)), rng.normal(size=2000)
    with pytest.raises(ModelError, match="diverged in epoch 1"):
        DnnRegressor(lr=1e30, batch_size=64, epochs=3, n_jobs=1).fit(X, y)


def test_zero_patience_disables_early_stopping(nonlinear: dict[str, np.ndarray]) -> None:
    X, y = nonlinear["X"][:500], nonlinear["y"][:500]
    # lr so high that validation loss cannot keep falling: early stopping would cut in
    model = DnnRegressor(hidden=(4,), epochs=4, patience=0, batch_size=64, lr=0.3, n_jobs=1)
    model.fit(X, y, X_val=nonlinear["Xv"], y_val=nonlinear["yv"])
    assert len(model.training_log_) == 4
    val_rmse = [row["val_rmse"] for row in model.training_log_]
    assert model.best_epoch_ == int(np.argmin(val_rmse)) + 1
