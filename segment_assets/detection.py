"""Find segments that suddenly lost users: pure, vectorised pandas/numpy, no Dagster.

``find_drops(history, as_of)`` judges one day (``as_of``) against the days before it. The
work is done on segment × day matrices of the ``HISTORY_DAYS_NEEDED`` days before ``as_of``,
with group-wise numpy operations over all segments at once (in blocks of a few thousand
segments, two blocks side by side: segments are judged independently): no Python loop per
segment or per day, and older rows are never read. Text columns may be categoricals (as
:func:`~segment_assets.store.duckdb_files.read_history` returns them): their codes stand
for the text.

What counts as an observation
-----------------------------
A count is an observation when the segment is listed, the count is not NULL, the row is not
``too_heavy`` and — for User.com, whose ``object_count`` is a cache — its ``last_counted``
differs from the one of the segment's previous snapshot. A repeated cached count carries no
new information: it is neither judged nor used as history. A new User.com count belongs to
the day of its ``last_counted`` (normally the snapshot day; the day before when that
snapshot is missing), so a Sunday count read on Monday is compared with Sundays.

How a day is judged
-------------------
Counts are compared on a log scale (``log1p``): weekly patterns, growth and noise of segment
sizes are relative. Medians and MADs throughout, so earlier incidents do not move the
baseline, and the judged day is never part of its own baseline.

1. **Weekday pattern.** Each observation before ``as_of`` is compared with the median of the
   7 days centred on it (29 for sparse series such as rarely recounted User.com segments);
   the median of that ratio per weekday over the window is the weekday's factor, so a
   regular weekend dip is expected, not a drop. A factor that would raise the expected
   count is shrunk by twice its standard error and needs three observations, so one spike
   or a level shift cannot invent a busy weekday; in a segment younger than four weeks a
   lowering factor is shrunk too (its first, partial counts or a fall must not teach it a
   low weekday).
2. **Day-of-month pattern.** For a segment with two months of history (a count in the
   window's first week), each observation is compared with the lower quartile of the 29
   days centred on it (so a swell over half the month does not lift the other days); a
   day of the month that was off the same way in every month seen (two or three) gets the
   smallest of those effects as its factor, less three standard errors of the segment's
   noise, from 10 % on. A factor that raises the count (a month-start swell) is taken out
   of the baseline but never raises the count a day is judged against: a swell that does
   not come leaves the segment at its level before the swell, which is not a drop (rule 5).
3. **Trend.** The median week-over-week change of the last four weeks, per day, followed
   downwards up to 3 % a day and upwards as far as each of the last two weeks confirms on
   its own (the median of its seven week-over-week changes), up to 22 % a day: an import's
   jump lifts one week only, and growth that stopped lifts neither.
4. **Level.** The median of the 14 days before the judged day with the season (rules 1
   and 2) taken out, each carried forward to the day by the trend. **Expected** = level ×
   season. Once an incident starts (a day low against that expectation), this level follows
   the incident down within a week, so for seven weeks the level it started from (moved by
   the trend when that is downwards) remains a floor: the day after a long incident is
   still judged against the normal level, and the recovery from it is no rise. Series too
   sparse for a 14-day median use the median of eight weeks.
5. **Rises.** A fall back to the level a segment held before a recent rise is not a drop,
   so the expected count is at most that level. A **rise** is a day, in the four weeks
   before the judged day (*recent*), whose count is above expected as much as a drop is
   below it (expected / (1 − ``min_drop_pct`` %), and ``min_drop_users`` users and
   ``min_z`` noise units more), as far above the median of the eight weeks before the
   judged day, and at least half that far above the previous count beyond the trend: a
   jump such as a campaign import or a month-start swell, not the climb of a growing
   segment nor a new segment filling up. *The level before* it is the count expected on
   that day (rule 4: the median of the 14 days before it, season out, so a rise needs
   three counts in those days), carried forward by the trend when that is upwards; after
   several rises, the lowest. A fall below that level is judged against it.
6. **Noise** is the robust spread (1.4826 × MAD) of the forecast errors over the last four
   weeks, kept between once and twice the spread of the changes between consecutive
   observations (which incidents barely touch), and at least ``min_noise``. Counting noise
   (1/√expected on a log scale) is added, so small segments need more evidence, and so is
   the uncertainty of a weekday never observed in the window (the largest weekday effect
   seen, at least 0.3).
7. A day is **low** when its count is below expected by at least ``min_z`` noise units AND
   ``min_drop_pct`` percent AND ``min_drop_users`` users. It is **recovered** when it misses
   expected by less than ``recovery_fraction`` × ``min_drop_pct`` percent or
   ``recovery_fraction`` × ``min_drop_users`` users.
8. A low ``as_of`` is a **new drop** unless the segment is still in an earlier drop: a day
   in the four weeks before ``as_of``, when the segment had ``min_history_days``
   observations, below expected by the percent and users thresholds (the noise left out:
   it is measured with those days in it) with no recovered day after it; or a previous
   observation that was judged, not recovered, and about as far below expected as today
   (today less than the recovery margin deeper). A drop that lasts for days alerts once,
   whatever the segment's age; a recovery followed by a new fall alerts again; a fall
   before the segment has ``min_history_days`` observations alerts once, on its first
   judged day.

Never judged (no drop row): a segment absent on ``as_of``, a NULL count, a ``too_heavy`` row,
a User.com count whose ``last_counted`` did not change, a provider account with no rows at
all on ``as_of`` (a snapshot outage, not lost users), and a segment with fewer than
``min_history_days`` observations in the window before ``as_of``.

Vanished segments: a segment listed on its account's previous snapshot day but not on
``as_of``, while other segments of the same provider account are listed on ``as_of``, is
reported once with ``severity`` WARN, ``user_count`` NA, ``drop_pct`` NaN, ``expected`` its
last count and a ``reason`` starting with ``"vanished"`` (see :func:`is_vanished`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "HISTORY_DAYS_NEEDED",
    "OUTPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "DropThresholds",
    "find_drops",
    "is_vanished",
]

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
BLOCK_SEGMENTS = 2048  # segments judged together (see _in_blocks)
WORKERS = min(2, os.cpu_count() or 1)  # blocks judged side by side

#: Days before ``as_of`` that :func:`find_drops` reads (nine weeks: the weekday factors use
#: all of them); older rows are ignored, so storage only needs to return
#: ``as_of - HISTORY_DAYS_NEEDED`` … ``as_of``.
HISTORY_DAYS_NEEDED: int = 9 * WEEK  # 63

REQUIRED_COLUMNS: tuple[str, ...] = (
    "provider",
    "account",
    "segment_id",
    "snapshot_date",
    "user_count",
)
OUTPUT_COLUMNS: tuple[str, ...] = (
    "provider",
    "account",
    "segment_id",
    "snapshot_date",
    "user_count",
    "expected",
    "drop_pct",
    "severity",
    "reason",
)
VANISHED = "vanished"

_MAD_TO_SIGMA = 1.4826
_QUARTILE_TO_SIGMA = 0.6745  # distance from the median to a quartile, in standard deviations
_MINUS = "\u2212"
_ARROW = "\u2192"

# Column of as_of in the window matrices (column 0 is as_of - HISTORY_DAYS_NEEDED). It is a
# multiple of 7, so column d has weekday d % 7 counted from as_of's.
_T = HISTORY_DAYS_NEEDED
_WIDTH = HISTORY_DAYS_NEEDED + 1


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


def is_vanished(drops: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows of a :func:`find_drops` result that are vanished segments."""
    return drops["reason"].astype("string").str.startswith(VANISHED).fillna(False).astype(bool)


