"""HTTP API: every endpoint in-process (TestClient), bad inputs, hot reload, and a schemathesis
run against the app's own OpenAPI spec (no 5xx, responses match the spec)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

with warnings.catch_warnings():  # Starlette >= 1 prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from hybridrec import HybridrecError, ModelError  # noqa: E402
from hybridrec.data import SynthConfig, generate  # noqa: E402
from hybridrec.mf import MatrixFactorization  # noqa: E402
from hybridrec.serve import CONFIG_ENV, app_from_env, create_app  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _train(seed: int) -> MatrixFactorization:
    data = generate(SynthConfig(n_users=200, n_items=100, n_ratings=8000, seed=42))
    movies = data.movies.assign(genres=data.movies["genres"].str.split("|"))
    model = MatrixFactorization(num_factors=4, max_iterations=3, seed=seed)
    return model.fit(data.ratings, items=movies)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, MatrixFactorization, MatrixFactorization]:
    """A saved tiny model, the same model loaded, and a second model (other seed) for reloads."""
    root = tmp_path_factory.mktemp("serve")
    path = root / "models" / "tiny"
    _train(seed=1).save(path)
    other = _train(seed=2)
    other.save(root / "other")
    return path, MatrixFactorization.load(path), MatrixFactorization.load(root / "other")


@pytest.fixture(scope="module")
def model_path(trained) -> Path:
    return trained[0]


@pytest.fixture(scope="module")
def model(trained) -> MatrixFactorization:
    return trained[1]


@pytest.fixture(scope="module")
def client(model_path) -> TestClient:
    return TestClient(create_app(model_path, admin_token=TOKEN, max_n=50, max_pairs=20))


@pytest.fixture
def fresh_copy(model_path, tmp_path) -> Path:
    """A private copy of the model directory, for tests that overwrite it."""
    path = tmp_path / "models" / "copy"
    shutil.copytree(model_path, path)
    return path


def _seen(model: MatrixFactorization, user: int) -> set[int]:
    u = model.user_vocab_.index_one(user)
    rows = model.seen_.indices[model.seen_.indptr[u] : model.seen_.indptr[u + 1]]
    return set(model.item_vocab_.ids[rows].tolist())


# ---------------------------------------------------------------------- GET /recommend
def test_recommend_known_user_matches_the_model(client, model):
    r = client.get("/recommend", params={"user": "7", "n": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["userId"] == 7 and body["known_user"] is True and body["fallback"] is None
    expected = model.recommend(7, 5)
    assert [i["movieId"] for i in body["items"]] == expected["movieId"].tolist()
    np.testing.assert_allclose(
        [i["predicted_rating"] for i in body["items"]], expected["predicted_rating"]
    )
    np.testing.assert_allclose([i["score"] for i in body["items"]], expected["score"])
    assert all(i["title"].startswith("Synthetic Movie") for i in body["items"])
    assert not {i["movieId"] for i in body["items"]} & _seen(model, 7)
    assert r.headers["x-model-version"] == client.get("/model").json()["version"]


def test_recommend_with_genre_and_seen_items(client, model):
    body = client.get("/recommend", params={"user": 7, "n": 50, "genre": "Comedy"}).json()
    genres = dict(zip(model.item_vocab_.ids.tolist(), model.items_meta_["genres"], strict=True))
    assert body["items"] and all("Comedy" in list(genres[i["movieId"]]) for i in body["items"])
    with_seen = client.get("/recommend", params={"user": 7, "n": 50, "exclude_seen": "false"})
    ids = {i["movieId"] for i in with_seen.json()["items"]}
    assert with_seen.json()["exclude_seen"] is False and ids & _seen(model, 7)


def test_an_unknown_genre_is_a_422_with_the_cli_message(client, model):
    """As ``recommend --genre``: named, with the case hint and the model's genres."""
    genres = ", ".join(model.genres())
    r = client.get("/recommend", params={"user": 7, "genre": "comedy"})
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f"genre 'comedy': no movie of the model has it; did you mean 'Comedy'? genres: {genres}"
    )
    r = client.get("/recommend", params={"user": 999999, "genre": "No Such Genre"})
    assert r.status_code == 422 and r.json()["detail"] == (
        f"genre 'No Such Genre': no movie of the model has it; genres: {genres}"
    )
    body = {"ratings": [{"item": 1, "rating": 5}], "genre": "drama"}
    r = client.post("/recommend/new-user", json=body)
    assert r.status_code == 422 and "did you mean 'Drama'?" in r.json()["detail"]


