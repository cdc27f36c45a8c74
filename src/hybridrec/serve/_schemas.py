"""The HTTP API's request and response bodies (pydantic), as the OpenAPI schema shows them."""

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictInt, StrictStr

#: Longest id a request may give (longer ones are a 422, not a lookup).
MAX_ID_CHARS = 64

ID_DOC = (
    "an id as in the training data; for a model with integer ids, an integer or a string of digits"
)
IdIn = StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_CHARS)]
IdOut = int | str


SCORE_DOC = (
    "the unclipped model score that orders the list: several predicted ratings clipped to the "
    "top of the scale tie, their scores do not; null for models whose ranking is not a rating "
    "(implicit, ranker by relevance)"
)


class ItemScore(BaseModel):
    movieId: IdOut
    title: str | None = Field(None, description="present when the model has item metadata")
    predicted_rating: float
    score: float | None = Field(None, description=SCORE_DOC)


class UserScore(BaseModel):
    userId: IdOut
    predicted_rating: float
    score: float | None = Field(None, description=SCORE_DOC)


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
    user: IdIn = Field(validation_alias=AliasChoices("user", "userId"), description=ID_DOC)
    item: IdIn = Field(validation_alias=AliasChoices("item", "movieId"), description=ID_DOC)


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
    item: IdIn = Field(validation_alias=AliasChoices("item", "movieId"), description=ID_DOC)
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


ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "invalid request"},
    503: {"model": ErrorBody, "description": "timed out"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown id"},
    **ERRORS,
}


def predict_request(max_pairs: int) -> type[BaseModel]:
    """The body of ``POST /predict``: at most ``max_pairs`` pairs (shown in the schema)."""

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        pairs: list[Pair] = Field(
            min_length=1, max_length=max_pairs, description=f"1..{max_pairs} (user, item) pairs"
        )

    return PredictRequest


def new_user_request(max_pairs: int, max_n: int) -> type[BaseModel]:
    """The body of ``POST /recommend/new-user``: at most ``max_pairs`` ratings and ``max_n``."""

    class NewUserRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        ratings: list[NewUserRating] = Field(
            min_length=1, max_length=max_pairs, description="the new user's ratings, distinct items"
        )
        n: int = Field(10, ge=1, le=max_n, description=f"how many items, 1..{max_n}")
        genre: str | None = Field(None, min_length=1, max_length=100)
        exclude_seen: bool = Field(True, description="skip the items the new user rated")

    return NewUserRequest
