"""Request counters per provider. Callers hold the state lock."""

from __future__ import annotations

import copy
import time
from typing import Any

from .config import PROVIDERS


def _empty() -> dict[str, Any]:
    return {
        "requests": 0,
        "connections": 0,
        "by_endpoint": {},
        "by_account": {},
        "by_status": {},
        "429": 0,
        "in_flight": 0,
        "max_in_flight": 0,
        "max_in_flight_by_account": {},
        # wall-clock seconds (time.time(), comparable across processes): the first request
        # admitted, the last answer counted, and both per account
        "first_request_at": None,
        "last_answer_at": None,
        "span_by_account": {},
    }


class Stats:
    """``by_endpoint``/``by_account`` count requests; ``by_status`` counts answers by code;
    ``connections`` counts the TCP connections that carried the provider's requests (a
    client that keeps connections alive opens about as many as it has requests in flight).
    ``span_by_account`` holds each account's first request and last answer (wall clock), so
    a test can tell how many accounts were being served at once.
    """

    def __init__(self) -> None:
        self._data = {p: _empty() for p in PROVIDERS}
        self._in_flight_by_account: dict[tuple[str, str], int] = {}

    def enter(
        self, provider: str, endpoint: str, account: str | None, new_connection: bool = False
    ) -> None:
        d = self._data[provider]
        d["requests"] += 1
        d["connections"] += int(new_connection)
        d["by_endpoint"][endpoint] = d["by_endpoint"].get(endpoint, 0) + 1
        d["in_flight"] += 1
        d["max_in_flight"] = max(d["max_in_flight"], d["in_flight"])
        now = time.time()
        if d["first_request_at"] is None:
            d["first_request_at"] = now
        if account is not None:
            d["span_by_account"].setdefault(account, [now, now])
            d["by_account"][account] = d["by_account"].get(account, 0) + 1
            key = (provider, account)
            now = self._in_flight_by_account.get(key, 0) + 1
            self._in_flight_by_account[key] = now
            peaks = d["max_in_flight_by_account"]
            peaks[account] = max(peaks.get(account, 0), now)

    def leave(self, provider: str, account: str | None, status: int) -> None:
        d = self._data[provider]
        d["in_flight"] -= 1
        d["last_answer_at"] = now = time.time()
        if account is not None:
            d["span_by_account"].setdefault(account, [now, now])[1] = now
            key = (provider, account)
            self._in_flight_by_account[key] = self._in_flight_by_account.get(key, 1) - 1
        code = str(status) if status else "reset"
        d["by_status"][code] = d["by_status"].get(code, 0) + 1
        if status == 429:
            d["429"] += 1

    def tally(self, provider: str, name: str) -> None:
        """Count something a handler saw (e.g. ActionHub ``recounts`` asked for)."""
        d = self._data[provider]
        d[name] = d.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def reset(self) -> None:
        """Zero the counters; requests still in flight stay counted as in flight."""
        for provider in PROVIDERS:
            in_flight = self._data[provider]["in_flight"]
            fresh = _empty()
            fresh["in_flight"] = fresh["max_in_flight"] = in_flight
            self._data[provider] = fresh