def test_unknown_user_gets_the_documented_cold_start_answer(client, model):
    body = client.get("/recommend", params={"user": "999999", "n": 4}).json()
    assert body["known_user"] is False and body["fallback"] == "item_intercepts"
    best = np.argsort(-model.item_bias_, kind="stable")[:4]
    assert [i["movieId"] for i in body["items"]] == model.item_vocab_.ids[best].tolist()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"user": 7, "n": 0}, "query.n"),
        ({"user": 7, "n": 51}, "less than or equal to 50"),
        ({"user": 7, "n": "ten"}, "query.n"),
        ({"n": 5}, "query.user"),
        ({"user": "1.5"}, "'1.5' is not an integer"),
        ({"user": "12345678901234567890"}, "does not fit in 64 bits"),
        ({"user": 7, "exclude_seen": "maybe"}, "query.exclude_seen"),
    ],
)
def test_recommend_rejects_bad_queries_with_a_clear_message(client, params, message):
    r = client.get("/recommend", params=params)
    assert r.status_code == 422
    assert message in r.json()["detail"]


# ---------------------------------------------------------------------- GET /recommend/users
def test_recommend_users_matches_the_model_and_404s_unknown_items(client, model):
    body = client.get("/recommend/users", params={"item": "5", "n": 3}).json()
    expected = model.recommend_users(5, 3)
    assert body["movieId"] == 5 and body["exclude_seen"] is True
    assert [u["userId"] for u in body["users"]] == expected["userId"].tolist()
    np.testing.assert_allclose(
        [u["predicted_rating"] for u in body["users"]], expected["predicted_rating"]
    )
    r = client.get("/recommend/users", params={"item": "424242"})
    assert r.status_code == 404 and "movieId 424242 is not in the model" in r.json()["detail"]
    assert client.get("/recommend/users", params={"item": "x"}).status_code == 422
    assert client.get("/recommend/users", params={"item": 5, "n": 0}).status_code == 422


def test_ties_at_the_clip_show_the_score_that_orders_them(model, model_path, tmp_path):
    """Every prediction of a model shifted above the scale clips to the top: the responses
    tie on predicted_rating and carry the unclipped, decreasing score that ordered them."""
    shifted = MatrixFactorization.load(model_path)
    shifted.global_mean_ += 10.0
    shifted.save(tmp_path / "models" / "shifted")
    client = TestClient(create_app(tmp_path / "models" / "shifted"))
    users = client.get("/recommend/users", params={"item": 5, "n": 4}).json()["users"]
    items = client.get("/recommend", params={"user": 7, "n": 4}).json()["items"]
    high = model.rating_range_[1]
    for rows in (users, items):
        assert [r["predicted_rating"] for r in rows] == [high] * 4
        scores = [r["score"] for r in rows]
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
        assert min(scores) > high
    expected = model.recommend_users(5, 4)
    assert [u["userId"] for u in users] == expected["userId"].tolist()
    np.testing.assert_allclose([u["score"] for u in users], expected["score"] + 10.0, rtol=1e-6)


