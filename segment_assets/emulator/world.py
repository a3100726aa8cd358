"""What the provider routes serve from: the configuration, the clock, the planted changes,
the generated catalogs and the counters they tally. The provider modules read it; the
state (:class:`~segment_assets.emulator.state.EmulatorState`) adds faults, admission and
the ground truth on top."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .changes import Changes
from .config import EmulatorConfig
from .model import Series, expected
from .stats import Stats

T = TypeVar("T")


def as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def as_moment(value: dt.datetime | dt.date | str) -> dt.datetime:
    """A naive UTC datetime of ``value`` (a date is its midnight; an aware time in UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


class World:
    """Thread-safe; every public method may be called while the server is running."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        today = config.today or dt.datetime.now(dt.UTC).date()
        self._day = today.toordinal()
        self._changes = Changes()
        self._stats = Stats()
        self._cache: dict[tuple, Any] = {}
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

    @property
    def now(self) -> dt.datetime:
        """The emulator's moment (naive UTC): noon of its date."""
        return dt.datetime.combine(self.today, dt.time(12))

    # -- counters ----------------------------------------------------------------------
    def tally(self, provider: str, name: str) -> None:
        """Count something a route handler saw; read it back in ``stats()[provider][name]``."""
        with self._lock:
            self._stats.tally(provider, name)

    # -- data ------------------------------------------------------------------------------
    def cached(self, key: tuple, build: Callable[[], T]) -> T:
        """The value built once for ``key`` (a catalog or segment list)."""
        value = self._cache.get(key)
        if value is None:
            value = build()
            with self._lock:
                value = self._cache.setdefault(key, value)
        return value

    def sizes(
        self, list_key: str, series: Series, idx: np.ndarray, days: np.ndarray | int
    ) -> np.ndarray:
        """Unrounded sizes of segments ``idx`` on ``days`` with planted drops applied."""
        return self._changes.apply_drops(list_key, idx, days, expected(series, idx, days))

    def visible(self, list_key: str, n: int, day: int) -> np.ndarray:
        return self._changes.visible(list_key, n, day)

    def is_removed(self, list_key: str, index: int, day: int) -> bool:
        return self._changes.is_removed(list_key, index, day)

    def edits(self, list_key: str, index: int) -> list[dt.datetime]:
        """When the segment's definition was edited, up to :attr:`now`, oldest first."""
        return self._changes.edits(list_key, index, self.now)
