"""HTTP/JSON API for a saved model: recommendations, predictions, fold-in and weights.

The only module that imports the web framework (FastAPI). :func:`create_app` builds the
application for one model directory, fixed at start-up: no request can name a file. The CLI's
``hybridrec serve`` runs it under uvicorn; :func:`app_from_env` is the factory its worker
processes use.

Conventions
-----------
* **Ids.** Requests name users and items as ``user`` / ``item`` (JSON bodies also accept the
  MovieLens names ``userId`` / ``movieId``); responses always use ``userId``, ``movieId`` and
  ``predicted_rating``. Ids in a URL arrive as strings: a model whose ids are integers (all
  MovieLens data) reads ``"903"`` as user 903 and answers 422 for an id that is not an integer.
* **Unknown ids.** An unknown user is not an error: ``GET /recommend`` answers with the model's
  cold-start list, ``known_user: false`` and ``fallback`` naming it (for matrix factorization,
  ``item_intercepts``: the items with the highest ``μ + b_i``, the same for every unknown user);
  ``POST /predict`` flags unknown ids per pair and predicts ``μ`` plus the known intercept. An
  unknown item is a 404 for ``/recommend/users`` and ``/weights/item/{id}``, as is an unknown
  user for ``/weights/user/{id}``.
* **Errors.** Every error is JSON ``{"detail": "<one line>"}``; validation errors (422) add
  ``errors``: a list of ``{loc, msg, type}``. Malformed JSON is a 422 whose detail says where.
  A request that takes longer than ``timeout`` seconds is answered 503 with ``Retry-After``.
* **Hot reload.** ``POST /admin/reload`` (only when an admin token is configured; ``Authorization:
  Bearer <token>``) loads the model directory again and swaps the served model by one reference
  assignment under a lock; requests already running finish with the model they started with.
  ``watch_interval`` reloads when ``meta.json`` changes (every worker process watches for itself;
  ``/admin/reload`` reaches only the worker that receives it).
* **Access log.** One JSON line per request on the ``hybridrec.serve.access`` logger (INFO):
  ``ts, method, path, query, status, duration_ms, bytes, client, request_id, model_version``.
  Responses carry ``x-request-id``, ``x-model-version`` and ``server-timing``.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from hybridrec import __version__, artifacts
from hybridrec._core.contract import Recommender as ServableModel
from hybridrec._errors import DataError, HybridrecError, ModelError, NotFoundError

__all__ = [
    "CONFIG_ENV",
    "ModelHolder",
    "ServableModel",
    "ServedModel",
    "app_from_env",
    "create_app",
]

log = logging.getLogger(__name__)
access_log = logging.getLogger(f"{__name__}.access")

#: Environment variable holding the JSON configuration read by :func:`app_from_env`.
CONFIG_ENV = "HYBRIDREC_SERVE_CONFIG"

T = TypeVar("T")

_INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MAX_ID_CHARS = 64


_REQUIRED = (
    "predict",
    "recommend",
    "recommend_users",
    "recommend_new_user",
    "weights",
    "user_vocab_",
    "item_vocab_",
)


@dataclass(frozen=True)
class ServedModel:
    """One loaded model and what the API reports about it. Never mutated: reload replaces it."""

    model: Any
    name: str
    kind: str
    version: str
    meta: dict[str, Any]
    loaded_at: str
    signature: tuple[int, int, int] | None
    user_ids: np.ndarray  # the model's external ids, sorted, for fast membership tests
    item_ids: np.ndarray
    rating_range: tuple[float, float] | None
    fallback: str = field(default="item_intercepts")

    @property
    def user_ids_int(self) -> bool:
        return self.user_ids.dtype.kind in "iu"

    @property
    def item_ids_int(self) -> bool:
        return self.item_ids.dtype.kind in "iu"

    def known_users(self, ids: np.ndarray) -> np.ndarray:
        return _member(self.user_ids, ids)

    def known_items(self, ids: np.ndarray) -> np.ndarray:
        return _member(self.item_ids, ids)


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``sorted_ids`` (a binary search: microseconds per id)."""
    if sorted_ids.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return np.asarray(sorted_ids[pos] == ids, dtype=bool)


