"""HTTP/JSON API for a saved model: recommendations, predictions, fold-in and weights.

The only package that imports the web framework (FastAPI) and the server (uvicorn).
:func:`create_app` builds the application for one model directory, fixed at start-up: no
request can name a file. :func:`run_server` (the CLI's ``hybridrec serve``) runs it under
uvicorn; :func:`app_from_env` is the factory its worker processes use.

Modules: ``_holder`` (the served model and its reloads), ``_schemas`` (request and response
bodies), ``_middleware`` (request ids, body limit, access log), ``_handlers`` (errors as JSON),
``_service`` (what the endpoints get as dependencies), ``_recommend`` and ``_model_routes``
(the routes), ``_app`` (:func:`create_app`) and ``_server`` (:func:`run_server`).

Conventions
-----------
* **Ids.** Requests name users and items as ``user`` / ``item`` (JSON bodies also accept the
  MovieLens names ``userId`` / ``movieId``); responses always use ``userId``, ``movieId`` and
  ``predicted_rating`` (ranked lists add ``score``, the unclipped value that orders them).
  Ids in a URL arrive as strings: a model whose ids are integers (all MovieLens data) reads
  ``"903"`` as user 903 and answers 422 for an id that is not an integer.
* **Unknown ids.** An unknown user is not an error: ``GET /recommend`` answers with the model's
  cold-start list, ``known_user: false`` and ``fallback`` naming it (for matrix factorization,
  ``item_intercepts``: the items with the highest ``μ + b_i``, the same for every unknown user);
  ``POST /predict`` flags unknown ids per pair and predicts ``μ`` plus the known intercept. An
  unknown item is a 404 for ``/recommend/users`` and ``/weights/item/{id}``, as is an unknown
  user for ``/weights/user/{id}``. A ``genre`` that no movie of the model has is a 422 naming it
  and the model's genres (the CLI's message): a typo, not an empty list.
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

from hybridrec._core.contract import Recommender as ServableModel
from hybridrec.serve._app import CONFIG_ENV, app_from_env, create_app
from hybridrec.serve._holder import ModelHolder, ServedModel, load_served
from hybridrec.serve._server import run_server

__all__ = [
    "CONFIG_ENV",
    "ModelHolder",
    "ServableModel",
    "ServedModel",
    "app_from_env",
    "create_app",
    "load_served",
    "run_server",
]
