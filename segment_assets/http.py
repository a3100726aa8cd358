"""One HTTP layer for every provider.

A :class:`ProviderHTTP` owns one pooled ``requests.Session`` for one provider account and
gives the provider modules a single call, :meth:`ProviderHTTP.get_json`, that:

* paces requests with a shared :class:`RateLimiter` (a 429's ``Retry-After`` pauses every
  worker of the client, not only the one that received it);
* times out every call (connect and read);
* retries 429, 5xx, connection resets, timeouts, bodies that are not JSON and bodies of the
  wrong shape, with exponential backoff and jitter, honouring ``Retry-After`` in seconds or
  as an HTTP date (capped); other 4xx fail at once;
* never follows a link or redirect to a host other than the configured one, so credentials
  are only ever sent to that host;
* raises :class:`ProviderError` (or a subclass) naming provider, endpoint, status and the
  vendor's own message, scrubbed of every credential the client holds.

Retry policy (which statuses, how many attempts, how ``Retry-After`` is parsed and capped)
comes from ``urllib3.util.Retry``; this module adds what urllib3 cannot do on its own: a
pause shared by all threads, validation of the body inside the retry loop, and
secret-free errors.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_SAME_HOST_REDIRECTS = 5


class ProviderError(RuntimeError):
    """A provider call failed. The message is safe to log: it never holds a credential."""

    def __init__(
        self,
        provider: str,
        endpoint: str,
        message: str,
        *,
        status: int | None = None,
        vendor_message: str | None = None,
        hint: str | None = None,
        body: Any = None,
    ) -> None:
        self.provider = provider
        self.body = body  # a 4xx answer's JSON (scrubbed), for callers that read its shape
        self.endpoint = endpoint
        self.status = status
        self.vendor_message = vendor_message
        self.hint = hint
        parts = [f"{provider} {endpoint}"]
        if status is not None:
            parts.append(f"HTTP {status}")
        text = f"{' '.join(parts)}: {message}"
        if vendor_message:
            text += f" — provider said: {vendor_message}"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class ProviderAuthError(ProviderError):
    """401/403: the credentials were refused. Never retried."""


class ProviderRequestError(ProviderError):
    """Another 4xx: the request itself is wrong (or the object is gone). Never retried."""


class ProviderUnavailableError(ProviderError):
    """A retryable fault persisted until the retry budget ran out."""


class ProviderResponseError(ProviderError):
    """The provider answered 200 with a body this project cannot read."""


class UnsafeURLError(ProviderError):
    """A link or redirect pointed at a host other than the configured one."""


class BadShape(ValueError):
    """Raised by a body validator: the JSON is not what the endpoint promises."""


@dataclass(frozen=True)
class RetrySettings:
    """How hard one client tries before it gives up."""

    max_retries: int = 6
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    retry_after_max: float = 120.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def policy(self) -> Retry:
        return Retry(
            total=self.max_retries,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            backoff_jitter=self.backoff_jitter,
            retry_after_max=int(self.retry_after_max),
            respect_retry_after_header=True,
            raise_on_status=False,
        )

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


class RateLimiter:
    """Paces calls to at most ``rate`` per second across threads, and pauses them all.

    GCRA-style with no burst credit: callers pass a gate one at a time on a schedule of
    slots ``1 / rate`` apart. A caller that was waiting for its slot and wakes up a little
    late (thread scheduling) does not push the schedule back, so such delays do not add up
    over a long run; a caller that arrives after its slot (the client was idle) or wakes
    more than half a slot late starts the schedule afresh from now, so no credit is saved
    up and two requests are never closer than half a slot. :meth:`pause` holds every
    caller, including one already waiting for its turn, until the given time: that is how
    one 429's ``Retry-After`` stops the whole client.
    """

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._clock = clock
        self._gate = threading.Lock()  # one caller waits for its turn at a time
        self._changed = threading.Condition()  # wakes that caller early when a pause is set
        self._next = -math.inf  # the next free slot
        self._paused_until = 0.0

    def acquire(self) -> float:
        """Wait for this caller's turn; return the seconds waited."""
        started = self._clock()
        with self._gate, self._changed:
            while True:
                now = self._clock()
                ready = max(self._next, self._paused_until)
                if ready <= now:
                    break
                self._changed.wait(ready - now)
            queued = started <= ready  # waited for this slot, rather than arriving after it
            slot = ready if queued and now - ready <= self.interval / 2 else now
            self._next = slot + self.interval
        return now - started

    def pause(self, seconds: float) -> None:
        """Hold every caller until ``seconds`` from now."""
        with self._changed:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._changed.notify_all()


