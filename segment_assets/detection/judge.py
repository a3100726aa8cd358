"""Judging ``as_of``: the incidents and the level they started from, the low, fallen and
recovered days, and whether a low ``as_of`` is a new drop or the segment is still in an
earlier one (rules 4, 7 and 8 of the package docstring). Segments are judged in blocks, two
side by side."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from segment_assets.detection.arrays import (
    last_true,
    previous_where,
)
from segment_assets.detection.forecast import forecast
from segment_assets.detection.rises import rise_floor
from segment_assets.detection.season import Calendar
from segment_assets.detection.thresholds import (
    BRIDGE_DAYS,
    LOOKBACK,
    TODAY,
    WIDTH,
    DropThresholds,
)

BLOCK_SEGMENTS = 2048  # segments judged together (see in_blocks)
WORKERS = min(2, os.cpu_count() or 1)  # blocks judged side by side


def in_blocks(
    observed: np.ndarray,
    counts: np.ndarray,
    today_shift: np.ndarray,
    calendar: Calendar,
    th: DropThresholds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_newly_low` of every segment, by blocks of ``BLOCK_SEGMENTS`` segments.

    Segments are judged independently of each other, so the blocks change nothing in the
    result; they keep each block's matrices in the CPU's cache, and as numpy releases the
    GIL in its loops, ``WORKERS`` blocks run side by side.
    """
    n_seg = observed.shape[0]
    blocks = [slice(i, i + BLOCK_SEGMENTS) for i in range(0, n_seg, BLOCK_SEGMENTS)]
    if len(blocks) == 1:
        return _newly_low(observed, counts, today_shift, calendar, th)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        parts = list(
            pool.map(
                lambda b: _newly_low(observed[b], counts[b], today_shift[b], calendar, th), blocks
            )
        )
    new, expected, pct = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    return new, expected, pct