# ---------------------------------------------------------------------- POST /predict
def test_predict_matches_the_model_and_flags_unknown_ids(client, model):
    pairs = [{"user": 1, "item": 2}, {"userId": "3", "movieId": "4"}, {"user": 999999, "item": 5}]
    r = client.post("/predict", json={"pairs": pairs})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [(p["userId"], p["movieId"]) for p in preds] == [(1, 2), (3, 4), (999999, 5)]
    np.testing.assert_allclose(
        [p["predicted_rating"] for p in preds], model.predict([1, 3, 999999], [2, 4, 5])
    )
    assert [p["known_user"] for p in preds] == [True, True, False]
    assert all(p["known_item"] for p in preds)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"pairs": [{"user": 1, "item": 2}', "not valid JSON"),
        (b"not json at all", "not valid JSON"),
        (b"\x05\xff\xfe", "not valid JSON (not UTF-8 text)"),
        (b'{"pairs": []}', "at least 1 item"),
        (b'{"pairs": [{"user": 1}]}', "body.pairs.0.item"),
        (b'{"pairs": [{"user": 1, "item": 2, "rating": 3}]}', "body.pairs.0.rating"),
        (b'{"pairs": [{"user": true, "item": 2}]}', "body.pairs.0.user"),
        (b'{"pairs": [{"user": 1.5, "item": 2}]}', "body.pairs.0.user"),
        (b'{"pairs": [{"user": "abc", "item": 2}]}', "'abc' is not an integer"),
        (b'{"items": []}', "body.pairs"),
        (b"[]", "body"),
        (json.dumps({"pairs": [{"user": 1, "item": 2}] * 21}).encode(), "at most 20 items"),
    ],
)
def test_predict_rejects_malformed_bodies_with_422(client, body, message):
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_oversized_bodies_are_refused_before_parsing(model_path):
    small = TestClient(create_app(model_path, max_body_bytes=100))
    r = small.post("/predict", json={"pairs": [{"user": 1, "item": 2}] * 10})
    assert r.status_code == 413 and "larger than 100 bytes" in r.json()["detail"]
    assert small.post("/predict", json={"pairs": [{"user": 1, "item": 2}]}).status_code == 200


# ---------------------------------------------------------------------- POST /recommend/new-user
def test_new_user_fold_in_matches_the_model(client, model):
    ratings = [
        {"item": 1, "rating": 5},
        {"movieId": "2", "rating": 1.5},
        {"item": 7777, "rating": 4},
    ]
    r = client.post("/recommend/new-user", json={"ratings": ratings, "n": 4, "genre": "Drama"})
    assert r.status_code == 200
    body = r.json()
    assert body["known_items"] == 2 and body["ignored_items"] == [7777]
    assert body["fallback"] is None and body["genre"] == "Drama"
    expected = model.recommend_new_user({1: 5.0, 2: 1.5, 7777: 4.0}, 4, genre="Drama")
    assert [i["movieId"] for i in body["items"]] == expected["movieId"].tolist()
    assert not {1, 2} & {i["movieId"] for i in body["items"]}


def test_new_user_with_only_unknown_items_falls_back(client):
    body = client.post("/recommend/new-user", json={"ratings": [{"item": 7777, "rating": 4}]})
    assert body.status_code == 200
    assert body.json()["known_items"] == 0 and body.json()["fallback"] == "item_intercepts"
    assert len(body.json()["items"]) == 10


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"ratings": []}, 422, "at least 1 item"),
        ({"ratings": [{"item": 1, "rating": 9}]}, 422, "outside the model's rating scale"),
        ({"ratings": [{"item": 1, "rating": 4}, {"item": "1", "rating": 3}]}, 422, "rated twice"),
        ({"ratings": [{"item": 1}]}, 422, "rating"),
        ({"ratings": [{"item": 1, "rating": 4}], "n": 51}, 422, "body.n"),
        ({"ratings": [{"item": 1, "rating": "NaN"}]}, 422, "rating"),
    ],
)
def test_new_user_rejects_bad_ratings(client, body, status, message):
    r = client.post("/recommend/new-user", json=body)
    assert r.status_code == status
    assert message in r.json()["detail"]


