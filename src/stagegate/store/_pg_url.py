"""``postgresql://`` URLs: telling them from paths, the schema they name, and their passwords.

>>> split_url("postgresql://crm:secret@db.internal/sales?schema=pipeline&sslmode=require", None)
('postgresql://crm:secret@db.internal/sales?sslmode=require', 'pipeline')
>>> redact("postgresql://crm:secret@db.internal/sales")
'postgresql://crm:***@db.internal/sales'
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from stagegate.store.base import StoreError

__all__ = ["DEFAULT_SCHEMA", "is_postgresql_url", "psycopg_module", "redact", "split_url"]

DEFAULT_SCHEMA = "stagegate"
"""The database schema the store's tables live in unless the URL or ``schema=`` names another."""

_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_CREDENTIALS_END = re.compile("[@/]")


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
    try:
        parts = _split(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 host
        raise StoreError(
            f"the URL {redact(url)!r} is malformed ({exc}); e.g. postgresql://user@host/database"
        ) from None
    items = [item for item in parts.query.split("&") if item]
    named = [unquote(item.partition("=")[2]) for item in items if _is_schema(item)]
    rest = "&".join(item for item in items if not _is_schema(item))  # as written: libpq's
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
    return _libpq_url(parts, rest), chosen


def _is_schema(item: str) -> bool:
    """Whether the query item ``item`` (``key=value``) is the store's ``schema=``."""
    return unquote(item.partition("=")[0]) == "schema"


def _split(url: str) -> SplitResult:
    """``urlsplit`` reading user and password as libpq does: up to the first ``@`` before a ``/``.

    So a ``?`` or ``#`` in a password stays in it (percent-encoded, as libpq decodes it) rather
    than starting the query: the password neither reaches the server mangled nor a message.
    """
    scheme, _, rest = url.partition("://")
    end = _CREDENTIALS_END.search(rest)
    if end is not None and end.group() == "@":
        credentials = rest[: end.start()].replace("?", "%3F").replace("#", "%23")
        url = f"{scheme}://{credentials}{rest[end.start() :]}"
    return urlsplit(url)


def _libpq_url(parts: SplitResult, query: str) -> str:
    """``parts`` joined again with ``query``, keeping the ``//`` of a URL without a host.

    libpq reads ``postgresql:/db`` (what ``urlunsplit`` makes of ``postgresql:///db``) as no
    URL at all; the query is passed as written, since libpq decodes ``%20`` but not ``+``.
    """
    text = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def redact(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    try:
        parts = _split(url)
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
