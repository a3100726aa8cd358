"""A OneSignal app of twelve steady segments, written into a real store day by day, with
the counts a story plants (an outage, a drop), for the acknowledgement and mute tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from segment_assets.providers import schema
from segment_assets.store import SegmentStore
from segment_assets.store.duckdb_files import connect

APP = "7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d"  # the OneSignal app id: the store's account
TABLE = "onesignal_segments"
SEGMENTS = 12
TYPES = {c.name: c.sql_type for c in schema.columns("onesignal")}

#: (day, segment number or None for every segment) → the share of its users left that day
Planted = Mapping[tuple[dt.date, int | None], float]


def name(segment: int) -> str:
    return f"Segment {segment}"


def span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def rows(
    days: Sequence[dt.date], planted: Planted | None = None, missing: Planted | None = None
) -> pd.DataFrame:
    """The app's snapshot rows of ``days``: segment ``s`` holds about 2,000 + 300·s users
    (±1 %, the same noise on every run), times what ``planted`` leaves of it that day;
    ``missing`` (same keys) segments are not listed that day."""
    planted, missing = planted or {}, missing or {}
    frames = []
    for day in days:
        s = np.arange(SEGMENTS)
        noise = np.random.default_rng(day.toordinal()).integers(-20, 21, SEGMENTS)
        share = np.array([planted.get((day, i), planted.get((day, None), 1.0)) for i in s])
        listed = np.array([(day, i) not in missing for i in s])
        frames.append(
            pd.DataFrame(
                {
                    "snapshot_date": day,
                    "provider": "onesignal",
                    "account": APP,
                    "segment_id": [f"seg-{i}" for i in s],
                    "segment_name": [name(i) for i in s],
                    "user_count": np.rint((2000 + 300 * s + noise) * share).astype(np.int64),
                    "fetched_at": dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 20)),
                    "countable": True,
                }
            )[listed]
        )
    return pd.concat(frames, ignore_index=True)


def write_days(store: SegmentStore, frame: pd.DataFrame) -> None:
    """Each day of ``frame`` as a partition, through the store."""
    for day, day_rows in frame.groupby("snapshot_date"):
        store.write_partition(TABLE, day, day_rows, column_types=TYPES)


def write_file(path: str, frame: pd.DataFrame) -> None:
    """``frame`` into the DuckDB file at ``path`` in one insert (a month of partitions as
    the IO manager would have written them, without a transaction each)."""
    with connect(path) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS segments")
        columns = ", ".join(f"{n} {t}" for n, t in TYPES.items())
        conn.execute(f"CREATE TABLE IF NOT EXISTS segments.{TABLE} ({columns})")
        conn.register("planted_rows", frame)
        conn.execute(f"INSERT INTO segments.{TABLE} BY NAME SELECT * FROM planted_rows")
