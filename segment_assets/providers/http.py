"""One HTTP layer for every provider.

A :class:`ProviderHTTP` owns one pooled ``requests.Session`` for one provider account and
gives the provider modules a single call, :meth:`ProviderHTTP.get_json`. Its retry loop is
written here by hand rather than left to urllib3's ``Retry``, because what it must do is
not an attempt counter:

* requests are paced by one :class:`~segment_assets.providers.ratelimit.RateLimiter` per client, and
  a ``Retry-After`` pauses *every* worker of the client, not only the one that received it;
  inside a provider step's :mod:`~segment_assets.providers.scheduler` every wait (slot, pause,
  backoff) is a timer of its loop and the exchange itself runs on a shared worker thread;
* a 429 slows the pace down and is waited out, without using up the retries: only the
  account's time budget for being rate limited (``rate_limit_budget``) ends it;
* 5xx, connection resets, timeouts, bodies that are not JSON and bodies of the wrong shape
  (checked inside the loop) are retried up to ``max_retries`` times with exponential
  backoff and jitter, honouring ``Retry-After`` in seconds or as an HTTP date (capped);
  other 4xx fail at once, a 400 about the credentials like a 401/403;
* every request has a connect timeout, a read timeout per read, and a total deadline: the
  body is streamed and read in pieces, so a server that drips its answer is cut off at the
  deadline and the attempt counts as a timeout;
* redirects are followed by hand, and only on the configured host, so credentials are
  never sent anywhere else (a link or redirect to another host is refused);
* errors are :class:`ProviderError` (or a subclass) naming provider, endpoint, status and
  the vendor's own message, scrubbed of every credential the client holds.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError

from segment_assets.providers import answers, scheduler
from segment_assets.providers.answers import FieldProblem
from segment_assets.providers.errors import (
    BadShape,
    ProviderAuthError,
    ProviderError,
    ProviderPaginationError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderUnavailableError,
    UnsafeURLError,
)
from segment_assets.providers.ratelimit import RateLimitClock, RateLimiter

__all__ = [
    "BadShape",
    "ProviderAuthError",
    "ProviderError",
    "ProviderHTTP",
    "ProviderPaginationError",
    "ProviderRateLimitedError",
    "ProviderRequestError",
    "ProviderResponseError",
    "ProviderUnavailableError",
    "RateLimiter",
    "RetrySettings",
    "UnsafeURLError",
    "origin",
    "validate_base_url",
]

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_SAME_HOST_REDIRECTS = 5
DEADLINE_MARGIN = 5.0  # the default deadline: the read timeout plus this
DEFAULT_MAX_PAGES = 1000
_READ_SIZE = 65536


@dataclass(frozen=True)
class RetrySettings:
    """How hard one client tries before it gives up, and how long it waits."""

    max_retries: int = 6
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    retry_after_max: float = 120.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float | None = None  # total seconds per request; None: read timeout + 5 s
    rate_limit_budget: float = 1800.0  # seconds an account may spend rate limited in total

    @property
    def request_deadline(self) -> float:
        return self.deadline if self.deadline is not None else self.read_timeout + DEADLINE_MARGIN

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for the ``attempt``-th retry (1-based)."""
        base = min(self.backoff_max, self.backoff_factor * (2 ** (attempt - 1)))
        return base + random.random() * self.backoff_jitter


@dataclass(frozen=True)
class _Outcome:
    body: Any = None
    problem: str | None = None
    retry_after: float | None = None
    status: int | None = None
    sent_at: float = 0.0


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


