"""Days of real OneSignal snapshots from the emulator, for the drop check and sensor tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import dagster as dg
import pandas as pd

from segment_assets.defs.assets import PROVIDER_ASSETS
from segment_assets.defs.checks import DROP_CHECKS
from segment_assets.emulator import (
    DEMO_ACTIONHUB_KEY,
    DEMO_ONESIGNAL_APPS,
    DEMO_USERCOM_KEY,
    DEMO_USERCOM_SUBDOMAIN,
    ActionHubProgram,
    EmulatorConfig,
    EmulatorServer,
    OneSignalApp,
    UserComApp,
)
from segment_assets.providers import schema
from segment_assets.store import SegmentStore
from segment_assets.store.duckdb import DuckDBStore

APP_ID, APP_KEY = next(iter(DEMO_ONESIGNAL_APPS.items()))
ASSET = "onesignal_segments"
ONESIGNAL = next(a for a in PROVIDER_ASSETS if a.key.path[-1] == ASSET)
ONESIGNAL_CHECK = next(c for c in DROP_CHECKS if c.check_key.asset_key.path[-1] == ASSET)


def small_config() -> EmulatorConfig:
    """One small OneSignal app (12 segments, one uncountable); the others tiny."""
    return EmulatorConfig(
        actionhub=[ActionHubProgram("demo-program", DEMO_ACTIONHUB_KEY, segments_per_list=2)],
        usercom=[UserComApp(DEMO_USERCOM_SUBDOMAIN, DEMO_USERCOM_KEY, n_segments=5)],
        onesignal=[OneSignalApp(APP_ID, APP_KEY, n_segments=12, n_user_based=1, n_deleted=0)],
    )


def days(last: dt.date, count: int) -> list[dt.date]:
    """``count`` consecutive days ending with ``last``."""
    return [last - dt.timedelta(days=i) for i in range(count - 1, -1, -1)]


def snapshot(
    emulator: EmulatorServer,
    resources: dict,
    instance: dg.DagsterInstance,
    day: dt.date,
    extra: Sequence = (),
) -> dg.ExecuteInProcessResult:
    """Materialise the OneSignal asset (and its drop check) for ``day`` with that day's counts."""
    emulator.state.set_date(day)
    return dg.materialize(
        [ONESIGNAL, ONESIGNAL_CHECK, *extra],
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        run_config={"ops": {ASSET: {"config": {"allow_late_partition": True}}}},
    )


def snapshot_days(
    emulator: EmulatorServer, resources: dict, instance: dg.DagsterInstance, each: Iterable
) -> None:
    for day in each:
        assert snapshot(emulator, resources, instance, day).success


def write_history(
    emulator: EmulatorServer,
    resources: dict,
    store: SegmentStore | str,
    each: Iterable[dt.date],
) -> None:
    """Store earlier days without Dagster runs: the real client's frames, each day written
    through the store as a partition (only for days before the partitions a test
    materialises). A path is the DuckDB file there."""
    store = DuckDBStore(store) if isinstance(store, str) else store
    client = resources["onesignal"].process_config_and_initialize()  # resolves its EnvVars
    types = {c.name: c.sql_type for c in schema.columns("onesignal")}
    for day in each:
        emulator.state.set_date(day)
        store.write_partition(ASSET, day, client.snapshot(day), column_types=types)


def largest_segments(emulator: EmulatorServer, count: int) -> list[tuple[str, str]]:
    """(id, name) of the ``count`` largest countable segments of the app today."""
    rows = [r for r in emulator.state.truth("onesignal", APP_ID) if not r["user_based"]]
    rows.sort(key=lambda r: r["subscriber_count"], reverse=True)
    return [(r["id"], r["name"]) for r in rows[:count]]


# Rows shaped like segment_assets.defs.drops.flag_drops, for the message and table tests.
ERROR_DROP: dict = {
    "provider": "onesignal",
    "account": "app-1",
    "segment_id": "seg-0",
    "segment_name": "Paying users",
    "snapshot_date": dt.date(2026, 3, 14),
    "user_count": 510,
    "expected": 5380.0,
    "drop_pct": 90.5,
    "severity": "ERROR",
    "reason": "5,400 → 510 users (−91 %) vs 5,380 expected",
    "before": 5400,
    "scope": "segment",
    "account_segments": 12,
}
VANISHED_DROP: dict = {
    **ERROR_DROP,
    "segment_id": "old",
    "segment_name": "Winter sale",
    "user_count": None,
    "expected": 1200.0,
    "drop_pct": float("nan"),
    "severity": "WARN",
    "reason": "vanished: segment no longer listed (was 1,200 users)",
    "before": 1200,
}


def drop_frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows)).astype(
        {"user_count": "Int64", "before": "Int64", "account_segments": "Int64"}
    )
