"""The history reduced to what is judged: segment × day matrices of the window.

Column 0 is :func:`~segment_assets.detection.thresholds.history_start`, column ``TODAY`` is
``as_of``; a segment is identified by (provider, account, segment_id). For User.com, whose
count is a cache, a count that repeats the previous snapshot's is no observation, and a new
count belongs to the day of its ``last_counted``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segment_assets.days import offsets_of, offsets_of_stamps
from segment_assets.detection.thresholds import TODAY, WIDTH, history_start

REQUIRED_COLUMNS: tuple[str, ...] = (
    "provider",
    "account",
    "segment_id",
    "snapshot_date",
    "user_count",
)


@dataclass
class Window:
    """The history reduced to the window, as segment × day matrices (column ``TODAY`` = as_of)."""

    as_of: dt.date
    counts: np.ndarray  # float: the listed count, NaN when absent, NULL or too_heavy
    observed: np.ndarray  # float: new counts only (no repeated caches), on the day made
    today_shift: np.ndarray  # int per segment: days between as_of's count and as_of
    present: np.ndarray  # bool: the segment was listed that day
    row_of: np.ndarray  # int: position in ``rows`` of the segment's row that day, -1 if none
    group: np.ndarray  # int per segment: its provider+account
    rows: dict[str, Any]  # the window's rows, column name → array

    @classmethod
    def checked(cls, history: pd.DataFrame, as_of: dt.date) -> Window | None:
        """:meth:`build`, once ``history`` is known to have the :data:`REQUIRED_COLUMNS`
        (a ``ValueError`` naming those it lacks)."""
        missing = [c for c in REQUIRED_COLUMNS if c not in history.columns]
        if missing:
            raise ValueError(f"history lacks column(s): {', '.join(missing)}")
        return cls.build(history, as_of)

    @classmethod
    def build(cls, history: pd.DataFrame, as_of: dt.date) -> Window | None:
        start = history_start(as_of)
        positions, day = offsets_of(history["snapshot_date"], start, as_of)
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

        counts = np.full((n_seg, WIDTH), np.nan)
        counts[seg, day] = values
        present = np.zeros((n_seg, WIDTH), dtype=bool)
        present[seg, day] = True
        row_of = np.full((n_seg, WIDTH), -1, dtype=np.int64)
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
            # place and only its weekday follows (see the forecast).
            s_idx, d_idx = np.nonzero((counted_on < np.arange(WIDTH)) & ~np.isnan(own))
            keep = d_idx < TODAY
            moved = own[s_idx[keep], d_idx[keep]]
            own[s_idx[keep], d_idx[keep]] = np.nan
            own[s_idx[keep], counted_on[s_idx[keep], d_idx[keep]]] = moved
            if stamped.size:
                observed = counts.copy()
                observed[stamped] = own
                today_shift[stamped] = np.where(
                    np.isnan(own[:, TODAY]), 0, TODAY - counted_on[:, TODAY]
                )
        return cls(as_of, counts, observed, today_shift, present, row_of, group, rows)


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
    matrix = np.zeros((stamped.size, WIDTH), dtype=np.int64)
    has = np.zeros((stamped.size, WIDTH), dtype=bool)
    matrix[rows, days] = ns
    has[rows, days] = True
    columns = np.arange(WIDTH)
    last = np.maximum.accumulate(np.where(has, columns, -1), axis=1)
    previous = np.concatenate([np.full((stamped.size, 1), -1), last[:, :-1]], axis=1)
    before = np.take_along_axis(matrix, np.maximum(previous, 0), axis=1)
    stamp_day = offsets_of_stamps(matrix, start)
    # The first stamp in the window has no previous one to compare with: it is a new count
    # only if it is from the snapshot day or the day before.
    old_first = (previous < 0) & (stamp_day < columns - 1)
    repeated = has & (((previous >= 0) & (before == matrix)) | old_first)
    earliest = np.where(previous >= 0, previous + 1, np.maximum(columns - 1, 0))
    counted_on = np.where(has, np.clip(stamp_day, earliest, columns), columns)
    return stamped, repeated, counted_on
