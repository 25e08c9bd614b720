"""The ASGI application of the decision service, and how to serve it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from stagegate import decision
from stagegate.definition import load_process, process_to_dict
from stagegate.errors import StagegateError
from stagegate.process import Process
from stagegate.templates import TEMPLATES, template

__all__ = [
    "BODY_SECONDS",
    "MAX_BODY_BYTES",
    "ServiceError",
    "create_app",
    "load_processes",
    "openapi_document",
    "run_server",
]

MAX_BODY_BYTES = decision.MAX_REQUEST_BYTES
"""Largest request body accepted (413 beyond it)."""
BODY_SECONDS = 30.0
"""Longest a client may take to send a request's body (408 beyond it, and the connection is
closed): a client that stalls half-way through its body does not keep its connection."""
INLINE_THRESHOLD = 256 * 1024
"""Bodies larger than this are decided in a worker thread, so the event loop keeps serving."""
PROBLEM_BASE = "https://stagegate.invalid/problems/"
PROBLEM_TYPE = "application/problem+json"
JSON_TYPE = "application/json"
PROCESSES_ENV = "STAGEGATE_PROCESSES_DIR"
"""Environment variable naming the processes folder of each worker (``--workers`` > 1)."""
_SUFFIXES = (".toml", ".json", ".yaml", ".yml")
_MAX_PROCESS_FILES = 1000


class ServiceError(StagegateError, ValueError):
    """The service cannot start: its processes folder is unusable."""


def load_processes(directory: str | Path | None) -> dict[str, Process]:
    """Load every process definition in ``directory`` (by process name), plus the templates.

    A definition in the folder replaces a built-in template of the same name.

    Raises:
        ServiceError: the folder cannot be read, or two files define the same process name.
        DefinitionError: a definition is invalid (the message names the file).
    """
    processes = {name: template(name) for name in TEMPLATES}
    if directory is None:
        return processes
    folder = Path(directory)
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES)
    except OSError as exc:
        raise ServiceError(f"cannot read the processes folder {folder}: {exc}") from None
    if len(files) > _MAX_PROCESS_FILES:
        raise ServiceError(f"{folder} holds more than {_MAX_PROCESS_FILES} definitions")
    origin: dict[str, Path] = {}
    for path in files:
        process = load_process(path)
        if process.name in origin:
            raise ServiceError(
                f"{path.name} and {origin[process.name].name} both define process "
                f"{process.name!r}; give each process its own name"
            )
        origin[process.name] = path
        processes[process.name] = process
    return processes


SAFE_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
"""Sent with every answer: decisions are never cached, and never sniffed as another type."""


def _problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> Response:
    document = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
    document.update(extra)
    return Response(
        json.dumps(document), status_code=status, media_type=PROBLEM_TYPE, headers=SAFE_HEADERS
    )


def _json(document: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(document), status_code=status, media_type=JSON_TYPE, headers=SAFE_HEADERS
    )


class _Service:
    def __init__(
        self, processes: Mapping[str, Process], max_body_bytes: int, body_seconds: float
    ) -> None:
        self.processes = dict(processes)
        self.max_body_bytes = max_body_bytes
        self.body_seconds = body_seconds
        self.listing = [
            {"name": p.name, "version": p.version, "stages": list(p.stage_ids)}
            for p in self.processes.values()
        ]

    def resolve(self, name: str) -> Process:
        process = self.processes.get(name)
        if process is None:
            known = ", ".join(sorted(self.processes)) or "(none)"
            raise decision.InvalidRequestError(
                f"no process named {name[:100]!r}; known processes: {known}; or send the "
                "definition inline"
            )
        return process

    def answer(self, body: bytes) -> Response:
        document = decision.decide_json(body, processes=self.resolve)
        status = document["status"]
        if status in {"allowed", "blocked"}:
            return _json(document)
        error = document["error"]
        if status == "error":
            return _problem(
                500, "internal-error", "Internal error", error["message"], decision=document
            )
        malformed = error["type"] == "InvalidRequestError"
        return _problem(
            400 if malformed else 422,
            "malformed-request" if malformed else "invalid-request",
            "Malformed decision request" if malformed else "Invalid decision request",
            error["message"],
            errors=error.get("problems", []),
            decision=document,
        )

    async def decide(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in {JSON_TYPE, ""} and not media.endswith("+json"):
            return _problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"send the request as {JSON_TYPE}, not {media[:100]!r}",
            )
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return self._too_large()
        try:
            body = await asyncio.wait_for(self._body(request), self.body_seconds)
        except asyncio.TimeoutError:
            response = _problem(
                408,
                "request-timeout",
                "Request timeout",
                f"the request body did not arrive within {self.body_seconds:g} s; send the "
                "whole request at once",
            )
            response.headers["connection"] = "close"
            return response
        except ClientDisconnect:  # the client left half-way: nobody reads the answer
            return Response(status_code=400, headers={"connection": "close"})
        if body is None:
            return self._too_large()
        if len(body) > INLINE_THRESHOLD:
            return await run_in_threadpool(self.answer, body)
        return self.answer(body)

    async def _body(self, request: Request) -> bytes | None:
        """The whole body, or ``None`` once it passes the size limit."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> Response:
        return _problem(
            413,
            "request-too-large",
            "Request too large",
            f"the request body must be at most {self.max_body_bytes} bytes; send fewer events",
        )

    async def list_processes(self, _request: Request) -> Response:
        return _json({"processes": self.listing})

    async def show_process(self, request: Request) -> Response:
        name = request.path_params["name"]
        process = self.processes.get(name)
        if process is None:
            return _problem(
                404, "unknown-process", "Unknown process", f"no process named {name[:100]!r}"
            )
        return _json(process_to_dict(process))

    async def health(self, _request: Request) -> Response:
        return _json({"status": "ok", "processes": len(self.processes)})

    async def openapi(self, _request: Request) -> Response:
        return _json(openapi_document())


