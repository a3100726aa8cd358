"""Find segments that suddenly lost users: pure, vectorised pandas/numpy, no Dagster.

``find_drops(history, as_of)`` judges one day (``as_of``) against the days before it. The
work is done on segment × day matrices of the ``HISTORY_DAYS_NEEDED`` days before ``as_of``,
with group-wise numpy operations over all segments at once (in blocks of a few thousand
segments, two blocks side by side: segments are judged independently): no Python loop per
segment or per day, and older rows are never read. Text columns may be categoricals (as
:func:`~segment_assets.store.duckdb_files.read_history` returns them): their codes stand
for the text.

The stages, one module each, in the order a day goes through them:

* :mod:`~segment_assets.detection.window` — the history as segment × day matrices;
* :mod:`~segment_assets.detection.season` — weekday and day-of-month factors (rules 1, 2);
* :mod:`~segment_assets.detection.forecast` — trend, levels and noise (rules 3, 4, 6);
* :mod:`~segment_assets.detection.rises` — the level before a recent rise (rule 5);
* :mod:`~segment_assets.detection.judge` — incidents, low and recovered days, new drops
  (rules 4, 7, 8);
* :mod:`~segment_assets.detection.output` — the drops and vanished segments as a frame;

with the numbers in :mod:`~segment_assets.detection.thresholds` and the NaN-aware medians
and running values they share in :mod:`~segment_assets.detection.arrays`.

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
from typing import Any

import numpy as np
import pandas as pd

from segment_assets.days import as_date
from segment_assets.detection.judge import in_blocks
from segment_assets.detection.output import (
    OUTPUT_COLUMNS,
    drop_frame,
    empty_frame,
    finish,
    is_vanished,
    vanished_frame,
)
from segment_assets.detection.season import Calendar
from segment_assets.detection.thresholds import HISTORY_DAYS_NEEDED, DropThresholds, history_start
from segment_assets.detection.window import REQUIRED_COLUMNS, Window

__all__ = [
    "HISTORY_DAYS_NEEDED",
    "OUTPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "DropThresholds",
    "find_drops",
    "history_start",
    "is_vanished",
]


def find_drops(
    history: pd.DataFrame,
    as_of: dt.date,
    thresholds: DropThresholds | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Segments that newly dropped on ``as_of`` (the rules are in the package docstring).

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
    as_of = as_date(as_of)
    with_name = "segment_name" in history.columns
    win = Window.checked(history, as_of)
    if win is None:
        return empty_frame(with_name)

    calendar = Calendar.of(as_of)
    new, expected, pct = in_blocks(win.observed, win.counts, win.today_shift, calendar, th)
    seg = np.flatnonzero(new)
    drops = drop_frame(win, seg, expected, pct, th, with_name)
    vanished = vanished_frame(win, with_name)
    return finish([drops, vanished], with_name)
