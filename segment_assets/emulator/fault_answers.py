"""The answers that go wrong when a fault is switched on (see ``faults.py``): the vendors'
429s and authentication failures, 5xx pages, a redirect off the host, a reset connection,
and spoiled bodies (cut short, not JSON, the wrong shape, a count that is no number)."""

from __future__ import annotations

import math
import time
from email.utils import formatdate
from typing import Any

from .responses import Response, dumps, html_response, json_response

FOREIGN_ORIGIN = "http://foreign.invalid"

_LIST_KEYS = ("items", "results", "segments")
_COUNT_KEYS = ("user_count", "object_count", "subscriber_count")
_TOTAL_KEYS = ("total", "count", "total_count")


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
