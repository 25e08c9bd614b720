"""The decision service, over real loopback HTTP: uvicorn in a thread and in a subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the service tests need httpx")
uvicorn = pytest.importorskip("uvicorn", reason="the service tests need the service extra")

import jsonschema  # noqa: E402

from stagegate import Opportunity, b2b, process_to_dict, process_to_toml  # noqa: E402
from stagegate.decision import response_schema  # noqa: E402
from stagegate.service import ServiceError, create_app, load_processes  # noqa: E402
from strategies import T0  # noqa: E402

RESPONSE = jsonschema.Draft202012Validator(response_schema())
LIMIT = 256 * 1024


def events() -> list[dict[str, Any]]:
    deal = Opportunity.open(b2b(), "acme-1", at=T0, actor="ana")
    deal.record_deliverable(
        "lead_record", at=T0, actor="ana", evidence={"source": "web", "contact": "kim"}
    )
    deal.advance(at=T0 + timedelta(days=1), actor="ana")
    return [e.to_dict() for e in deal.events]


def request(process: Any = "b2b", **move: Any) -> dict[str, Any]:
    return {"version": 1, "process": process, "events": events(), "move": {"actor": "ana", **move}}


@pytest.fixture(scope="module")
def processes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("processes")
    text = process_to_toml(b2b()).replace('name = "b2b"', 'name = "enterprise"', 1)
    (folder / "enterprise.toml").write_text(text, "utf-8")
    (folder / "notes.txt").write_text("not a definition", "utf-8")
    return folder


@pytest.fixture(scope="module")
def base_url(processes_dir: Path) -> Iterator[str]:
    app = create_app(load_processes(processes_dir), max_body_bytes=LIMIT)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as session:
        yield session


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert status == response.status_code
    assert "application/problem+json" == response.headers["content-type"]
    assert "nosniff" == response.headers["x-content-type-options"]
    problem = response.json()
    assert (status, f"https://stagegate.invalid/problems/{kind}") == (
        problem["status"],
        problem["type"],
    )
    assert problem["title"]
    assert problem["detail"]
    return problem  # type: ignore[no-any-return]


class TestDecisions:
    def test_an_allowed_move_is_answered_200(self, client: httpx.Client) -> None:
        response = client.post("/v1/decisions", json=request(command="lose", reason="budget"))
        assert (200, "application/json") == (
            response.status_code,
            response.headers["content-type"],
        )
        assert ("no-store", "nosniff") == (
            response.headers["cache-control"],
            response.headers["x-content-type-options"],
        )
        answer = response.json()
        RESPONSE.validate(answer)
        assert ("allowed", "lost", 4) == (
            answer["status"],
            answer["to_stage"],
            answer["event"]["seq"],
        )

    def test_a_blocked_move_is_answered_200_with_the_reasons(self, client: httpx.Client) -> None:
        answer = client.post("/v1/decisions", json=request(command="advance")).json()
        RESPONSE.validate(answer)
        assert "blocked" == answer["status"]
        assert "deliverable 'qualification_checklist' not recorded" in answer["missing"]

    def test_a_process_from_the_folder_is_used_by_name(self, client: httpx.Client) -> None:
        document = request("enterprise", command="advance")
        for event in document["events"]:
            event["process"] = "enterprise"
        assert "blocked" == client.post("/v1/decisions", json=document).json()["status"]

    def test_an_inline_process_is_used(self, client: httpx.Client) -> None:
        document = request(process_to_dict(b2b()), command="lose", reason="budget")
        assert "allowed" == client.post("/v1/decisions", json=document).json()["status"]

    def test_an_invalid_request_is_a_422_problem_with_the_decision(
        self, client: httpx.Client
    ) -> None:
        response = client.post("/v1/decisions", json=request(command="move_to", target="nope"))
        problem = assert_problem(response, 422, "invalid-request")
        RESPONSE.validate(problem["decision"])
        assert "UnknownStageError" == problem["decision"]["error"]["type"]
        assert "unknown stage 'nope'" in problem["detail"]

    def test_an_instant_before_the_log_is_a_422_problem(self, client: httpx.Client) -> None:
        response = client.post(
            "/v1/decisions", json=request(command="advance", at="2020-01-01T00:00:00Z")
        )
        assert (
            "OutOfOrderError"
            == assert_problem(response, 422, "invalid-request")["decision"]["error"]["type"]
        )

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"",
            b"[" * 10_000 + b"]" * 10_000,
            b'{"version": 1, "events": NaN}',
            b'{"version": 1, "process": "b2b", "events": [], "move": {}}',
            b"\xff\xfe",
        ],
    )
    def test_a_malformed_body_is_a_400_problem(self, client: httpx.Client, body: bytes) -> None:
        response = client.post(
            "/v1/decisions", content=body, headers={"content-type": "application/json"}
        )
        problem = assert_problem(response, 400, "malformed-request")
        assert isinstance(problem["errors"], list)

    def test_an_unknown_process_name_lists_the_known_ones(self, client: httpx.Client) -> None:
        response = client.post("/v1/decisions", json=request("nope", command="advance"))
        assert "b2b, enterprise" in assert_problem(response, 400, "malformed-request")["detail"]

    def test_a_body_that_is_not_json_is_a_415_problem(self, client: httpx.Client) -> None:
        response = client.post(
            "/v1/decisions", content=b"<xml/>", headers={"content-type": "text/xml"}
        )
        assert_problem(response, 415, "unsupported-media-type")

    def test_a_body_over_the_limit_is_a_413_problem(self, client: httpx.Client) -> None:
        body = json.dumps({"pad": "x" * LIMIT}).encode()
        response = client.post(
            "/v1/decisions", content=body, headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "request-too-large")

    def test_a_streamed_body_over_the_limit_is_a_413_problem(self, client: httpx.Client) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(LIMIT // 4096 + 2):
                yield b" " * 4096

        response = client.post(
            "/v1/decisions", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "request-too-large")

    def test_concurrent_clients_get_their_own_answers(self, client: httpx.Client) -> None:
        moves = [{"command": "advance"}, {"command": "lose", "reason": "budget"}] * 12

        def ask(move: dict[str, Any]) -> str:
            return str(client.post("/v1/decisions", json=request(**move)).json()["status"])

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, moves))
        assert ["blocked", "allowed"] * 12 == answers


class TestOtherEndpoints:
    def test_health(self, client: httpx.Client) -> None:
        assert {"status": "ok", "processes": 2} == client.get("/health").json()

    def test_the_processes_are_listed_by_name(self, client: httpx.Client) -> None:
        listing = client.get("/v1/processes").json()["processes"]
        assert ["b2b", "enterprise"] == [p["name"] for p in listing]
        assert list(b2b().stage_ids) == listing[0]["stages"]

    def test_one_process_definition_is_served(self, client: httpx.Client) -> None:
        assert process_to_dict(b2b()) == client.get("/v1/processes/b2b").json()
        assert_problem(client.get("/v1/processes/nope"), 404, "unknown-process")

    def test_the_openapi_document_describes_the_endpoints(self, client: httpx.Client) -> None:
        document = client.get("/openapi.json").json()
        assert "3.1.0" == document["openapi"]
        assert {"/v1/decisions", "/v1/processes", "/v1/processes/{name}", "/health"} == set(
            document["paths"]
        )
        assert "Request" in document["components"]["schemas"]

    def test_unknown_paths_and_methods_are_problems(self, client: httpx.Client) -> None:
        assert_problem(client.get("/nope"), 404, "not-found")
        assert_problem(client.get("/v1/decisions"), 405, "method-not-allowed")


class TestConfiguration:
    def test_two_files_with_one_process_name_are_refused(self, tmp_path: Path) -> None:
        for name in ("a.toml", "b.toml"):
            (tmp_path / name).write_text(process_to_toml(b2b()), "utf-8")
        with pytest.raises(ServiceError, match="both define process 'b2b'"):
            load_processes(tmp_path)

    def test_a_missing_folder_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ServiceError, match="cannot read"):
            load_processes(tmp_path / "nope")

    @pytest.mark.parametrize("limit", [0, -1, True, 10**12])
    def test_a_bad_body_limit_is_refused(self, limit: int) -> None:
        with pytest.raises(ServiceError, match="max_body_bytes"):
            create_app(max_body_bytes=limit)

    @pytest.mark.parametrize("seconds", [0, -1, True, 1e9, "5"])
    def test_a_bad_body_deadline_is_refused(self, seconds: Any) -> None:
        with pytest.raises(ServiceError, match="body_seconds"):
            create_app(body_seconds=seconds)


def _call(app: Any, messages: list[dict[str, Any]], *, then_wait: bool) -> list[dict[str, Any]]:
    """Run one POST /v1/decisions through the ASGI app; ``messages`` are what the client sends.

    After them the client either goes silent (``then_wait``) or its connection is gone.
    """
    import asyncio

    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/decisions",
        "raw_path": b"/v1/decisions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def run() -> None:
        queue = list(messages)

        async def receive() -> dict[str, Any]:
            if queue:
                return queue.pop(0)
            if then_wait:
                await asyncio.sleep(3600)  # a client that stalls half-way through its body
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asyncio.wait_for(app(scope, receive, send), 30)

    asyncio.run(run())
    return sent


_PART = {"type": "http.request", "body": b'{"version": 1, "pro', "more_body": True}
"""The first half of a body whose second half never comes."""


class TestSlowAndVanishingClients:
    def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(self) -> None:
        app = create_app(body_seconds=0.2)
        started = time.monotonic()
        sent = _call(app, [_PART], then_wait=True)
        assert time.monotonic() - started < 10
        start = sent[0]
        assert 408 == start["status"]
        headers = dict(start["headers"])
        assert b"close" == headers[b"connection"]
        problem = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        assert "https://stagegate.invalid/problems/request-timeout" == problem["type"]

    def test_a_client_that_leaves_half_way_is_no_error(self) -> None:
        app = create_app()
        sent = _call(app, [_PART], then_wait=False)  # raised ClientDisconnect before
        assert sent
        assert sent[0]["status"] != 500

    def test_a_real_stalled_client_does_not_keep_its_connection(self, processes_dir: Path) -> None:
        app = create_app(load_processes(processes_dir), body_seconds=0.5)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as stalled:
                stalled.sendall(
                    b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b'\r\nContent-Length: 100\r\n\r\n{"a":'
                )
                answer = b""
                while chunk := stalled.recv(65536):  # until the server closes the connection
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestServeCommand:
    def test_one_command_starts_the_service(self, processes_dir: Path) -> None:
        port = free_port()
        command = [sys.executable, "-m", "stagegate", "serve", "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--processes", str(processes_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                    break
                except httpx.TransportError:
                    assert server.poll() is None, server.stderr.read() if server.stderr else ""
                    assert time.monotonic() < deadline, "the service did not start"
                    time.sleep(0.1)
            assert {"status": "ok", "processes": 2} == health.json()
        finally:
            server.terminate()
            server.wait(timeout=30)
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()

    def test_two_definitions_of_one_name_exit_2(self, tmp_path: Path) -> None:
        for name in ("a.toml", "b.json"):
            (tmp_path / name).write_text(
                process_to_toml(b2b())
                if name.endswith("toml")
                else json.dumps(process_to_dict(b2b())),
                "utf-8",
            )
        result = subprocess.run(
            [sys.executable, "-m", "stagegate", "serve", "--processes", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert 2 == result.returncode
        assert "both define process 'b2b'" in result.stderr

    def test_an_invalid_definition_in_the_folder_exits_2(self, tmp_path: Path) -> None:
        (tmp_path / "bad.toml").write_text('name = "x"\n', "utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "stagegate", "serve", "--processes", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert 2 == result.returncode
        assert "is invalid" in result.stderr