def find_drops(
    history: pd.DataFrame,
    as_of: dt.date,
    thresholds: DropThresholds | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Segments that newly dropped on ``as_of`` (the rules are in the module docstring).

    Args:
        history: one row per segment and snapshot day with at least ``provider, account,
            segment_id, snapshot_date, user_count``; optionally ``segment_name``,
            ``last_counted`` and ``too_heavy`` (User.com). A segment is identified by
            (provider, account, segment_id). Rows after ``as_of`` or more than
            ``HISTORY_DAYS_NEEDED`` days before it are ignored.
        as_of: the day to judge.
        thresholds: a :class:`DropThresholds`; defaults to ``DropThresholds()``.
        **overrides: any :class:`DropThresholds` field, e.g. ``min_drop_pct=40``.

    Returns:
        One row per segment newly dropping (or vanished) on ``as_of``: ``provider, account,
        segment_id, snapshot_date, user_count`` (Int64), ``expected`` and ``drop_pct``
        (float; percent below expected, 93.0 for −93 %), ``severity`` ("ERROR" or "WARN")
        and ``reason`` (in words), plus ``segment_name`` when the input has it. ERROR rows
        first, then by size of the drop. Empty, with the same columns, when nothing drops.
    """
    th = dataclasses.replace(thresholds or DropThresholds(), **overrides)
    as_of = _as_date(as_of)
    missing = [c for c in REQUIRED_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks column(s): {', '.join(missing)}")
    with_name = "segment_name" in history.columns

    win = _Window.build(history, as_of)
    if win is None:
        return _empty(with_name)

    calendar = _Calendar.of(as_of)
    new, expected, pct = _in_blocks(win.observed, win.counts, win.today_shift, calendar, th)
    seg = np.flatnonzero(new)
    drops = _drop_frame(win, seg, expected, pct, th, with_name)
    vanished = _vanished_frame(win, with_name)
    return _finish([drops, vanished], with_name)


def _in_blocks(
    observed: np.ndarray,
    counts: np.ndarray,
    today_shift: np.ndarray,
    calendar: _Calendar,
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
    calendar: _Calendar,
    th: DropThresholds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment (rows of the window matrices): whether as_of is a new drop, the count
    expected on as_of, and how many percent below it the count is."""
    fc = _forecast(obs, counts, today_shift, calendar, th)

    # Everything below runs on the BRIDGE_DAYS days before as_of and as_of.
    bridged = slice(_T - BRIDGE_DAYS, _WIDTH)
    count, variance, season = obs[:, bridged], fc.variance[:, bridged], fc.season[:, bridged]
    short_log, long_log, trend = fc.short[:, bridged], fc.long[:, bridged], fc.trend

    # Incidents first (see _bridge), so that the recovery from one is not taken for a rise;
    # then the rises (see _rise_floor): a fall back to the level held before a recent rise
    # is not a drop, so the expected count is at most that level; then the incidents again,
    # against that capped level, so that the fall back after a rise starts none.
    bridge = _bridge(count, short_log, variance, season, trend, th)
    baseline = np.full(obs.shape, np.nan)
    baseline[:, bridged] = np.where(np.isnan(short_log), np.nan, np.fmax(short_log, bridge))
    floor = _rise_floor(obs, baseline, fc.long, fc.variance, fc.season, trend, fc.jump, th)
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
    low, recovered, fell = _judge(count, expected_log, variance, th)

    # A day is judged once the segment has min_history_days observations before it.
    seen_before = np.cumsum(~np.isnan(obs), axis=1) - ~np.isnan(obs)
    grown = seen_before[:, _T - LOOKBACK :] >= th.min_history_days

    # Still in an earlier drop: a day in the lookback that fell below expected by the
    # percent and users thresholds, when the segment was old enough to be judged, with no
    # recovered day after it. The noise is left out of this test: it is measured with those
    # days in it, so it can hide today a fall that stood out on its day.
    in_drop = _last_true((fell & grown)[:, :-1]) > _last_true(recovered[:, :-1])
    # What today learns (a trend, a weekday) can move those days' expected counts a little,
    # so also: the previous observation was judged and not recovered, and today is not
    # clearly deeper below expected than it was (by less than the recovery margin).
    rows = np.arange(count.shape[0])
    prev = np.maximum(_last_true(~np.isnan(count[:, :-1])), 0)
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
    low, _, _ = _judge(count, level_log, variance, th)
    rows = np.flatnonzero(low.any(axis=1))  # most segments had no incident
    count, low, level_log, season = count[rows], low[rows], level_log[rows], season[rows]
    start = low & ~_previous(low, ~np.isnan(count), fill=False)
    columns = np.broadcast_to(np.arange(count.shape[1]), count.shape)
    began = _previous(columns, start, fill=-1)
    before = np.take_along_axis(level_log - season, np.maximum(began, 0), axis=1)
    drift = np.minimum(trend[rows], 0.0)[:, None] * (columns - began)
    bridge[rows] = np.where(began >= 0, before + drift + season, np.nan)
    return bridge


def _rise_floor(
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
    early = slice(0, _T - BRIDGE_DAYS)
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
    lowest = _sliding_min_before(level, RISE_DAYS)
    floor[rows] = lowest + growth * columns + season
    return floor


def _sliding_min_before(values: np.ndarray, size: int) -> np.ndarray:
    """Per row and column, the smallest of ``values`` in the ``size`` columns before it
    (NaN ignored; NaN if none), by running minima within blocks of ``size`` columns (a
    window spans the end of one block and the start of the next)."""
    n_rows, n_cols = values.shape
    blocks = -(-(n_cols + size) // size)
    padded = np.full((n_rows, blocks * size), np.nan)
    padded[:, size : size + n_cols] = values
    shaped = padded.reshape(n_rows, blocks, size)
    from_start = np.fmin.accumulate(shaped, axis=2).reshape(n_rows, -1)
    to_end = np.fmin.accumulate(shaped[:, :, ::-1], axis=2)[:, :, ::-1].reshape(n_rows, -1)
    # the window before column c (padded c + size) is padded columns c … c + size - 1
    start = np.arange(n_cols)
    return np.fmin(to_end[:, start], from_start[:, start + size - 1])


def _judge(
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


# --------------------------------------------------------------------------------------
# The window matrices


@dataclass
class _Window:
    """The history reduced to the window, as segment × day matrices (column ``_T`` = as_of)."""

    as_of: dt.date
    counts: np.ndarray  # float: the listed count, NaN when absent, NULL or too_heavy
    observed: np.ndarray  # float: new counts only (no repeated caches), on the day made
    today_shift: np.ndarray  # int per segment: days between as_of's count and as_of
    present: np.ndarray  # bool: the segment was listed that day
    row_of: np.ndarray  # int: position in ``rows`` of the segment's row that day, -1 if none
    group: np.ndarray  # int per segment: its provider+account
    rows: dict[str, Any]  # the window's rows, column name → array

    @classmethod
    def build(cls, history: pd.DataFrame, as_of: dt.date) -> _Window | None:
        start = as_of - dt.timedelta(days=HISTORY_DAYS_NEEDED)
        positions, day = _day_offsets(history["snapshot_date"], start, as_of)
        if positions.size == 0:
            return None
        cols = [c for c in (*REQUIRED_COLUMNS, "segment_name") if c in history.columns]
        cols += [c for c in ("last_counted", "too_heavy") if c in history.columns]
        # Column by column, as arrays: copying the whole (possibly long) history or building
        # a DataFrame of the window would cost more than the detection itself.
        rows = {c: _take(history[c], positions) for c in cols}

        seg, group_of_row = _segment_numbers(rows)
        n_seg = int(seg.max()) + 1

        values = _float_values(rows["user_count"])
        values[values < 0] = np.nan
        if "too_heavy" in rows:
            values[_true_mask(rows["too_heavy"])] = np.nan

        counts = np.full((n_seg, _WIDTH), np.nan)
        counts[seg, day] = values
        present = np.zeros((n_seg, _WIDTH), dtype=bool)
        present[seg, day] = True
        row_of = np.full((n_seg, _WIDTH), -1, dtype=np.int64)
        row_of[seg, day] = np.arange(positions.size)
        group = np.zeros(n_seg, dtype=np.int64)
        group[seg] = group_of_row

        observed = counts
        today_shift = np.zeros(n_seg, dtype=np.int64)
        if "last_counted" in rows:
            # Only the segments with a last_counted stamp (User.com's) can repeat a cached
            # count or have one made before its snapshot day; the others are left as listed.
            stamped, repeated, counted_on = _count_days(
                rows["last_counted"], seg, day, n_seg, start
            )
            own = np.where(repeated, np.nan, counts[stamped])
            # A new count made before its snapshot day (the snapshots in between are
            # missing) belongs to the day it was made: move it there. as_of's count stays in
            # place and only its weekday follows (see _forecast).
            s_idx, d_idx = np.nonzero((counted_on < np.arange(_WIDTH)) & ~np.isnan(own))
            keep = d_idx < _T
            moved = own[s_idx[keep], d_idx[keep]]
            own[s_idx[keep], d_idx[keep]] = np.nan
            own[s_idx[keep], counted_on[s_idx[keep], d_idx[keep]]] = moved
            if stamped.size:
                observed = counts.copy()
                observed[stamped] = own
                today_shift[stamped] = np.where(np.isnan(own[:, _T]), 0, _T - counted_on[:, _T])
        return cls(as_of, counts, observed, today_shift, present, row_of, group, rows)


def _day_offsets(dates: pd.Series, start: dt.date, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows with ``start <= snapshot_date <= as_of``, and their column."""
    if isinstance(dates.dtype, pd.CategoricalDtype):
        # one conversion per distinct day (category), then the rows' codes
        categories = pd.Series(dates.cat.categories)
        positions, day = _day_offsets(categories, start, as_of)
        column = np.full(len(categories) + 1, -1, dtype=np.int64)  # code -1 (missing): -1
        column[positions] = day
        offset = column[dates.cat.codes.to_numpy()]
        positions = np.flatnonzero(offset >= 0)
        return positions, offset[positions]
    if pd.api.types.is_datetime64_any_dtype(dates.dtype):
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_localize(None)
        days = dates.to_numpy().astype("datetime64[D]")
        offset = (days - np.datetime64(start, "D")).astype(np.int64)
        keep = ~np.isnat(days) & (offset >= 0) & (offset <= HISTORY_DAYS_NEEDED)
        positions = np.flatnonzero(keep)
        return positions, offset[positions]
    values = dates.to_numpy(dtype=object)
    try:
        positions = np.flatnonzero((values >= start).astype(bool))
        positions = positions[(values[positions] <= as_of).astype(bool)]
    except TypeError:  # datetimes, strings or missing values: the general, slower path
        return _day_offsets(pd.to_datetime(dates, errors="coerce"), start, as_of)
    codes, uniques = pd.factorize(values[positions])
    # at most HISTORY_DAYS_NEEDED + 1 distinct days
    unique_days = np.array([(d - start).days for d in uniques], dtype=np.int64)
    return positions, unique_days[codes]


def _take(column: pd.Series, positions: np.ndarray) -> Any:
    """The column's values at ``positions``: a numpy array, or an extension array."""
    if positions.size == len(column):  # positions are increasing: all rows, in order
        return column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array
    if isinstance(column.dtype, np.dtype):
        return column.to_numpy()[positions]
    return column.array[positions]


def _segment_numbers(rows: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its segment (provider, account, segment_id) and its group (provider and
    account), each numbered 0, 1, …"""
    provider, account, sid = (_codes(rows[c]) for c in ("provider", "account", "segment_id"))
    group = _numbered(provider * (account.max() + 1) + account)
    return _numbered(group * (sid.max() + 1) + sid), group


def _codes(values: Any) -> np.ndarray:
    """An integer per row, equal where the values are equal (missing values share one)."""
    codes = values.codes if isinstance(values, pd.Categorical) else pd.factorize(values)[0]
    codes = codes.astype(np.int64)
    codes += 1  # -1 (missing) becomes 0
    return codes


def _numbered(key: np.ndarray) -> np.ndarray:
    """0, 1, … for the distinct values of ``key`` (non-negative integers): in order of value
    when they span a small range (a lookup table, no hashing), else of first appearance."""
    top = int(key.max()) + 1
    if top > 4 * key.size:
        return pd.factorize(key)[0].astype(np.int64)
    seen = np.zeros(top, dtype=bool)
    seen[key] = True
    return (np.cumsum(seen) - 1)[key]


def _float_values(values: Any) -> np.ndarray:
    """Counts as float64 with NaN for NULL (nullable integers, floats or objects), in a new
    array (the caller changes it; ``values`` may be the history's own)."""
    if isinstance(values, pd.api.extensions.ExtensionArray) and pd.api.types.is_numeric_dtype(
        values.dtype
    ):
        return values.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    series = pd.to_numeric(pd.Series(values, copy=False), errors="coerce")
    return series.to_numpy(dtype="float64", na_value=np.nan, copy=True)


def _true_mask(values: Any) -> np.ndarray:
    """True where the value is True (NULL, False and anything else are False)."""
    series = pd.Series(values, copy=False)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.fillna(False).to_numpy(dtype=bool)
    return series.eq(True).fillna(False).to_numpy(dtype=bool)


def _count_days(
    last_counted: Any, seg: np.ndarray, day: np.ndarray, n_seg: int, start: dt.date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From ``last_counted``: which counts repeat a cache, and the day each count was made.

    Returns the segments with at least one stamp (``stamped``, in order), and for them
    segment × day matrices: ``repeated`` (the stamp equals the one of the segment's
    previous snapshot, or the window's first stamp is older than the day before its
    snapshot) and ``counted_on`` (the column of the day of ``last_counted``, kept after the
    previous snapshot and not after the snapshot itself; the snapshot's column when the
    stamp is unknown). Segments without a stamp repeat nothing and count on their day.
    """
    if isinstance(last_counted, np.ndarray) and last_counted.dtype.kind == "M":
        known = ~np.isnat(last_counted)  # naive, i.e. UTC (as read from DuckDB)
        ns = last_counted[known].astype("datetime64[ns]").view(np.int64)
    else:
        utc = pd.to_datetime(pd.Series(last_counted, copy=False), utc=True, errors="coerce")
        known = utc.notna().to_numpy()
        ns = utc.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)[known]
    has_stamp = np.zeros(n_seg, dtype=bool)
    has_stamp[seg[known]] = True
    stamped = np.flatnonzero(has_stamp)
    local = np.cumsum(has_stamp) - 1  # a stamped segment's row in the matrices
    rows, days = local[seg[known]], day[known]
    matrix = np.zeros((stamped.size, _WIDTH), dtype=np.int64)
    has = np.zeros((stamped.size, _WIDTH), dtype=bool)
    matrix[rows, days] = ns
    has[rows, days] = True
    columns = np.arange(_WIDTH)
    last = np.maximum.accumulate(np.where(has, columns, -1), axis=1)
    previous = np.concatenate([np.full((stamped.size, 1), -1), last[:, :-1]], axis=1)
    before = np.take_along_axis(matrix, np.maximum(previous, 0), axis=1)
    day_ns = 86_400_000_000_000
    stamp_day = np.floor_divide(matrix - np.datetime64(start, "ns").astype(np.int64), day_ns)
    # The first stamp in the window has no previous one to compare with: it is a new count
    # only if it is from the snapshot day or the day before.
    old_first = (previous < 0) & (stamp_day < columns - 1)
    repeated = has & (((previous >= 0) & (before == matrix)) | old_first)
    earliest = np.where(previous >= 0, previous + 1, np.maximum(columns - 1, 0))
    counted_on = np.where(has, np.clip(stamp_day, earliest, columns), columns)
    return stamped, repeated, counted_on


# --------------------------------------------------------------------------------------
# The forecast


@dataclass(frozen=True)
class _Calendar:
    """The days of the month of the window's columns (column ``_T`` is as_of), and per day
    of the month (1…31, row 0…30) the past columns that fall on it (up to three in
    ``HISTORY_DAYS_NEEDED`` days; ``_T`` pads, as_of's column is never used)."""

    month_day: np.ndarray
    month_columns: np.ndarray

    @classmethod
    def of(cls, as_of: dt.date) -> _Calendar:
        first = pd.Timestamp(as_of) - pd.Timedelta(days=_T)
        month_day = pd.date_range(first, periods=_WIDTH, freq="D").day.to_numpy()
        past = month_day[:_T]
        # at most 31 short rows, whatever the data
        rows = [np.flatnonzero(past == day) for day in range(1, 32)]
        width = max(len(r) for r in rows)
        month_columns = np.full((31, width), _T, dtype=np.int64)
        for day, r in enumerate(rows):
            month_columns[day, : len(r)] = r
        return cls(month_day, month_columns)


@dataclass
class _Forecast:
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


def _forecast(
    observed: np.ndarray,
    counts: np.ndarray,
    today_shift: np.ndarray,
    calendar: _Calendar,
    th: DropThresholds,
) -> _Forecast:
    """The expected counts and their noise (see :class:`_Forecast`).

    ``observed`` holds the observations, ``counts`` the listed counts (cached repeats too),
    ``today_shift`` how many days before as_of its count was made (its weekday and day of
    the month are used).
    """
    n_seg = observed.shape[0]
    y = np.log1p(observed)
    past = y[:, :_T]

    # 1. Weekday factors: each past observation against the median of the days centred on
    #    it (7 days; 29 for sparse series such as rarely recounted User.com segments; cut at
    #    the window's ends so nothing from as_of), median per weekday over the window. For
    #    sparse series a second pass takes the factors out of those reference medians, as
    #    one weekday may dominate a sparse window. A factor seen fewer than three times may
    #    only lower the expected count: one spike must not raise it.
    factor = np.zeros((n_seg, WEEK))
    seen = np.zeros((n_seg, WEEK), dtype=np.int64)
    residual = np.full((n_seg, _T), np.nan)  # against the centred medians
    sparse = np.count_nonzero(~np.isnan(past), axis=1) < SPARSE_FRACTION * _T
    for rows, half in ((~sparse, WEEK // 2), (sparse, 2 * WEEK)):
        if rows.any():
            part = past[rows]
            f, n, r = _weekday_factors(part, part, half)
            if half > WEEK // 2:  # 7-day windows hold each weekday once: one pass is enough
                f, n, r = _weekday_factors(part, part - f[:, np.arange(_T) % WEEK], half)
            factor[rows], seen[rows], residual[rows] = f, n, r
    factor = np.where(seen >= 3, factor, np.fmin(factor, 0.0))
    factor = np.nan_to_num(factor, nan=0.0)
    weekday = np.broadcast_to(np.arange(_WIDTH) % WEEK, (n_seg, _WIDTH)).copy()
    weekday[:, _T] = -today_shift % WEEK
    season = np.take_along_axis(factor, weekday, axis=1)

    # 1b. Day-of-month factors (see _month_factors), on top of the weekday ones. One that
    #     raises the count (a month-start swell) is taken out of the series the level and
    #     the noise are measured on, but the count a day is judged against is never raised
    #     by it (``lift``): a swell that does not come returns the segment to its level
    #     before the swell, which is not a drop.
    monthly = _month_factors(past - season[:, :_T], residual - season[:, :_T], calendar)
    month_day = np.broadcast_to(calendar.month_day - 1, (n_seg, _WIDTH)).copy()
    month_day[:, _T] = calendar.month_day[_T - today_shift] - 1
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
    span = slice(_T - TREND_DAYS - WEEK, _T)
    listed = np.log1p(counts[:, span]) - season[:, span] - lift[:, span]
    weekly = listed[:, WEEK:] - listed[:, :-WEEK]
    trend = _nanmedian(weekly, min_count=WEEK) / WEEK
    each_week = _nanmedian(weekly[:, -2 * WEEK :].reshape(n_seg, 2, WEEK), min_count=3) / WEEK
    confirmed = np.nan_to_num(each_week.min(axis=1), nan=MAX_UNCONFIRMED_GROWTH)
    trend = np.where(trend > 0, np.fmin(trend, np.maximum(confirmed, 0.0)), trend)
    trend = np.clip(np.nan_to_num(trend, nan=0.0), -MAX_DECLINE, MAX_GROWTH)

    # 3. Short level for the BRIDGE_DAYS days before as_of and as_of: the median of the
    #    LEVEL_DAYS deseasoned days before, each carried forward to the day by the trend.
    #    Before the lookback it only serves to see incidents begin and rises, so there it
    #    is computed only for the segments that fell a drop's percent below the highest of
    #    the LEVEL_DAYS days before, or jumped half a drop's in a day (most did neither).
    first, near = _T - BRIDGE_DAYS, _T - LOOKBACK
    expected_log = np.full_like(y, np.nan)
    expected_log[:, near:] = _short_level(flat, trend, season, near, _WIDTH)
    steps, gaps = _steps(flat)
    fall = np.log1p(-th.min_drop_pct / 100.0)
    highest = -_sliding_min_before(-flat[:, first - LEVEL_DAYS : near], LEVEL_DAYS)
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
    long_level, long_at = _trailing(flat, _T, _T, LONG_LEVEL_DAYS, min_count=7)
    every_day = np.arange(_WIDTH)
    long_log = long_level + np.minimum(trend, 0.0)[:, None] * (every_day - long_at) + season

    # 5. Noise: robust spread (MAD) of the short forecast's errors before as_of; earlier
    #    incidents are outliers that the median ignores. A weekday never observed in the
    #    window adds the largest weekday effect seen (at least UNSEEN_WEEKDAY_NOISE) as
    #    uncertainty: its own effect is unknown.
    first = _T - NOISE_DAYS
    errors = y[:, first:_T] - expected_log[:, first:_T] - lift[:, first:_T]
    sigma = _MAD_TO_SIGMA * _mad(errors)
    # The changes between consecutive observations give a second, steadier estimate (62
    # steps instead of 28 errors, and an incident counts only where it starts and ends).
    # It bounds the first from below, and from above at twice its value, for when
    # incidents fill most of the four weeks and the median lands among them.
    step = _MAD_TO_SIGMA * _mad(steps[:, :_T]) / np.sqrt(2.0)
    sigma = np.fmin(np.fmax(sigma, step), 2.0 * step)
    sigma = np.fmax(np.nan_to_num(sigma, nan=th.min_noise), th.min_noise)
    unknown = np.max(np.abs(factor), axis=1, keepdims=True)
    unknown = np.where(seen == 0, np.fmax(unknown, UNSEEN_WEEKDAY_NOISE), 0.0)
    unknown = np.take_along_axis(unknown, weekday, axis=1)
    variance = sigma[:, None] ** 2 + unknown**2
    jump = steps - trend[:, None] * gaps
    return _Forecast(expected_log, long_log, season, trend, variance, jump)


def _short_level(
    flat: np.ndarray, trend: np.ndarray, season: np.ndarray, first: int, last: int
) -> np.ndarray:
    """The short forecast (log scale, season in) of columns ``first … last - 1``: the median
    of the LEVEL_DAYS deseasoned days before each, carried forward to it by the trend."""
    days = np.arange(first - LEVEL_DAYS, last - 1)
    carried = flat[:, first - LEVEL_DAYS : last - 1] - trend[:, None] * days
    level = _sliding_nanmedian(carried, LEVEL_DAYS, min_count=3)
    return level + trend[:, None] * np.arange(first, last) + season[:, first:last]


def _month_factors(flat: np.ndarray, residual: np.ndarray, calendar: _Calendar) -> np.ndarray:
    """Day-of-month factors per segment (segment × 31, log scale; 0 where none is learnt).

    Each past observation (``flat``: weekday factors out) is compared with a reference
    level of the ``2 * MONTH_HALF + 1`` days centred on it; a day of the month seen in at
    least two months gets a factor when it was off the same way in every month (see
    :func:`_month_effects`: a one-off incident or spike never makes a pattern, nor do two
    that happen to fall on the same day of the month while a third month disagrees), kept
    only from ``MONTH_MIN_EFFECT`` on. Only the segments whose ``residual`` (against the
    weekday pass's centred medians, weekday factors out) is that far off on a day of the
    month twice the same way are computed, and only those with two months of history (a
    count in the window's first week): the others (most segments) have no monthly pattern
    to learn, and a young segment's first, often partial, counts must not meet a later
    fall on the same day of the month.
    """
    n_seg = flat.shape[0]
    factor = np.zeros((n_seg, 31))
    # A candidate has two months of history (a count in the window's first week, eight
    # weeks ago) and a day of the month off the same way twice, by MONTH_MIN_EFFECT and
    # then by three standard errors of its noise more.
    old_enough = ~np.isnan(flat[:, :WEEK]).all(axis=1)
    candidates = np.flatnonzero(_off_twice(residual, calendar, 0.0) & old_enough)
    steps, _ = _steps(flat[candidates])
    noise = np.nan_to_num(_MAD_TO_SIGMA * _mad(steps) / np.sqrt(2.0), nan=0.0)
    keep = _off_twice(residual[candidates], calendar, 3.0 * noise / np.sqrt(3.0))
    candidates, noise = candidates[keep], noise[keep]
    if candidates.size == 0:
        return factor
    part = flat[candidates]
    # The reference is the lower quartile of the days around (raised by the quartile's
    # distance from the median under the segment's own noise), not their median: a swell
    # that lasts half the month must not lift the days that have none.
    pad = np.full((candidates.size, MONTH_HALF), np.nan)
    padded = np.concatenate([pad, part, pad], axis=1)
    size = 2 * MONTH_HALF + 1
    window = sliding_window_view(padded, size, axis=1)
    quartile = _nanquantile(window, 0.25, min_count=WEEK)
    centred = quartile + _QUARTILE_TO_SIGMA * noise[:, None]
    learnt = _month_effects(part - centred, calendar, noise)
    factor[candidates] = np.where(np.abs(learnt) >= MONTH_MIN_EFFECT, learnt, 0.0)
    return factor


def _off_twice(residual: np.ndarray, calendar: _Calendar, margin: Any) -> np.ndarray:
    """Per segment: whether ``residual`` (segment × past day) is off by MONTH_MIN_EFFECT
    plus ``margin`` (per segment) the same way on two occurrences of a day of the month."""
    by_day = np.concatenate([residual, np.zeros((residual.shape[0], 1))], axis=1)
    by_day = by_day[:, calendar.month_columns]
    limit = MONTH_MIN_EFFECT + np.reshape(margin, (-1, 1, 1))
    with np.errstate(invalid="ignore"):
        up = np.count_nonzero(by_day >= limit, axis=-1) >= 2
        down = np.count_nonzero(by_day <= -limit, axis=-1) >= 2
    return np.any(up | down, axis=1)


def _month_effects(values: np.ndarray, calendar: _Calendar, noise: np.ndarray) -> np.ndarray:
    """Per segment and day of the month: how far ``values`` (segment × past day, log scale)
    were above 0 on that day of the month in every month seen (the smallest of those), or
    below it in every month (the closest to 0), once seen in at least two months; 0 when
    the months disagree. Shrunk towards 0 by three standard errors of ``noise`` (per
    segment): two or three values that happen to agree are no proof."""
    padded = np.concatenate([values, np.full((values.shape[0], 1), np.nan)], axis=1)
    by_day = padded[:, calendar.month_columns]  # segment × 31 × occurrences
    seen = np.count_nonzero(~np.isnan(by_day), axis=-1)
    lowest = np.fmin.reduce(by_day, axis=-1)
    highest = np.fmax.reduce(by_day, axis=-1)
    effect = np.where(lowest > 0, lowest, np.where(highest < 0, highest, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = 3.0 * noise[:, None] / np.sqrt(seen)
    shrunk = np.sign(effect) * np.maximum(np.abs(effect) - margin, 0.0)
    return np.where(seen >= 2, np.nan_to_num(shrunk, nan=0.0), 0.0)


def _mad(values: np.ndarray) -> np.ndarray:
    """Median absolute deviation over the last axis (NaN ignored; NaN below 5 values)."""
    centre = _nanmedian(values, min_count=5)
    return _nanmedian(np.abs(values - centre[..., None]), min_count=5)


def _steps(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment and day: the change since the previous observation (gaps allowed) and
    how many days back that observation is; NaN and 0 where there is none."""
    columns = np.arange(flat.shape[1])
    last = np.maximum.accumulate(np.where(np.isnan(flat), -1, columns), axis=1)
    previous = np.concatenate([np.full((flat.shape[0], 1), -1), last[:, :-1]], axis=1)
    before = np.take_along_axis(flat, np.maximum(previous, 0), axis=1)
    steps = np.where(previous >= 0, flat - before, np.nan)
    return steps, np.where(previous >= 0, columns - previous, 0)


def _weekday_factors(
    past: np.ndarray, flat: np.ndarray, half: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median per weekday of ``past`` minus the median of ``flat`` over the ``2 * half + 1``
    days centred on each day, how many days each weekday's median saw, and those
    differences (segment × day)."""
    n_seg = past.shape[0]
    pad = np.full((n_seg, half), np.nan)
    padded = np.concatenate([pad, flat, pad], axis=1)
    centred = _sliding_nanmedian(padded, 2 * half + 1, min_count=3)
    residual = past - centred
    by_weekday = residual.reshape(n_seg, _T // WEEK, WEEK).transpose(0, 2, 1)
    seen = np.count_nonzero(~np.isnan(by_weekday), axis=-1)
    factor = _nanmedian(by_weekday, min_count=1, counts=seen)
    # Shrink a raising factor towards 0 by twice its standard error, so that weeks that
    # disagree (an incident or a level shift next to the day) cannot make up a weekday that
    # is expected higher than the rest. A lowering factor is kept (at worst it hides a
    # drop), except in a segment younger than four weeks: there a fall (or a first, partial
    # count) seen on one of the few days of its weekday would teach it that the weekday is
    # low, and the fall would look like its weekday the day after.
    deviation = np.abs(by_weekday - factor[..., None])  # NaN where by_weekday is (or none is)
    spread = _MAD_TO_SIGMA * _nanmedian(deviation, min_count=1, counts=seen)
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = 2.0 * spread / np.sqrt(seen)
    young = np.isnan(past[:, : _T - YOUNG_DAYS]).all(axis=1)
    shrink = (factor > 0) | young[:, None]
    factor = np.where(shrink, np.sign(factor) * np.maximum(np.abs(factor) - margin, 0.0), factor)
    return factor, seen, residual


def _trailing(
    values: np.ndarray, first: int, last: int, size: int, min_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each column ``d`` in ``first … last``: the median of the ``size`` columns before
    ``d`` (NaN ignored, NaN below ``min_count`` values) and the mean column of the values
    used (where that median sits in time)."""
    lo = first - size
    span = values[:, lo:last]
    median = _sliding_nanmedian(span, size, min_count=min_count)
    valid = ~np.isnan(span)
    zero = np.zeros((span.shape[0], 1))
    count = np.concatenate([zero, np.cumsum(valid, axis=1)], axis=1)
    where = np.concatenate([zero, np.cumsum(valid * np.arange(lo, last), axis=1)], axis=1)
    n = count[:, size:] - count[:, :-size]
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (where[:, size:] - where[:, :-size]) / n
    return median, centroid


def _nanmedian(
    values: np.ndarray, min_count: int = 1, counts: np.ndarray | None = None
) -> np.ndarray:
    """Median over the last axis ignoring NaN; NaN where fewer than ``min_count`` values.

    A sort-based ``np.nanmedian`` that stays vectorised for many short rows (such as the
    sliding windows of every segment): the rows are sorted once, as one 2-D array, and
    the middle value(s) of each row are picked by position. ``counts``, when the caller
    has them, are the numbers of non-NaN values (saving a pass over the values).
    """
    size = values.shape[-1]
    ordered = np.sort(values, axis=-1).reshape(-1, size)  # NaN sorts last
    if counts is None:
        n = size - np.count_nonzero(np.isnan(ordered), axis=-1)
    else:
        n = counts.reshape(-1)
    rows = np.arange(ordered.shape[0])
    low = ordered[rows, np.maximum((n - 1) // 2, 0)]
    high = ordered[rows, np.minimum(n // 2, size - 1)]
    median = (low + high) / 2.0
    return np.where(n >= max(min_count, 1), median, np.nan).reshape(values.shape[:-1])


def _nanquantile(values: np.ndarray, q: float, min_count: int) -> np.ndarray:
    """The ``q`` quantile over the last axis ignoring NaN (linear between the two nearest
    values, as :func:`numpy.nanquantile`); NaN where fewer than ``min_count`` values. Sorted
    as one 2-D array, like :func:`_nanmedian`."""
    size = values.shape[-1]
    ordered = np.sort(values, axis=-1).reshape(-1, size)  # NaN sorts last
    n = size - np.count_nonzero(np.isnan(ordered), axis=-1)
    rows = np.arange(ordered.shape[0])
    at = np.maximum(n - 1, 0) * q
    low = np.floor(at).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    part = at - low
    value = ordered[rows, low] * (1.0 - part) + ordered[rows, high] * part
    return np.where(n >= max(min_count, 1), value, np.nan).reshape(values.shape[:-1])


def _sliding_nanmedian(values: np.ndarray, size: int, min_count: int) -> np.ndarray:
    """:func:`_nanmedian` of each run of ``size`` consecutive columns, row by row (the values
    of each run counted from a running sum, not run by run)."""
    valid = np.cumsum(~np.isnan(values), axis=1)
    counts = np.concatenate([valid[:, size - 1 : size], valid[:, size:] - valid[:, :-size]], axis=1)
    return _nanmedian(sliding_window_view(values, size, axis=1), min_count, counts=counts)


def _previous(values: np.ndarray, where: np.ndarray, fill: Any) -> np.ndarray:
    """Per row and column, ``values`` at the last earlier column where ``where`` holds."""
    columns = np.arange(values.shape[1])
    last = np.maximum.accumulate(np.where(where, columns, -1), axis=1)
    last = np.concatenate([np.full((values.shape[0], 1), -1), last[:, :-1]], axis=1)
    taken = np.take_along_axis(values, np.maximum(last, 0), axis=1)
    return np.where(last >= 0, taken, fill)


def _last_true(mask: np.ndarray) -> np.ndarray:
    """Per row, the last column where ``mask`` is True, or -1."""
    from_end = np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), mask.shape[1] - 1 - from_end, -1)


# --------------------------------------------------------------------------------------
# Output


def _identity(win: _Window, seg: np.ndarray, day: np.ndarray, with_name: bool) -> dict:
    pos = win.row_of[seg, day]
    names = ["provider", "account", "segment_id"] + (["segment_name"] if with_name else [])
    return {name: _objects(win.rows[name][pos]) for name in names}


def _objects(values: Any) -> np.ndarray:
    """Values as Python objects; a categorical's missing values as None (as DuckDB returns
    a NULL text)."""
    if isinstance(values, pd.Categorical):
        return values.to_numpy(dtype=object, na_value=None)
    return np.asarray(values, dtype=object)


def _drop_frame(
    win: _Window,
    seg: np.ndarray,
    expected: np.ndarray,
    pct: np.ndarray,
    th: DropThresholds,
    with_name: bool,
) -> pd.DataFrame:
    if seg.size == 0:
        return _empty(with_name)
    out = _identity(win, seg, np.full(seg.size, _T), with_name)
    count = win.counts[seg, _T]
    exp = expected[seg]
    drop = pct[seg]
    # The count the segment had on its last listed day before as_of (within a week).
    before_col = _last_true(~np.isnan(win.counts[seg, _T - WEEK : _T]))
    before = win.counts[seg, _T - WEEK + np.maximum(before_col, 0)]
    before = np.where(before_col >= 0, before, exp)
    out["snapshot_date"] = [win.as_of] * seg.size
    out["user_count"] = pd.array(np.rint(count).astype(np.int64), dtype="Int64")
    out["expected"] = np.round(exp, 1)
    out["drop_pct"] = np.round(drop, 1)
    out["severity"] = np.where(drop >= th.error_drop_pct, "ERROR", "WARN").astype(object)
    out["reason"] = [
        f"{b:,.0f} {_ARROW} {c:,.0f} users ({_MINUS}{d:.0f} %) vs {e:,.0f} expected"
        for b, c, d, e in zip(before, count, drop, exp, strict=True)
    ]
    return pd.DataFrame(out)


def _vanished_frame(win: _Window, with_name: bool) -> pd.DataFrame:
    """Segments listed on their account's previous snapshot day but not on as_of."""
    # Per account (group, numbered 0, 1, …) and day: whether any of its segments was listed.
    order = np.argsort(win.group, kind="stable")
    firsts = np.flatnonzero(np.diff(win.group[order], prepend=-1))  # each group's first
    listed = np.logical_or.reduceat(win.present[order], firsts, axis=0)
    previous = _last_true(listed[:, :_T])[win.group]
    rows = np.arange(win.present.shape[0])
    was_listed = (previous >= 0) & win.present[rows, np.maximum(previous, 0)]
    seg = np.flatnonzero(listed[win.group, _T] & was_listed & ~win.present[:, _T])
    if seg.size == 0:
        return _empty(with_name)
    day = previous[seg]
    out = _identity(win, seg, day, with_name)
    last = win.counts[seg, day]
    out["snapshot_date"] = [win.as_of] * seg.size
    out["user_count"] = pd.array([pd.NA] * seg.size, dtype="Int64")
    out["expected"] = last
    out["drop_pct"] = np.full(seg.size, np.nan)
    out["severity"] = np.full(seg.size, "WARN", dtype=object)
    out["reason"] = [
        f"{VANISHED}: segment no longer listed (was "
        + ("uncountable" if np.isnan(v) else f"{v:,.0f} users")
        + ")"
        for v in last
    ]
    return pd.DataFrame(out)


def _columns(with_name: bool) -> list[str]:
    cols = list(OUTPUT_COLUMNS)
    if with_name:
        cols.insert(3, "segment_name")
    return cols


def _empty(with_name: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "provider": pd.Series(dtype=object),
            "account": pd.Series(dtype=object),
            "segment_id": pd.Series(dtype=object),
            "segment_name": pd.Series(dtype=object),
            "snapshot_date": pd.Series(dtype=object),
            "user_count": pd.Series(dtype="Int64"),
            "expected": pd.Series(dtype="float64"),
            "drop_pct": pd.Series(dtype="float64"),
            "severity": pd.Series(dtype=object),
            "reason": pd.Series(dtype=object),
        }
    )
    return frame[_columns(with_name)]


def _finish(parts: list[pd.DataFrame], with_name: bool) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty(with_name)
    frame = pd.concat(parts, ignore_index=True)[_columns(with_name)]
    order = np.lexsort(
        (
            frame["segment_id"].astype(str).to_numpy(),
            frame["account"].astype(str).to_numpy(),
            frame["provider"].astype(str).to_numpy(),
            -frame["drop_pct"].fillna(-1.0).to_numpy(),
            (frame["severity"] != "ERROR").to_numpy(),
        )
    )
    frame = frame.iloc[order].reset_index(drop=True)
    return frame.astype({"user_count": "Int64", "expected": "float64", "drop_pct": "float64"})


def _as_date(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()
