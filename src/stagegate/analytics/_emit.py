"""Turn result records into the caller's representation (records or a native frame)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs

from stagegate.analytics.intervals import Prepared

__all__ = ["BY_ONLY", "collect_rows", "emit"]

BY_ONLY = {"by": True}
"""Metadata of the record fields only a ``by=`` result fills (a plain frame leaves them out)."""

T = TypeVar("T")


def emit(prepared: Prepared, records: Sequence[T], cls: type[T]) -> Any:
    """Return ``records`` as a list (pure-Python input) or a frame in the caller's backend."""
    if not prepared.is_frame:
        return list(records)
    names = [
        f.name
        for f in attrs.fields(cls)  # type: ignore[arg-type]
        if not f.metadata.get("by")  # filled by by= only (see _by.py)
    ]
    columns = {name: [getattr(r, name) for r in records] for name in names}
    return prepared.build(columns)


def collect_rows(frame: Any) -> list[dict[str, Any]]:
    """Collect a (small) narwhals lazy frame into a list of row dicts."""
    return frame.collect().rows(named=True)  # type: ignore[no-any-return]
