"""Drops that began under a mute: they send nothing while it holds, and alert once when
it has ended if the segment is still down (its incident, opened not alerted, says so).

Pure pandas over the frames the sensor has: the watched incidents, the day's judgement of
whether each is back (``flag_drops(watch=...)``, with ``muted`` on the day) and the day's
new drops.
"""

from __future__ import annotations

import pandas as pd

from segment_assets.config.detection import DetectionSettings
from segment_assets.defs.drops import SEGMENT_KEY
from segment_assets.defs.incident_log import KEY
from segment_assets.detection.configured import within_alert_age


def alerting(drops: pd.DataFrame, unmuted: pd.DataFrame, provider: str) -> pd.DataFrame:
    """The drops of one provider's table that alert on the day: those a mute does not hold
    (muted ones are judged and shown in the check, but send nothing), and the segments of
    ``unmuted`` (:func:`after_mutes`) of ``provider``."""
    drops = drops[~drops["muted"].astype(bool)]
    mine = unmuted[unmuted["provider"] == provider]
    if mine.empty:
        return drops
    return pd.concat([drops, mine.drop(columns="incident_id")], ignore_index=True)


def after_mutes(
    watch: pd.DataFrame,
    back: pd.DataFrame,
    drops: pd.DataFrame,
    settings: DetectionSettings,
    age: int,
) -> pd.DataFrame:
    """The incidents opened under a mute that alert on this day (``age`` days old): the
    segment is still down, no mute holds, the segment's age limit allows it, and it did not
    drop anew on this day (a new drop opens its own incident)."""
    down = within_alert_age(still_down(watch, back), settings, age)
    if down.empty or drops.empty:
        return down
    new = pd.MultiIndex.from_frame(drops[SEGMENT_KEY].astype(str))
    return down[~pd.MultiIndex.from_frame(down[SEGMENT_KEY].astype(str)).isin(new)]


def still_down(watch: pd.DataFrame, back: pd.DataFrame) -> pd.DataFrame:
    """The watched incidents not alerted yet whose segment is judged, not back and not
    muted on the day (``back`` has ``muted``): one row each in the shape of a ``flag_drops``
    drop of the day, to alert now. ``reason`` says how far below expected it still is after
    its mute ended, ``dropped_on`` the day it dropped; ``severity`` and ``scope`` are the
    incident's, and a vanished segment that is listed again but still low is a fall."""
    quiet = watch[~watch["alerted"].astype(bool)]
    if quiet.empty or back.empty:
        return _still_down_frame(pd.DataFrame(columns=[*KEY, "segment_name"]))
    now = back[~back["back"] & ~back["muted"].astype(bool)].astype({name: str for name in KEY})
    incidents = quiet.astype({name: str for name in KEY})[
        [*KEY, "incident_id", "segment_name", "opened_on", "severity", "scope"]
    ].rename(columns={"segment_name": "name_then"})
    out = now.merge(incidents, on=KEY)
    out["segment_name"] = out["segment_name"].where(out["segment_name"].notna(), out["name_then"])
    out["dropped_on"] = out["opened_on"].dt.strftime("%Y-%m-%d")
    out["reason"] = [
        f"still {pct:.0f} % below expected after its mute ended (dropped on {day})"
        for pct, day in zip(out["drop_pct"], out["dropped_on"], strict=True)
    ]
    return _still_down_frame(out)


def _still_down_frame(rows: pd.DataFrame) -> pd.DataFrame:
    columns = [*KEY, "segment_name", "user_count", "expected", "drop_pct", "severity",
               "reason", "scope", "dropped_on", "incident_id"]  # fmt: skip
    out = rows.reindex(columns=columns)
    out["before"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["muted"] = False
    return out.reset_index(drop=True)
