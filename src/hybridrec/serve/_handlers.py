"""How errors are answered: always JSON ``{"detail": "<one line>"}``; validation errors (422)
add ``errors``, a list of ``{loc, msg, type}``."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hybridrec._errors import DataError, HybridrecError, NotFoundError

log = logging.getLogger("hybridrec.serve")


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(HybridrecError, user_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, internal_error)


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


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not even text; malformed JSON is a 422.
        return JSONResponse(
            {"detail": "the request body is not valid JSON (not UTF-8 text)"},
            status_code=422,
        )
    return await http_exception_handler(request, exc)


async def user_error(request: Request, exc: HybridrecError) -> JSONResponse:
    status = 404 if isinstance(exc, NotFoundError) else 422 if isinstance(exc, DataError) else 400
    return JSONResponse({"detail": str(exc).splitlines()[0]}, status_code=status)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); see the server log"},
        status_code=500,
    )


def _describe_error(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        position = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = (error.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON{position}" + (f": {reason}" if reason else "")
    where = ".".join(loc) or "request"
    return f"{where}: {error.get('msg', 'invalid')}"
