"""The decision service: :func:`stagegate.decide` over HTTP (the ``service`` extra).

A stateless ASGI application (Starlette), served by uvicorn: ``stagegate serve``. Processes come
from a folder of definitions (:func:`load_processes`) or inline in each request. Endpoints:

* ``POST /v1/decisions``: a decision-request document in, a decision-response document out
  (200 for allowed and blocked moves); a bad request is answered with an RFC 9457 problem
  document (``application/problem+json``) that carries the decision-response document too.
* ``GET /v1/processes`` and ``GET /v1/processes/{name}``: the processes known by name.
* ``GET /health``: liveness.
* ``GET /openapi.json``: the OpenAPI 3.1 document.

See ``docs/service.md`` for limits and status codes.
"""

from stagegate.service._app import (
    BODY_SECONDS,
    MAX_BODY_BYTES,
    ServiceError,
    create_app,
    load_processes,
    openapi_document,
    run_server,
)

__all__ = [
    "BODY_SECONDS",
    "MAX_BODY_BYTES",
    "ServiceError",
    "create_app",
    "load_processes",
    "openapi_document",
    "run_server",
]