def _newly_low(
    obs: np.ndarray,
    counts: np.ndarray,
    today_shift: np.ndarray,
    calendar: Calendar,
    th: DropThresholds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment (rows of the window matrices): whether as_of is a new drop, the count
    expected on as_of, and how many percent below it the count is."""
    fc = forecast(obs, counts, today_shift, calendar, th)

    # Everything below runs on the BRIDGE_DAYS days before as_of and as_of.
    bridged = slice(TODAY - BRIDGE_DAYS, WIDTH)
    count, variance, season = obs[:, bridged], fc.variance[:, bridged], fc.season[:, bridged]
    short_log, long_log, trend = fc.short[:, bridged], fc.long[:, bridged], fc.trend

    # Incidents first (see _bridge), so that the recovery from one is not taken for a rise;
    # then the rises (see rise_floor): a fall back to the level held before a recent rise
    # is not a drop, so the expected count is at most that level; then the incidents again,
    # against that capped level, so that the fall back after a rise starts none.
    bridge = _bridge(count, short_log, variance, season, trend, th)
    baseline = np.full(obs.shape, np.nan)
    baseline[:, bridged] = np.where(np.isnan(short_log), np.nan, np.fmax(short_log, bridge))
    floor = rise_floor(obs, baseline, fc.long, fc.variance, fc.season, trend, fc.jump, th)
    floor = floor[:, bridged]
    capped = np.fmin(short_log, floor)
    risen = np.flatnonzero(~np.isnan(floor).all(axis=1))  # the segments with a recent rise
    bridge[risen] = _bridge(count[risen], capped[risen], variance[risen], season[risen],
                            trend[risen], th)  # fmt: skip
    expected_log = np.where(np.isnan(short_log), long_log, capped)
    expected_log = np.fmin(np.fmax(expected_log, bridge), floor)

    # From here on, the lookback days and as_of.
    cut = slice(BRIDGE_DAYS - LOOKBACK, None)
    count, variance, expected_log = count[:, cut], variance[:, cut], expected_log[:, cut]
    low, recovered, fell = judge_days(count, expected_log, variance, th)

    # A day is judged once the segment has min_history_days observations before it.
    seen_before = np.cumsum(~np.isnan(obs), axis=1) - ~np.isnan(obs)
    grown = seen_before[:, TODAY - LOOKBACK :] >= th.min_history_days

    # Still in an earlier drop: a day in the lookback that fell below expected by the
    # percent and users thresholds, when the segment was old enough to be judged, with no
    # recovered day after it. The noise is left out of this test: it is measured with those
    # days in it, so it can hide today a fall that stood out on its day.
    in_drop = last_true((fell & grown)[:, :-1]) > last_true(recovered[:, :-1])
    # What today learns (a trend, a weekday) can move those days' expected counts a little,
    # so also: the previous observation was judged and not recovered, and today is not
    # clearly deeper below expected than it was (by less than the recovery margin).
    rows = np.arange(count.shape[0])
    prev = np.maximum(last_true(~np.isnan(count[:, :-1])), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = count / np.expm1(expected_log)
    margin = 1.0 - th.recovery_fraction * th.min_drop_pct / 100.0
    continues = (
        grown[rows, prev]
        & ~recovered[rows, prev]
        & ~np.isnan(count[rows, prev])
        & (share[:, -1] >= share[rows, prev] * margin)
    )
    judged = ~np.isnan(count[:, -1]) & grown[:, -1]
    new = judged & low[:, -1] & ~in_drop & ~continues
    expected = np.expm1(expected_log[:, -1])
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = 100.0 * (expected - count[:, -1]) / expected

    return new, expected, pct


def _bridge(
    count: np.ndarray,
    level_log: np.ndarray,
    variance: np.ndarray,
    season: np.ndarray,
    trend: np.ndarray,
    th: DropThresholds,
) -> np.ndarray:
    """Per segment and day: the level the latest incident started from, NaN if none.

    Once an incident starts (a day low against ``level_log``, the short level, after one
    that was not), the short level follows it down within a week; the level the incident
    started from stays the baseline (moved by the trend when that is downwards) so that the
    days after a long incident are still judged against it, and its recovery is no rise.
    A slow, unalarming change of level is the short level's alone.
    """
    bridge = np.full(count.shape, np.nan)
    low, _, _ = judge_days(count, level_log, variance, th)
    rows = np.flatnonzero(low.any(axis=1))  # most segments had no incident
    count, low, level_log, season = count[rows], low[rows], level_log[rows], season[rows]
    start = low & ~previous_where(low, ~np.isnan(count), fill=False)
    columns = np.broadcast_to(np.arange(count.shape[1]), count.shape)
    began = previous_where(columns, start, fill=-1)
    before = np.take_along_axis(level_log - season, np.maximum(began, 0), axis=1)
    drift = np.minimum(trend[rows], 0.0)[:, None] * (columns - began)
    bridge[rows] = np.where(began >= 0, before + drift + season, np.nan)
    return bridge


def judge_days(
    count: np.ndarray, expected_log: np.ndarray, variance: np.ndarray, th: DropThresholds
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which counts are low (all three thresholds met), which are recovered (missing
    expected by less than ``recovery_fraction`` of the percent or of the users threshold),
    and which fell (the percent and users thresholds met, whatever the noise).

    The noise adds counting noise (about 1/sqrt(expected) on a log scale) to ``variance``,
    so that small segments need more evidence.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.expm1(expected_log)
        shortfall = expected - count
        pct = 100.0 * shortfall / expected
        noise = np.sqrt(variance + 1.0 / (expected + 1.0))
        z = (expected_log - np.log1p(count)) / noise
    known = np.isfinite(pct) & (expected > 0)
    fell = known & (pct >= th.min_drop_pct) & (shortfall >= th.min_drop_users)
    low = fell & (z >= th.min_z)
    scale = th.recovery_fraction
    recovered = known & ((pct < scale * th.min_drop_pct) | (shortfall < scale * th.min_drop_users))
    return low, recovered, fell
