"""Fault switches: what may go wrong on a provider route, and the responses that go wrong.

Switches are set per provider and optionally per account; an account's own setting wins
over the provider-wide one field by field. ``fail_next`` queues are consumed account queue
first, then the provider queue.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, fields
from email.utils import formatdate
from typing import Any

from .config import PROVIDERS
from .responses import Response, dumps, html_response, json_response

PRE_FAULTS = frozenset(
    {"429", "429-date", "503-html", "503-empty", "500", "reset", "403", "401", "redirect-foreign"}
) | frozenset({"429-now", "400-auth"})
POST_FAULTS = frozenset({"truncated", "not-json", "wrong-shape", "bad-count"})
FAULT_KINDS = PRE_FAULTS | POST_FAULTS | {"timeout"}
RETRY_AFTER_FORMATS = ("seconds", "http-date")
FOREIGN_ORIGIN = "http://foreign.invalid"

_LIST_KEYS = ("items", "results", "segments")
_COUNT_KEYS = ("user_count", "object_count", "subscriber_count")
_TOTAL_KEYS = ("total", "count", "total_count")


@dataclass(frozen=True)
class Switches:
    """The effective (persistent) fault switches for one request.

    - ``latency_ms``: sleep this long before answering.
    - ``rate_limit_rps`` / ``rate_limit_burst``: a token bucket per account and endpoint
      (burst defaults to ceil(rps)); over the limit answers 429 with ``Retry-After`` in
      ``retry_after_format`` ("seconds", rounded up and at least 1, or "http-date").
    - ``fail_always``: a fault kind (see FAULT_KINDS) applied to every request.
    - ``timeout_sleep_s``: how long the "timeout" fault sleeps before answering normally.
    - ``total_drift``: ActionHub page 1 reports ``total - total_drift``.
    - ``repeat_item``: ActionHub pages from 2 on start one item earlier, so the last item of
      page 1 is also the first of page 2 (``total`` unchanged).
    - ``next_loop``: User.com's last page links ``next`` back to ``?page=1``.
    - ``next_foreign``: User.com's first page links ``next`` to the config's foreign origin
      (http://foreign.invalid/... by default).
    - ``short_pages``: OneSignal listing pages hold ``limit - 7`` rows (total_count true).
    - ``extra_field``: every record carries an undocumented extra field.
    - ``total_extra``: every ActionHub page reports ``total + total_extra`` (pages past the
      real end come back empty).
    - ``pages_repeat``: User.com links ``next`` on past its last page, forever, and every page
      past the end repeats the last page's results.

    Well-formed answers that lose or spoil segments (see ``lies.py``):

    - ``empty_listing``: every listing answers no segments (totals 0, no next link).
    - ``view_404``: OneSignal views answer 404 — ``segment`` (``segment not found``), ``app``
      (``{"errors": ["app not found"]}``) or ``html`` (a proxy's page) — for the share
      ``view_404_share`` of the app's segments (1.0: all of them).
    - ``bad_record``: the records whose id (User.com / OneSignal ``id``, ActionHub
      ``segment_basis_id``) is ``bad_record_id`` are spoiled one way (see ``lies.py``).
    - ``user_based_error``: the words of OneSignal's 400 for a user-based segment (empty: the
      documented sentence).
    """

    latency_ms: float = 0.0
    rate_limit_rps: float | None = None
    rate_limit_burst: int | None = None
    retry_after_format: str = "seconds"
    fail_always: str | None = None
    timeout_sleep_s: float = 5.0
    total_drift: int = 0
    repeat_item: bool = False
    next_loop: bool = False
    next_foreign: bool = False
    short_pages: bool = False
    extra_field: bool = False
    total_extra: int = 0
    pages_repeat: bool = False
    empty_listing: bool = False
    view_404: str | None = None
    view_404_share: float = 1.0
    bad_record: str | None = None
    bad_record_id: str = ""
    user_based_error: str = ""


SWITCH_NAMES = frozenset(f.name for f in fields(Switches))
NO_FAULTS = Switches()


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")


def validate(provider: str, kw: dict[str, Any]) -> None:
    """Raise ValueError for an unknown provider, switch name or fault kind."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}")
    unknown = set(kw) - SWITCH_NAMES - {"fail_next"}
    if unknown:
        raise ValueError(f"unknown fault switches: {sorted(unknown)}")
    for kind in kw.get("fail_next") or ():
        _check_kind(kind)
    if kw.get("fail_always") is not None:
        _check_kind(kw["fail_always"])
    if kw.get("retry_after_format", "seconds") not in RETRY_AFTER_FORMATS:
        raise ValueError(f"retry_after_format must be one of {RETRY_AFTER_FORMATS}")
    rps = kw.get("rate_limit_rps")
    if rps is not None and float(rps) <= 0:
        raise ValueError("rate_limit_rps must be positive or None")
    from .lies import validate_lies

    validate_lies(kw)