async def _http_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers or {})
    response = _problem(exc.status_code, kind, str(exc.detail), f"{exc.detail}: see /openapi.json")
    response.headers.update(headers)
    return response


async def _internal_problem(_request: Request, exc: Exception) -> Response:
    line = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return _problem(500, "internal-error", "Internal error", f"internal error ({line})")


def create_app(
    processes: Mapping[str, Process] | None = None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_seconds: float = BODY_SECONDS,
) -> Starlette:
    """Return the ASGI application deciding moves for ``processes`` (default: the templates).

    A request whose body does not arrive within ``body_seconds`` is answered 408.

    Raises:
        ServiceError: ``max_body_bytes`` is not a positive integer, or ``body_seconds`` not a
            positive number of seconds.
    """
    if (
        isinstance(body_seconds, bool)
        or not isinstance(body_seconds, (int, float))
        or not 0 < body_seconds <= 3600  # noqa: PLR2004 - an hour at most
    ):
        raise ServiceError(f"body_seconds must be between 0 and 3600 seconds, got {body_seconds!r}")
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
        raise ServiceError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
    if not 0 < max_body_bytes <= MAX_BODY_BYTES:
        raise ServiceError(f"max_body_bytes must be between 1 and {MAX_BODY_BYTES}")
    service = _Service(
        load_processes(None) if processes is None else processes, max_body_bytes, body_seconds
    )
    routes = [
        Route("/v1/decisions", service.decide, methods=["POST"]),
        Route("/v1/processes", service.list_processes, methods=["GET"]),
        Route("/v1/processes/{name}", service.show_process, methods=["GET"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/openapi.json", service.openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_problem, Exception: _internal_problem},
    )


def app_from_environment() -> Starlette:
    """The application of one worker process, its processes folder named in the environment."""
    return create_app(load_processes(os.environ.get(PROCESSES_ENV) or None))


def run_server(
    processes: Mapping[str, Process],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    processes_dir: str | Path | None = None,
) -> None:
    """Serve the application with uvicorn until interrupted.

    With several ``workers`` each worker process loads ``processes_dir`` itself.
    """
    import uvicorn  # noqa: PLC0415 - only serving needs it

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "limit_concurrency": 1024,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 64 * 1024,
    }
    if workers > 1:
        if processes_dir is not None:
            os.environ[PROCESSES_ENV] = str(processes_dir)
        uvicorn.run(
            "stagegate.service._app:app_from_environment", factory=True, workers=workers, **options
        )
    else:
        uvicorn.run(create_app(processes), **options)


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the service."""
    problem = {"$ref": "#/components/schemas/Problem"}
    problem_content = {PROBLEM_TYPE: {"schema": problem}}

    def problem_response(description: str) -> dict[str, Any]:
        return {"description": description, "content": problem_content}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stagegate decision service",
            "version": f"{decision.SCHEMA_VERSION}",
            "description": "May this deal make this move now? Stateless decisions over a "
            "process, a deal's events and a requested move.",
        },
        "paths": {
            "/v1/decisions": {
                "post": {
                    "summary": "Decide a move",
                    "operationId": "decide",
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON_TYPE: {"schema": {"$ref": "#/components/schemas/Request"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The decision: status allowed or blocked.",
                            "content": {
                                JSON_TYPE: {"schema": {"$ref": "#/components/schemas/Response"}}
                            },
                        },
                        "400": problem_response("Not JSON, too deep, or not the request schema."),
                        "408": problem_response("The body did not arrive in time."),
                        "413": problem_response("The body is too large."),
                        "415": problem_response("The body is not JSON."),
                        "422": problem_response(
                            "An invalid request: unknown stage, instant before the last event, "
                            "empty actor, broken log, invalid inline process."
                        ),
                        "500": problem_response("An internal error."),
                    },
                }
            },
            "/v1/processes": {
                "get": {
                    "summary": "List the processes known by name",
                    "operationId": "listProcesses",
                    "responses": {"200": {"description": "name, version and stages of each"}},
                }
            },
            "/v1/processes/{name}": {
                "get": {
                    "summary": "One process definition",
                    "operationId": "showProcess",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "The definition (process.schema.json)."},
                        "404": problem_response("No process of that name."),
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Liveness",
                    "operationId": "health",
                    "responses": {"200": {"description": "The service is up."}},
                }
            },
        },
        "components": {
            "schemas": {
                "Request": dict(decision.request_schema()),
                "Response": dict(decision.response_schema()),
                "Problem": {
                    "type": "object",
                    "description": "An RFC 9457 problem document.",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string", "format": "uri"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {"type": "array", "items": {"type": "string"}},
                        "decision": {"$ref": "#/components/schemas/Response"},
                    },
                },
            }
        },
    }
