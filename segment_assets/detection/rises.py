"""The level a segment held before a recent rise (rule 5 of the package docstring): a fall
back to it is not a drop, so the expected count is at most that level."""

from __future__ import annotations

import numpy as np

from segment_assets.detection.arrays import (
    sliding_min_before,
)
from segment_assets.detection.thresholds import (
    BRIDGE_DAYS,
    RISE_DAYS,
    TODAY,
    DropThresholds,
)


def rise_floor(
    count: np.ndarray,
    expected_log: np.ndarray,
    long_log: np.ndarray,
    variance: np.ndarray,
    season: np.ndarray,
    trend: np.ndarray,
    jump: np.ndarray,
    th: DropThresholds,
) -> np.ndarray:
    """Per segment and day of the window: the level held before the rises of the RISE_DAYS
    days before it, on a log scale with that day's season; NaN without a rise.

    A **rise** is a day whose count is above expected as much as a drop is below it
    (expected / (1 - ``min_drop_pct`` %), and ``min_drop_users`` and ``min_z`` noise units
    more), as far above the long level (the median of eight weeks: a new segment filling
    up to its level makes no rise), and at least half that far above the previous
    observation (after the trend): a jump, not the steady climb of a growing segment. The
    level before it is the count expected on that day (so a rise needs three counts before
    it; before the short level's reach, BRIDGE_DAYS, the previous count) without its
    season, carried forward by the trend when that is upwards; with several rises, the
    lowest of those levels.
    """
    floor = np.full(count.shape, np.nan)
    rise = -np.log1p(-th.min_drop_pct / 100.0)
    with np.errstate(invalid="ignore"):  # few segments jump (by enough users to rise)
        rows = np.flatnonzero(np.any((jump >= rise / 2.0) & (count >= th.min_drop_users), axis=1))
    if rows.size == 0:
        return floor
    count, expected_log, long_log = count[rows], expected_log[rows].copy(), long_log[rows]
    variance, season, trend, jump = variance[rows], season[rows], trend[rows], jump[rows]
    y = np.log1p(count)
    # Before the short level's reach the previous count stands in for the expected one.
    early = slice(0, TODAY - BRIDGE_DAYS)
    expected_log[:, early] = y[:, early] - jump[:, early]
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.expm1(expected_log)
        noise = np.sqrt(variance + 1.0 / (expected + 1.0))
        up = y - expected_log
        high = (up >= rise) & (up >= th.min_z * noise) & (count - expected >= th.min_drop_users)
        high &= y - long_log >= rise
        starts = high & (jump >= rise / 2.0)
    growth = np.maximum(trend, 0.0)[:, None]
    columns = np.arange(count.shape[1])
    level = np.where(starts, expected_log - season - growth * columns, np.nan)
    lowest = sliding_min_before(level, RISE_DAYS)
    floor[rows] = lowest + growth * columns + season
    return floor
