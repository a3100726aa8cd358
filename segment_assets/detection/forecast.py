"""What each segment is expected to count, and how noisy it is: the season (see
:mod:`~segment_assets.detection.season`) taken out, the trend, the short and the long level,
the noise and the jumps from one observation to the next (rules 3, 4 and 6 of the package
docstring), on a log scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segment_assets.detection.arrays import (
    MAD_TO_SIGMA,
    mad,
    nanmedian,
    sliding_min_before,
    sliding_nanmedian,
    step_changes,
    trailing_median,
)
from segment_assets.detection.season import Calendar, month_factors, weekday_factors
from segment_assets.detection.thresholds import (
    BRIDGE_DAYS,
    LEVEL_DAYS,
    LONG_LEVEL_DAYS,
    LOOKBACK,
    MAX_DECLINE,
    MAX_GROWTH,
    MAX_UNCONFIRMED_GROWTH,
    NOISE_DAYS,
    SPARSE_FRACTION,
    TODAY,
    TREND_DAYS,
    UNSEEN_WEEKDAY_NOISE,
    WEEK,
    WIDTH,
    DropThresholds,
)


@dataclass
class Forecast:
    """Per segment and day (window shape; filled for the last ``NOISE_DAYS`` days and as_of),
    on a log scale: the expected count from the short and from the long level, the season
    (weekday and day-of-month factors), the noise variance (counting noise aside) and the
    jump from the previous observation beyond the trend (season taken out); per segment:
    the daily trend."""

    short: np.ndarray
    long: np.ndarray
    season: np.ndarray
    trend: np.ndarray
    variance: np.ndarray
    jump: np.ndarray


def forecast(
    observed: np.ndarray,
    counts: np.ndarray,
    today_shift: np.ndarray,
    calendar: Calendar,
    th: DropThresholds,
) -> Forecast:
    """The expected counts and their noise (see :class:`Forecast`).

    ``observed`` holds the observations, ``counts`` the listed counts (cached repeats too),
    ``today_shift`` how many days before as_of its count was made (its weekday and day of
    the month are used).
    """
    n_seg = observed.shape[0]
    y = np.log1p(observed)
    past = y[:, :TODAY]

    # 1. Weekday factors: each past observation against the median of the days centred on
    #    it (7 days; 29 for sparse series such as rarely recounted User.com segments; cut at
    #    the window's ends so nothing from as_of), median per weekday over the window. For
    #    sparse series a second pass takes the factors out of those reference medians, as
    #    one weekday may dominate a sparse window. A factor seen fewer than three times may
    #    only lower the expected count: one spike must not raise it.
    factor = np.zeros((n_seg, WEEK))
    seen = np.zeros((n_seg, WEEK), dtype=np.int64)
    residual = np.full((n_seg, TODAY), np.nan)  # against the centred medians
    sparse = np.count_nonzero(~np.isnan(past), axis=1) < SPARSE_FRACTION * TODAY
    for rows, half in ((~sparse, WEEK // 2), (sparse, 2 * WEEK)):
        if rows.any():
            part = past[rows]
            f, n, r = weekday_factors(part, part, half)
            if half > WEEK // 2:  # 7-day windows hold each weekday once: one pass is enough
                f, n, r = weekday_factors(part, part - f[:, np.arange(TODAY) % WEEK], half)
            factor[rows], seen[rows], residual[rows] = f, n, r
    factor = np.where(seen >= 3, factor, np.fmin(factor, 0.0))
    factor = np.nan_to_num(factor, nan=0.0)
    weekday = np.broadcast_to(np.arange(WIDTH) % WEEK, (n_seg, WIDTH)).copy()
    weekday[:, TODAY] = -today_shift % WEEK
    season = np.take_along_axis(factor, weekday, axis=1)

    # 1b. Day-of-month factors (see month_factors), on top of the weekday ones. One that
    #     raises the count (a month-start swell) is taken out of the series the level and
    #     the noise are measured on, but the count a day is judged against is never raised
    #     by it (``lift``): a swell that does not come returns the segment to its level
    #     before the swell, which is not a drop.
    monthly = month_factors(past - season[:, :TODAY], residual - season[:, :TODAY], calendar)
    month_day = np.broadcast_to(calendar.month_day - 1, (n_seg, WIDTH)).copy()
    month_day[:, TODAY] = calendar.month_day[TODAY - today_shift] - 1
    by_day = np.take_along_axis(monthly, month_day, axis=1)
    lift = np.maximum(by_day, 0.0)
    season = season + by_day - lift
    flat = y - season - lift

    # 2. Trend per day: the median week-over-week change of the last TREND_DAYS days, on
    #    the listed counts (cached repeats included, so sparse series still have pairs),
    #    season taken out. Back-to-back incidents or imports can fill half of those weeks,
    #    so growth is followed only as far as each of the last two weeks confirms it on its
    #    own (the median of its seven changes): an import's jump lifts one week, and growth
    #    that stopped lifts neither. Up to MAX_UNCONFIRMED_GROWTH where they cannot tell.
    span = slice(TODAY - TREND_DAYS - WEEK, TODAY)
    listed = np.log1p(counts[:, span]) - season[:, span] - lift[:, span]
    weekly = listed[:, WEEK:] - listed[:, :-WEEK]
    trend = nanmedian(weekly, min_count=WEEK) / WEEK
    each_week = nanmedian(weekly[:, -2 * WEEK :].reshape(n_seg, 2, WEEK), min_count=3) / WEEK
    confirmed = np.nan_to_num(each_week.min(axis=1), nan=MAX_UNCONFIRMED_GROWTH)
    trend = np.where(trend > 0, np.fmin(trend, np.maximum(confirmed, 0.0)), trend)
    trend = np.clip(np.nan_to_num(trend, nan=0.0), -MAX_DECLINE, MAX_GROWTH)

    # 3. Short level for the BRIDGE_DAYS days before as_of and as_of: the median of the
    #    LEVEL_DAYS deseasoned days before, each carried forward to the day by the trend.
    #    Before the lookback it only serves to see incidents begin and rises, so there it
    #    is computed only for the segments that fell a drop's percent below the highest of
    #    the LEVEL_DAYS days before, or jumped half a drop's in a day (most did neither).
    first, near = TODAY - BRIDGE_DAYS, TODAY - LOOKBACK
    expected_log = np.full_like(y, np.nan)
    expected_log[:, near:] = _short_level(flat, trend, season, near, WIDTH)
    steps, gaps = step_changes(flat)
    fall = np.log1p(-th.min_drop_pct / 100.0)
    highest = -sliding_min_before(-flat[:, first - LEVEL_DAYS : near], LEVEL_DAYS)
    with np.errstate(invalid="ignore"):
        moved = (flat[:, first:near] <= highest[:, LEVEL_DAYS:] + fall) | (
            steps[:, first:near] >= -fall / 2.0
        )
    moved = np.flatnonzero(moved.any(axis=1))
    expected_log[moved, first:near] = _short_level(
        flat[moved], trend[moved], season[moved], first, near
    )

    # 4. The long level, for series too sparse for a short one: the median of the
    #    LONG_LEVEL_DAYS deseasoned days before as_of, following the trend only downwards
    #    (its lag makes growth extrapolation noisy).
    long_level, long_at = trailing_median(flat, TODAY, TODAY, LONG_LEVEL_DAYS, min_count=7)
    every_day = np.arange(WIDTH)
    long_log = long_level + np.minimum(trend, 0.0)[:, None] * (every_day - long_at) + season

    # 5. Noise: robust spread (MAD) of the short forecast's errors before as_of; earlier
    #    incidents are outliers that the median ignores. A weekday never observed in the
    #    window adds the largest weekday effect seen (at least UNSEEN_WEEKDAY_NOISE) as
    #    uncertainty: its own effect is unknown.
    first = TODAY - NOISE_DAYS
    errors = y[:, first:TODAY] - expected_log[:, first:TODAY] - lift[:, first:TODAY]
    sigma = MAD_TO_SIGMA * mad(errors)
    # The changes between consecutive observations give a second, steadier estimate (62
    # steps instead of 28 errors, and an incident counts only where it starts and ends).
    # It bounds the first from below, and from above at twice its value, for when
    # incidents fill most of the four weeks and the median lands among them.
    step = MAD_TO_SIGMA * mad(steps[:, :TODAY]) / np.sqrt(2.0)
    sigma = np.fmin(np.fmax(sigma, step), 2.0 * step)
    sigma = np.fmax(np.nan_to_num(sigma, nan=th.min_noise), th.min_noise)
    unknown = np.max(np.abs(factor), axis=1, keepdims=True)
    unknown = np.where(seen == 0, np.fmax(unknown, UNSEEN_WEEKDAY_NOISE), 0.0)
    unknown = np.take_along_axis(unknown, weekday, axis=1)
    variance = sigma[:, None] ** 2 + unknown**2
    jump = steps - trend[:, None] * gaps
    return Forecast(expected_log, long_log, season, trend, variance, jump)


def _short_level(
    flat: np.ndarray, trend: np.ndarray, season: np.ndarray, first: int, last: int
) -> np.ndarray:
    """The short forecast (log scale, season in) of columns ``first … last - 1``: the median
    of the LEVEL_DAYS deseasoned days before each, carried forward to it by the trend."""
    days = np.arange(first - LEVEL_DAYS, last - 1)
    carried = flat[:, first - LEVEL_DAYS : last - 1] - trend[:, None] * days
    level = sliding_nanmedian(carried, LEVEL_DAYS, min_count=3)
    return level + trend[:, None] * np.arange(first, last) + season[:, first:last]
