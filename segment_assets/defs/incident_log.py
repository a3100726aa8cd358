"""Open incidents, kept in the store: ``segments.segment_incidents``.

The drop sensor opens an incident for every segment it alerts as dropped (or vanished), one
row per segment and day, and for every drop a mute holds (``alerted`` false: nothing was
said). It closes one on a later judged day with the day and why:

* ``recovered`` — the segment is back within its recovery band (see
  :mod:`segment_assets.detection.recovery`); the sensor then sends one "recovered" message
  (none for an incident not alerted);
* ``expired`` — seven weeks (``OPEN_DAYS``) passed without that: by then the detector has
  taken the lower level as the segment's normal, so "back" can no longer be told;
* ``dropped again`` — the detector found a new drop of the segment (it saw a recovery the
  sensor did not judge, e.g. on a day too old to alert); the new drop opens a new incident.

An incident not alerted (its drop began while a mute held) is alerted once, on the first
judged day its segment is still down and no mute holds (see
:mod:`~segment_assets.defs.mute_ends`), and from then on is like any other
(:meth:`IncidentLog.mark_alerted`). Rows written before the ``alerted`` column existed
count as alerted; the table gains the column on the next write.

Only the store's small-table calls are used (``append_rows``, ``read_rows``,
``update_rows``), so incidents live in the DuckDB file or the PostgreSQL database alike,
survive restarts of the sensor, and can be queried by a team.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from segment_assets.detection import is_vanished
from segment_assets.detection.thresholds import BRIDGE_DAYS
from segment_assets.providers import schema
from segment_assets.store import SegmentStore

INCIDENTS_TABLE = "segment_incidents"
#: Days an incident stays open without recovering (the detector's memory of the level an
#: incident started from).
OPEN_DAYS = BRIDGE_DAYS
RECOVERED = "recovered"
EXPIRED = "expired"
DROPPED_AGAIN = "dropped again"
KEY = ["provider", "account", "segment_id"]

INCIDENT_COLUMNS: tuple[schema.Column, ...] = (
    schema.Column("incident_id", "VARCHAR", "provider|account|segment_id|opened_on."),
    schema.Column("provider", "VARCHAR", "The provider, as in the provider tables."),
    schema.Column("account", "VARCHAR", "The provider account, as in the provider tables."),
    schema.Column("segment_id", "VARCHAR", "The segment's id."),
    schema.Column("segment_name", "VARCHAR", "The segment's name when it dropped."),
    schema.Column("opened_on", "DATE", "The day (partition) the segment dropped."),
    schema.Column("opened_at", "TIMESTAMP", "When the sensor opened it (UTC)."),
    schema.Column("scope", "VARCHAR", "'account' for an account-wide incident, else 'segment'."),
    schema.Column("severity", "VARCHAR", "ERROR or WARN, as found."),
    schema.Column("reason", "VARCHAR", "The drop in words, as found."),
    schema.Column("user_count", "BIGINT", "The count on opened_on; NULL when it vanished."),
    schema.Column("expected", "DOUBLE", "The count expected on opened_on."),
    schema.Column("vanished", "BOOLEAN", "Whether the segment vanished (was no longer listed)."),
    schema.Column("closed_on", "DATE", "The judged day the incident closed; NULL while open."),
    schema.Column("closed_at", "TIMESTAMP", "When it closed (UTC); NULL while open."),
    schema.Column("closed_why", "VARCHAR", "recovered, expired or dropped again."),
    schema.Column(
        "alerted",
        "BOOLEAN",
        "Whether a drop alert was sent: false while a drop that began under a mute has not "
        "alerted (NULL, in rows written before this column, counts as true).",
    ),
)
INCIDENT_TYPES: dict[str, str] = {c.name: c.sql_type for c in INCIDENT_COLUMNS}
DATE_COLUMNS = ("opened_on", "closed_on")


def incident_id(provider: str, account: str, segment_id: str, opened_on: dt.date) -> str:
    return f"{provider}|{account}|{segment_id}|{opened_on.isoformat()}"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _days(values: pd.Series) -> pd.Series:
    """Dates as ``datetime64`` days (NaT when NULL), however the store typed them."""
    return pd.to_datetime(values, errors="coerce").dt.normalize()


@dataclass
class IncidentLog:
    """The incidents table of ``store``: read once, then kept up to date with what this
    object writes."""

    store: SegmentStore
    lock_wait_seconds: float
    _rows: pd.DataFrame | None = None

    def rows(self) -> pd.DataFrame:
        """Every incident, with ``opened_on`` and ``closed_on`` as ``datetime64`` days
        (``closed_on`` NaT while open)."""
        if self._rows is None:
            rows = self.store.read_rows(INCIDENTS_TABLE, lock_wait_seconds=self.lock_wait_seconds)
            if rows.empty:
                rows = pd.DataFrame({name: pd.Series(dtype=object) for name in INCIDENT_TYPES})
            for name in DATE_COLUMNS:
                rows[name] = _days(rows[name])
            alerted = rows["alerted"] if "alerted" in rows else pd.Series(True, index=rows.index)
            rows["alerted"] = alerted.astype("boolean").fillna(True).astype(bool)
            self._rows = rows
        return self._rows

    def watch(self, providers: Sequence[str], day: dt.date) -> pd.DataFrame:
        """The open incidents of ``providers`` opened before ``day``: those ``day`` may
        close."""
        rows = self.rows()
        open_ = rows["closed_on"].isna() & (rows["opened_on"] < pd.Timestamp(day))
        return rows[open_ & rows["provider"].isin(list(providers))].reset_index(drop=True)

    def open(self, drops: pd.DataFrame, day: dt.date) -> int:
        """Open an incident for each drop of ``drops`` (a ``flag_drops`` frame of ``day``)
        not yet recorded — a partition judged again opens none twice — and close as
        ``dropped again`` the earlier open incidents of the same segments. A drop a mute
        holds (``muted``) opens one not alerted. Returns the incidents opened."""
        if drops.empty:
            return 0
        ids = [incident_id(p, a, s, day) for p, a, s in drops[KEY].astype(str).itertuples(False)]
        rows = self.rows()
        new = drops.assign(incident_id=ids)[
            ~pd.Series(ids, index=drops.index).isin(rows["incident_id"])
        ]
        if new.empty:
            return 0
        earlier = rows[
            rows["closed_on"].isna()
            & (rows["opened_on"] < pd.Timestamp(day))
            & pd.MultiIndex.from_frame(rows[KEY].astype(str)).isin(
                pd.MultiIndex.from_frame(new[KEY].astype(str))
            )
        ]
        self.close(earlier["incident_id"].tolist(), day, DROPPED_AGAIN)
        frame = pd.DataFrame(
            {
                "incident_id": new["incident_id"].to_numpy(),
                **{name: new[name].astype(str).to_numpy() for name in KEY},
                "segment_name": new["segment_name"]
                .astype(object)
                .where(new["segment_name"].notna(), None),
                "opened_on": [day] * len(new),
                "opened_at": [_utc_now()] * len(new),
                "scope": new["scope"].to_numpy() if "scope" in new else "segment",
                "severity": new["severity"].to_numpy(),
                "reason": new["reason"].to_numpy(),
                "user_count": new["user_count"].astype("Int64").to_numpy(),
                "expected": new["expected"].astype("float64").to_numpy(),
                "vanished": is_vanished(new).to_numpy(),
                "alerted": ~new["muted"].astype(bool).to_numpy() if "muted" in new else True,
            }
        )
        frame = frame.reset_index(drop=True)
        added = self.store.append_rows(
            INCIDENTS_TABLE, frame, INCIDENT_TYPES, lock_wait_seconds=self.lock_wait_seconds
        )
        self._rows = None  # read again, as stored, when next asked
        return added

    def mark_alerted(self, ids: Sequence[str]) -> int:
        """Record that the incidents ``ids`` (opened not alerted) have now alerted."""
        if not len(ids):
            return 0
        marked = self.store.update_rows(
            INCIDENTS_TABLE, "incident_id", list(ids), {"alerted": True}, self.lock_wait_seconds
        )
        rows = self.rows()
        rows.loc[rows["incident_id"].isin(list(ids)), "alerted"] = True
        return marked

    def close(self, ids: Sequence[str], day: dt.date, why: str) -> int:
        """Close the incidents ``ids`` on ``day`` for ``why``; returns how many."""
        if not len(ids):
            return 0
        values = {"closed_on": day, "closed_at": _utc_now(), "closed_why": why}
        closed = self.store.update_rows(
            INCIDENTS_TABLE, "incident_id", list(ids), values, self.lock_wait_seconds
        )
        rows = self.rows()
        mine = rows["incident_id"].isin(list(ids))
        for name, value in {**values, "closed_on": pd.Timestamp(day)}.items():
            rows[name] = rows[name].astype(object)
            rows.loc[mine, name] = value
        rows["closed_on"] = _days(rows["closed_on"])
        return closed


def recovered(watch: pd.DataFrame, back: pd.DataFrame) -> pd.DataFrame:
    """The watched incidents whose segment is back, one row each with the fields of a
    recovered message (``alert_payload.RECOVERED_FIELDS``) and ``provider`` and
    ``incident_id``."""
    if watch.empty or back.empty:
        return pd.DataFrame(
            columns=[*KEY, "segment_name", "user_count", "expected", "drop_pct", "low",
                     "vanished", "opened_on", "scope", "incident_id"]
        )  # fmt: skip
    now = back[back["back"]].astype({name: str for name in KEY})
    incidents = watch.astype({name: str for name in KEY}).rename(
        columns={"user_count": "low", "segment_name": "name_then", "expected": "expected_then"}
    )
    out = now.merge(incidents, on=KEY)
    out["segment_name"] = out["segment_name"].where(out["segment_name"].notna(), out["name_then"])
    out["opened_on"] = out["opened_on"].dt.strftime("%Y-%m-%d")
    out["low"] = pd.to_numeric(out["low"], errors="coerce").round().astype("Int64")
    out["vanished"] = out["vanished"].astype("boolean").fillna(False).astype(bool)
    return out.sort_values("user_count", ascending=False, kind="stable").reset_index(drop=True)


def expired(watch: pd.DataFrame, day: dt.date) -> pd.Series:
    """Which watched incidents have been open for ``OPEN_DAYS`` days or more on ``day``
    (they close as ``expired``, and are not judged for recovery)."""
    return (pd.Timestamp(day) - watch["opened_on"]).dt.days >= OPEN_DAYS
