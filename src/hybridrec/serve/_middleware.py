"""ASGI middleware of the HTTP API: request ids, the body size limit, timing headers and the
JSON access log (one line per request on the ``hybridrec.serve.access`` logger)."""

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

access_log = logging.getLogger("hybridrec.serve.access")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessAndLimits:
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
        request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
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
