"""Fault switches: what may go wrong on a provider route (the answers that then go wrong are
in ``fault_answers.py``, the well-formed wrong ones in ``lies.py``).

Switches are set per provider and optionally per account; an account's own setting wins
over the provider-wide one field by field. ``fail_next`` queues are consumed account queue
first, then the provider queue.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from .config import PROVIDERS

PRE_FAULTS = frozenset(
    {"429", "429-date", "503-html", "503-empty", "500", "reset", "403", "401", "redirect-foreign"}
) | frozenset({"429-now", "400-auth"})
POST_FAULTS = frozenset({"truncated", "not-json", "wrong-shape", "bad-count"})
FAULT_KINDS = PRE_FAULTS | POST_FAULTS | {"timeout"}
RETRY_AFTER_FORMATS = ("seconds", "http-date")
VIEW_404_KINDS = ("segment", "app", "html")
BAD_RECORD_KINDS = (
    "negative-count",  # the count is -5
    "fraction-count",  # the count is 12.5
    "text-count",  # the count is "lots"
    "null-count",  # the count is null
    "missing-count",  # the count is left out
    "uncountable",  # User.com: too_heavy true and a null count (the provider cannot count it)
    "surrogate-name",  # the name ends in a lone UTF-16 surrogate (a string cut mid-emoji)
    "missing-updated-at",  # User.com / OneSignal listing: updated_at is left out
    "bad-updated-at",  # updated_at is text that is no time ("0000-00-00 00:00:00")
)


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
    _validate_lies(kw)


def _validate_lies(kw: dict[str, Any]) -> None:
    """Raise ValueError for a lie switch with an unknown value."""
    if kw.get("view_404") not in (None, *VIEW_404_KINDS):
        raise ValueError(f"view_404 must be one of {VIEW_404_KINDS} or None")
    if kw.get("bad_record") not in (None, *BAD_RECORD_KINDS):
        raise ValueError(f"bad_record must be one of {BAD_RECORD_KINDS} or None")
    share = kw.get("view_404_share")
    if share is not None and not 0 <= float(share) <= 1:
        raise ValueError("view_404_share must be between 0 and 1")


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