def vendor_message(response: requests.Response, limit: int = 300) -> str | None:
    """The provider's own words from an error body: JSON ``detail``/``errors``/``message``,
    else the text with HTML tags removed, cut to ``limit`` characters."""
    text = response.text or ""
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
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


def json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


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
    """A pooled, paced, retrying JSON client for one provider account."""

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
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._origin = origin(self.base_url)
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.retry = retry or RetrySettings()
        self.limiter = RateLimiter(max_rps)
        self.auth_hint = auth_hint
        self.log = log or logger
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

    def _error(self, cls: type[ProviderError], endpoint: str, message: str, **kw: Any):
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
        policy = self.retry.policy()
        attempt = 0
        while True:
            outcome = self._attempt(url, params, endpoint, validate)
            if outcome.problem is None:
                return outcome.body
            problem, wait_hint, status = outcome.problem, outcome.retry_after, outcome.status
            attempt += 1
            self._count("retries")
            try:
                policy = policy.increment(method="GET", url=url)
            except MaxRetryError:
                raise self._error(
                    ProviderUnavailableError if status != 200 else ProviderResponseError,
                    endpoint,
                    f"gave up after {attempt} attempts; last problem: {problem}",
                    status=status,
                ) from None
            wait = wait_hint if wait_hint is not None else self.retry.backoff(attempt)
            self.log.warning(
                f"{self.provider} {endpoint}: {problem}; retry {attempt} of "
                f"{self.retry.max_retries} in {wait:.1f}s"
            )
            if wait_hint is not None:
                self.limiter.pause(wait)
            else:
                time.sleep(wait)

    def _attempt(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        endpoint: str,
        validate: Callable[[Any], None] | None,
    ) -> _Outcome:
        """One try: the body, or a retryable problem. Non-retryable outcomes raise."""
        self.limiter.acquire()
        self._count("requests")
        timeout = (self.retry.connect_timeout, self.retry.read_timeout)
        try:
            response = self._get_following_same_host(url, params, timeout, endpoint)
        except requests.Timeout:
            return _Outcome(problem=f"timed out after {self.retry.read_timeout:g}s")
        except requests.ConnectionError as exc:
            return _Outcome(problem=f"connection failed ({type(exc).__name__})")
        except requests.RequestException as exc:  # e.g. ChunkedEncodingError mid-body
            return _Outcome(problem=f"transport error ({type(exc).__name__})")

        status = response.status_code
        if status in RETRY_STATUSES:
            retry_after = self._retry_after(response)
            if status == 429:
                self._count("rate_limited")
            said = vendor_message(response)
            problem = f"HTTP {status}" + (f" ({self.scrub(said)})" if said else "")
            return _Outcome(problem=problem, retry_after=retry_after, status=status)
        if status in (401, 403):
            raise self._error(
                ProviderAuthError,
                endpoint,
                "credentials refused",
                status=status,
                vendor_message=vendor_message(response),
                hint=self.auth_hint,
            )
        if status >= 400:
            raise self._error(
                ProviderRequestError,
                endpoint,
                "request rejected",
                status=status,
                vendor_message=vendor_message(response),
                body=json_or_none(self.scrub(response.text or "")),
            )
        if status >= 300:
            raise self._error(ProviderResponseError, endpoint, "unexpected redirect", status=status)
        try:
            body = response.json()
        except ValueError:
            snippet = re.sub(r"\s+", " ", response.text[:80])
            return _Outcome(problem=f"body is not valid JSON (starts {snippet!r})", status=200)
        if validate is not None:
            try:
                validate(body)
            except BadShape as exc:
                return _Outcome(problem=f"unexpected body: {exc}", status=200)
        return _Outcome(body=body, status=200)

    def _retry_after(self, response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return self.retry.policy().parse_retry_after(value)
        except Exception:  # an unreadable header: fall back to backoff
            return None

    def _get_following_same_host(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        timeout: tuple[float, float],
        endpoint: str,
    ) -> requests.Response:
        for _ in range(MAX_SAME_HOST_REDIRECTS + 1):
            response = self.session.get(url, params=params, timeout=timeout, allow_redirects=False)
            if not response.is_redirect:
                return response
            location = urljoin(url, response.headers.get("Location", ""))
            url = self.url_for(location)  # raises UnsafeURLError for another host
            params = None
        raise self._error(ProviderResponseError, endpoint, "too many redirects")
