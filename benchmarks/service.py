"""Benchmark the decision service on loopback: throughput, latency, and malformed requests.

Starts ``stagegate serve`` (uvicorn, one worker unless ``--workers``) in a subprocess, then, in
this process, runs CONCURRENCY clients on keep-alive HTTP/1.1 connections (a minimal asyncio
client, so that the load generator costs little of the shared cores) deciding moves for deals
of about 20 events each, until REQUESTS answers or SECONDS have passed, whichever comes first.
Every answer is compared with the in-process answer to the same request (a mismatch or a
non-200 status is an error). Then it sends a corpus of malformed requests and counts answers
that are not 4xx. ``decide_json`` is timed in this process on the same request bodies before and
after the load (the machine is shared: the mean of both is the in-process rate).

Usage: python benchmarks/service.py [--requests 20000] [--seconds 30] [--concurrency 32]
    [--deals 200] [--workers 1] [--in-process-seconds 5]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from stagegate import Opportunity, b2b
from stagegate.decision import MAX_REQUEST_BYTES, decide_json

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
EVIDENCE = {
    "lead_record": {"source": "webinar", "contact": "kim@example.com"},
    "qualification_checklist": {
        "budget": "yes",
        "authority": "cfo",
        "need": "crm",
        "timeline": "q3",
    },
}


def deal_events(index: int, size: int = 20) -> list[dict[str, Any]]:
    """A deal in needs analysis with ``size`` events: gated moves, activities and fields."""
    at = T0 + timedelta(minutes=index)
    deal = Opportunity.open(b2b(), f"deal-{index:05d}", at=at, actor="ana", amount=10_000 + index)
    deal.record_deliverable("lead_record", at=at, actor="ana", evidence=EVIDENCE["lead_record"])
    deal.advance(at=at + timedelta(days=1), actor="ana")
    deal.record_deliverable(
        "qualification_checklist",
        at=at + timedelta(days=2),
        actor="ana",
        evidence=EVIDENCE["qualification_checklist"],
    )
    deal.log_activity("discovery_call", at=at + timedelta(days=3), actor="ana")
    deal.advance(at=at + timedelta(days=4), actor="ana")
    step = 5
    while len(deal.events) < size:
        when = at + timedelta(days=step)
        if step % 3:
            deal.log_activity(
                "email", at=when, actor="bo", details={"subject": f"follow-up {step}"}
            )
        else:
            deal.set_field("competitor", f"rival-{step}", at=when, actor="bo")
        step += 1
    return [event.to_dict() for event in deal.events]


MOVES = (
    {"command": "advance", "actor": "ana"},
    {"command": "lose", "actor": "ana", "reason": "budget cut"},
    {"command": "move_to", "actor": "ana", "target": "contract"},
    {"command": "override", "actor": "ana", "reason": "exec sponsor"},
)


def request_bodies(deals: int) -> list[bytes]:
    bodies = []
    for index in range(deals):
        document = {
            "version": 1,
            "process": "b2b",
            "events": deal_events(index),
            "move": MOVES[index % len(MOVES)],
        }
        bodies.append(json.dumps(document).encode())
    return bodies


def malformed_corpus(valid: bytes) -> list[tuple[bytes, str]]:
    """Bodies (and content types) a hostile or careless caller sends."""
    document = json.loads(valid)
    corpus: list[tuple[bytes, str]] = [
        (b"", "application/json"),
        (b"not json", "application/json"),
        (valid[: len(valid) // 2], "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (b'{"version": 1, "process": "b2b", "events": NaN}', "application/json"),
        (b'{"version": 1e999}', "application/json"),
        (b"1" * 10_000, "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b'"\\ud800"', "application/json"),
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (valid, "text/plain"),
        (valid, "application/x-www-form-urlencoded"),
        (b" " * (MAX_REQUEST_BYTES + 1), "application/json"),
    ]

    def variant(change: Any) -> bytes:
        copy = json.loads(json.dumps(document))
        change(copy)
        return json.dumps(copy).encode()

    changes = [
        lambda d: d.update(version=2),
        lambda d: d.pop("move"),
        lambda d: d.update(process="nope"),
        lambda d: d.update(process={"name": "x"}),
        lambda d: d.update(events=[]),
        lambda d: d.update(events="all of them"),
        lambda d: d["move"].update(command="jump"),
        lambda d: d["move"].update(actor=""),
        lambda d: d["move"].update(actor=5),
        lambda d: d["move"].update(target="nowhere", command="move_to"),
        lambda d: d["move"].update(at="2000-01-01T00:00:00Z"),
        lambda d: d["move"].update(at="2026-02-01T00:00:00"),
        lambda d: d["move"].update(at="yesterday"),
        lambda d: d["move"].update(at="9999-12-31T23:59:59-05:00"),
        lambda d: d["move"].update(reason=["a"]),
        lambda d: d["move"].update(facts={"deliverables": {"nda": {}}}),
        lambda d: d["move"].update(facts={"fields": {"amount": 1}}),
        lambda d: d["events"][3].update(seq=99),
        lambda d: d["events"][3].update(seq="4"),
        lambda d: d["events"][3].update(at="0001-01-01T00:00:00+05:00"),
        lambda d: d["events"][3].update(kind="teleported"),
        lambda d: d["events"][3].update(stage="contract_sent\n"),
        lambda d: d["events"][3].update(details=[1, 2]),
        lambda d: d["events"][3].update(amount="-x"),
        lambda d: d["events"][2].update(gate={"target": 5}),
        lambda d: d["events"][0].update(details={"fields": "not a mapping"}),
        lambda d: d["events"][0].update(opportunity_id="\ud800"),
        lambda d: d["events"][5].update(from_stage="won"),
        lambda d: d["events"].reverse(),
        lambda d: d["events"].append(d["events"][0]),
        lambda d: d["events"][4].update(extra=1),
    ]
    corpus.extend((variant(change), "application/json") for change in changes)
    return corpus


# -- a minimal HTTP/1.1 client -----------------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        return cls(reader, writer)

    async def post(self, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
        head = (
            f"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        return await self.read()

    async def read(self) -> tuple[int, bytes]:
        header = await self.reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def status_of(answer: bytes) -> str:
    """The ``status`` of a decision document, read from its head (it comes second)."""
    head = answer[:64]
    start = head.find(b'"status": "') + len(b'"status": "')
    return head[start : head.find(b'"', start)].decode()


async def load(
    port: int, bodies: list[bytes], expected: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0
    deadline = time.perf_counter() + args.seconds

    async def client() -> None:
        nonlocal next_index
        connection = await Connection.open(port)
        try:
            while next_index < args.requests and time.perf_counter() < deadline:
                index = next_index
                next_index += 1
                body = bodies[index % len(bodies)]
                started = time.perf_counter()
                try:
                    status, answer = await connection.post(body)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors.append(f"transport: {exc!r}")
                    connection = await Connection.open(port)
                    continue
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(f"status {status}: {answer[:200]!r}")
                elif status_of(answer) != expected[index % len(bodies)]:
                    errors.append(f"answer mismatch for request {index}")
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "service_decisions_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": 1000 * ordered[len(ordered) // 2] if ordered else None,
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        if ordered
        else None,
        "mean_ms": 1000 * statistics.fmean(ordered) if ordered else None,
        "errors": len(errors),
        "error_samples": errors[:5],
    }


async def send_malformed(port: int, corpus: list[tuple[bytes, str]]) -> dict[str, Any]:
    non_4xx: list[str] = []
    statuses: dict[int, int] = {}
    for body, content_type in corpus:
        connection = await Connection.open(port)
        try:
            status, answer = await connection.post(body, content_type)
        except (OSError, asyncio.IncompleteReadError) as exc:
            non_4xx.append(f"transport: {exc!r} for {body[:60]!r}")
            continue
        finally:
            await connection.close()
        statuses[status] = statuses.get(status, 0) + 1
        if not 400 <= status < 500:
            non_4xx.append(f"status {status} for {body[:60]!r}: {answer[:200]!r}")
    return {
        "malformed_requests": len(corpus),
        "malformed_non_4xx": len(non_4xx),
        "malformed_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "malformed_samples": non_4xx[:5],
    }


def in_process_rate(bodies: list[bytes], seconds: float, most: int) -> float:
    most = max(most, 1)
    count = 0
    started = time.perf_counter()
    while count < most and time.perf_counter() - started < seconds:
        decide_json(bodies[count % len(bodies)])
        count += 1
    return count / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "stagegate", "serve", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", str(workers)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            message = server.stderr.read().decode() if server.stderr else ""
            raise SystemExit(f"the server exited: {message}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start within 60 s")


async def warm_up(port: int, bodies: list[bytes]) -> None:
    connection = await Connection.open(port)
    try:
        for body in bodies[:50]:
            await connection.post(body)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="most requests to send")
    parser.add_argument("--seconds", type=float, default=30.0, help="longest load phase")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument("--deals", type=int, default=200, help="distinct deals (requests)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--in-process-seconds", type=float, default=5.0)
    args = parser.parse_args()

    bodies = request_bodies(args.deals)
    expected = [decide_json(body)["status"] for body in bodies]
    events_per_deal = statistics.fmean(len(json.loads(b)["events"]) for b in bodies)
    print(
        f"{len(bodies)} distinct requests, {events_per_deal:.1f} events per deal; answers: "
        f"{ {s: expected.count(s) for s in sorted(set(expected))} }"
    )

    in_process_before = in_process_rate(bodies, args.in_process_seconds / 2, args.requests)
    port = free_port()
    server = start_server(port, args.workers)
    try:
        asyncio.run(warm_up(port, bodies))
        load_before = os.getloadavg()[0]
        figures = asyncio.run(load(port, bodies, expected, args))
        figures.update(asyncio.run(send_malformed(port, malformed_corpus(bodies[0]))))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
    in_process_after = in_process_rate(bodies, args.in_process_seconds / 2, args.requests)
    in_process = (in_process_before + in_process_after) / 2  # the machine is shared: both sides
    figures.update(
        in_process_decisions_per_s=in_process,
        in_process_before_per_s=in_process_before,
        in_process_after_per_s=in_process_after,
        service_to_in_process=figures["service_decisions_per_s"] / in_process,
        concurrency=args.concurrency,
        workers=args.workers,
        events_per_deal=events_per_deal,
        load_average_1m_before=load_before,
        load_average_1m_after=os.getloadavg()[0],
        cpus=os.cpu_count(),
    )
    print(
        f"service: {figures['requests']} decisions in {figures['elapsed_s']:.2f} s = "
        f"{figures['service_decisions_per_s']:.0f}/s at {args.concurrency} clients "
        f"({args.workers} worker); p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms; "
        f"errors {figures['errors']}"
    )
    print(
        f"in process: decide_json {in_process:.0f}/s; service/in-process "
        f"{figures['service_to_in_process']:.2f}"
    )
    print(
        f"malformed: {figures['malformed_requests']} requests, "
        f"{figures['malformed_non_4xx']} answered other than 4xx; statuses "
        f"{figures['malformed_statuses']}"
    )
    print(f"machine: {os.cpu_count()} cpus, load average {load_before:.2f} before the run")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
