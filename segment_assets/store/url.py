"""``SEGMENT_ASSETS_DATABASE_URL``: which store it names, and how to speak of it without its
password.

Pure functions: nothing here connects. libpq parses the URL (so every libpq parameter after
``?`` is accepted, e.g. ``sslmode``); this module only checks the scheme, keeps the secrets
it finds, and builds the secret-free words used in logs and errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict

from segment_assets.store.base import DATABASE_URL_ENV, StoreError

POSTGRES_SCHEMES = ("postgresql", "postgres")
EXAMPLE = "postgresql://user:password@host:5432/database?sslmode=require"
MASK = "***"
# Query parameters whose value is a secret (libpq's own names).
SECRET_PARAMS = ("password", "sslpassword")
# libpq reads a password from here too when the URL has none.
PASSWORD_ENV = "PGPASSWORD"


@dataclass(frozen=True)
class DatabaseUrl:
    """A checked PostgreSQL URL: ``conninfo`` is what libpq gets, ``display`` what people see."""

    conninfo: str = field(repr=False)
    display: str
    secrets: tuple[str, ...] = field(repr=False)
    user: str | None
    host: str | None
    port: str | None
    dbname: str | None

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (longest first) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _secret_forms(value: str) -> set[str]:
    """A secret as written in the URL and as libpq reads it (percent-decoded)."""
    return {value, unquote(value), quote(unquote(value), safe="")} - {""}


def redact(raw: str) -> str:
    """The URL with its password (and any secret query parameter) masked."""
    try:
        parts = urlsplit(raw)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k in SECRET_PARAMS else v) for k, v in pairs], safe="*/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(raw: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every form of every secret ``raw`` carries (and ``PGPASSWORD``), to scrub from text."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    try:
        parts = urlsplit(raw)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo = netloc.rpartition("@")[0]
            if ":" in userinfo:
                found |= _secret_forms(userinfo.split(":", 1)[1])
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in SECRET_PARAMS:
                found |= _secret_forms(value)
        # what parse_qsl decodes differently (e.g. '+'): the raw text of each parameter
        for item in parts.query.split("&"):
            key, _, value = item.partition("=")
            if unquote(key) in SECRET_PARAMS:
                found |= _secret_forms(value)
    except ValueError:
        # not even a URL: treat everything after the scheme as possibly secret
        found.add(raw.partition("://")[2] or raw)
    if env.get(PASSWORD_ENV):
        found.add(env[PASSWORD_ENV])
    return tuple(sorted(found, key=len, reverse=True))


def url_scheme(raw: str) -> str | None:
    """The scheme of ``raw`` (lower case), or None when it has none."""
    scheme, sep, _ = raw.partition("://")
    return scheme.strip().lower() if sep else None


def parse_database_url(raw: str, environ: Mapping[str, str] | None = None) -> DatabaseUrl:
    """Check a PostgreSQL URL without connecting; :class:`StoreError` says what to fix.

    The error never holds the password: libpq's own message is scrubbed of every secret.
    """
    raw = raw.strip()
    secrets = url_secrets(raw, environ)
    shown = redact(raw)
    scheme = url_scheme(raw)
    if scheme not in POSTGRES_SCHEMES:
        raise StoreError(scrub(unknown_scheme_message(scheme, shown), secrets))
    try:
        params = conninfo_to_dict(raw)
    except Exception as exc:  # psycopg.ProgrammingError, but any libpq complaint will do
        reason = scrub(str(exc).strip(), secrets)
        message = (
            f"{DATABASE_URL_ENV} is not a valid PostgreSQL URL ({reason}): {shown}. "
            f"Write it as {EXAMPLE}; percent-encode special characters in the user name and "
            "password (e.g. %40 for @, %20 for a space)"
        )
    else:
        return DatabaseUrl(
            conninfo=raw,
            display=shown,
            secrets=secrets,
            user=_text(params.get("user")),
            host=_text(params.get("host")),
            port=_text(params.get("port")),
            dbname=_text(params.get("dbname")),
        )
    raise StoreError(message)  # outside the except block: no libpq error chained to it


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def unknown_scheme_message(scheme: str | None, shown: str) -> str:
    if scheme is None:
        return (
            f"{DATABASE_URL_ENV} must be a URL such as {EXAMPLE} (its value has no scheme, "
            "and is not shown as it may hold a password). Leave the variable unset to keep "
            "the DuckDB file of SEGMENT_ASSETS_DUCKDB"
        )
    hint = ""
    if scheme.startswith(POSTGRES_SCHEMES) and "+" in scheme:
        hint = f" (drop the driver suffix: {scheme.split('+', 1)[0]}://…)"
    elif scheme in ("duckdb", "file"):
        hint = " (for DuckDB, unset it and set SEGMENT_ASSETS_DUCKDB to the file's path)"
    return (
        f"{DATABASE_URL_ENV} has the unknown scheme {scheme!r}{hint}: {shown}. Use "
        f"{EXAMPLE}, or leave the variable unset to keep the DuckDB file of "
        "SEGMENT_ASSETS_DUCKDB"
    )
