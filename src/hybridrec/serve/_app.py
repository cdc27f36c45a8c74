"""The FastAPI application for one saved model, and the factory uvicorn's workers use."""

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI

from hybridrec import __version__
from hybridrec._errors import ModelError
from hybridrec.serve._handlers import add_exception_handlers
from hybridrec.serve._holder import ModelHolder, watch
from hybridrec.serve._middleware import AccessAndLimits
from hybridrec.serve._model_routes import admin_router, router
from hybridrec.serve._recommend import predict_router, recommend_router
from hybridrec.serve._service import Service

log = logging.getLogger("hybridrec.serve")

#: Environment variable holding the JSON configuration read by :func:`app_from_env`.
CONFIG_ENV = "HYBRIDREC_SERVE_CONFIG"


def create_app(
    model_path: str | Path | None = None,
    *,
    models_root: str | Path | None = None,
    name: str | None = None,
    admin_token: str | None = None,
    max_pairs: int = 10_000,
    max_n: int = 1000,
    timeout: float = 10.0,
    watch_interval: float | None = None,
    max_body_bytes: int = 2 * 1024 * 1024,
    model_threads: int | None = None,
) -> FastAPI:
    """The FastAPI application serving one saved model.

    Give either ``model_path`` (a model directory) or ``models_root`` and ``name`` (a model in a
    workspace's models folder). The model is loaded now, so a bad model fails at start-up.
    ``admin_token`` enables ``POST /admin/reload``; ``max_pairs`` bounds ``POST /predict`` (and
    the ratings of a new user), ``max_n`` every ``n``; ``timeout`` (seconds) turns a slow
    request into a 503; ``watch_interval`` (seconds) reloads when the model is saved again;
    ``model_threads`` (default: the number of cores, at most 4) run the model computations.
    """
    from hybridrec.models import model_dir

    if (model_path is None) == (models_root is None):
        raise ValueError("give either model_path or models_root and name")
    if models_root is not None:
        if name is None:
            raise ValueError("models_root needs a model name")
        model_path = model_dir(models_root, name)
    assert model_path is not None
    if admin_token is not None and len(admin_token) < 8:
        raise ValueError("the admin token must have at least 8 characters")
    if max_pairs < 1 or max_n < 1 or timeout <= 0:
        raise ValueError("max_pairs, max_n and timeout must be positive")
    holder = ModelHolder(model_path, name)
    first = holder.current
    log.info("serving model %s (%s, version %s)", first.name, first.kind, first.version)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(watch(holder, watch_interval)) if watch_interval else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="hybridrec",
        version=__version__,
        summary="Recommendations and rating predictions from a hybridrec model.",
        description=_description(),
        lifespan=lifespan,
    )
    # Model code runs in a small pool of its own: the event loop keeps accepting and answering
    # while NumPy works, and no more threads than cores compete for the CPU and the GIL.
    pool = ThreadPoolExecutor(model_threads or min(4, os.cpu_count() or 1), "hybridrec-model")
    token = admin_token.encode() if admin_token is not None else None
    app.state.service = Service(holder, pool, timeout, admin_token=token)
    app.state.holder = holder
    app.add_middleware(AccessAndLimits, max_body_bytes=max_body_bytes)
    add_exception_handlers(app)
    app.include_router(recommend_router(max_n))
    app.include_router(predict_router(max_pairs, max_n))
    app.include_router(router)
    if admin_token is not None:
        app.include_router(admin_router)
    return app


def app_from_env() -> FastAPI:
    """The app described by the JSON in ``$HYBRIDREC_SERVE_CONFIG`` (for uvicorn workers).

    Keys: ``model_path``, ``name`` and optionally ``max_pairs``, ``max_n``, ``timeout``,
    ``watch_interval`` and ``admin_token_env``, the *name* of the environment variable that
    holds the admin token (the token itself is never written into the configuration).
    """
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise ModelError(f"${CONFIG_ENV} is not set: it must hold the server's JSON configuration")
    config = json.loads(raw)
    if "model_path" not in config:
        raise ModelError(f"${CONFIG_ENV} has no model_path")
    token_env = config.pop("admin_token_env", None)
    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        raise ModelError(f"${token_env} is empty: it must hold the admin token")
    return create_app(config.pop("model_path"), admin_token=token, **config)


def _description() -> str:
    """The API's conventions for the OpenAPI description: the package docstring's part."""
    import hybridrec.serve

    doc = hybridrec.serve.__doc__ or ""
    return doc.split("Conventions\n-----------\n", 1)[1] if "Conventions\n" in doc else ""
