"""The routes that answer with recommendations and predictions: ``GET /recommend``,
``GET /recommend/users``, ``POST /predict`` and ``POST /recommend/new-user``.

Their schemas hold the app's limits (``max_n``, ``max_pairs``), so these routers are built per
app; the model and the runner reach the endpoints as dependencies.
"""

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from hybridrec.serve._holder import ServedModel
from hybridrec.serve._schemas import (
    ERRORS,
    MAX_ID_CHARS,
    NOT_FOUND,
    NewUserRecommendations,
    Predictions,
    Recommendations,
    UserTargets,
    new_user_request,
    predict_request,
)
from hybridrec.serve._service import (
    Served,
    Service,
    ServiceDep,
    check_genre,
    id_array,
    item_scores,
    number,
    parse_id,
    raw_scores,
)

_GENRE_QUERY = Query(
    min_length=1, max_length=100, description="only items of this genre (e.g. Comedy)"
)


def recommend_router(max_n: int) -> APIRouter:
    """``GET /recommend`` and ``GET /recommend/users``, with ``n`` up to ``max_n``."""
    router = APIRouter()
    n_query = Query(ge=1, le=max_n, description=f"how many results, 1..{max_n}")

    @router.get(
        "/recommend",
        response_model=Recommendations,
        responses=ERRORS,
        tags=["recommend"],
        summary="Top-n items for a user",
    )
    async def recommend(
        served: Served,
        service: ServiceDep,
        user: Annotated[
            str,
            Query(
                min_length=1,
                max_length=MAX_ID_CHARS,
                description="userId; an unknown user gets the cold-start list",
            ),
        ],
        n: Annotated[int, n_query] = 10,
        genre: Annotated[str | None, _GENRE_QUERY] = None,
        exclude_seen: Annotated[
            bool, Query(description="skip items the user rated (false to include them)")
        ] = True,
    ) -> dict[str, Any]:
        """Items the user is predicted to rate highest (``ML.PREDICT … ORDER BY
        predicted_rating DESC LIMIT n``). ``known_user`` says whether the answer is personal;
        an unknown user gets the model's cold-start list, named in ``fallback``."""
        uid = parse_id(user, served.user_ids_int, "userId")
        check_genre(served, genre)
        known = bool(served.known_users(id_array([uid], served.user_ids_int))[0])
        frame = await service.run(
            lambda: served.model.recommend(uid, n, genre=genre, exclude_seen=exclude_seen)
        )
        return {
            "userId": uid,
            "known_user": known,
            "fallback": None if known else served.fallback,
            "genre": genre,
            "exclude_seen": exclude_seen,
            "items": item_scores(frame),
        }

    @router.get(
        "/recommend/users",
        response_model=UserTargets,
        responses=NOT_FOUND,
        tags=["recommend"],
        summary="Top-n users for an item",
    )
    async def recommend_users(
        served: Served,
        service: ServiceDep,
        item: Annotated[
            str, Query(min_length=1, max_length=MAX_ID_CHARS, description="movieId to target")
        ],
        n: Annotated[int, n_query] = 10,
        exclude_seen: Annotated[
            bool, Query(description="skip users who rated the item (false to include them)")
        ] = True,
    ) -> dict[str, Any]:
        """The users predicted to rate the item highest (the notebook's targeting query).
        404 when the model does not know the item."""
        iid = parse_id(item, served.item_ids_int, "movieId")
        if not served.known_items(id_array([iid], served.item_ids_int))[0]:
            raise HTTPException(
                404, f"movieId {iid} is not in the model: no user can be targeted for it"
            )
        frame = await service.run(
            lambda: served.model.recommend_users(iid, n, exclude_seen=exclude_seen)
        )
        users = frame["userId"].tolist()
        scores = frame["predicted_rating"].tolist()
        return {
            "movieId": iid,
            "exclude_seen": exclude_seen,
            "users": [
                {"userId": u, "predicted_rating": number(s), "score": number(r)}
                for u, s, r in zip(users, scores, raw_scores(frame), strict=True)
            ],
        }

    return router


def predict_router(max_pairs: int, max_n: int) -> APIRouter:
    """``POST /predict`` (at most ``max_pairs`` pairs) and ``POST /recommend/new-user`` (at
    most ``max_pairs`` ratings, ``n`` up to ``max_n``)."""
    router = APIRouter()
    PredictRequest = predict_request(max_pairs)
    NewUserRequest = new_user_request(max_pairs, max_n)

    @router.post(
        "/predict",
        response_model=Predictions,
        responses=ERRORS,
        tags=["predict"],
        summary="Predicted ratings for (user, item) pairs",
    )
    async def predict(body: PredictRequest, served: Served, service: ServiceDep) -> dict[str, Any]:  # type: ignore[valid-type]
        """Body: ``{"pairs": [{"user": 903, "item": 50}, …]}``. Unknown ids are not an error:
        the prediction falls back to ``μ`` plus the known intercept, and ``known_user`` /
        ``known_item`` say so. Predictions are clipped to the training rating range."""
        return await predictions(served, service, body.pairs)  # type: ignore[attr-defined]

    @router.post(
        "/recommend/new-user",
        response_model=NewUserRecommendations,
        responses=ERRORS,
        tags=["recommend"],
        summary="Top-n items for a user who is not in the model (fold-in)",
    )
    async def recommend_new_user(
        body: NewUserRequest,  # type: ignore[valid-type]
        served: Served,
        service: ServiceDep,
    ) -> dict[str, Any]:
        """Body: ``{"ratings": [{"item": 1, "rating": 5}, …], "n": 10, "genre": null}``.
        The user is placed from these ratings by one least-squares solve with the item factors
        fixed (no retraining). Items the model does not know are ignored and listed."""
        return await new_user_recommendations(served, service, body)

    return router


async def predictions(served: ServedModel, service: Service, pairs: list[Any]) -> dict[str, Any]:
    """The answer of ``POST /predict`` for ``pairs`` (in their order)."""
    users = id_array(
        [parse_id(p.user, served.user_ids_int, "userId") for p in pairs], served.user_ids_int
    )
    items = id_array(
        [parse_id(p.item, served.item_ids_int, "movieId") for p in pairs], served.item_ids_int
    )

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(served.model.predict(users, items), dtype=np.float64),
            served.known_users(users),
            served.known_items(items),
        )

    scores, known_users, known_items = await service.run(compute)
    return {
        "predictions": [
            {
                "userId": u,
                "movieId": i,
                "predicted_rating": number(s),
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


async def new_user_recommendations(
    served: ServedModel, service: Service, body: Any
) -> dict[str, Any]:
    """The answer of ``POST /recommend/new-user``: the ratings checked (each item once, on
    the model's scale), then the fold-in."""
    ratings: dict[int | str, float] = {}
    for r in body.ratings:
        iid = parse_id(r.item, served.item_ids_int, "movieId")
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
    check_genre(served, body.genre)
    ids = id_array(list(ratings), served.item_ids_int)
    known = served.known_items(ids)
    frame = await service.run(
        lambda: served.model.recommend_new_user(
            ratings, body.n, genre=body.genre, exclude_seen=body.exclude_seen
        )
    )
    return {
        "known_items": int(known.sum()),
        "ignored_items": ids[~known].tolist(),
        "fallback": None if known.any() else served.fallback,
        "genre": body.genre,
        "items": item_scores(frame),
    }