def _meta_signature(path: Path) -> tuple[int, int, int] | None:
    """Identity of ``meta.json`` (inode, mtime, size); artifacts are replaced by rename."""
    try:
        st = (path / artifacts.META_FILE).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _read_meta_bytes(path: Path) -> bytes:
    try:
        return (path / artifacts.META_FILE).read_bytes()
    except OSError:
        raise NotFoundError(f"no model at {path} (missing {artifacts.META_FILE})") from None


def load_served(path: str | Path, name: str | None = None) -> ServedModel:
    """Load the model directory ``path`` (any kind :func:`hybridrec.models.load_model` knows)."""
    from hybridrec.models import load_model

    path = Path(path)
    if not path.is_dir():
        load_model(path.parent, path.name)  # raises its "no model named ..." error
        raise NotFoundError(f"no model at {path}")
    for _ in range(3):
        signature = _meta_signature(path)
        before = _read_meta_bytes(path)
        model = load_model(path.parent, path.name)
        after = _read_meta_bytes(path)
        if before == after:
            break
    else:
        raise ModelError(f"the model at {path} kept changing while it was being loaded")
    missing = [attr for attr in _REQUIRED if not hasattr(model, attr)]
    meta: dict[str, Any] = json.loads(after)
    kind = str(meta.get("kind"))
    if missing:
        raise ModelError(f"a {kind} model cannot be served: it has no {', '.join(missing)}")
    _warm_up(model)
    low_high = getattr(model, "rating_range_", None)
    return ServedModel(
        model=model,
        name=name or path.name,
        kind=kind,
        version=hashlib.blake2b(after, digest_size=6).hexdigest(),
        meta=meta,
        loaded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        signature=signature,
        user_ids=np.sort(np.asarray(model.user_vocab_.ids)),
        item_ids=np.sort(np.asarray(model.item_vocab_.ids)),
        rating_range=(float(low_high[0]), float(low_high[1])) if low_high is not None else None,
        fallback=str(getattr(model, "unknown_user_fallback", "item_intercepts")),
    )


def _warm_up(model: Any) -> None:
    """Call each model path once, so that JIT compilation or cache loading happens before the
    model is served (and before a reload swaps it in), not in the first requests."""
    user = model.user_vocab_.ids[:1]
    item = model.item_vocab_.ids[:1]
    if len(user) and len(item):
        model.predict(user, item)
        model.recommend(user[0], 1)
        model.recommend_users(item[0], 1)
        low_high = getattr(model, "rating_range_", (1.0, 1.0))
        model.recommend_new_user({item[0]: float(low_high[1])}, 1)


class ModelHolder:
    """The served model, swapped atomically on reload.

    Readers take :attr:`current` once per request (one attribute read, no lock) and use that
    object to the end, so a reload never changes the model under a running request. Reloads
    are serialised by a lock; the new model is fully loaded before the reference is swapped,
    and a failed load leaves the old model in place.
    """

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name
        self._lock = threading.Lock()
        self._current = load_served(self.path, self.name)
        self.reloads = 0

    @property
    def current(self) -> ServedModel:
        return self._current

    def reload(self) -> tuple[ServedModel, ServedModel]:
        """Load the model directory again and swap it in; returns (old, new)."""
        with self._lock:
            new = load_served(self.path, self.name)
            old, self._current = self._current, new
            self.reloads += 1
        log.info("reloaded model %s: version %s -> %s", self.name, old.version, new.version)
        return old, new

    def changed_on_disk(self) -> bool:
        signature = _meta_signature(self.path)
        return signature is not None and signature != self._current.signature


# ---------------------------------------------------------------------- schemas
_ID_DOC = (
    "an id as in the training data; for a model with integer ids, an integer or a string of digits"
)
IdIn = StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=_MAX_ID_CHARS)]
IdOut = int | str


