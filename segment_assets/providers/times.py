"""Times as providers send them, read once for every provider: ISO-8601 text or unix
seconds to naive UTC, and the judgement of a segment's definition time.

A definition time the provider did not send, or sent in a form that is not a time, is
stored as NULL with a note in the row's ``problem`` column; a time after the snapshot was
read is not believed either. A time the provider stamps when it merely recounts the
segment (see :class:`~segment_assets.providers.columns.DefinitionRule`) is stored as NULL
without a note: it is how that provider works, not a fault. None of these costs the
account its day: the definition time is optional.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from segment_assets.providers.columns import DEFINITION_COLUMN, DefinitionRule

#: A definition time later than the snapshot's read by more than this is not believed.
CLOCK_SKEW = dt.timedelta(hours=1)
# unix seconds beyond this (about the year 5000) are no time a provider means
_MAX_SECONDS = 1e11


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def utc_timestamps(values: Iterable[Any]) -> pd.Series:
    """ISO strings, unix seconds or datetimes → naive UTC ``datetime64[us]``; NaT for a
    missing value and for one that is no readable time (``"yesterday"``, a year out of
    range, a list)."""
    series = pd.Series(list(values), dtype="object")
    numeric = series.map(_is_number).astype(bool).to_numpy()
    stamps = series.map(lambda v: isinstance(v, str | dt.datetime)).astype(bool).to_numpy()
    out = np.full(len(series), np.datetime64("NaT"), dtype="datetime64[us]")
    if numeric.any():
        seconds = series[numeric].astype("float64").to_numpy()
        readable = np.isfinite(seconds) & (np.abs(seconds) < _MAX_SECONDS)
        micros = np.round(np.where(readable, seconds, 0.0) * 1e6).astype("int64")
        out[numeric] = np.where(readable, micros.astype("datetime64[us]"), np.datetime64("NaT"))
    if stamps.any():
        read = pd.to_datetime(series[stamps], utc=True, errors="coerce", format="ISO8601")
        out[stamps] = read.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return pd.Series(out, index=series.index)


def judge_definition_times(
    frame: pd.DataFrame, rule: DefinitionRule, fetched_at: pd.Timestamp
) -> pd.DataFrame:
    """``frame`` (rows as the provider sent them: :data:`DEFINITION_COLUMN` holds the raw
    ``rule.field``) with the definition time read, judged, and problems noted."""
    name = DEFINITION_COLUMN.name
    raw = frame[name]
    parsed = utc_timestamps(raw)
    parsed.index = frame.index
    sent = raw.notna()
    unreadable = sent & parsed.isna()
    if rule.recount_field is not None:
        recount = utc_timestamps(frame[rule.recount_field])
        recount.index = frame.index
        since = parsed - recount
        low, high = rule.recount_window
        parsed = parsed.where(~((since >= low) & (since <= high)))
    late = parsed > fetched_at + CLOCK_SKEW
    notes = pd.Series(None, index=frame.index, dtype=object)
    stored = f"; {name} stored as NULL"
    notes[~sent] = f"{rule.field} not sent{stored}"
    notes[unreadable] = [f"{rule.field} {shown(v)} is not a time{stored}" for v in raw[unreadable]]
    notes[late] = [
        f"{rule.field} {shown(v)} is after the snapshot was read{stored}" for v in raw[late]
    ]
    frame = frame.assign(**{name: parsed.where(~late)})
    noted = notes.notna()
    if noted.any():
        pairs = zip(frame.loc[noted, "problem"], notes[noted], strict=True)
        frame["problem"] = frame["problem"].astype(object)
        frame.loc[noted, "problem"] = [
            f"{b}; {n}" if isinstance(b, str) and b else n for b, n in pairs
        ]
    return frame


def shown(value: Any) -> str:
    """A value as a note shows it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