_FLOATS = frozenset({"latency_ms", "rate_limit_rps", "timeout_sleep_s", "view_404_share"})
_INTS = frozenset({"rate_limit_burst", "total_drift", "total_extra"})
_BOOLS = frozenset(
    {
        "repeat_item",
        "next_loop",
        "next_foreign",
        "short_pages",
        "extra_field",
        "pages_repeat",
        "empty_listing",
    }
)


def _coerce(name: str, value: Any) -> Any:
    """Switch values as their field types (they may arrive as JSON strings)."""
    if value is None:
        return None
    if name in _FLOATS:
        return float(value)
    if name in _INTS:
        return int(value)
    if name in _BOOLS:
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    return value


class TokenBucket:
    """A token bucket; ``take`` returns 0 when a token was taken, else the seconds to wait."""

    def __init__(self, rps: float, burst: int) -> None:
        self.rate = float(rps)
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FaultBoard:
    """Fault scopes, fail queues and rate-limit buckets. Callers hold the state lock."""

    def __init__(self) -> None:
        self._scopes: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._queues: dict[tuple[str, str | None], deque[str]] = {}
        self._buckets: dict[tuple, TokenBucket] = {}

    def set(self, provider: str, account: str | None = None, **kw: Any) -> None:
        if isinstance(kw.get("fail_next"), str):
            kw["fail_next"] = [kw["fail_next"]]
        validate(provider, kw)
        kw = {k: _coerce(k, v) for k, v in kw.items()}
        scope = (provider, account)
        if "fail_next" in kw:
            self._queues[scope] = deque(kw.pop("fail_next") or ())
        self._scopes.setdefault(scope, {}).update(kw)
        self._buckets.clear()

    def clear(self, provider: str | None = None) -> None:
        if provider is not None and provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}")
        for table in (self._scopes, self._queues):
            for scope in [s for s in table if provider in (None, s[0])]:
                del table[scope]
        self._buckets.clear()

    def switches(self, provider: str, account: str | None) -> Switches:
        merged: dict[str, Any] = {}
        merged.update(self._scopes.get((provider, None), {}))
        if account is not None:
            merged.update(self._scopes.get((provider, account), {}))
        return Switches(**merged) if merged else NO_FAULTS

    def take_fault(self, provider: str, account: str | None, sw: Switches) -> str | None:
        scopes = [(provider, account), (provider, None)] if account else [(provider, None)]
        for scope in scopes:
            queue = self._queues.get(scope)
            if queue:
                return queue.popleft()
        return sw.fail_always

    def take_token(self, key: tuple, rps: float, burst: int | None) -> float:
        """Seconds until the bucket ``key`` allows a request (0: allowed now)."""
        full_key = (*key, rps, burst)
        bucket = self._buckets.get(full_key)
        if bucket is None:
            bucket = TokenBucket(rps, burst if burst is not None else math.ceil(rps))
            self._buckets[full_key] = bucket
        return bucket.take()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (provider, account), values in self._scopes.items():
            out.setdefault(provider, {})[account or "*"] = dict(values)
        for (provider, account), queue in self._queues.items():
            out.setdefault(provider, {}).setdefault(account or "*", {})["fail_next"] = list(queue)
        return out


def retry_after_value(wait_s: float, fmt: str = "seconds") -> str:
    """A Retry-After header value: whole seconds (at least 1, rounded up) or an HTTP date."""
    secs = max(1, math.ceil(wait_s - 1e-9))
    if fmt == "http-date":
        return formatdate(math.ceil(time.time()) + secs, usegmt=True)
    return str(secs)


def rate_limited(provider: str, retry_after: str, wait_s: float = 1.0) -> Response:
    """The vendor's 429 response."""
    headers = [("Retry-After", retry_after)]
    if provider == "onesignal":
        return json_response(429, {"errors": ["API rate limit exceeded"]}, headers)
    if provider == "usercom":
        secs = max(1, math.ceil(wait_s))
        unit = "second" if secs == 1 else "seconds"
        body = {"detail": f"Request was throttled. Expected available in {secs} {unit}."}
        return json_response(429, body, headers)
    return json_response(429, {"detail": "Too Many Requests"}, headers)


