"""The numbers of the rules: the thresholds a caller may set (:class:`DropThresholds`) and
the fixed spans of days each rule looks at, with the window they add up to."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WEEK = 7
LEVEL_DAYS = 2 * WEEK  # days behind the short level median
LONG_LEVEL_DAYS = 8 * WEEK  # days behind the level of series too sparse for LEVEL_DAYS
TREND_DAYS = 4 * WEEK  # days of week-over-week changes behind the trend
NOISE_DAYS = 4 * WEEK  # days of forecast errors behind the noise
LOOKBACK = NOISE_DAYS  # how far back "is the segment still in an earlier drop?" looks
BRIDGE_DAYS = 7 * WEEK  # how far back an incident's start is seen (the short level's reach)
RISE_DAYS = 4 * WEEK  # how long a fall back to the level before a rise is not a drop
SPARSE_FRACTION = 0.7  # below this share of observed days, weekday factors look wider
UNSEEN_WEEKDAY_NOISE = 0.3  # uncertainty (log scale) of a weekday never observed
MAX_GROWTH = 0.2  # largest trend followed upwards (log scale per day, about 22 %)
MAX_UNCONFIRMED_GROWTH = 0.01  # ... where the last two weeks cannot confirm it (sparse)
MAX_DECLINE = 0.03  # largest trend followed downwards (about 3 % a day)
YOUNG_DAYS = 4 * WEEK  # a segment first seen this recently has young weekday factors
MONTH_HALF = 2 * WEEK  # days each side of the median a day-of-month factor is measured on
MONTH_MIN_EFFECT = 0.1  # smallest day-of-month factor kept (log scale, about 10 %)

#: Days before ``as_of`` that :func:`find_drops` reads (nine weeks: the weekday factors use
#: all of them); older rows are ignored, so storage only needs to return
#: ``as_of - HISTORY_DAYS_NEEDED`` … ``as_of``.
HISTORY_DAYS_NEEDED: int = 9 * WEEK  # 63

# Column of as_of in the window matrices (column 0 is as_of - HISTORY_DAYS_NEEDED). It is a
# multiple of 7, so column d has weekday d % 7 counted from as_of's.
TODAY = HISTORY_DAYS_NEEDED
WIDTH = HISTORY_DAYS_NEEDED + 1


def history_start(as_of: dt.date) -> dt.date:
    """The first day of the history :func:`find_drops` reads to judge ``as_of`` (column 0)."""
    return as_of - dt.timedelta(days=HISTORY_DAYS_NEEDED)


@dataclass(frozen=True)
class DropThresholds:
    """The rules that make a count a drop; each field is also a keyword of :func:`find_drops`.

    Attributes:
        min_drop_pct: a drop is at least this many percent below expected (default 30).
        min_drop_users: ... and at least this many users below expected (default 50), so
            tiny segments moving by a handful of users never alert.
        min_z: ... and at least this many noise units below expected (default 4.0); the
            noise is the segment's own robust day-to-day forecast error on a log scale, so
            a noisy segment needs a deeper fall than a smooth one.
        min_noise: floor on that noise (default 0.02, about 2 %), so a flat series (a cached
            count that did not move for weeks) is not read as noise-free.
        error_drop_pct: drops of at least this many percent are ``ERROR``, smaller ones
            ``WARN`` (default 60).
        min_history_days: a segment needs this many observations in the window before
            ``as_of`` to be judged (default 7).
        recovery_fraction: after a drop, a day counts as recovered once it misses expected
            by less than this fraction of the percent or of the users threshold (default
            0.5: 15 % or 25 users); until then later days are not new drops.
    """

    min_drop_pct: float = 30.0
    min_drop_users: float = 50.0
    min_z: float = 4.0
    min_noise: float = 0.02
    error_drop_pct: float = 60.0
    min_history_days: int = 7
    recovery_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_drop_pct < 100:
            raise ValueError("min_drop_pct must be between 0 and 100 (exclusive)")
        if self.min_drop_users < 0 or self.min_z < 0 or self.min_noise <= 0:
            raise ValueError("min_drop_users and min_z must be >= 0, min_noise > 0")
        if not 0 <= self.recovery_fraction <= 1:
            raise ValueError("recovery_fraction must be between 0 and 1")
        if not 1 <= self.min_history_days <= HISTORY_DAYS_NEEDED:
            raise ValueError(f"min_history_days must be between 1 and {HISTORY_DAYS_NEEDED}")