class _DeadlinePassed(Exception):
    """The request's total deadline passed while its answer was still arriving."""


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def validate_base_url(url: str, variable: str) -> str:
    """Return ``url`` without a trailing slash, or raise ``ValueError`` saying what to fix."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise ValueError(
            f"{variable} must be an http(s) URL such as https://api.example.com, got {url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{variable} must not carry a query string or fragment, got {url!r}")
    return url.rstrip("/")


class ProviderHTTP:
    """A pooled, paced, retrying JSON client for one provider account.

    ``account`` names the account in words for errors that are about the account as a
    whole (its rate-limit budget); ``settings`` maps a setting (``max_requests_per_second``,
    ``rate_limit_budget_seconds``, ``request_deadline_seconds``, ``max_pages``) to how the
    user names it, so errors say what to change. ``max_pages`` is the longest list, in
    pages, that :func:`~segment_assets.providers.pagination.crawl` reads before it stops
    with an error.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        secrets: Iterable[str] = (),
        max_rps: float | None = None,
        max_concurrency: int = 1,
        retry: RetrySettings | None = None,
        auth_hint: str | None = None,
        log: Any = None,
        account: str = "",
        settings: Mapping[str, str] | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._origin = origin(self.base_url)
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.retry = retry or RetrySettings()
        self.limiter = RateLimiter(max_rps)
        self.rate_limited = RateLimitClock()
        self.auth_hint = auth_hint
        self.log = log or logger
        self.account = account or provider
        self.settings = dict(settings or {})
        self.max_pages = max_pages
        self.session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=max(1, max_concurrency), max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers)
        # requests would re-read the proxy and CA-bundle variables (and ~/.netrc) on every
        # call; read them once for the configured host and keep them.
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        self.session.trust_env = False
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0}
        self._stats_lock = threading.Lock()

    # -- helpers -----------------------------------------------------------------------
    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ProviderHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def setting(self, name: str) -> str:
        """How the user names a setting of this client (for errors that say what to change)."""
        return self.settings.get(name, name)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def url_for(self, path_or_url: str) -> str:
        """An absolute URL on the configured host; links elsewhere raise UnsafeURLError."""
        if "://" in path_or_url:
            url = path_or_url
        else:
            url = self.base_url + "/" + path_or_url.lstrip("/")
        if origin(url) != self._origin:
            raise UnsafeURLError(
                self.provider,
                self.endpoint(url),
                f"refused to send credentials to {urlsplit(url).netloc!r}; only "
                f"{self._origin[1]!r} is configured",
            )
        return url

    def endpoint(self, url: str) -> str:
        path = urlsplit(url).path
        base_path = urlsplit(self.base_url).path
        if self._origin == origin(url) and base_path and path.startswith(base_path):
            path = path[len(base_path) :] or "/"
        return f"GET {path}"

    def error(self, cls: type[ProviderError], endpoint: str, message: str, **kw: Any):
        """An error of this client, every text in it scrubbed of the credentials."""
        kw = {k: (self.scrub(v) if isinstance(v, str) else v) for k, v in kw.items()}
        return cls(self.provider, endpoint, self.scrub(message), **kw)

    # -- the one call --------------------------------------------------------------------
    def get_json(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | None = None,
        validate: Callable[[Any], None] | None = None,
    ) -> Any:
        """GET a JSON document, retrying transient faults; ``validate`` may raise BadShape."""
        url = self.url_for(path_or_url)
        endpoint = self.endpoint(url)
        attempt = 0
        while True:
            outcome = self._attempt(url, params, endpoint, validate)
            if outcome.problem is None:
                self.rate_limited.cleared()
                self.limiter.recover()
                return outcome.body
            self._count("retries")
            if outcome.status == 429:
                self._wait_out_rate_limit(endpoint, outcome)
                continue
            attempt += 1
            if attempt > self.retry.max_retries:
                raise self.error(
                    ProviderUnavailableError if outcome.status != 200 else ProviderResponseError,
                    endpoint,
                    f"gave up after {attempt} attempts; last problem: {outcome.problem}",
                    status=outcome.status,
                ) from None
            wait_hint = outcome.retry_after
            wait = wait_hint if wait_hint is not None else self.retry.backoff(attempt)
            self.log.warning(
                f"{self.provider} {endpoint}: {outcome.problem}; retry {attempt} of "
                f"{self.retry.max_retries} in {wait:.1f}s"
            )
            if wait_hint is not None:
                self.limiter.pause(wait)
            else:
                scheduler.sleep(wait)

    def _wait_out_rate_limit(self, endpoint: str, outcome: _Outcome) -> None:
        """A 429: wait (every worker), slow the pace, and fail only past the time budget."""
        spent = self.rate_limited.limited()
        wait = outcome.retry_after
        if wait is None:
            wait = self.retry.backoff(self.rate_limited.in_a_row)
        budget = self.retry.rate_limit_budget
        if spent + wait > budget:
            pace = self.setting("max_requests_per_second")
            raise self.error(
                ProviderRateLimitedError,
                endpoint,
                f"{self.account} has been rate limited for {_seconds(spent)} of its "
                f"{budget:g}s budget and is asked to wait {_seconds(wait)} more; last problem: "
                f"{outcome.problem}. Raise {self.setting('rate_limit_budget_seconds')} to "
                f"wait longer, or lower {pace} if other clients share this limit",
                status=429,
            )
        rate = self.limiter.slow_down(outcome.sent_at)
        pace_text = "" if rate is None else f", then at {rate:.3g} req/s"
        self.log.warning(
            f"{self.provider} {endpoint}: {outcome.problem}; rate limited: every request "
            f"waits {wait:.1f}s{pace_text} ({_seconds(spent)} of the {budget:g}s budget used)"
        )
        self.limiter.pause(wait)

    def _attempt(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        endpoint: str,
        validate: Callable[[Any], None] | None,
    ) -> _Outcome:
        """One try: the body, or a retryable problem. Non-retryable outcomes raise. It waits
        for the client's slot, then exchanges (in a scheduler, on a shared worker)."""
        exchange = partial(self._exchange, url, params, endpoint, validate)
        return scheduler.send(self.limiter, exchange)

    def _exchange(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        endpoint: str,
        validate: Callable[[Any], None] | None,
        sent_at: float,
    ) -> _Outcome:
        """Send the request whose slot was taken at ``sent_at`` and judge its answer."""
        self.limiter.sent(self.limiter.now())  # it may leave later than its slot
        self._count("requests")
        limit = self.retry.request_deadline
        deadline = time.monotonic() + limit
        try:
            response, content = self._fetch(url, params, endpoint, deadline)
        except _DeadlinePassed:
            return _Outcome(
                problem=f"timed out: no complete answer within the {limit:g}s deadline "
                f"({self.setting('request_deadline_seconds')})",
                sent_at=sent_at,
            )
        except requests.Timeout:
            return _Outcome(problem=f"timed out after {self.retry.read_timeout:g}s")
        except requests.ConnectionError as exc:
            return _Outcome(problem=f"connection failed ({type(exc).__name__})")
        except (requests.RequestException, TransportError) as exc:  # e.g. a cut-off body
            return _Outcome(problem=f"transport error ({type(exc).__name__})")
        return self._judge(response, content, endpoint, validate, sent_at)

    def _judge(
        self,
        response: requests.Response,
        content: bytes,
        endpoint: str,
        validate: Callable[[Any], None] | None,
        sent_at: float,
    ) -> _Outcome:
        status = response.status_code
        try:
            text = content.decode(response.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            text = content.decode("utf-8", errors="replace")
        if status in RETRY_STATUSES:
            wait = answers.retry_after(
                response.headers.get("Retry-After"), self.retry.retry_after_max
            )
            if status == 429:
                self._count("rate_limited")
            said = answers.vendor_message(text)
            problem = f"HTTP {status}" + (f" ({self.scrub(said)})" if said else "")
            return _Outcome(problem=problem, retry_after=wait, status=status, sent_at=sent_at)
        credentials = status in (401, 403) or (
            status == 400 and answers.about_credentials(text, response.headers)
        )
        if credentials or status >= 400:
            raise self.error(
                ProviderAuthError if credentials else ProviderRequestError,
                endpoint,
                "credentials refused" if credentials else "request rejected",
                status=status,
                vendor_message=answers.vendor_message(text),
                hint=self.auth_hint if credentials else None,
                problems=tuple(
                    FieldProblem(
                        p.param,
                        self.scrub(p.message),
                        None if p.sent is None else self.scrub(p.sent),
                        tuple(self.scrub(v) for v in p.permitted),
                    )
                    for p in answers.field_problems(text)
                ),
                body=answers.json_body(self.scrub(text or "")),
            )
        if status >= 300:
            raise self.error(ProviderResponseError, endpoint, "unexpected redirect", status=status)
        try:  # the charset the answer declares, else JSON's own detection
            body = json.loads(text if response.encoding else content)
        except ValueError:
            snippet = re.sub(r"\s+", " ", text[:80])
            return _Outcome(problem=f"body is not valid JSON (starts {snippet!r})", status=200)
        if validate is not None:
            try:
                validate(body)
            except BadShape as exc:
                return _Outcome(problem=f"unexpected body: {exc}", status=200)
        return _Outcome(body=body, status=200)

    def _fetch(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        endpoint: str,
        deadline: float,
    ) -> tuple[requests.Response, bytes]:
        """The answer and its whole body, following same-host redirects, by ``deadline``."""
        for _ in range(MAX_SAME_HOST_REDIRECTS + 1):
            response = self.session.get(
                url,
                params=params,
                timeout=(self._within(deadline, self.retry.connect_timeout), self._read(deadline)),
                allow_redirects=False,
                stream=True,
            )
            if not response.is_redirect:
                return response, self._read_body(response, deadline)
            response.close()
            location = urljoin(url, response.headers.get("Location", ""))
            url = self.url_for(location)  # raises UnsafeURLError for another host
            params = None
        raise self.error(ProviderResponseError, endpoint, "too many redirects")

    def _within(self, deadline: float, timeout: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlinePassed
        return min(timeout, remaining)

    def _read(self, deadline: float) -> float:
        return self._within(deadline, self.retry.read_timeout)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """Read the body a piece at a time, each read waiting no longer than the deadline
        leaves, so a body that arrives a byte at a time cannot hold the request past it."""
        raw = response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        pieces = []
        try:
            while True:
                timeout = self._read(deadline)
                if sock is not None:
                    sock.settimeout(timeout)
                try:
                    piece = raw.read1(_READ_SIZE, decode_content=True)  # gzip and the like
                except ReadTimeoutError:
                    if time.monotonic() >= deadline:
                        raise _DeadlinePassed from None
                    raise requests.Timeout from None
                if not piece:
                    return b"".join(pieces)
                pieces.append(piece)
        except _DeadlinePassed:
            response.close()  # the connection is mid-answer: never reuse it
            raise