# ---------------------------------------------------------------------- weights, health, model
def test_weights_are_ml_weights_rows(client, model):
    body = client.get("/weights/user/7").json()
    expected = model.weights(users=[7]).iloc[0]
    assert body["processed_input"] == "userId" and body["feature"] == "7"
    assert [w["factor"] for w in body["factor_weights"]] == [1, 2, 3, 4]
    np.testing.assert_allclose(
        [w["weight"] for w in body["factor_weights"]],
        [w["weight"] for w in expected["factor_weights"]],
    )
    assert body["intercept"] == pytest.approx(expected["intercept"])
    item = client.get("/weights/item/5").json()
    assert item["processed_input"] == "movieId" and item["feature"] == "5"
    assert item["intercept"] == pytest.approx(model.weights(items=[5]).iloc[0]["intercept"])
    for url in ("/weights/user/999999", "/weights/item/999999"):
        r = client.get(url)
        assert r.status_code == 404 and "999999 is not in the model" in r.json()["detail"]
    assert client.get("/weights/user/abc").status_code == 422


def test_healthz_and_model_info(client, model):
    health = client.get("/healthz").json()
    info = client.get("/model").json()
    assert health == {"status": "ok", "model": "tiny", "version": info["version"]}
    assert info["name"] == "tiny" and info["kind"] == "matrix_factorization"
    assert info["format_version"] == 1 and info["trained_at"].endswith("Z")
    assert info["n_users"] == len(model.user_vocab_) and info["params"]["num_factors"] == 4
    assert info["metrics"]["rmse"] == pytest.approx(model.metrics_["rmse"])


