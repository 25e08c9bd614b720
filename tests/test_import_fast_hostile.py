"""Hostile files on the fast path of the import: it never takes what the ordinary path refuses.

Each case is a small valid log changed the way real files go wrong (encodings, line ends, header
spellings, JSON types, typed Parquet columns). Whatever the fast path does with it, it must agree
with the ordinary path: refuse it too, hand it over, or store byte for byte the same rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stagegate.io import write_events
from stagegate.io.canonical import EVENT_COLUMNS
from stagegate.simulate import simulate
from test_import_fast import PROCESS, _both, _slow, _tables


def _log(tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    sim = simulate(5, seed=11, process=PROCESS)
    path = tmp_path / "base.csv"
    write_events(path, [e for e in sim.events if e.at <= sim.as_of])
    text = path.read_text(encoding="utf-8")
    return text, list(csv.DictReader(io.StringIO(text)))


def _csv_rows(header: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return out.getvalue()


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        record: dict[str, Any] = {k: (None if v == "" else v) for k, v in row.items()}
        record["seq"] = int(record["seq"])
        out.append(record)
    return out


def _lines(records: list[dict[str, Any]], end: str = "\n") -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + end for record in records)


def _amounts(rows: list[dict[str, Any]], kind: Callable[[str], Any]) -> list[Any]:
    return [kind(row["amount"]) if row["amount"] else None for row in rows]


CSV: dict[str, Callable[[str, list[dict[str, Any]]], str | bytes]] = {
    "byte order mark": lambda text, rows: "\ufeff" + text,
    "CRLF line ends": lambda text, rows: text.replace("\r\n", "\n").replace("\n", "\r\n"),
    "columns reversed": lambda text, rows: _csv_rows(list(EVENT_COLUMNS)[::-1], rows),
    "an extra column": lambda text, rows: _csv_rows([*EVENT_COLUMNS, "note"], rows),
    "no details column": lambda text, rows: _csv_rows(
        [c for c in EVENT_COLUMNS if c != "details"], rows
    ),
    "no seq column": lambda text, rows: _csv_rows([c for c in EVENT_COLUMNS if c != "seq"], rows),
    "a column twice": lambda text, rows: _csv_rows([*EVENT_COLUMNS, "stage"], rows),
    "header in capitals": lambda text, rows: text.replace(
        text.splitlines()[0], text.splitlines()[0].upper(), 1
    ),
    "header with spaces": lambda text, rows: text.replace(
        text.splitlines()[0], ", ".join(EVENT_COLUMNS), 1
    ),
    "blank lines at the end": lambda text, rows: text + "\n\n\n",
    "no final line end": lambda text, rows: text.rstrip("\n"),
    "Latin-1 bytes": lambda text, rows: text.replace("simulator", "sïmulator").encode("latin-1"),
    "UTF-16": lambda text, rows: text.encode("utf-16"),
    "a short row": lambda text, rows: text + "x,1\n",
    "semicolons": lambda text, rows: text.replace(",", ";"),
    "a NUL byte": lambda text, rows: text.replace("simulator", "simu\x00lator", 1),
    "every cell quoted": lambda text, rows: "".join(
        ",".join(f'"{cell}"' for cell in line.split(",")) + "\n" for line in text.splitlines()
    ),
    "header only": lambda text, rows: text.splitlines()[0] + "\n",
    # read_events' CSV field limit: a field of 1,000,000 characters is read, one more refused
    "a field at the limit": lambda text, rows: text.replace("simulator", "a" * 1_000_000, 1),
    "a field over the limit": lambda text, rows: text.replace("simulator", "a" * 1_000_001, 1),
}

JSONL: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "seq as text": lambda rs: _lines([dict(r, seq=str(r["seq"])) for r in rs]),
    "seq as a float": lambda rs: _lines([dict(r, seq=float(r["seq"])) for r in rs]),
    "seq as true": lambda rs: _lines([dict(rs[0], seq=True), *rs[1:]]),
    "seq past 64 bits": lambda rs: _lines([dict(r, seq=r["seq"] + 2**64) for r in rs]),
    "amounts as numbers": lambda rs: _lines(
        [dict(r, amount=float(r["amount"]) if r["amount"] else None) for r in rs]
    ),
    "keys left out": lambda rs: _lines([{k: v for k, v in r.items() if v is not None} for r in rs]),
    "an extra key": lambda rs: _lines([dict(r, note=1) for r in rs]),
    "details as an object": lambda rs: _lines([dict(r, details={"a": 1}) for r in rs]),
    "details as text": lambda rs: _lines([dict(r, details='{"a": 1}') for r in rs]),
    "an id as a number": lambda rs: _lines([dict(r, opportunity_id=7) for r in rs]),
    "an id as a list": lambda rs: _lines([dict(rs[0], opportunity_id=["x"]), *rs[1:]]),
    "a key twice": lambda rs: "".join(
        json.dumps(r)[:-1] + ', "stage": "qualification"}\n' for r in rs
    ),
    "CRLF line ends": lambda rs: _lines(rs, "\r\n"),
    "byte order mark": lambda rs: "\ufeff" + _lines(rs),
    "a lone surrogate": lambda rs: _lines(rs).replace('"simulator"', '"\\ud800x"'),
    "escaped letters": lambda rs: _lines(rs).replace('"simulator"', '"\\u0073imulator"'),
    "an array line": lambda rs: "[1, 2]\n" + _lines(rs),
    "a malformed digest": lambda rs: _lines([dict(r, digest="zz") for r in rs]),
    "an instant as a number": lambda rs: _lines([dict(rs[0], at=1767225600), *rs[1:]]),
    "instants in Z": lambda rs: _lines([dict(r, at=r["at"].replace("+00:00", "Z")) for r in rs]),
}

PARQUET: dict[str, Callable[[list[dict[str, Any]]], dict[str, Any]]] = {
    "seq int32": lambda rs: {"seq": pa.array([int(r["seq"]) for r in rs], pa.int32())},
    "seq uint8": lambda rs: {"seq": pa.array([int(r["seq"]) for r in rs], pa.uint8())},
    "seq float": lambda rs: {"seq": pa.array([float(r["seq"]) for r in rs], pa.float64())},
    "amounts float": lambda rs: {"amount": pa.array(_amounts(rs, float), pa.float64())},
    "amounts decimal": lambda rs: {"amount": pa.array(_amounts(rs, Decimal), pa.decimal128(18, 2))},
    "zoned timestamps": lambda rs: {
        "at": pa.array([datetime.fromisoformat(r["at"]) for r in rs], pa.timestamp("us", tz="UTC"))
    },
    "naive timestamps": lambda rs: {
        "at": pa.array(
            [datetime.fromisoformat(r["at"]).replace(tzinfo=None) for r in rs], pa.timestamp("us")
        )
    },
    "close dates as dates": lambda rs: {
        "close_date": pa.array(
            [date.fromisoformat(r["close_date"]) if r["close_date"] else None for r in rs],
            pa.date32(),
        )
    },
    "large strings": lambda rs: {"stage": pa.array([r["stage"] for r in rs], pa.large_string())},
    "dictionary strings": lambda rs: {
        "stage": pa.array([r["stage"] for r in rs], pa.string()).dictionary_encode()
    },
    "ids as bytes": lambda rs: {
        "opportunity_id": pa.array([r["opportunity_id"].encode() for r in rs], pa.binary())
    },
    "details all null": lambda rs: {"details": pa.nulls(len(rs))},
    "an extra column": lambda rs: {"note": pa.array(["x"] * len(rs))},
    "no details column": lambda rs: {"details": None},
}


def _agree(folder: Path, log: Path) -> None:
    """Import both ways: ``_both`` fails unless the paths agree (or the fast one hands over)."""
    _both(folder, log)


@pytest.mark.parametrize("case", sorted(CSV))
def test_hostile_csv(tmp_path: Path, case: str) -> None:
    text, rows = _log(tmp_path)
    content = CSV[case](text, rows)
    log = tmp_path / "log.csv"
    if isinstance(content, bytes):
        log.write_bytes(content)
    else:
        log.write_text(content, encoding="utf-8", newline="")
    _agree(tmp_path, log)


def _segmented(tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """A simulated log with owners and attributes: CSV with quoted JSON details."""
    sim = simulate(8, seed=11, process=PROCESS, segments=True)
    path = tmp_path / "segmented.csv"
    write_events(path, [e for e in sim.events if e.at <= sim.as_of])
    text = path.read_bytes().decode("utf-8")  # the line ends as written (CRLF)
    return text, list(csv.DictReader(io.StringIO(text, newline="")))


def _each(rows: list[dict[str, Any]], kind: str, **values: str) -> list[dict[str, Any]]:
    return [dict(r, **values) if r["kind"] == kind else r for r in rows]


QUOTED: dict[str, Callable[[str, list[dict[str, Any]]], str]] = {
    "as written": lambda text, rows: text,
    "LF line ends": lambda text, rows: text.replace("\r\n", "\n"),
    "mixed line ends": lambda text, rows: text.replace("\r\n", "\n", 3),
    "a plain field quoted": lambda text, rows: text.replace(",opened,", ',"opened",', 1),
    "a quote inside a field": lambda text, rows: text.replace("simulator", 'simu"lator', 1),
    "text after a closing quote": lambda text, rows: text.replace('""}"', '""}"x', 1),
    "details not quoted": lambda text, rows: text.replace(
        '"{""value"": ""', '{"value": "', 1
    ).replace('""}"', '"}', 1),
    "compact details": lambda text, rows: text.replace('{""value"": ""', '{""value"":""'),
    "details with another key": lambda text, rows: text.replace(
        '{""value"": ""', '{""note"": 1, ""value"": ""', 1
    ),
    "an owner given twice": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "reassigned", subject="Ana")
    ),
    "an attribute set to its value again": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "attribute_set", subject="team", details='{"value": "x"}')
    ),
    "a reserved attribute name": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "attribute_set", subject="stage")
    ),
    "the currency attribute": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "attribute_set", subject="currency")
    ),
    "an owner with a space at the end": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "reassigned", subject="Ana ")
    ),
    "an owner on a kind without one": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "rescheduled", subject="Ana")
    ),
    "a reassignment that moves the amount": lambda text, rows: _csv_rows(
        list(EVENT_COLUMNS), _each(rows, "reassigned", amount="1")
    ),
}


@pytest.mark.parametrize("case", sorted(QUOTED))
def test_hostile_quoted_csv(tmp_path: Path, case: str) -> None:
    text, rows = _segmented(tmp_path)
    content = QUOTED[case](text, rows)
    assert content != text or case == "as written"
    log = tmp_path / "log.csv"
    log.write_text(content, encoding="utf-8", newline="")
    took, refused = _both(tmp_path, log)
    if case in {"as written", "LF line ends", "compact details"}:
        assert (took, refused) == (True, None)
    if case.startswith(("an owner given", "an attribute set", "a reserved")):
        assert refused is not None  # the ordinary path refuses it, so the fast one must


@pytest.mark.parametrize("case", sorted(JSONL))
def test_hostile_json_lines(tmp_path: Path, case: str) -> None:
    _, rows = _log(tmp_path)
    log = tmp_path / "log.jsonl"
    log.write_text(JSONL[case](_json_rows(rows)), encoding="utf-8", newline="")
    _agree(tmp_path, log)


@pytest.mark.parametrize("case", sorted(PARQUET))
def test_hostile_parquet(tmp_path: Path, case: str) -> None:
    _, rows = _log(tmp_path)
    columns: dict[str, Any] = {
        name: pa.array([row[name] or None for row in rows], pa.string()) for name in EVENT_COLUMNS
    }
    for name, column in PARQUET[case](rows).items():
        if column is None:
            del columns[name]
        else:
            columns[name] = column
    log = tmp_path / "log.parquet"
    pq.write_table(pa.table(columns), log)
    _agree(tmp_path, log)


def test_typed_parquet_columns_store_what_their_text_stores(tmp_path: Path) -> None:
    _, rows = _log(tmp_path)
    text = {n: pa.array([r[n] or None for r in rows], pa.string()) for n in EVENT_COLUMNS}
    pq.write_table(pa.table(text), tmp_path / "text.parquet")
    typed = dict(text)
    for case in ("zoned timestamps", "close dates as dates", "seq int32"):
        typed.update(PARQUET[case](rows))
    pq.write_table(pa.table(typed), tmp_path / "typed.parquet")
    assert _slow(tmp_path / "text.sqlite", tmp_path / "text.parquet") is None
    assert _slow(tmp_path / "typed.sqlite", tmp_path / "typed.parquet") is None
    assert (
        _tables(tmp_path / "text.sqlite")["events"] == _tables(tmp_path / "typed.sqlite")["events"]
    )
