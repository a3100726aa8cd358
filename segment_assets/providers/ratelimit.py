"""Pacing for one provider account, and what a provider's 429s cost it.

:class:`RateLimiter` lets requests leave one at a time on a schedule of slots, pauses every
caller at once when the provider asks for a pause (``Retry-After``), and adapts its pace:
each 429 lowers the rate multiplicatively, each success raises it again a little, never
above the configured rate. A client paced exactly at a strict provider's limit thus drifts
just under it instead of being refused again and again.

:class:`RateLimitClock` measures how long an account has been rate limited — from a 429 to
the next request that succeeds, summed over the snapshot — so that only a total time budget,
not a count of 429s, ends an account the provider keeps refusing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

SLOWDOWN = 0.7  # each 429 multiplies the pace by this
SETTLE = 0.97  # ... and the pace it recovers to, so a client at a strict limit settles under it
FLOOR = 0.05  # never slower than this share of the configured pace
RECOVERY = 0.02  # each success adds this share of the configured pace back
LATE_TOLERANCE = 0.005  # seconds a request may leave after its slot without pushing the next


class RateLimiter:
    """Paces calls to at most ``rate`` per second across threads, and pauses them all.

    GCRA-style with no burst credit: callers pass a gate one at a time on a schedule of
    slots ``1 / rate`` apart. A caller that was waiting for its slot and wakes up a little
    late (thread scheduling) does not push the schedule back, so such delays do not add up
    over a long run; a caller that arrives after its slot (the client was idle) or wakes
    more than half a slot late starts the schedule afresh from now, so no credit is saved
    up. But a request that *leaves* late (:meth:`sent`: it waited for a thread or a CPU after
    taking its slot) by more than a few milliseconds pushes the next slot back by as much,
    so two requests never reach the provider closer than the pace allows, which a strict
    limit without burst would refuse. :meth:`pause` holds every caller, including one
    already waiting for its turn, until the given time: that is how one 429's
    ``Retry-After`` stops the whole client.

    :meth:`slow_down` (on a 429) and :meth:`recover` (on a success) move the pace between
    ``FLOOR`` and the configured rate. A limiter without a configured rate starts pacing at
    the rate it observed when the first 429 came.
    """

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self._clock = clock
        self._gate = threading.Lock()  # one caller waits for its turn at a time
        self._changed = threading.Condition()  # wakes that caller early when a pause is set
        self._next = -math.inf  # the next free slot
        self._paused_until = 0.0
        self.configured = rate
        self._ceiling = rate  # the pace recovery climbs back to
        self._rate = rate
        self._slowed_at = -math.inf
        self._recent: deque[float] = deque(maxlen=16)  # recent slots, to observe a pace

    @property
    def rate(self) -> float | None:
        """The current pace in requests per second (None: not paced)."""
        return self._rate

    @property
    def interval(self) -> float:
        return 0.0 if self._rate is None else 1.0 / self._rate

    def now(self) -> float:
        """The limiter's clock (seconds)."""
        return self._clock()

    def acquire(self) -> float:
        """Wait for this caller's turn; return the time its slot began (clock seconds)."""
        started = self._clock()
        with self._gate, self._changed:
            while True:
                now = self._clock()
                ready = max(self._next, self._paused_until)
                if ready <= now:
                    break
                self._changed.wait(ready - now)
            self._take(started, ready, now)
        return now

    def wait_time(self) -> float:
        """Seconds until the next slot comes (0: it has come), without taking it."""
        with self._changed:
            return max(0.0, max(self._next, self._paused_until) - self._clock())

    def try_acquire(self, started: float) -> float | None:
        """Take the next slot if it has come, without waiting: the time it began (clock
        seconds), or None when it has not come (see :meth:`wait_time`). ``started`` is when
        the caller began to wait (:meth:`now`), as :meth:`acquire` measures it. This is how
        a scheduler that waits elsewhere (a timer, not a thread) takes slots."""
        with self._changed:
            now = self._clock()
            ready = max(self._next, self._paused_until)
            if ready > now:
                return None
            self._take(started, ready, now)
        return now

    def sent(self, at: float) -> None:
        """The request of the slot last taken left at ``at`` (clock seconds): the next slot
        comes no sooner than one interval after it, less ``LATE_TOLERANCE`` (at most half an
        interval) of scheduling noise that is not worth slowing down for."""
        with self._changed:
            interval = self.interval
            self._next = max(self._next, at + interval - min(LATE_TOLERANCE, interval / 2))

    def _take(self, started: float, ready: float, now: float) -> None:
        """Take the slot that came at ``ready`` at ``now``. Call with ``_changed`` held."""
        queued = started <= ready  # waited for this slot, rather than arriving after it
        interval = self.interval
        slot = ready if queued and now - ready <= interval / 2 else now
        self._next = slot + interval
        self._recent.append(now)

    def pause(self, seconds: float) -> None:
        """Hold every caller until ``seconds`` from now."""
        with self._changed:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._changed.notify_all()

    def slow_down(self, sent_at: float) -> float | None:
        """A request sent at ``sent_at`` was answered 429: lower the pace, once per wave.

        A 429 answering a request sent before the last slow-down says nothing new (the pace
        that drew it is already gone), so it does not lower the pace again. Returns the pace.
        """
        with self._changed:
            if sent_at < self._slowed_at:
                return self._rate
            base = self._rate if self._rate is not None else self._observed()
            if base is None:
                return None
            if self._ceiling is None:
                self._ceiling = base
            floor = (self.configured or self._ceiling) * FLOOR
            self._ceiling = max(floor, self._ceiling * SETTLE)
            self._rate = max(floor, base * SLOWDOWN)
            self._slowed_at = self._clock()
            return self._rate

    def recover(self) -> None:
        """A request succeeded: raise the pace a little towards the ceiling."""
        if self._rate is None or self._ceiling is None or self._rate >= self._ceiling:
            return
        with self._changed:
            step = (self.configured or self._ceiling) * RECOVERY
            self._rate = min(self._ceiling, self._rate + step)

    def _observed(self) -> float | None:
        if len(self._recent) < 2 or self._recent[-1] <= self._recent[0]:
            return None
        return (len(self._recent) - 1) / (self._recent[-1] - self._recent[0])


class RateLimitClock:
    """Time an account spends rate limited: from a 429 to the next success, summed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._spent = 0.0
        self._since: float | None = None
        self.in_a_row = 0  # 429s since the last success

    def limited(self) -> float:
        """A 429 arrived: return the seconds rate limited so far, this spell included."""
        with self._lock:
            now = self._clock()
            if self._since is None:
                self._since = now
            self.in_a_row += 1
            return self._spent + now - self._since

    def cleared(self) -> None:
        """A request succeeded: the spell of 429s, if any, is over."""
        if self._since is None:
            return
        with self._lock:
            if self._since is not None:
                self._spent += self._clock() - self._since
                self._since = None
                self.in_a_row = 0

    def spent(self) -> float:
        with self._lock:
            ongoing = 0.0 if self._since is None else self._clock() - self._since
            return self._spent + ongoing
