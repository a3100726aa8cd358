"""What a provider's error answer says, read without trusting it: pure functions.

* :func:`vendor_message` — the provider's own words (JSON ``detail`` / ``errors`` /
  ``message``, or the text of an HTML page), cut short;
* :func:`field_problems` — FastAPI's ``422`` detail, one :class:`FieldProblem` per
  parameter, with the values the API said it permits;
* :func:`retry_after` — a ``Retry-After`` header in seconds or as an HTTP date;
* :func:`about_credentials` — whether a ``400`` is really about the credentials.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_CREDENTIAL_WORDS = re.compile(
    r"authori[sz]ation|authenticat|api[ _-]?key|credential|unauthori[sz]ed|access denied",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True)
class FieldProblem:
    """One parameter the API rejected: where, why, what was sent and what it permits."""

    param: str
    message: str
    sent: str | None = None
    permitted: tuple[str, ...] = ()


def json_body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def vendor_message(text: str | None, limit: int = 300) -> str | None:
    """The provider's own words from an error body: JSON ``detail``/``errors``/``message``,
    else the text with HTML tags removed, cut to ``limit`` characters."""
    if not text or not text.strip():
        return None
    body = json_body(text)
    if isinstance(body, dict):
        for key in ("detail", "errors", "error", "message"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:limit]
            if isinstance(value, list) and value:
                parts = []
                for item in value:
                    if isinstance(item, dict):
                        loc = ".".join(str(p) for p in item.get("loc", []))
                        msg = item.get("msg") or json.dumps(item)
                        parts.append(f"{loc}: {msg}" if loc else str(msg))
                    else:
                        parts.append(str(item))
                return "; ".join(parts)[:limit]
    plain = re.sub(r"<[^>]+>", " ", text)
    plain = re.sub(r"\s+", " ", plain).strip()
    return plain[:limit] or None


def field_problems(text: str | None) -> tuple[FieldProblem, ...]:
    """FastAPI/pydantic validation errors (``{"detail": [{"loc", "msg", "input", "ctx"}]}``)
    as one problem per parameter; the permitted values come from ``ctx.expected`` or, when
    it is absent, from the quoted words of ``msg`` ("Input should be 'a', 'b' or 'c'")."""
    body = json_body(text or "")
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return ()
    problems = []
    for item in detail:
        if not isinstance(item, dict) or not isinstance(item.get("loc"), list):
            continue
        loc = [str(p) for p in item["loc"]]
        message = str(item.get("msg") or "")
        ctx = item.get("ctx") if isinstance(item.get("ctx"), dict) else {}
        expected = ctx.get("expected")
        source = expected if isinstance(expected, str) else message
        permitted = tuple(_QUOTED.findall(source)) if "should be" in message or expected else ()
        sent = item.get("input")
        problems.append(
            FieldProblem(
                param=loc[-1] if loc else "",
                message=message,
                sent=None if sent is None else str(sent),
                permitted=permitted,
            )
        )
    return tuple(problems)


def retry_after(
    value: str | None, cap: float, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date), at most
    ``cap``; None when the header is absent or unreadable (then the caller backs off)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - now()
    if math.isnan(seconds):
        return None
    return min(cap, max(0.0, seconds))


def about_credentials(text: str | None, headers: Mapping[str, str]) -> bool:
    """Whether a 400 is about the credentials: a ``WWW-Authenticate`` challenge, or the
    provider's words name the Authorization header, the API key or the credentials."""
    if "WWW-Authenticate" in headers:
        return True
    said = vendor_message(text) or ""
    return bool(_CREDENTIAL_WORDS.search(said))