class ItemScore(BaseModel):
    movieId: IdOut
    title: str | None = Field(None, description="present when the model has item metadata")
    predicted_rating: float


class UserScore(BaseModel):
    userId: IdOut
    predicted_rating: float


class Recommendations(BaseModel):
    userId: IdOut = Field(description="the requested user, as the model spells it")
    known_user: bool
    fallback: str | None = Field(
        description="null for a known user; for an unknown user the cold-start answer used "
        "(item_intercepts: the items with the highest μ + b_i, the same for every unknown user)"
    )
    genre: str | None
    exclude_seen: bool
    items: list[ItemScore] = Field(description="best first; at most n")


class UserTargets(BaseModel):
    movieId: IdOut
    exclude_seen: bool
    users: list[UserScore] = Field(description="best first; at most n")


class Pair(BaseModel):
    """One (user, item) pair; ``userId`` / ``movieId`` are accepted as the keys too."""

    model_config = ConfigDict(extra="forbid")
    user: IdIn = Field(validation_alias=AliasChoices("user", "userId"), description=_ID_DOC)
    item: IdIn = Field(validation_alias=AliasChoices("item", "movieId"), description=_ID_DOC)


class Prediction(BaseModel):
    userId: IdOut
    movieId: IdOut
    predicted_rating: float
    known_user: bool
    known_item: bool


class Predictions(BaseModel):
    predictions: list[Prediction] = Field(description="in the order of the request's pairs")


class NewUserRating(BaseModel):
    """One rating of the new user; ``movieId`` is accepted as the key too."""

    model_config = ConfigDict(extra="forbid")
    item: IdIn = Field(validation_alias=AliasChoices("item", "movieId"), description=_ID_DOC)
    rating: float = Field(allow_inf_nan=False, description="on the model's rating scale")


class NewUserRecommendations(BaseModel):
    known_items: int = Field(description="how many of the rated items the model knows")
    ignored_items: list[IdOut] = Field(description="rated items not in the model (ignored)")
    fallback: str | None = Field(
        description="null when the fold-in used at least one known item; else the cold-start "
        "answer used (as for GET /recommend)"
    )
    genre: str | None
    items: list[ItemScore]


class FactorWeight(BaseModel):
    factor: int
    weight: float


class Weights(BaseModel):
    """One row of BigQuery ML's ``ML.WEIGHTS`` for a matrix factorization model."""

    processed_input: str = Field(description="userId or movieId")
    feature: str = Field(description="the id, as a string (as ML.WEIGHTS has it)")
    factor_weights: list[FactorWeight]
    intercept: float | None


class Health(BaseModel):
    status: str
    model: str
    version: str


class ModelInfo(BaseModel):
    name: str
    kind: str
    version: str = Field(description="a hash of the model's meta.json: changes with every save")
    format_version: int | None
    trained_at: str | None
    loaded_at: str
    reloads: int
    n_users: int | None
    n_items: int | None
    params: dict[str, Any]
    metrics: dict[str, float | None]


class ReloadResult(BaseModel):
    previous_version: str
    version: str
    changed: bool
    duration_ms: float


class ErrorBody(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "invalid request"},
    503: {"model": ErrorBody, "description": "timed out"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown id"},
    **_ERRORS,
}