def test_unknown_routes_and_methods(client):
    assert client.get("/nope").status_code == 404
    assert client.post("/recommend").status_code == 405
    assert client.get("/models/../../etc/passwd").status_code == 404


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/recommend",
        "/recommend/users",
        "/predict",
        "/recommend/new-user",
        "/weights/user/{user_id}",
        "/weights/item/{item_id}",
        "/healthz",
        "/model",
        "/admin/reload",
    }
    n = next(p for p in spec["paths"]["/recommend"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 50 and n["schema"]["minimum"] == 1


# ---------------------------------------------------------------------- reload
def test_admin_reload_is_absent_without_a_token(model_path):
    plain = TestClient(create_app(model_path))
    assert plain.post("/admin/reload", headers=AUTH).status_code == 404
    assert "/admin/reload" not in plain.get("/openapi.json").json()["paths"]


def test_admin_reload_needs_the_token(client):
    r = client.post("/admin/reload")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert (
        client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    )
    assert client.post("/admin/reload", headers={"Authorization": TOKEN}).status_code == 401


def test_reload_swaps_in_a_new_model(fresh_copy, trained):
    _, first, other = trained
    app = create_app(fresh_copy, admin_token=TOKEN)
    c = TestClient(app)
    before = c.get("/model").json()
    other.save(fresh_copy)
    assert c.get("/model").json()["version"] == before["version"]  # nothing reloads by itself
    r = c.post("/admin/reload", headers=AUTH)
    assert r.status_code == 200
    result = r.json()
    assert result["previous_version"] == before["version"] and result["changed"] is True
    after = c.get("/model").json()
    assert after["version"] == result["version"] and after["reloads"] == 1
    recs = c.get("/recommend", params={"user": 7, "n": 5}).json()["items"]
    assert [i["movieId"] for i in recs] == other.recommend(7, 5)["movieId"].tolist()
    assert [i["movieId"] for i in recs] != first.recommend(7, 5)["movieId"].tolist()


def test_failed_reload_keeps_serving_the_old_model(fresh_copy):
    c = TestClient(create_app(fresh_copy, admin_token=TOKEN))
    version = c.get("/model").json()["version"]
    (fresh_copy / "meta.json").write_text("{broken")
    r = c.post("/admin/reload", headers=AUTH)
    assert r.status_code == 409
    assert f"still serving version {version}" in r.json()["detail"]
    assert c.get("/recommend", params={"user": 7}).status_code == 200
    assert c.get("/model").json()["version"] == version


def test_no_request_fails_while_reloading(fresh_copy, trained):
    _, first, other = trained
    app = create_app(fresh_copy, admin_token=TOKEN)
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()
    with TestClient(app) as c:
        v1 = c.get("/model").json()["version"]

        def hammer() -> None:
            while not stop.is_set():
                r = c.get("/recommend", params={"user": 7, "n": 5})
                statuses.append(r.status_code)
                versions.add(r.headers.get("x-model-version", "missing"))

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        reloads = []
        for model in (other, first, other):
            model.save(fresh_copy)
            reloads.append(c.post("/admin/reload", headers=AUTH).json())
        stop.set()
        for t in threads:
            t.join()
    assert [r["changed"] for r in reloads] == [True, True, True]
    assert statuses and set(statuses) == {200}
    assert versions <= {v1} | {r["version"] for r in reloads}


def test_watch_reloads_when_the_model_is_saved_again(fresh_copy, trained):
    other = trained[2]
    app = create_app(fresh_copy, watch_interval=0.05)
    with TestClient(app) as c:
        before = c.get("/model").json()["version"]
        other.save(fresh_copy)
        for _ in range(200):
            info = c.get("/model").json()
            if info["version"] != before:
                break
            time.sleep(0.05)
        assert info["version"] != before and info["reloads"] == 1


# ---------------------------------------------------------------------- production manners
class _Slow:
    """A model whose recommend takes a while (to trigger the request timeout)."""

    def __init__(self, model: Any, exc: Exception | None = None) -> None:
        self._model, self._exc = model, exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def recommend(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        if self._exc is not None:
            raise self._exc
        time.sleep(1.0)
        return self._model.recommend(*args, **kwargs)


def _swap_model(app: Any, wrapper: Any) -> None:
    holder = app.state.holder
    holder._current = dataclasses.replace(holder.current, model=wrapper)


def test_slow_requests_time_out_with_503(model_path):
    app = create_app(model_path, timeout=0.05)
    _swap_model(app, _Slow(app.state.holder.current.model))
    r = TestClient(app).get("/recommend", params={"user": 7})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "took longer than 0.05 s" in r.json()["detail"]


def test_bugs_are_a_json_500_and_user_errors_keep_their_status(model_path, caplog):
    app = create_app(model_path)
    _swap_model(app, _Slow(app.state.holder.current.model, RuntimeError("boom")))
    c = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.INFO, logger="hybridrec.serve"):
        r = c.get("/recommend", params={"user": 7})
    assert r.status_code == 500 and "internal error (RuntimeError)" in r.json()["detail"]
    access = [json.loads(x.getMessage()) for x in caplog.records if x.name.endswith(".access")]
    assert [a["status"] for a in access] == [500]
    assert any("boom" in str(x.exc_info[1]) for x in caplog.records if x.exc_info)
    _swap_model(app, _Slow(app.state.holder.current.model, HybridrecError("bad\nsecond line")))
    r = c.get("/recommend", params={"user": 7})
    assert r.status_code == 400 and r.json() == {"detail": "bad"}


def test_access_log_is_one_json_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="hybridrec.serve.access"):
        r = client.get("/recommend", params={"user": 7, "n": 2}, headers={"x-request-id": "abc-1"})
        client.post("/predict", content=b"{", headers={"content-type": "application/json"})
    assert r.headers["x-request-id"] == "abc-1" and r.headers["server-timing"].startswith("app;")
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "hybridrec.serve.access"]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    first, second = (json.loads(line) for line in lines)
    assert first["method"] == "GET" and first["path"] == "/recommend" and first["status"] == 200
    assert first["query"] == "user=7&n=2" and first["request_id"] == "abc-1"
    assert first["model_version"] == r.headers["x-model-version"] and first["duration_ms"] >= 0
    assert second["status"] == 422 and len(second["request_id"]) == 32


