"""Benchmark loading a large process definition, as ``decide_json`` does for an inline one.

A service that takes definitions inline pays their check on every request. The definition here
is near the size limits (98 open stages of ten deliverables with 40 evidence names each: about
40,000 values, 300 KB of JSON), loaded three ways in the same run:

* ``valid_s``: ``process_from_json`` of the valid definition (the compiled schema checker).
* ``invalid_s``: the same with one bad evidence name at its very end (refused).
* ``jsonschema_s``: what the check cost when ``jsonschema`` judged every definition: its
  validation of the valid document alone, without building the process.

Usage: python benchmarks/definitions.py [--repeat 5]
The last line printed is one JSON object with the medians in seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jsonschema

from stagegate import DefinitionError, process_from_json
from stagegate.definition import schema


def large_definition() -> dict[str, Any]:
    """About 40,000 values, within every limit of the process schema."""
    stages: list[dict[str, Any]] = [
        {
            "id": f"s{i}",
            "probability": i / 100,
            "deliverables": [
                {"id": f"d{i}_{j}", "evidence": [f"e{k}" for k in range(40)]} for j in range(10)
            ],
        }
        for i in range(98)
    ]
    stages.append({"id": "won", "probability": 1, "kind": "won"})
    stages.append({"id": "lost", "probability": 0, "kind": "lost"})
    return {"name": "large", "version": "1", "stages": stages}


def _median(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _refused(text: str) -> None:
    try:
        process_from_json(text)
    except DefinitionError:
        return
    raise AssertionError("the invalid definition loaded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    valid = large_definition()
    invalid = copy.deepcopy(valid)
    invalid["stages"][97]["deliverables"][9]["evidence"][39] = "9bad"
    valid_text, invalid_text = json.dumps(valid), json.dumps(invalid)
    validator = jsonschema.Draft202012Validator(schema())
    figures = {
        "bytes": len(valid_text),
        "valid_s": _median(lambda: process_from_json(valid_text), args.repeat),
        "invalid_s": _median(lambda: _refused(invalid_text), args.repeat),
        "jsonschema_s": _median(lambda: validator.validate(json.loads(valid_text)), args.repeat),
    }
    figures["jsonschema_over_valid"] = figures["jsonschema_s"] / figures["valid_s"]
    for name, value in figures.items():
        print(f"{name:>22}: {value:,.3f}" if isinstance(value, float) else f"{name:>22}: {value:,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
