"""The report read column-wise from a store gives the document of the pure-Python path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stagegate import b2b
from stagegate.cli._report import FRAME_COLUMNS
from stagegate.report import build_document
from stagegate.simulate import simulate
from stagegate.store import SQLiteStore

pl = pytest.importorskip("polars")
pytest.importorskip("narwhals")


def close(expected: Any, actual: Any, path: str = "") -> None:
    """Equal documents, floats up to rounding (sums on frames add in another order)."""
    if isinstance(expected, dict):
        assert set(expected) == set(actual), path
        for key in expected:
            close(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            close(e, a, f"{path}[{i}]")
    elif isinstance(expected, float) and isinstance(actual, (int, float)):
        assert math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9), (path, expected, actual)
    else:
        assert expected == actual, (path, expected, actual)


@pytest.fixture(scope="module", params=[3, 11])
def stored(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    sim = simulate(400, seed=request.param, span_days=300, process=b2b(), mode="informative")
    events = [e for e in sim.events if e.at <= sim.as_of]
    path = tmp_path_factory.mktemp("report") / "deals.sqlite"
    with SQLiteStore(path) as store:
        store.append(events)
    return path, events, sim.as_of


def test_the_frame_path_gives_the_documents_numbers(stored: Any) -> None:
    path, events, as_of = stored
    with SQLiteStore(path) as store:
        frame = store.to_frame(columns=FRAME_COLUMNS, categorical=True).drop("process")
    expected = build_document(events, b2b(), as_of=as_of, simulations=300, seed=4)
    actual = build_document(frame, b2b(), as_of=as_of, simulations=300, seed=4)
    close(expected, actual)


def test_the_command_gives_the_same_document_on_both_engines(stored: Any) -> None:
    path = stored[0]

    def run(engine: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "stagegate", "report", "--store", str(path), "--json",
             "--quiet", "--engine", engine],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )  # fmt: skip
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    close(run("python"), run("polars"))


def test_phases_are_reported_while_the_document_is_built(stored: Any) -> None:
    path, _, as_of = stored
    seen: list[Any] = []

    class Recorder:
        def phase(self, name: str, total: int | None = None) -> Any:
            seen.append((name, total))
            return seen.append

    with SQLiteStore(path) as store:
        frame = store.to_frame(phases=Recorder())
    build_document(frame, b2b(), as_of=as_of, phases=Recorder())
    phases = [item for item in seen if isinstance(item, tuple)]
    assert ["reading", "computing"] == [name for name, _ in phases]
    ticks = seen[seen.index(phases[1]) + 1 :]
    assert ticks == sorted(ticks)  # counted up, to the phase's total
    assert phases[1][1] == ticks[-1]


def test_the_document_is_written_quietly(stored: Any, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "stagegate", "report", "--store", str(stored[0]), "--html",
         str(html), "--quiet", "--engine", "polars"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )  # fmt: skip
    assert "" == done.stderr
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_sections_computed_beside_the_forecast_chain_equal_those_in_one_thread(
    stored: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames: the visit sections run in a second thread; one thread gives the same document."""
    from stagegate.analytics import _table

    path, _, as_of = stored
    with SQLiteStore(path) as store:
        frame = store.to_frame(columns=FRAME_COLUMNS, categorical=True).drop("process")
    threaded = build_document(frame, b2b(), as_of=as_of, simulations=300, seed=4)
    monkeypatch.setattr(_table, "WORKERS", 1)
    alone = build_document(frame, b2b(), as_of=as_of, simulations=300, seed=4)
    for document in (threaded, alone):
        del document["generated_at"]
    close(alone, threaded)


@pytest.mark.parametrize("lane", ["visits", "chain"])
def test_an_error_in_either_lane_reaches_the_caller(
    stored: Any, monkeypatch: pytest.MonkeyPatch, lane: str
) -> None:
    """A failure beside the forecast chain, or in it, is raised, never a half document."""
    from stagegate import analytics as an

    class Broken(an.AnalyticsError):
        pass

    def broken(*_: Any, **__: Any) -> Any:
        raise Broken(lane)

    monkeypatch.setattr(an, "slippage" if lane == "visits" else "forecast", broken)
    path, _, as_of = stored
    with SQLiteStore(path) as store:
        frame = store.to_frame(columns=FRAME_COLUMNS, categorical=True).drop("process")
    with pytest.raises(Broken, match=lane):
        build_document(frame, b2b(), as_of=as_of, simulations=300, seed=4)