# ---------------------------------------------------------------------- helpers
def _parse_id(raw: int | str, integer_ids: bool, what: str) -> int | str:
    """An id from a request, typed as the model's vocabulary stores it."""
    if not integer_ids:
        return str(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not _INTEGER.match(text):
            raise HTTPException(
                422,
                f"{what} {raw[:_MAX_ID_CHARS]!r} is not an integer (this model's ids are integers)",
            )
        raw = int(text)
    if not -_INT64_MAX - 1 <= raw <= _INT64_MAX:
        raise HTTPException(422, f"{what} {raw} does not fit in 64 bits")
    return raw


def _id_array(ids: Sequence[int | str], integer_ids: bool) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64 if integer_ids else object)


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null (meta.json may hold NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _item_scores(frame: pd.DataFrame) -> list[dict[str, Any]]:
    ids = frame["movieId"].tolist()
    scores = frame["predicted_rating"].tolist()
    titles = frame["title"].tolist() if "title" in frame.columns else [None] * len(ids)
    return [
        {
            "movieId": i,
            "title": t if isinstance(t, str) else None,
            "predicted_rating": _number(s),
        }
        for i, t, s in zip(ids, titles, scores, strict=True)
    ]


def _describe_error(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        position = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON{position}" + (f": {reason}" if reason else "")
    where = ".".join(loc) or "request"
    return f"{where}: {error.get('msg', 'invalid')}"


# ---------------------------------------------------------------------- middleware
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _AccessAndLimits:
    """Pure ASGI middleware: request ids, body size limit, timing headers, JSON access log."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        info: dict[str, Any] = {"status": None, "bytes": 0, "model_version": None}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
                raw_headers = list(message.get("headers", []))
                for key, value in raw_headers:
                    if key.lower() == b"x-model-version":
                        info["model_version"] = value.decode("latin-1")
                elapsed = (time.perf_counter() - start) * 1000
                raw_headers.append((b"x-request-id", request_id.encode()))
                raw_headers.append((b"server-timing", f"app;dur={elapsed:.3f}".encode()))
                message["headers"] = raw_headers
            elif message["type"] == "http.response.body":
                info["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._read_body(headers, receive)
                if body is None:
                    response = JSONResponse(
                        {"detail": f"the request body is larger than {self.max_body_bytes} bytes"},
                        status_code=413,
                    )
                    await response(scope, receive, send_logged)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_logged)
        except BaseException:
            info["status"] = info["status"] or 500  # answered by the outer error middleware
            raise
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                now = time.time()
                access_log.info(
                    json.dumps(
                        {
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
                            + f".{int(now * 1000) % 1000:03d}Z",
                            "method": scope["method"],
                            "path": scope["path"],
                            "query": scope.get("query_string", b"").decode("latin-1")[:512],
                            # 499: the client went away before an answer (as nginx logs it)
                            "status": info["status"] or 499,
                            "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                            "bytes": info["bytes"],
                            "client": client[0] if client else None,
                            "request_id": request_id,
                            "model_version": info["model_version"],
                        },
                        separators=(",", ":"),
                    )
                )

    async def _read_body(self, headers: Mapping[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than the limit."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# ---------------------------------------------------------------------- the application
_DESCRIPTION = __doc__.split("Conventions\n-----------\n", 1)[1] if __doc__ else ""


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
        task = asyncio.create_task(_watch(holder, watch_interval)) if watch_interval else None
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
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.add_middleware(_AccessAndLimits, max_body_bytes=max_body_bytes)

    # Model code runs in a small pool of its own: the event loop keeps accepting and answering
    # while NumPy works, and no more threads than cores compete for the CPU and the GIL.
    pool = ThreadPoolExecutor(model_threads or min(4, os.cpu_count() or 1), "hybridrec-model")

    async def run(func: Callable[[], T]) -> T:
        """Run model code in the pool, bounded by the request timeout. A request that times
        out while still queued never runs; one already running finishes in the background."""
        try:
            return await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(pool, func), timeout
            )
        except TimeoutError:
            raise HTTPException(
                503,
                f"the request took longer than {timeout:g} s; retry later or ask for less",
                headers={"Retry-After": "1"},
            ) from None

    # ------------------------------------------------------------------ errors
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": str(e.get("type"))}
            for e in exc.errors()
        ]
        details = [_describe_error(e) for e in exc.errors()[:3]]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return JSONResponse(
            {"detail": "; ".join(details) + more, "errors": errors[:50]}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text; malformed JSON is a 422.
            return JSONResponse(
                {"detail": "the request body is not valid JSON (not UTF-8 text)"},
                status_code=422,
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(HybridrecError)
    async def user_error(request: Request, exc: HybridrecError) -> JSONResponse:
        status = (
            404 if isinstance(exc, NotFoundError) else 422 if isinstance(exc, DataError) else 400
        )
        return JSONResponse({"detail": str(exc).splitlines()[0]}, status_code=status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the server log"},
            status_code=500,
        )

    # ------------------------------------------------------------------ endpoints
    n_query = Query(ge=1, le=max_n, description=f"how many results, 1..{max_n}")
    genre_query = Query(
        min_length=1, max_length=100, description="only items of this genre (e.g. Comedy)"
    )

    @app.get(
        "/recommend",
        response_model=Recommendations,
        responses=_ERRORS,
        tags=["recommend"],
        summary="Top-n items for a user",
    )
    async def recommend(
        response: Response,
        user: Annotated[
            str,
            Query(
                min_length=1,
                max_length=_MAX_ID_CHARS,
                description="userId; an unknown user gets the cold-start list",
            ),
        ],
        n: Annotated[int, n_query] = 10,
        genre: Annotated[str | None, genre_query] = None,
        exclude_seen: Annotated[
            bool, Query(description="skip items the user rated (false to include them)")
        ] = True,
    ) -> dict[str, Any]:
        """Items the user is predicted to rate highest (``ML.PREDICT … ORDER BY
        predicted_rating DESC LIMIT n``). ``known_user`` says whether the answer is personal;
        an unknown user gets the model's cold-start list, named in ``fallback``."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        uid = _parse_id(user, served.user_ids_int, "userId")
        known = bool(served.known_users(_id_array([uid], served.user_ids_int))[0])
        frame = await run(
            lambda: served.model.recommend(uid, n, genre=genre, exclude_seen=exclude_seen)
        )
        return {
            "userId": uid,
            "known_user": known,
            "fallback": None if known else served.fallback,
            "genre": genre,
            "exclude_seen": exclude_seen,
            "items": _item_scores(frame),
        }

    @app.get(
        "/recommend/users",
        response_model=UserTargets,
        responses=_NOT_FOUND,
        tags=["recommend"],
        summary="Top-n users for an item",
    )
    async def recommend_users(
        response: Response,
        item: Annotated[
            str, Query(min_length=1, max_length=_MAX_ID_CHARS, description="movieId to target")
        ],
        n: Annotated[int, n_query] = 10,
        exclude_seen: Annotated[
            bool, Query(description="skip users who rated the item (false to include them)")
        ] = True,
    ) -> dict[str, Any]:
        """The users predicted to rate the item highest (the notebook's targeting query).
        404 when the model does not know the item."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        iid = _parse_id(item, served.item_ids_int, "movieId")
        if not served.known_items(_id_array([iid], served.item_ids_int))[0]:
            raise HTTPException(
                404, f"movieId {iid} is not in the model: no user can be targeted for it"
            )
        frame = await run(lambda: served.model.recommend_users(iid, n, exclude_seen=exclude_seen))
        users = frame["userId"].tolist()
        scores = frame["predicted_rating"].tolist()
        return {
            "movieId": iid,
            "exclude_seen": exclude_seen,
            "users": [
                {"userId": u, "predicted_rating": _number(s)}
                for u, s in zip(users, scores, strict=True)
            ],
        }

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        pairs: list[Pair] = Field(
            min_length=1, max_length=max_pairs, description=f"1..{max_pairs} (user, item) pairs"
        )

    @app.post(
        "/predict",
        response_model=Predictions,
        responses=_ERRORS,
        tags=["predict"],
        summary="Predicted ratings for (user, item) pairs",
    )
    async def predict(body: PredictRequest, response: Response) -> dict[str, Any]:
        """Body: ``{"pairs": [{"user": 903, "item": 50}, …]}``. Unknown ids are not an error:
        the prediction falls back to ``μ`` plus the known intercept, and ``known_user`` /
        ``known_item`` say so. Predictions are clipped to the training rating range."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        users = _id_array(
            [_parse_id(p.user, served.user_ids_int, "userId") for p in body.pairs],
            served.user_ids_int,
        )
        items = _id_array(
            [_parse_id(p.item, served.item_ids_int, "movieId") for p in body.pairs],
            served.item_ids_int,
        )

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            model = served.model
            return (
                np.asarray(model.predict(users, items), dtype=np.float64),
                served.known_users(users),
                served.known_items(items),
            )

        scores, known_users, known_items = await run(compute)
        return {
            "predictions": [
                {
                    "userId": u,
                    "movieId": i,
                    "predicted_rating": _number(s),
                    "known_user": ku,
                    "known_item": ki,
                }
                for u, i, s, ku, ki in zip(
                    users.tolist(),
                    items.tolist(),
                    scores.tolist(),
                    known_users.tolist(),
                    known_items.tolist(),
                    strict=True,
                )
            ]
        }

    class NewUserRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        ratings: list[NewUserRating] = Field(
            min_length=1, max_length=max_pairs, description="the new user's ratings, distinct items"
        )
        n: int = Field(10, ge=1, le=max_n, description=f"how many items, 1..{max_n}")
        genre: str | None = Field(None, min_length=1, max_length=100)
        exclude_seen: bool = Field(True, description="skip the items the new user rated")

    @app.post(
        "/recommend/new-user",
        response_model=NewUserRecommendations,
        responses=_ERRORS,
        tags=["recommend"],
        summary="Top-n items for a user who is not in the model (fold-in)",
    )
    async def recommend_new_user(body: NewUserRequest, response: Response) -> dict[str, Any]:
        """Body: ``{"ratings": [{"item": 1, "rating": 5}, …], "n": 10, "genre": null}``.
        The user is placed from these ratings by one least-squares solve with the item factors
        fixed (no retraining). Items the model does not know are ignored and listed."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        ratings: dict[int | str, float] = {}
        for r in body.ratings:
            iid = _parse_id(r.item, served.item_ids_int, "movieId")
            if iid in ratings:
                raise HTTPException(422, f"movieId {iid} is rated twice: give each item once")
            if served.rating_range is not None:
                low, high = served.rating_range
                if not low <= r.rating <= high:
                    raise HTTPException(
                        422,
                        f"rating {r.rating:g} of movieId {iid} is outside the model's rating "
                        f"scale {low:g}..{high:g}",
                    )
            ratings[iid] = r.rating
        ids = _id_array(list(ratings), served.item_ids_int)
        known = served.known_items(ids)
        frame = await run(
            lambda: served.model.recommend_new_user(
                ratings, body.n, genre=body.genre, exclude_seen=body.exclude_seen
            )
        )
        return {
            "known_items": int(known.sum()),
            "ignored_items": ids[~known].tolist(),
            "fallback": None if known.any() else served.fallback,
            "genre": body.genre,
            "items": _item_scores(frame),
        }

    def weights_row(served: ServedModel, what: str, raw: str) -> dict[str, Any]:
        is_user = what == "userId"
        integer_ids = served.user_ids_int if is_user else served.item_ids_int
        ext = _parse_id(raw, integer_ids, what)
        ids = _id_array([ext], integer_ids)
        if not (served.known_users(ids) if is_user else served.known_items(ids))[0]:
            raise HTTPException(404, f"{what} {ext} is not in the model")
        frame = served.model.weights(users=[ext]) if is_user else served.model.weights(items=[ext])
        row = frame.iloc[0]
        return {
            "processed_input": str(row["processed_input"]),
            "feature": str(row["feature"]),
            "factor_weights": [
                {"factor": int(w["factor"]), "weight": _number(w["weight"])}
                for w in row["factor_weights"]
            ],
            "intercept": _number(row["intercept"]),
        }

    id_path = PathParam(min_length=1, max_length=_MAX_ID_CHARS, description=_ID_DOC)

    @app.get(
        "/weights/user/{user_id}",
        response_model=Weights,
        responses=_NOT_FOUND,
        tags=["weights"],
        summary="A user's learned weights (ML.WEIGHTS row)",
    )
    async def user_weights(user_id: Annotated[str, id_path], response: Response) -> dict[str, Any]:
        """The user's factors and intercept; 404 for a user the model does not know."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        return await run(lambda: weights_row(served, "userId", user_id))

    @app.get(
        "/weights/item/{item_id}",
        response_model=Weights,
        responses=_NOT_FOUND,
        tags=["weights"],
        summary="An item's learned weights (ML.WEIGHTS row)",
    )
    async def item_weights(item_id: Annotated[str, id_path], response: Response) -> dict[str, Any]:
        """The item's factors and intercept; 404 for an item the model does not know."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        return await run(lambda: weights_row(served, "movieId", item_id))

    @app.get("/healthz", response_model=Health, tags=["service"], summary="Liveness")
    async def healthz(response: Response) -> dict[str, Any]:
        """200 while the server runs; it always has a model loaded."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        return {"status": "ok", "model": served.name, "version": served.version}

    @app.get("/model", response_model=ModelInfo, tags=["service"], summary="The served model")
    async def model_info(response: Response) -> dict[str, Any]:
        """Name, kind, version, training time, hyper-parameters and hold-out metrics."""
        served = holder.current
        response.headers["x-model-version"] = served.version
        meta = served.meta
        return {
            "name": served.name,
            "kind": served.kind,
            "version": served.version,
            "format_version": meta.get("format_version"),
            "trained_at": meta.get("trained_at"),
            "loaded_at": served.loaded_at,
            "reloads": holder.reloads,
            "n_users": meta.get("n_users"),
            "n_items": meta.get("n_items"),
            "params": _clean(meta.get("params", {})),
            "metrics": _clean(meta.get("metrics", {})),
        }

    if admin_token is not None:
        bearer = HTTPBearer(
            auto_error=False, description="the admin token the server was started with"
        )
        token = admin_token.encode()

        @app.post(
            "/admin/reload",
            response_model=ReloadResult,
            responses={
                401: {"model": ErrorBody, "description": "no token"},
                403: {"model": ErrorBody, "description": "wrong token"},
                409: {"model": ErrorBody, "description": "the model on disk cannot be loaded"},
            },
            tags=["admin"],
            summary="Load the model from disk again and swap it in",
        )
        async def reload(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> dict[str, Any]:
            """Needs ``Authorization: Bearer <token>``. Requests keep being answered during
            the reload; those already running finish with the old model. If the new model
            cannot be loaded, the old one stays and the answer is 409."""
            if credentials is None:
                raise HTTPException(
                    401,
                    "send the admin token as 'Authorization: Bearer <token>'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not hmac.compare_digest(credentials.credentials.encode(), token):
                raise HTTPException(403, "wrong admin token")
            start = time.perf_counter()
            try:
                old, new = await anyio.to_thread.run_sync(holder.reload)
            except Exception as exc:
                log.warning("reload of model %s failed: %s", holder.name, exc, exc_info=True)
                raise HTTPException(
                    409,
                    f"reload failed, still serving version {holder.current.version}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                ) from None
            return {
                "previous_version": old.version,
                "version": new.version,
                "changed": old.version != new.version,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
            }

    return app


async def _watch(holder: ModelHolder, interval: float) -> None:
    """Reload whenever the model's ``meta.json`` is replaced (a new save)."""
    failed: tuple[int, int, int] | None = None
    while True:
        await asyncio.sleep(interval)
        signature = _meta_signature(holder.path)
        if not holder.changed_on_disk() or signature == failed:
            continue
        try:
            await anyio.to_thread.run_sync(holder.reload)
            failed = None
        except Exception as exc:
            failed = signature
            log.warning("the model %s changed on disk but cannot be loaded: %s", holder.name, exc)


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
