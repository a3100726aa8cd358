"""Days as the store hands them to the detector: offsets from the first day of a read.

A history read counts ``snapshot_date`` in days since the read's first day
(:func:`sql_days_since`, in the database) and returns it as a categorical of
``datetime.date`` (:func:`dates_of`); the detector turns those dates — or any other form of
dates — back into the columns of its window (:func:`offsets_of`, :func:`offsets_of_stamps`).
Both directions live here, so the store and the detector cannot count days differently.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

_NS_PER_DAY = 86_400_000_000_000


def as_date(value: Any) -> dt.date:
    """A ``datetime.date`` from a date, datetime, ``pd.Timestamp`` or ISO text."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def sql_days_since(column: str, start: str) -> str:
    """SQL for the days from ``start`` (a parameter or expression) to the date ``column``."""
    return f"({column} - {start})::INTEGER"


def dates_of(offsets: np.ndarray, start: dt.date) -> pd.Categorical:
    """Days counted from ``start`` as a categorical of ``datetime.date`` objects: one object
    per distinct day (a history holds few days and many rows), ordered by day."""
    used = np.bincount(offsets, minlength=1)
    dates = np.datetime64(start, "D") + np.flatnonzero(used).astype("timedelta64[D]")
    # A categorical per offset first (small): its codes take the integer type pandas keeps
    # them in, so the rows' codes are picked in that type and never converted.
    per_offset = pd.Categorical.from_codes(
        np.cumsum(used > 0) - 1, categories=pd.Index(dates.astype(object), dtype=object)
    )
    return pd.Categorical.from_codes(per_offset.codes[offsets], dtype=per_offset.dtype)


def datetimes_of(offsets: np.ndarray, start: dt.date) -> np.ndarray:
    """Days counted from ``start`` as ``datetime64[us]`` (midnight of each day)."""
    return np.datetime64(start, "us") + offsets.astype("timedelta64[D]")


def offsets_of(dates: pd.Series, start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows with ``start <= date <= end``, and each one's days since
    ``start``. ``dates`` may be a categorical (one conversion per distinct day), datetimes
    (naive or aware: their local day), ``datetime.date`` objects or text."""
    if isinstance(dates.dtype, pd.CategoricalDtype):
        # one conversion per distinct day (category), then the rows' codes
        categories = pd.Series(dates.cat.categories)
        positions, day = offsets_of(categories, start, end)
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
        keep = ~np.isnat(days) & (offset >= 0) & (offset <= (end - start).days)
        positions = np.flatnonzero(keep)
        return positions, offset[positions]
    values = dates.to_numpy(dtype=object)
    try:
        positions = np.flatnonzero((values >= start).astype(bool))
        positions = positions[(values[positions] <= end).astype(bool)]
    except TypeError:  # datetimes, strings or missing values: the general, slower path
        return offsets_of(pd.to_datetime(dates, errors="coerce"), start, end)
    codes, uniques = pd.factorize(values[positions])
    # one subtraction per distinct day
    unique_days = np.array([(d - start).days for d in uniques], dtype=np.int64)
    return positions, unique_days[codes]


def offsets_of_stamps(nanoseconds: np.ndarray, start: dt.date) -> np.ndarray:
    """The day, counted from ``start``, of naive UTC timestamps given as nanoseconds since
    the epoch (``int64``); before ``start`` is negative."""
    return np.floor_divide(nanoseconds - np.datetime64(start, "ns").astype(np.int64), _NS_PER_DAY)
