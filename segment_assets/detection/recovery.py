"""Whether segments that dropped are back: the recovery half of rule 7 (see the package
docstring), for the segments asked about.

A segment is **back** on a judged day when its count misses the count the detector expects
by less than ``recovery_fraction`` of ``min_drop_pct`` percent, or by fewer than
``recovery_fraction`` of ``min_drop_users`` users (15 % or 25 users at the defaults); a count
at or above expected is back. After a drop the detector keeps expecting the level the
segment held before it (for seven weeks, ``BRIDGE_DAYS``), so a segment that stays low is
not back, and one that climbs back part of the way is back once it is within that band.
*Judged* is as for drops: listed on the day with a count that is an observation (not NULL,
not ``too_heavy``, not a repeated User.com cache) and ``min_history_days`` observations
before it. The detector uses the same test to decide that a later fall is a new drop, so a
segment told back and falling again alerts again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from segment_assets.days import as_date
from segment_assets.detection.judge import in_blocks, judge_days
from segment_assets.detection.output import as_objects
from segment_assets.detection.season import Calendar
from segment_assets.detection.thresholds import TODAY, DropThresholds
from segment_assets.detection.window import Window

KEY = ["provider", "account", "segment_id"]
RECOVERY_COLUMNS: tuple[str, ...] = (
    *KEY,
    "segment_name",
    "user_count",
    "expected",
    "drop_pct",
    "back",
)


def empty_recovery() -> pd.DataFrame:
    """What :func:`judge_recovery` returns when nothing is judged."""
    return pd.DataFrame(
        {
            **{c: pd.Series(dtype=object) for c in (*KEY, "segment_name")},
            "user_count": pd.Series(dtype="Int64"),
            "expected": pd.Series(dtype="float64"),
            "drop_pct": pd.Series(dtype="float64"),
            "back": pd.Series(dtype=bool),
        }
    )


def judge_recovery(
    history: pd.DataFrame,
    as_of: dt.date,
    segments: pd.DataFrame,
    thresholds: DropThresholds | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """The segments of ``segments`` (``provider, account, segment_id``) judged on
    ``as_of``, each with its count, the count expected, how many percent below it
    (``drop_pct``, negative above it) and whether it is ``back``.

    ``history`` is what :func:`~segment_assets.detection.find_drops` reads; only the rows
    of ``segments`` are looked at, and each segment is judged exactly as ``find_drops``
    judges it. Segments not judged on ``as_of`` are left out.
    """
    th = dataclasses.replace(thresholds or DropThresholds(), **overrides)
    as_of = as_date(as_of)
    if segments.empty or history.empty:
        return empty_recovery()
    wanted = segments[KEY].astype(str).drop_duplicates()
    near = history[history["segment_id"].isin(wanted["segment_id"]).to_numpy()]
    keys = near[KEY].astype(str)
    mine = pd.MultiIndex.from_frame(keys).isin(pd.MultiIndex.from_frame(wanted))
    win = Window.build(near[mine], as_of)
    if win is None:
        return empty_recovery()
    _, expected, pct = in_blocks(win.observed, win.counts, win.today_shift, Calendar.of(as_of), th)
    count = win.observed[:, TODAY]
    observed = ~np.isnan(win.observed)
    judged = observed[:, TODAY] & (observed[:, :TODAY].sum(axis=1) >= th.min_history_days)
    seg = np.flatnonzero(judged)
    if seg.size == 0:
        return empty_recovery()
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_log = np.log1p(expected[seg])[:, None]
    # rule 7's recovered test, as the detector applies it (the noise plays no part in it)
    _, recovered, _ = judge_days(count[seg, None], expected_log, np.zeros_like(expected_log), th)
    pos = win.row_of[seg, TODAY]
    out = {name: as_objects(win.rows[name][pos]) for name in KEY}
    if "segment_name" in win.rows:
        out["segment_name"] = as_objects(win.rows["segment_name"][pos])
    else:
        out["segment_name"] = np.full(seg.size, None, dtype=object)
    frame = pd.DataFrame(out)
    frame["user_count"] = pd.array(np.rint(count[seg]).astype(np.int64), dtype="Int64")
    frame["expected"] = np.round(expected[seg], 1)
    frame["drop_pct"] = np.round(pct[seg], 1)
    frame["back"] = recovered[:, 0] | (count[seg] >= expected[seg])
    return frame[list(RECOVERY_COLUMNS)]
