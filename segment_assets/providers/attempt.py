"""One try of one GET: wait for the account's slot, send, and judge the answer.

:func:`attempt` returns an :class:`Outcome`: the body, or a problem worth trying again — a
429 or 5xx (with its ``Retry-After``), a timeout or a passed deadline, a connection reset,
a body that is not JSON or not of the expected shape. An answer no retry can fix raises at
once: a 4xx (a 400 about the credentials like a 401/403), a redirect to another host, too
many redirects. The retry loop around it is :meth:`ProviderHTTP.get_json
<segment_assets.providers.http.ProviderHTTP.get_json>`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import requests
from urllib3.exceptions import HTTPError as TransportError

from segment_assets.providers import answers, scheduler, wire
from segment_assets.providers.answers import FieldProblem
from segment_assets.providers.errors import (
    BadShape,
    ProviderAuthError,
    ProviderRequestError,
    ProviderResponseError,
)

if TYPE_CHECKING:
    from segment_assets.providers.http import ProviderHTTP

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
Validate = Callable[[Any], None]


@dataclass(frozen=True)
class Outcome:
    """A try's result: ``body``, or a ``problem`` worth retrying (``status`` None when no
    answer came), with the ``Retry-After`` asked for and the time the request's slot was
    taken (``sent_at``, to slow the pace from)."""

    body: Any = None
    problem: str | None = None
    retry_after: float | None = None
    status: int | None = None
    sent_at: float = 0.0


def attempt(
    client: ProviderHTTP,
    url: str,
    params: Mapping[str, Any] | None,
    endpoint: str,
    validate: Validate | None,
) -> Outcome:
    """Wait for the client's slot, then exchange (in a scheduler, on a shared worker)."""
    exchange = partial(_exchange, client, url, params, endpoint, validate)
    return scheduler.send(client.limiter, exchange)


def _exchange(
    client: ProviderHTTP,
    url: str,
    params: Mapping[str, Any] | None,
    endpoint: str,
    validate: Validate | None,
    sent_at: float,
) -> Outcome:
    """Send the request whose slot was taken at ``sent_at`` and judge its answer."""
    client.limiter.sent(client.limiter.now())  # it may leave later than its slot
    client.count("requests")
    retry = client.retry
    limit = retry.request_deadline
    try:
        response, content = wire.get(
            client.session,
            url,
            params,
            connect_timeout=retry.connect_timeout,
            read_timeout=retry.read_timeout,
            deadline=time.monotonic() + limit,
            same_host=client.url_for,  # raises UnsafeURLError for another host
        )
    except wire.DeadlinePassed:
        return Outcome(
            problem=f"timed out: no complete answer within the {limit:g}s deadline "
            f"({client.setting('request_deadline_seconds')})",
            sent_at=sent_at,
        )
    except wire.TooManyRedirects:
        raise client.error(ProviderResponseError, endpoint, "too many redirects") from None
    except requests.Timeout:
        return Outcome(problem=f"timed out after {retry.read_timeout:g}s")
    except requests.ConnectionError as exc:
        return Outcome(problem=f"connection failed ({type(exc).__name__})")
    except (requests.RequestException, TransportError) as exc:  # e.g. a cut-off body
        return Outcome(problem=f"transport error ({type(exc).__name__})")
    return judge(client, response, content, endpoint, validate, sent_at)


def judge(
    client: ProviderHTTP,
    response: requests.Response,
    content: bytes,
    endpoint: str,
    validate: Validate | None,
    sent_at: float,
) -> Outcome:
    """The outcome of a complete answer; raises for one that no retry can fix."""
    status = response.status_code
    try:
        text = content.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = content.decode("utf-8", errors="replace")
    if status in RETRY_STATUSES:
        wait = answers.retry_after(
            response.headers.get("Retry-After"), client.retry.retry_after_max
        )
        if status == 429:
            client.count("rate_limited")
        said = answers.vendor_message(text)
        problem = f"HTTP {status}" + (f" ({client.scrub(said)})" if said else "")
        return Outcome(problem=problem, retry_after=wait, status=status, sent_at=sent_at)
    credentials = status in (401, 403) or (
        status == 400 and answers.about_credentials(text, response.headers)
    )
    if credentials or status >= 400:
        scrub = client.scrub
        raise client.error(
            ProviderAuthError if credentials else ProviderRequestError,
            endpoint,
            "credentials refused" if credentials else "request rejected",
            status=status,
            vendor_message=answers.vendor_message(text),
            hint=client.auth_hint if credentials else None,
            problems=tuple(
                FieldProblem(
                    p.param,
                    scrub(p.message),
                    None if p.sent is None else scrub(p.sent),
                    tuple(scrub(v) for v in p.permitted),
                )
                for p in answers.field_problems(text)
            ),
            body=answers.json_body(scrub(text or "")),
        )
    if status >= 300:
        raise client.error(ProviderResponseError, endpoint, "unexpected redirect", status=status)
    try:  # the charset the answer declares, else JSON's own detection
        body = json.loads(text if response.encoding else content)
    except ValueError:
        snippet = re.sub(r"\s+", " ", text[:80])
        return Outcome(problem=f"body is not valid JSON (starts {snippet!r})", status=200)
    if validate is not None:
        try:
            validate(body)
        except BadShape as exc:
            return Outcome(problem=f"unexpected body: {exc}", status=200)
    return Outcome(body=body, status=200)