_HTML_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_MAINTENANCE = (
    "<!DOCTYPE html><html><head><title>Scheduled maintenance</title></head>"
    "<body><h1>We'll be back soon</h1><p>Scheduled maintenance in progress.</p></body></html>"
)
ONESIGNAL_DENIED = {
    "errors": [
        "Access denied.  Please include an 'Authorization: Key ...' header with a valid API key"
    ],
    "success": False,
}


def auth_failure(provider: str, status: int) -> Response:
    """A vendor-style 401 or 403."""
    if provider == "onesignal":
        if status == 403:
            return json_response(403, ONESIGNAL_DENIED)
        return json_response(401, {"errors": ["Unauthorized"], "success": False})
    if provider == "usercom":
        if status == 401:
            return json_response(401, {"detail": "Invalid token."}, [("WWW-Authenticate", "Token")])
        detail = "You do not have permission to perform this action."
        return json_response(403, {"detail": detail})
    if status == 403:
        return json_response(403, {"detail": "Could not validate API KEY"})
    return json_response(401, {"detail": "Not authenticated"})


def pre_fault(
    kind: str, provider: str, path_qs: str, foreign_origin: str = FOREIGN_ORIGIN
) -> Response:
    """The response that replaces the real one for a fault decided before handling."""
    if kind == "429":
        return rate_limited(provider, "1")
    if kind == "429-date":
        return rate_limited(provider, formatdate(int(time.time()) + 2, usegmt=True), 2.0)
    if kind == "503-html":
        return html_response(503, _HTML_503)
    if kind == "503-empty":
        return Response(503, b"", None, [("Retry-After", "1")])
    if kind == "500":
        if provider == "onesignal":
            return json_response(500, {"errors": ["Internal server error"]})
        if provider == "usercom":
            return html_response(500, "<h1>Server Error (500)</h1>")
        return Response(500, b"Internal Server Error", "text/plain; charset=utf-8")
    if kind in ("401", "403"):
        return auth_failure(provider, int(kind))
    if kind == "redirect-foreign":
        return Response(302, b"", None, [("Location", foreign_origin + path_qs)])
    if kind == "reset":
        return Response(0, reset=True)
    if kind in ("429-now", "400-auth"):
        return limit_or_auth_fault(kind, provider)
    raise ValueError(f"not a pre-handling fault: {kind!r}")


_BAD_AUTH_HEADER = {
    "onesignal": {"errors": ["Please include a case-sensitive header of Authorization: Key "
                             "<YOUR-APP-API-KEY-HERE> with a valid App API key"]},
    "usercom": {"detail": "Invalid Authorization header. Use 'Token <api key>'."},
    "actionhub": {"detail": "Malformed actionhub-key header: not an API key"},
}  # fmt: skip


def limit_or_auth_fault(kind: str, provider: str) -> Response:
    """``429-now``: a 429 whose ``Retry-After`` is 0 (a bucket that refills at once, so a
    test can serve many 429s quickly); ``400-auth``: a 400 about the credentials header."""
    if kind == "429-now":
        return rate_limited(provider, "0", 0.0)
    return json_response(400, _BAD_AUTH_HEADER[provider])


def post_fault(kind: str, resp: Response) -> Response:
    """Spoil a successful JSON response according to ``kind``."""
    if resp.status != 200 or resp.data is None:
        return resp
    if kind == "truncated":
        return Response(200, resp.body[: len(resp.body) // 2], resp.content_type, resp.headers)
    if kind == "not-json":
        return html_response(200, _HTML_MAINTENANCE, resp.headers)
    data = dict(resp.data)
    if kind == "wrong-shape":
        key = next((k for k in _LIST_KEYS + _COUNT_KEYS if k in data), None)
        if key is not None:
            data["data"] = data.pop(key)
    elif kind == "bad-count":
        _spoil_count(data)
    else:
        raise ValueError(f"not a post-handling fault: {kind!r}")
    return Response(200, dumps(data), resp.content_type, resp.headers, data=data)


def _spoil_count(data: dict[str, Any]) -> None:
    records = next((data[k] for k in _LIST_KEYS if isinstance(data.get(k), list)), None)
    if records:
        first = dict(records[0])
        key = next((k for k in _COUNT_KEYS if k in first), None)
        if key is not None:
            first[key] = "lots"
            records[0] = first
            return
    for key in _COUNT_KEYS + _TOTAL_KEYS:
        if key in data:
            data[key] = "lots"
            return
