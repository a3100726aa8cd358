"""What acknowledgements and mutes do to a day's judgement: pure functions over frames.

* :func:`blank_acknowledged` — acknowledged days' counts become NULL, so they leave the
  baseline: a known outage never becomes the new normal, and the day after it is judged
  against the level before it. A NULL count on the judged day is not judged.
* :func:`acknowledged_on` — the rows (drops) of segments acknowledged on the judged day:
  a segment that vanished on an acknowledged day is not reported either.
* :func:`muted` — the drops that send no alert: a mute holds up to its last day.

``acks`` is what :func:`~segment_assets.acks.table.read_acks` returns. Acknowledgements are
few, so each is matched in turn; every match is vectorised over the rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from segment_assets.days import offsets_of


def of_kind(acks: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of ``acks`` of one kind (``ack`` or ``mute``)."""
    return acks[acks["kind"] == kind]


def in_force(acks: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The rows of ``acks`` whose days include ``day`` (a mute from any day to its last)."""
    first_ok = acks["first_day"].map(lambda d: d is None or d <= day).astype(bool)
    last_ok = acks["last_day"].map(lambda d: d is not None and day <= d).astype(bool)
    return acks[first_ok & last_ok]


def overlapping(acks: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The rows of ``acks`` whose days meet ``start`` … ``end``."""
    first_ok = acks["first_day"].map(lambda d: d is None or d <= end).astype(bool)
    last_ok = acks["last_day"].map(lambda d: d is not None and start <= d).astype(bool)
    return acks[first_ok & last_ok]


def blank_acknowledged(history: pd.DataFrame, acks: pd.DataFrame) -> pd.DataFrame:
    """``history`` with the count of every acknowledged segment-day set to NULL (NA).

    A row is acknowledged when an ``ack`` of its provider and account — for its segment, or
    for the whole account — covers its ``snapshot_date``. Rows stay (a segment listed on an
    acknowledged day is still listed); only the count goes. ``history`` itself is not
    changed; without an acknowledged row it is returned as it is.

    Vectorised over the rows, whatever the number of acknowledgements: the rows within
    their days are found once, with their day, provider, account and segment as integers;
    the days acknowledged for whole accounts are one (provider × account × day) table
    looked up by every row at once, and those of single segments are matched on the few
    rows of the segments named.
    """
    acknowledged = of_kind(acks, "ack")
    if acknowledged.empty or history.empty:
        return history
    start, end = min(acknowledged["first_day"]), max(acknowledged["last_day"])
    positions, offset = offsets_of(history["snapshot_date"], start, end)
    if not positions.size:
        return history
    provider, provider_of = _codes_at(history["provider"], positions)
    account, account_of = _codes_at(history["account"], positions)
    blank = np.zeros(positions.size, dtype=bool)

    whole = np.zeros((len(provider_of), len(account_of), (end - start).days + 1), dtype=bool)
    singles = []
    for ack in acknowledged.itertuples(index=False):
        p, a = provider_of.get(ack.provider), account_of.get(ack.account)
        if p is None or a is None:
            continue  # no row of that account in the history
        days = slice((ack.first_day - start).days, (ack.last_day - start).days + 1)
        if ack.segment_id is None:
            whole[p, a, days] = True
        else:
            singles.append((p, a, ack.segment_id, days))
    blank |= whole[provider, account, offset]

    if singles:
        segment, segment_of = _codes_at(history["segment_id"], positions)
        named = {segment_of[s] for _, _, s, _ in singles if s in segment_of}
        rows = np.flatnonzero(np.isin(segment, list(named)))  # the named segments' rows
        for p, a, s, days in singles:
            if s not in segment_of:
                continue
            mine = rows[
                (segment[rows] == segment_of[s]) & (provider[rows] == p) & (account[rows] == a)
            ]
            blank[mine[(offset[mine] >= days.start) & (offset[mine] < days.stop)]] = True

    if not blank.any():
        return history
    counts = history["user_count"].astype("Int64", copy=True)
    counts.iloc[positions[blank]] = pd.NA
    out = history.copy(deep=False)
    out["user_count"] = counts
    return out


def acknowledged_on(rows: pd.DataFrame, acks: pd.DataFrame, day: dt.date) -> pd.Series:
    """Per row of ``rows`` (``provider, account, segment_id``): whether an ``ack`` covers its
    segment (or its whole account) on ``day``."""
    return _covered(rows, in_force(of_kind(acks, "ack"), day))


def muted(drops: pd.DataFrame, acks: pd.DataFrame, day: dt.date) -> pd.Series:
    """Per drop of ``day``: whether a ``mute`` of its segment (or of its whole account)
    holds on ``day``, i.e. the drop is shown but sends no alert."""
    return _covered(drops, in_force(of_kind(acks, "mute"), day))


def _covered(rows: pd.DataFrame, acks: pd.DataFrame) -> pd.Series:
    found = pd.Series(False, index=rows.index, dtype=bool)
    if acks.empty or rows.empty:
        return found
    provider, account = rows["provider"].astype(object), rows["account"].astype(object)
    segment = rows["segment_id"].astype(object)
    for ack in acks.itertuples(index=False):
        hit = (provider == ack.provider) & (account == ack.account)
        if ack.segment_id is not None:
            hit &= segment == ack.segment_id
        found |= hit.fillna(False).astype(bool)
    return found


def _codes_at(column: pd.Series, positions: np.ndarray) -> tuple[np.ndarray, dict[Any, int]]:
    """The values of ``column`` at ``positions`` as integers, and value → integer (a
    categorical's own codes; other columns factorised once)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()[positions]
        return codes, {v: i for i, v in enumerate(column.cat.categories)}
    codes, uniques = pd.factorize(column.iloc[positions])
    return codes, {v: i for i, v in enumerate(uniques)}
