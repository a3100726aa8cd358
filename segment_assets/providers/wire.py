"""One GET on the wire, read whole by a total deadline.

:func:`get` sends the request with a connect and a read timeout, follows redirects by hand
and only where ``same_host`` allows (so credentials never leave the configured host), and
reads the body with :func:`read_body`: a piece at a time, decompressed as it comes (gzip
and the like), each read waiting no longer than the deadline leaves, so a server that
drips its answer is cut off at the deadline (:class:`DeadlinePassed`) and its connection,
mid-answer, is never reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

import requests
from urllib3.exceptions import ReadTimeoutError

MAX_SAME_HOST_REDIRECTS = 5
_READ_SIZE = 65536


class DeadlinePassed(Exception):
    """The request's total deadline passed while its answer was still arriving."""


class TooManyRedirects(Exception):
    """More than :data:`MAX_SAME_HOST_REDIRECTS` redirects in a row."""


def within(deadline: float, timeout: float) -> float:
    """``timeout``, or less if the deadline is nearer; DeadlinePassed if it has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlinePassed
    return min(timeout, remaining)


def get(
    session: requests.Session,
    url: str,
    params: Mapping[str, Any] | None,
    *,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    same_host: Callable[[str], str],
) -> tuple[requests.Response, bytes]:
    """The answer and its whole body by ``deadline``, following redirects that
    ``same_host`` accepts (it returns the URL, or raises for another host)."""
    for _ in range(MAX_SAME_HOST_REDIRECTS + 1):
        response = session.get(
            url,
            params=params,
            timeout=(within(deadline, connect_timeout), within(deadline, read_timeout)),
            allow_redirects=False,
            stream=True,
        )
        if not response.is_redirect:
            return response, read_body(response, deadline, read_timeout)
        response.close()
        url = same_host(urljoin(url, response.headers.get("Location", "")))
        params = None
    raise TooManyRedirects


def read_body(response: requests.Response, deadline: float, read_timeout: float) -> bytes:
    """Read the body a piece at a time, each read waiting no longer than the deadline
    leaves, so a body that arrives a byte at a time cannot hold the request past it."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    pieces = []
    try:
        while True:
            timeout = within(deadline, read_timeout)
            if sock is not None:
                sock.settimeout(timeout)
            try:
                piece = raw.read1(_READ_SIZE, decode_content=True)  # gzip and the like
            except ReadTimeoutError:
                if time.monotonic() >= deadline:
                    raise DeadlinePassed from None
                raise requests.Timeout from None
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)
    except DeadlinePassed:
        response.close()  # the connection is mid-answer: never reuse it
        raise
