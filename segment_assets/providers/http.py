"""One HTTP client per provider account, and its retry loop.

A :class:`ProviderHTTP` owns one pooled ``requests.Session`` for one provider account and
gives the provider modules a single call, :meth:`ProviderHTTP.get_json`: a loop around
:func:`~segment_assets.providers.attempt.attempt` (one try: slot, send, judge). The loop
is written here by hand rather than left to urllib3's ``Retry``, because what it must do
is not an attempt counter:

* requests are paced by one :class:`~segment_assets.providers.ratelimit.RateLimiter` per
  client, and a ``Retry-After`` pauses *every* worker of the client, not only the one that
  received it; inside a provider step's :mod:`~segment_assets.providers.scheduler` every
  wait (slot, pause, backoff) is a timer of its loop;
* a 429 slows the pace down and is waited out, without using up the retries: only the
  account's time budget for being rate limited (``rate_limit_budget``) ends it;
* 5xx, connection resets, timeouts, bodies that are not JSON and bodies of the wrong shape
  are retried up to ``max_retries`` times with exponential backoff and jitter, honouring
  ``Retry-After`` in seconds or as an HTTP date (capped); what no retry can fix (other
  4xx, a 400 about the credentials like a 401/403) fails at once;
* the client keeps every request on the configured host (:meth:`ProviderHTTP.url_for`; the
  redirects :mod:`~segment_assets.providers.wire` follows by hand pass through it too), so
  credentials are never sent anywhere else;
* errors are :class:`ProviderError` (or a subclass) naming provider, endpoint, status and
  the vendor's own message, scrubbed of every credential the client holds.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from segment_assets.providers import scheduler
from segment_assets.providers.attempt import Outcome, attempt
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

DEADLINE_MARGIN = 5.0  # the default deadline: the read timeout plus this
DEFAULT_MAX_PAGES = 1000


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


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


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
    pages, that :func:`~segment_assets.providers.crawler.crawl` reads before it stops
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

    def count(self, key: str) -> None:
        """Add one to a figure of :attr:`stats` (any worker may)."""
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
        tries = 0
        while True:
            outcome = attempt(self, url, params, endpoint, validate)
            if outcome.problem is None:
                self.rate_limited.cleared()
                self.limiter.recover()
                return outcome.body
            self.count("retries")
            if outcome.status == 429:
                self._wait_out_rate_limit(endpoint, outcome)
                continue
            tries += 1
            if tries > self.retry.max_retries:
                raise self.error(
                    ProviderUnavailableError if outcome.status != 200 else ProviderResponseError,
                    endpoint,
                    f"gave up after {tries} attempts; last problem: {outcome.problem}",
                    status=outcome.status,
                ) from None
            wait_hint = outcome.retry_after
            wait = wait_hint if wait_hint is not None else self.retry.backoff(tries)
            self.log.warning(
                f"{self.provider} {endpoint}: {outcome.problem}; retry {tries} of "
                f"{self.retry.max_retries} in {wait:.1f}s"
            )
            if wait_hint is not None:
                self.limiter.pause(wait)
            else:
                scheduler.sleep(wait)

    def _wait_out_rate_limit(self, endpoint: str, outcome: Outcome) -> None:
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
