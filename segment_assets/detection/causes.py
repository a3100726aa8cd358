"""What the stored snapshots say about why a segment fell: its definition changed.

A segment whose definition (its filter) was edited shortly before its count fell has most
likely fallen because of the edit, not because tracking broke: the team should look at the
filter first. The providers that say when a definition last changed (see
:class:`~segment_assets.providers.columns.DefinitionRule`) have it stored with every
snapshot in ``definition_updated_at``; :func:`definition_changed_on` reads it for the drops
of a day. Pure pandas, no Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from segment_assets.detection.output import is_vanished
from segment_assets.providers.columns import DEFINITION_COLUMN

#: The history column the definition's time is read from.
DEFINITION_TIME = DEFINITION_COLUMN.name
#: The drops column the day of the change is written to.
CAUSE_COLUMN = "definition_changed_on"
#: How many days before a drop's day a definition change still explains it.
DEFINITION_CHANGE_DAYS = 3
_KEY = ["provider", "account", "segment_id"]


def definition_changed_on(
    history: pd.DataFrame,
    drops: pd.DataFrame,
    definition_change_days: int | Sequence[int] | pd.Series = DEFINITION_CHANGE_DAYS,
) -> pd.Series:
    """Per drop (aligned with ``drops``' index): the day its segment's definition last
    changed, as the segment's snapshots up to the drop's day say, when that day is at most
    ``definition_change_days`` days before the drop's day; else None.

    ``history`` holds ``provider, account, segment_id, snapshot_date`` and
    :data:`DEFINITION_TIME` (rows without the column, or NULL in it, say nothing), and may
    hold days after a drop, which are ignored; ``drops`` is a
    :func:`~segment_assets.detection.find_drops` frame. ``definition_change_days`` is one
    number for every drop or one per drop (per account settings). A change seen in a
    snapshot was made before that snapshot's count was read, so a change dated after the
    drop's day (an edit just after midnight, read by the snapshot of the day before) counts
    too. A vanished segment has no cause: a change does not delete a segment.
    """
    days = _days(definition_change_days, drops.index)
    out = pd.Series([None] * len(drops), index=drops.index, dtype=object)
    if drops.empty or DEFINITION_TIME not in history.columns:
        return out
    fell = drops.loc[~is_vanished(drops).to_numpy(), [*_KEY, "snapshot_date"]]
    if fell.empty:
        return out
    candidates = history["segment_id"].isin(fell["segment_id"].unique()).to_numpy()
    rows = history.loc[candidates, [*_KEY, "snapshot_date", DEFINITION_TIME]]
    rows = rows.astype({c: object for c in [*_KEY, "snapshot_date"]})
    rows[DEFINITION_TIME] = pd.to_datetime(rows[DEFINITION_TIME], errors="coerce")
    rows = rows[rows[DEFINITION_TIME].notna()]
    wanted = fell.rename(columns={"snapshot_date": "drop_day"}).rename_axis("drop").reset_index()
    rows = rows.merge(wanted, on=_KEY)
    rows = rows[_day64(rows["snapshot_date"]) <= _day64(rows["drop_day"])]
    if rows.empty:
        return out
    latest = rows.groupby("drop")[DEFINITION_TIME].max()
    changed = latest.dt.normalize()
    drop_day = _day64(fell.loc[latest.index, "snapshot_date"])
    before = (drop_day.to_numpy() - changed.to_numpy()) // np.timedelta64(1, "D")
    recent = before <= days.loc[latest.index].to_numpy()
    out.loc[latest.index[recent]] = [stamp.date() for stamp in changed[recent]]
    return out


def cause_words(changed_on: dt.date | str | None) -> str | None:
    """``definition changed on 2026-03-12`` (what the check and the alert say), or None."""
    if changed_on is None or (not isinstance(changed_on, str) and pd.isna(changed_on)):
        return None
    day = changed_on if isinstance(changed_on, str) else changed_on.isoformat()
    return f"definition changed on {day}"


def _days(values: int | Sequence[int] | pd.Series, index: pd.Index) -> pd.Series:
    """``definition_change_days`` as one whole number of days per drop, checked."""
    if isinstance(values, pd.Series):
        days = values.reindex(index)
    elif np.ndim(values) == 0:
        days = pd.Series(values, index=index, dtype=object)
    else:
        days = pd.Series(list(values), index=index, dtype=object)
    bad = [v for v in days if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0]
    if bad:
        raise ValueError(
            f"definition_change_days must be a whole number of days, 0 or more; got {bad[0]!r}"
        )
    return days.astype("int64")


def _day64(values: pd.Series) -> pd.Series:
    """Dates (``datetime.date`` objects or timestamps) as midnight ``datetime64``."""
    return pd.to_datetime(pd.Series(values, copy=False).astype(object)).dt.normalize()
