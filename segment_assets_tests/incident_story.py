"""OneSignal apps whose days are written through the store, as the IO manager writes them,
for the account-wide incident and recovery stories (either store)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dagster as dg
import numpy as np
import pandas as pd

from segment_assets.providers import schema
from segment_assets.store import SegmentStore
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.duckdb_files import connect

TABLE = "onesignal_segments"
TYPES = {c.name: c.sql_type for c in schema.columns("onesignal")}
GONE = None  # a segment that is not listed that day


def level(s: int) -> int:
    """Segment ``s``'s usual count: the higher ``s``, the larger the segment."""
    return 2000 + 700 * s


def day_rows(
    day: dt.date,
    apps: Mapping[str, int],
    changed: Mapping[tuple[str, int], float | None] | None = None,
) -> pd.DataFrame:
    """``day``'s snapshot of ``apps`` (app id → number of segments): every segment at its
    level with a little noise, times its factor in ``changed`` ((app, segment) → factor, or
    ``GONE``)."""
    changed = changed or {}
    rng = np.random.default_rng(day.toordinal())
    rows = []
    for app, count in apps.items():
        for s in range(count):
            factor = changed.get((app, s), 1.0)
            if factor is GONE:
                continue
            noise = float(np.exp(0.01 * rng.standard_normal()))
            rows.append(
                {
                    "snapshot_date": day,
                    "provider": "onesignal",
                    "account": app,
                    "segment_id": f"{app}-seg-{s}",
                    "segment_name": f"{app} segment {s}",
                    "user_count": int(level(s) * noise * factor),
                    "fetched_at": dt.datetime.combine(day, dt.time(23, 30)),
                }
            )
    frame = pd.DataFrame(rows).reindex(columns=list(TYPES))
    frame["user_count"] = frame["user_count"].astype("Int64")
    return frame


def write_day(
    store: SegmentStore,
    day: dt.date,
    apps: Mapping[str, int],
    changed: Mapping[tuple[str, int], float | None] | None = None,
) -> None:
    """Store ``day``'s snapshot (:func:`day_rows`) as the IO manager stores a partition."""
    store.write_partition(TABLE, day, day_rows(day, apps, changed), column_types=TYPES)


def write_days(store: SegmentStore, first: dt.date, last: dt.date, apps: Mapping[str, int]) -> None:
    """Ordinary days from ``first`` to ``last``: on DuckDB in one write (each write opens the
    file), on PostgreSQL a partition at a time."""
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    if isinstance(store, DuckDBStore):
        frame = pd.concat([day_rows(day, apps) for day in days], ignore_index=True)  # noqa: F841
        with connect(store.database) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {store.schema}")
            columns = ", ".join(f"{name} {kind}" for name, kind in TYPES.items())
            conn.execute(f"CREATE TABLE IF NOT EXISTS {store.schema}.{TABLE} ({columns})")
            conn.execute(f"INSERT INTO {store.schema}.{TABLE} BY NAME SELECT * FROM frame")
        return
    for day in days:
        write_day(store, day, apps)


def report(
    instance: dg.DagsterInstance, day: dt.date, labels: Mapping[str, str] | None = None
) -> None:
    """Tell the instance the OneSignal partition of ``day`` was materialised (with the
    accounts' words, as the asset reports them)."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=TABLE,
            partition=day.isoformat(),
            metadata={"account_labels": dg.MetadataValue.json(dict(labels or {}))},
        )
    )
