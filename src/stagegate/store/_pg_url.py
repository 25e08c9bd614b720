"""``postgresql://`` URLs: telling them from paths, the schema they name, and their passwords.

>>> split_url("postgresql://crm:secret@db.internal/sales?schema=pipeline&sslmode=require", None)
('postgresql://crm:secret@db.internal/sales?sslmode=require', 'pipeline')
>>> redact("postgresql://crm:secret@db.internal/sales")
'postgresql://crm:***@db.internal/sales'
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stagegate.store.base import StoreError

__all__ = ["DEFAULT_SCHEMA", "is_postgresql_url", "psycopg_module", "redact", "split_url"]

DEFAULT_SCHEMA = "stagegate"
"""The database schema the store's tables live in unless the URL or ``schema=`` names another."""

_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgresql_url(target: object) -> bool:
    """Whether ``target`` is a ``postgresql://`` (or ``postgres://``) URL rather than a path.

    >>> is_postgresql_url("postgresql://crm@db.internal/sales"), is_postgresql_url("s.sqlite")
    (True, False)
    """
    return isinstance(target, str) and target.lower().startswith(_SCHEMES)


def split_url(url: str, schema: str | None) -> tuple[str, str]:
    """The URL for libpq (without ``schema=``) and the schema the store uses."""
    if not is_postgresql_url(url):
        raise StoreError(
            f"PostgreSQLStore needs a postgresql:// URL, got {redact(str(url))!r}; "
            "e.g. postgresql://user@host/database"
        )
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    named = [value for key, value in query if key == "schema"]
    rest = [(key, value) for key, value in query if key != "schema"]
    if named and schema is not None and named[-1] != schema:
        raise StoreError(
            f"the URL names schema {named[-1]!r} and schema= names {schema!r}; give one"
        )
    chosen = schema if schema is not None else (named[-1] if named else DEFAULT_SCHEMA)
    if not isinstance(chosen, str) or not _SCHEMA_NAME.match(chosen):
        raise StoreError(
            f"schema {chosen!r} is not a plain lowercase SQL name; use letters, digits and "
            "underscores, starting with a letter (at most 63)"
        )
    libpq = urlunsplit(parts._replace(query=urlencode(rest, safe="/")))
    return libpq, chosen


def redact(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def psycopg_module() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - the postgresql extra is optional
    except ImportError:  # pragma: no cover - depends on the environment
        raise StoreError(
            "a PostgreSQL store needs psycopg: pip install 'stagegate[postgresql]'"
        ) from None
    return psycopg
