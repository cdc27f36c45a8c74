"""What the routes share: the running service (model holder, thread pool, timeout), the
dependencies that hand it and the served model to an endpoint, and id / number conversions."""

import asyncio
import math
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
from fastapi import Depends, HTTPException, Request, Response

from hybridrec._core.contract import unknown_genre
from hybridrec.serve._holder import ModelHolder, ServedModel
from hybridrec.serve._schemas import MAX_ID_CHARS

T = TypeVar("T")

INT64_MAX = 2**63 - 1
INTEGER = re.compile(r"^[+-]?[0-9]+$")


@dataclass(frozen=True)
class Service:
    """One app's serving state, in ``app.state.service``; endpoints get it by dependency."""

    holder: ModelHolder
    pool: ThreadPoolExecutor
    timeout: float
    admin_token: bytes | None = None

    async def run(self, func: Callable[[], T]) -> T:
        """Run model code in the pool, bounded by the request timeout. A request that times
        out while still queued never runs; one already running finishes in the background."""
        try:
            return await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self.pool, func), self.timeout
            )
        except TimeoutError:
            raise HTTPException(
                503,
                f"the request took longer than {self.timeout:g} s; retry later or ask for less",
                headers={"Retry-After": "1"},
            ) from None


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_served(response: Response, service: ServiceDep) -> ServedModel:
    """The model this request uses from start to end (a reload does not change it); its
    version goes into the ``x-model-version`` header."""
    served = service.holder.current
    response.headers["x-model-version"] = served.version
    return served


Served = Annotated[ServedModel, Depends(get_served)]


def parse_id(raw: int | str, integer_ids: bool, what: str) -> int | str:
    """An id from a request, typed as the model's vocabulary stores it."""
    if not integer_ids:
        return str(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not INTEGER.match(text):
            raise HTTPException(
                422,
                f"{what} {raw[:MAX_ID_CHARS]!r} is not an integer (this model's ids are integers)",
            )
        raw = int(text)
    if not -INT64_MAX - 1 <= raw <= INT64_MAX:
        raise HTTPException(422, f"{what} {raw} does not fit in 64 bits")
    return raw


def id_array(ids: Sequence[int | str], integer_ids: bool) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64 if integer_ids else object)


def number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null (meta.json may hold NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def raw_scores(frame: pd.DataFrame) -> list[Any]:
    """The ``score`` column (unclipped; what orders a ranked list), or nulls without one."""
    return frame["score"].tolist() if "score" in frame.columns else [math.nan] * len(frame)


def item_scores(frame: pd.DataFrame) -> list[dict[str, Any]]:
    ids = frame["movieId"].tolist()
    scores = frame["predicted_rating"].tolist()
    titles = frame["title"].tolist() if "title" in frame.columns else [None] * len(ids)
    return [
        {
            "movieId": i,
            "title": t if isinstance(t, str) else None,
            "predicted_rating": number(s),
            "score": number(r),
        }
        for i, t, s, r in zip(ids, titles, scores, raw_scores(frame), strict=True)
    ]


def check_genre(served: ServedModel, genre: str | None) -> None:
    """A genre no movie of the model has is a 422 naming it, with the CLI's message."""
    problem = unknown_genre("genre", genre, list(served.genres)) if genre else None
    if problem:
        raise HTTPException(422, problem)
