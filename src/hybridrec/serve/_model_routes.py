"""The routes about the served model itself: its weights (``ML.WEIGHTS`` rows), liveness, its
description, and the admin reload (included only when the app has an admin token)."""

import hmac
import logging
import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hybridrec.serve._holder import ServedModel
from hybridrec.serve._schemas import (
    ID_DOC,
    MAX_ID_CHARS,
    NOT_FOUND,
    ErrorBody,
    Health,
    ModelInfo,
    ReloadResult,
    Weights,
)
from hybridrec.serve._service import Served, ServiceDep, clean, id_array, number, parse_id

log = logging.getLogger("hybridrec.serve")

router = APIRouter()
admin_router = APIRouter()

_ID_PATH = PathParam(min_length=1, max_length=MAX_ID_CHARS, description=ID_DOC)
_BEARER = HTTPBearer(auto_error=False, description="the admin token the server was started with")


@router.get(
    "/weights/user/{user_id}",
    response_model=Weights,
    responses=NOT_FOUND,
    tags=["weights"],
    summary="A user's learned weights (ML.WEIGHTS row)",
)
async def user_weights(
    user_id: Annotated[str, _ID_PATH], served: Served, service: ServiceDep
) -> dict[str, Any]:
    """The user's factors and intercept; 404 for a user the model does not know."""
    return await service.run(lambda: weights_row(served, "userId", user_id))


@router.get(
    "/weights/item/{item_id}",
    response_model=Weights,
    responses=NOT_FOUND,
    tags=["weights"],
    summary="An item's learned weights (ML.WEIGHTS row)",
)
async def item_weights(
    item_id: Annotated[str, _ID_PATH], served: Served, service: ServiceDep
) -> dict[str, Any]:
    """The item's factors and intercept; 404 for an item the model does not know."""
    return await service.run(lambda: weights_row(served, "movieId", item_id))


def weights_row(served: ServedModel, what: str, raw: str) -> dict[str, Any]:
    """The ``ML.WEIGHTS`` row of one user (``what`` is ``userId``) or item (``movieId``)."""
    is_user = what == "userId"
    integer_ids = served.user_ids_int if is_user else served.item_ids_int
    ext = parse_id(raw, integer_ids, what)
    ids = id_array([ext], integer_ids)
    if not (served.known_users(ids) if is_user else served.known_items(ids))[0]:
        raise HTTPException(404, f"{what} {ext} is not in the model")
    frame = served.model.weights(users=[ext]) if is_user else served.model.weights(items=[ext])
    row = frame.iloc[0]
    return {
        "processed_input": str(row["processed_input"]),
        "feature": str(row["feature"]),
        "factor_weights": [
            {"factor": int(w["factor"]), "weight": number(w["weight"])}
            for w in row["factor_weights"]
        ],
        "intercept": number(row["intercept"]),
    }


@router.get("/healthz", response_model=Health, tags=["service"], summary="Liveness")
async def healthz(served: Served) -> dict[str, Any]:
    """200 while the server runs; it always has a model loaded."""
    return {"status": "ok", "model": served.name, "version": served.version}


@router.get("/model", response_model=ModelInfo, tags=["service"], summary="The served model")
async def model_info(served: Served, service: ServiceDep) -> dict[str, Any]:
    """Name, kind, version, training time, hyper-parameters and hold-out metrics."""
    meta = served.meta
    return {
        "name": served.name,
        "kind": served.kind,
        "version": served.version,
        "format_version": meta.get("format_version"),
        "trained_at": meta.get("trained_at"),
        "loaded_at": served.loaded_at,
        "reloads": service.holder.reloads,
        "n_users": meta.get("n_users"),
        "n_items": meta.get("n_items"),
        "params": clean(meta.get("params", {})),
        "metrics": clean(meta.get("metrics", {})),
    }


@admin_router.post(
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
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    service: ServiceDep,
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
    token = service.admin_token or b""
    if not token or not hmac.compare_digest(credentials.credentials.encode(), token):
        raise HTTPException(403, "wrong admin token")
    holder = service.holder
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
