"""The emulator's mutable state: clock, faults, planted changes, counters and data caches."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import actionhub, onesignal, usercom
from .changes import Changes
from .config import ActionHubProgram, EmulatorConfig, OneSignalApp, UserComApp
from .faults import FaultBoard, Switches
from .model import Series, expected
from .stats import Stats


@dataclass(frozen=True)
class Admission:
    """What happens to one provider request before its handler runs."""

    switches: Switches
    wait_s: float
    fault: str | None


def as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


class EmulatorState:
    """Thread-safe; every public method may be called while the server is running."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        today = config.today or dt.datetime.now(dt.UTC).date()
        self._day = today.toordinal()
        self._faults = FaultBoard()
        self._changes = Changes()
        self._stats = Stats()
        self._cache: dict[tuple, Any] = {}
        self._view_limit = (config.view_rate_limit_rps, config.view_rate_limit_burst)
        self.public_url = f"http://{config.host}:{config.port}"

    # -- clock -------------------------------------------------------------------------
    @property
    def today(self) -> dt.date:
        return dt.date.fromordinal(self._day)

    @property
    def day(self) -> int:
        """The emulator date as a proleptic Gregorian ordinal."""
        return self._day

    def set_date(self, date: dt.date | str) -> None:
        self._day = as_date(date).toordinal()

    # -- faults ------------------------------------------------------------------------
    def set_faults(self, provider: str, account: str | None = None, **kw: Any) -> None:
        """Set fault switches for ``provider``, or for one account when ``account`` is given.

        Keyword names are the fields of ``faults.Switches`` plus ``fail_next`` (a list of
        fault kinds, one consumed per request, account queue first). Given fields replace
        earlier values and leave the others alone; ``fail_next`` replaces the queue.
        The account is the ActionHub program id, the User.com subdomain or the OneSignal
        app id.
        """
        with self._lock:
            self._faults.set(provider, account, **kw)

    def clear_faults(self, provider: str | None = None) -> None:
        """Drop every fault switch and queue (of one provider, or of all)."""
        with self._lock:
            self._faults.clear(provider)

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults.describe()

    def set_view_rate_limit(self, rps: float | None, burst: int = 1) -> None:
        """The standing OneSignal view-endpoint limit per app (None: off)."""
        with self._lock:
            self._view_limit = (rps, burst)

    # -- planted changes -----------------------------------------------------------------
    def plant_drop(
        self,
        provider: str,
        account: str,
        segment_id: Any,
        start: dt.date | str,
        factor: float = 0.1,
        end: dt.date | str | None = None,
    ) -> None:
        """Multiply the segment's size by ``factor`` from ``start`` (until ``end``, exclusive)."""
        targets = self._resolve(provider, account, segment_id)
        end_day = as_date(end).toordinal() if end is not None else None
        with self._lock:
            for list_key, index in targets:
                self._changes.add_drop(list_key, index, as_date(start).toordinal(), end_day, factor)

    def remove_segment(
        self, provider: str, account: str, segment_id: Any, start: dt.date | str | None = None
    ) -> None:
        """The segment disappears from listings (and OneSignal views 404) from ``start`` on."""
        targets = self._resolve(provider, account, segment_id)
        day = as_date(start).toordinal() if start is not None else self._day
        with self._lock:
            for list_key, index in targets:
                self._changes.add_removal(list_key, index, day)

    def clear_changes(self) -> None:
        """Forget planted drops and removals."""
        with self._lock:
            self._changes.clear()

    def _resolve(self, provider: str, account: str, segment_id: Any) -> list[tuple[str, int]]:
        if provider == "actionhub":
            return actionhub.resolve(self.config.actionhub_program(account), segment_id)
        if provider == "usercom":
            cat = self.usercom_catalog(self.config.usercom_app(account))
            index = cat.index_of.get(int(segment_id))
        elif provider == "onesignal":
            cat = self.onesignal_catalog(self.config.onesignal_app(account))
            index = cat.index_of.get(str(segment_id))
        else:
            raise ValueError(f"unknown provider {provider!r}")
        if index is None:
            raise KeyError(f"unknown {provider} segment {segment_id!r}")
        return [(cat.key, index)]

    # -- ground truth and counters -------------------------------------------------------
    def truth(
        self, provider: str, account: str | None = None, min_weight: float = 0.5
    ) -> list[dict]:
        """The raw records a complete snapshot of ``account`` must contain today."""
        if provider == "actionhub":
            return actionhub.truth(self, account or self.config.actionhub[0].program_id, min_weight)
        if provider == "usercom":
            return usercom.truth(self, account or self.config.usercom[0].subdomain)
        if provider == "onesignal":
            return onesignal.truth(self, account or self.config.onesignal[0].app_id)
        raise ValueError(f"unknown provider {provider!r}")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.snapshot()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.reset()

    # -- used by the server --------------------------------------------------------------
    def admit(
        self, provider: str, endpoint: str, account: str | None, new_connection: bool = False
    ) -> Admission:
        """Count the request as in flight and decide rate limiting and faults for it.

        ``new_connection``: the first request of ``provider`` on its TCP connection.
        """
        with self._lock:
            self._stats.enter(provider, endpoint, account, new_connection)
            sw = self._faults.switches(provider, account)
            wait = 0.0
            if sw.rate_limit_rps:
                key = (provider, account, endpoint, "faults")
                wait = self._faults.take_token(key, sw.rate_limit_rps, sw.rate_limit_burst)
            rps, burst = self._view_limit
            if not wait and rps and provider == "onesignal" and endpoint == "view":
                wait = self._faults.take_token((provider, account, endpoint, "base"), rps, burst)
            fault = None if wait else self._faults.take_fault(provider, account, sw)
            return Admission(sw, wait, fault)

    def tally(self, provider: str, name: str) -> None:
        """Count something a route handler saw; read it back in ``stats()[provider][name]``."""
        with self._lock:
            self._stats.tally(provider, name)

    def release(self, provider: str, account: str | None, status: int) -> None:
        with self._lock:
            self._stats.leave(provider, account, status)

    # -- data used by the route handlers -------------------------------------------------
    def _cached(self, key: tuple, build):
        value = self._cache.get(key)
        if value is None:
            value = build()
            with self._lock:
                value = self._cache.setdefault(key, value)
        return value

    def actionhub_list(
        self, program: ActionHubProgram, segment_type: str, basis: str
    ) -> actionhub.SegmentList:
        c = self.config
        return self._cached(
            ("actionhub", program, segment_type, basis),
            lambda: actionhub.build_list(c.seed, c.start_date, program, segment_type, basis),
        )

    def usercom_catalog(self, app: UserComApp) -> usercom.UserComCatalog:
        c = self.config
        return self._cached(
            ("usercom", app), lambda: usercom.build_catalog(c.seed, c.start_date, app)
        )

    def onesignal_catalog(self, app: OneSignalApp) -> onesignal.OneSignalCatalog:
        c = self.config
        return self._cached(
            ("onesignal", app), lambda: onesignal.build_catalog(c.seed, c.start_date, app)
        )

    def sizes(
        self, list_key: str, series: Series, idx: np.ndarray, days: np.ndarray | int
    ) -> np.ndarray:
        """Unrounded sizes of segments ``idx`` on ``days`` with planted drops applied."""
        return self._changes.apply_drops(list_key, idx, days, expected(series, idx, days))

    def visible(self, list_key: str, n: int, day: int) -> np.ndarray:
        return self._changes.visible(list_key, n, day)

    def is_removed(self, list_key: str, index: int, day: int) -> bool:
        return self._changes.is_removed(list_key, index, day)
