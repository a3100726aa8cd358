"""The result of :func:`~segment_assets.detection.find_drops` as a frame: the new drops,
the vanished segments, their columns and order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segment_assets.detection.arrays import (
    last_true,
)
from segment_assets.detection.thresholds import (
    TODAY,
    WEEK,
    DropThresholds,
)
from segment_assets.detection.window import Window

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

_MINUS = "\u2212"
_ARROW = "\u2192"


def is_vanished(drops: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows of a :func:`find_drops` result that are vanished segments."""
    return drops["reason"].astype("string").str.startswith(VANISHED).fillna(False).astype(bool)


def _identity(win: Window, seg: np.ndarray, day: np.ndarray, with_name: bool) -> dict:
    pos = win.row_of[seg, day]
    names = ["provider", "account", "segment_id"] + (["segment_name"] if with_name else [])
    return {name: as_objects(win.rows[name][pos]) for name in names}


def as_objects(values: Any) -> np.ndarray:
    """Values as Python objects; a categorical's missing values as None (as DuckDB returns
    a NULL text)."""
    if isinstance(values, pd.Categorical):
        return values.to_numpy(dtype=object, na_value=None)
    return np.asarray(values, dtype=object)


def drop_frame(
    win: Window,
    seg: np.ndarray,
    expected: np.ndarray,
    pct: np.ndarray,
    th: DropThresholds,
    with_name: bool,
) -> pd.DataFrame:
    if seg.size == 0:
        return empty_frame(with_name)
    out = _identity(win, seg, np.full(seg.size, TODAY), with_name)
    count = win.counts[seg, TODAY]
    exp = expected[seg]
    drop = pct[seg]
    # The count the segment had on its last listed day before as_of (within a week).
    before_col = last_true(~np.isnan(win.counts[seg, TODAY - WEEK : TODAY]))
    before = win.counts[seg, TODAY - WEEK + np.maximum(before_col, 0)]
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


def vanished_frame(win: Window, with_name: bool) -> pd.DataFrame:
    """Segments listed on their account's previous snapshot day but not on as_of."""
    # Per account (group, numbered 0, 1, …) and day: whether any of its segments was listed.
    order = np.argsort(win.group, kind="stable")
    firsts = np.flatnonzero(np.diff(win.group[order], prepend=-1))  # each group's first
    listed = np.logical_or.reduceat(win.present[order], firsts, axis=0)
    previous = last_true(listed[:, :TODAY])[win.group]
    rows = np.arange(win.present.shape[0])
    was_listed = (previous >= 0) & win.present[rows, np.maximum(previous, 0)]
    seg = np.flatnonzero(listed[win.group, TODAY] & was_listed & ~win.present[:, TODAY])
    if seg.size == 0:
        return empty_frame(with_name)
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


def empty_frame(with_name: bool) -> pd.DataFrame:
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


def finish(parts: list[pd.DataFrame], with_name: bool) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_frame(with_name)
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
