"""Options typed on the command line or in a mapping file, read the same way by every command.

Instants (``--as-of``, ``--undated-at``: ISO 8601 with an offset, or a calendar date),
``NAME=VALUE`` pairs, comma-separated names, and the mapping files of ``stagegate import``.
Each refusal is a :class:`click.BadParameter` that says what to type instead.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from dateutil import parser as _dateutil_parser

from stagegate._time import UTC

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


__all__ = [
    "MAPPING_KEYS",
    "instant_callback",
    "names",
    "pairs",
    "parse_cli_instant",
    "read_mapping",
]

MAPPING_KEYS = {
    "format": str,
    "process": str,
    "template": str,
    "assume_zone": str,
    "columns": dict,
    "map": dict,
    "won": list,
    "lost": list,
    "stage_order": list,
    "entered": dict,
    "undated_at": str,
    "as_of": str,
    "pipedrive_stages": str,
    "pipedrive_fields": str,
    "encoding": str,
    "delimiter": str,
    "max_field_size": int,
    "accept": list,
    "segments": list,
    "owners": str,
}
"""The keys of a mapping file (``--mapping``), with the type of each value."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_cli_instant(value: str, flag: str) -> datetime:
    """An instant given on the command line: ISO 8601 with an offset, or a calendar date.

    A date (``2025-06-30``) means the start of that day in UTC. An instant without an offset
    is refused: it is never guessed.

    Raises:
        click.BadParameter: ``value`` is neither, with what to type instead.
    """
    text = value.strip()
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            msg = f"{text!r} is not a calendar date; write it as YYYY-MM-DD, e.g. 2025-06-30"
            raise click.BadParameter(msg, param_hint=flag) from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        parsed = _dateutil_parser.isoparse(text)
    except (ValueError, OverflowError):
        msg = (
            f"{text!r} is not a date or an ISO 8601 instant; write e.g. 2025-06-30 (the "
            "start of that day in UTC) or 2025-06-30T12:00:00+02:00"
        )
        raise click.BadParameter(msg, param_hint=flag) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        msg = (
            f"{text!r} has no time zone; add its offset (e.g. {text}Z for UTC, or "
            f"{text}+02:00), or give a date such as {text[:10]} (the start of that day in UTC)"
        )
        raise click.BadParameter(msg, param_hint=flag)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        msg = (
            f"{text!r} falls outside the years 1 to 9999 in UTC; give an instant within them, "
            "e.g. 2025-06-30T12:00:00+02:00"
        )
        raise click.BadParameter(msg, param_hint=flag) from None


def instant_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime | None:
    """A click callback: the option's value as :func:`parse_cli_instant` reads it."""
    del ctx
    if value is None:
        return None
    return parse_cli_instant(value, f"--{param.name or ''}".replace("_", "-"))


def pairs(
    values: tuple[str, ...], flag: str, *, shape: str = "NAME=VALUE", strip: bool = False
) -> dict[str, str]:
    """Repeated ``NAME=VALUE`` flags as a mapping (the last one of a name wins).

    ``strip`` drops the spaces around each side (names that are not column headers, which
    may have them).

    Raises:
        click.BadParameter: a value without ``=``, or with nothing on one side.
    """
    found: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if strip:
            key, target = key.strip(), target.strip()
        if not sep or not key or not target:
            raise click.BadParameter(f"must look like {shape}, got {value!r}", param_hint=flag)
        found[key] = target
    return found


def names(values: tuple[str, ...]) -> list[str]:
    """Stage names from repeated flags, each of which may also be comma-separated."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def read_mapping(path: Path) -> dict[str, Any]:
    """Read a mapping file (TOML or JSON, by suffix): the options of one export, at once.

    Paths in it (``pipedrive_stages``, ``pipedrive_fields``, ``process``) are relative to the
    file. Lists may also be written as one comma-separated string.

    Raises:
        click.BadParameter: the file cannot be read, or a key or value is not one it takes.
    """
    hint = "--mapping"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {str(path)!r}: {exc.strerror or exc}"
        raise click.BadParameter(msg, param_hint=hint) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        msg = f"{str(path)!r} is not valid {kind}: {exc}"
        raise click.BadParameter(msg, param_hint=hint) from None
    if not isinstance(data, dict):
        msg = f'{str(path)!r} must hold a table of options, e.g. format = "log"'
        raise click.BadParameter(msg, param_hint=hint)
    options: dict[str, Any] = {}
    for name, value in data.items():
        wanted = MAPPING_KEYS.get(name)
        if wanted is None:
            msg = f"{str(path)!r}: unknown key {name!r}; the keys are {', '.join(MAPPING_KEYS)}"
            raise click.BadParameter(msg, param_hint=hint)
        if wanted is list and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]  # noqa: PLW2901
        ok = isinstance(value, wanted) and not isinstance(value, bool)
        if ok and wanted is dict:
            ok = all(isinstance(v, str) for v in value.values())
        if ok and wanted is list:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            kinds = {str: "text", dict: "a table of text", list: "a list of text", int: "a number"}
            msg = f"{str(path)!r}: {name!r} must be {kinds[wanted]}, got {value!r}"
            raise click.BadParameter(msg, param_hint=hint)
        if name in {"pipedrive_stages", "pipedrive_fields", "process", "owners"}:
            value = path.parent / value  # noqa: PLW2901
        if name in {"undated_at", "as_of"}:
            value = parse_cli_instant(value, f"{path.name}: {name}")  # noqa: PLW2901
        options[name] = value
    return options