# ---------------------------------------------------------------------- construction
def test_create_app_arguments(model_path, tmp_path):
    by_name = TestClient(create_app(models_root=model_path.parent, name="tiny"))
    assert by_name.get("/healthz").json()["model"] == "tiny"
    with pytest.raises(ValueError, match="either model_path"):
        create_app()
    with pytest.raises(ValueError, match="at least 8 characters"):
        create_app(model_path, admin_token="short")
    with pytest.raises(HybridrecError, match="invalid model name"):
        create_app(models_root=model_path.parent, name="../tiny")
    with pytest.raises(HybridrecError, match="no model named 'missing'"):
        create_app(models_root=model_path.parent, name="missing")


def test_models_without_the_serving_protocol_are_refused(model_path, monkeypatch):
    import hybridrec.models

    monkeypatch.setattr(hybridrec.models, "load_model", lambda root, name: object())
    with pytest.raises(ModelError, match="cannot be served: it has no predict"):
        create_app(model_path)


def test_app_from_env_reads_the_token_from_the_named_variable(model_path, monkeypatch):
    config = {"model_path": str(model_path), "name": "tiny", "max_n": 7}
    monkeypatch.setenv(CONFIG_ENV, json.dumps({**config, "admin_token_env": "MY_TOKEN"}))
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    c = TestClient(app_from_env())
    assert c.post("/admin/reload", headers=AUTH).status_code == 200
    assert c.get("/recommend", params={"user": 7, "n": 8}).status_code == 422
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(ModelError, match="MY_TOKEN is empty"):
        app_from_env()


# ---------------------------------------------------------------------- schemathesis
@pytest.fixture(scope="module")
def api_schema(model_path) -> Any:
    app = create_app(model_path, admin_token=TOKEN, max_n=50, max_pairs=20)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@fuzzed.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_the_openapi_spec_finds_no_server_error(case):
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )


# ---------------------------------------------------------------------- the CLI command
def test_serve_command_runs_uvicorn_on_the_workspace_model(model_path, monkeypatch):
    import uvicorn
    from click.testing import CliRunner

    from hybridrec.cli import main

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("SERVE_TEST_TOKEN", TOKEN)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    workspace = str(model_path.parent.parent)

    def serve(*args: str) -> Any:
        return CliRunner().invoke(main, ["--workspace", workspace, "--quiet", "serve", *args])

    result = serve("tiny", "--port", "9999", "--admin-token-env", "SERVE_TEST_TOKEN")
    assert result.exit_code == 0, result.output
    app, options = calls.pop()
    assert options["host"] == "127.0.0.1" and options["port"] == 9999
    assert options["access_log"] is False  # the JSON access log replaces uvicorn's
    assert "hybridrec.serve.access" in options["log_config"]["loggers"]
    assert TestClient(app).post("/admin/reload", headers=AUTH).status_code == 200

    result = serve("tiny", "--workers", "2", "--admin-token-env", "SERVE_TEST_TOKEN")
    assert result.exit_code == 0, result.output
    target, options = calls.pop()
    assert target == "hybridrec.serve:app_from_env" and options["factory"] is True
    assert options["workers"] == 2
    config = os.environ[CONFIG_ENV]
    assert TOKEN not in config and json.loads(config)["admin_token_env"] == "SERVE_TEST_TOKEN"

    result = serve("missing")
    assert result.exit_code == 2 and "no model named 'missing'" in result.output
    result = serve("tiny", "--admin-token-env", "NOT_SET_ANYWHERE")
    assert result.exit_code == 2 and "NOT_SET_ANYWHERE is not set" in result.output
    assert not calls
