"""Helpers for the failure tests: a small emulator, fast-failing resources, run inspection.

The resources are the production ones (credentials through ``dg.EnvVar``, the environment a
user sets) with a short retry budget, so a persistent fault fails in well under a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from segment_assets.config import provider_resources_from_env
from segment_assets.defs.assets import PROVIDER_ASSETS
from segment_assets.emulator import (
    ActionHubProgram,
    EmulatorConfig,
    EmulatorServer,
    OneSignalApp,
    UserComApp,
)
from segment_assets.store.duckdb_files import io_manager

PROVIDERS = ("actionhub", "usercom", "onesignal")
ASSETS = {a.key.path[-1].removesuffix("_segments"): a for a in PROVIDER_ASSETS}
ACTIONHUB_PAGE_SIZE = 5
ONESIGNAL_APP = "0b6f5a52-95b7-4a54-8d3f-6a3c1f2f6b10"
# A short budget: two retries 10 ms apart, half-second read timeout, Retry-After honoured,
# and 2.5 s rate limited in all before an account gives up (a Retry-After is 1-2 s).
FAST = {
    "max_retries": 2,
    "retry_backoff_seconds": 0.01,
    "read_timeout_seconds": 0.5,
    "rate_limit_budget_seconds": 2.5,
}
_BASIS = {"label": "labels", "asset": "assets"}


def small_config(**kw: Any) -> EmulatorConfig:
    """A few pages per provider: ActionHub 6 lists × 12 (pages of 5), User.com 25 segments
    (pages of 10), OneSignal 12 segments of which one is user-based and one deleted."""
    keys = {
        "actionhub": "ah-test-key",
        "usercom": "u" * 64,
        "onesignal": "os_v2_app_testkeyfortheresiliencetests",
    }
    keys.update(kw.pop("keys", {}))
    kw.setdefault(
        "actionhub", [ActionHubProgram("prog-1", keys["actionhub"], segments_per_list=12)]
    )
    kw.setdefault("usercom", [UserComApp("acme", keys["usercom"], n_segments=25, page_size=10)])
    kw.setdefault(
        "onesignal",
        [
            OneSignalApp(
                ONESIGNAL_APP, keys["onesignal"], n_segments=12, n_user_based=1, n_deleted=1
            )
        ],
    )
    return EmulatorConfig(**kw)


def fast_resources(database: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The resources definitions.py builds from the environment, with the FAST budget."""
    out: dict[str, Any] = {"io_manager": io_manager(database)}
    for key, resource in provider_resources_from_env().items():
        values = {name: getattr(resource, name) for name in type(resource).model_fields}
        values.update(FAST)
        if key == "actionhub":
            values["page_size"] = ACTIONHUB_PAGE_SIZE
        values.update(overrides.get(key, {}))
        out[key] = type(resource)(**values)
    return out


def materialize(
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    partition: dt.date,
    providers: Iterable[str] = PROVIDERS,
    **kw: Any,
) -> dg.ExecuteInJobResult:
    kw.setdefault("raise_on_error", False)
    return dg.materialize(
        [ASSETS[p] for p in providers],
        partition_key=partition.isoformat(),
        resources=resources,
        instance=instance,
        **kw,
    )


def stored(database: str, provider: str, partition: dt.date | None = None) -> pd.DataFrame:
    """The rows of one provider table (of one partition), empty if there is none."""
    if not Path(database).exists():
        return pd.DataFrame(columns=["segment_id", "user_count", "snapshot_date", "fetched_at"])
    with duckdb.connect(database, read_only=True) as conn:
        exists = conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'segments' and table_name = ?",
            [f"{provider}_segments"],
        ).fetchall()[0][0]
        if not exists:
            return pd.DataFrame(columns=["segment_id", "user_count", "snapshot_date", "fetched_at"])
        where = "" if partition is None else f"where snapshot_date = DATE '{partition}'"
        return conn.sql(
            f"select * from segments.{provider}_segments {where} order by segment_id"
        ).df()


def expected_counts(emu: EmulatorServer, provider: str) -> dict[str, int | None]:
    """segment_id → user_count that a complete, correct snapshot must hold."""
    truth = emu.state.truth(provider)
    if provider == "actionhub":
        return {
            f"{t['segment_type']}/{_BASIS[t['segment_basis']]}/{t['segment_basis_id']}/"
            f"{t['action_type']}": t["user_count"]
            for t in truth
        }
    if provider == "usercom":
        return {str(t["id"]): t["object_count"] for t in truth}
    return {t["id"]: t["subscriber_count"] for t in truth}


def counts_of(frame: pd.DataFrame) -> dict[str, int | None]:
    return {
        row.segment_id: None if pd.isna(row.user_count) else int(row.user_count)
        for row in frame.itertuples()
    }


def run_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every message the run logged (what the UI's run log shows)."""
    return [entry.user_message for entry in instance.all_logs(run_id) if entry.user_message]


def error_text(result: dg.ExecuteInJobResult) -> str:
    """Every error the run recorded (step failures, resource init failures), with causes."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def requests_made(emu: EmulatorServer, provider: str | None = None) -> int:
    stats = emu.state.stats()
    return sum(stats[p]["requests"] for p in ([provider] if provider else PROVIDERS))
