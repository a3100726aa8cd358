"""A backfill launched as separate run processes at once, as `dagster dev` would.

The runs share one DAGSTER_HOME whose dagster.yaml is the repository's own: each provider asset
runs in the pool named after its provider with one slot, so runs for the same provider take
turns and together never exceed the provider's rate limit, and the runs never trip over
DuckDB's single-writer lock.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from segment_assets.emulator import EmulatorConfig
from segment_assets.store.file_locks import AccountBusyError, account_lock

from .conftest import emulator_env
from .resilience import PROVIDERS, expected_counts, small_config, stored

REPO = Path(__file__).resolve().parents[1]
# Three days, three run processes at once: every provider's pool is wanted by three runs
# from the start, so they must take turns, and any two at once would be rate limited. Each
# more day would add a process start (~2 s of CPU) and prove nothing more.
DAYS = 3
CLIENT_RPS = 20  # each run paces itself to this (<P>_MAX_RPS), one request at a time ...
PROVIDER_RPS = 30  # ... and the provider allows this: two runs at once would be 429'd
LATENCY_MS = 20
LATE_HOURS = 36


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


def run_config(partition: dt.date, now: dt.datetime) -> dict:
    """In-process steps (one process per run); allow_late_partition where the day is old."""
    config: dict = {"execution": {"config": {"in_process": {}}}}
    ended = dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if now - ended > dt.timedelta(hours=LATE_HOURS - 1):
        config["ops"] = {
            f"{p}_segments": {"config": {"allow_late_partition": True}} for p in PROVIDERS
        }
    return config


@pytest.mark.slow
def test_a_backfill_in_parallel_runs_stores_each_partition_once_within_the_rate_limit(
    emulator, tmp_path
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass  # create the storage once, so the runs do not race to create its tables
    database = str(tmp_path / "warehouse" / "segment_assets.duckdb")
    for provider in PROVIDERS:
        emulator.state.set_faults(
            provider, rate_limit_rps=PROVIDER_RPS, rate_limit_burst=3, latency_ms=LATENCY_MS
        )
    env = {
        **os.environ,
        **emulator_env(emulator),
        "DAGSTER_HOME": str(home),
        "SEGMENT_ASSETS_DUCKDB": database,
        **{f"{p.upper()}_MAX_RPS": str(CLIENT_RPS) for p in PROVIDERS},
        **{f"{p.upper()}_MAX_CONCURRENCY": "1" for p in PROVIDERS},
    }
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    partitions = [today - dt.timedelta(days=d) for d in range(1, DAYS + 1)]
    select = ",".join(f"{p}_segments" for p in PROVIDERS)

    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "asset",
                "materialize",
                "-m",
                "segment_assets.definitions",
                "--select",
                select,
                "--partition",
                day.isoformat(),
                "--config-json",
                json.dumps(run_config(day, now)),
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for day in partitions
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    failed = [out[-4000:] for run, out in zip(runs, outputs, strict=True) if run.returncode]
    assert not failed, failed[0]
    assert not [out for out in outputs if "lock" in out.lower() and "Error" in out]
    stats = emulator.state.stats()
    assert {p: stats[p]["429"] for p in PROVIDERS} == {p: 0 for p in PROVIDERS}
    # one request in flight per account at any moment: the runs never overlapped on a provider
    assert {p: stats[p]["max_in_flight"] for p in PROVIDERS} == {p: 1 for p in PROVIDERS}
    for provider in PROVIDERS:
        frame = stored(database, provider)
        assert not frame.duplicated(["snapshot_date", "segment_id"]).any()
        per_day = frame.groupby(frame["snapshot_date"].dt.date)["segment_id"].count()
        expected = len(expected_counts(emulator, provider))
        assert per_day.to_dict() == {day: expected for day in partitions}, provider

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_runs()
        assert len(records) == DAYS
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in records)
        blocked = {
            entry.step_key
            for r in records
            for entry in instance.all_logs(r.run_id)
            if "blocked by limit for pool" in entry.user_message
        }
    assert blocked  # the runs did contend for the provider pools, and took turns


def test_a_second_snapshot_of_the_same_account_waits_for_the_first_and_says_so(tmp_path):
    """The account lock: Dagster's pools on SQLite may let two runs in at once; this may not."""
    database = str(tmp_path / "segment_assets.duckdb")
    events: list[str] = []
    first_in = threading.Event()

    class Log:
        def info(self, message: str) -> None:
            events.append(message)

    def first() -> None:
        with account_lock(database, "onesignal", "app-1", "OneSignal app-1"):
            first_in.set()
            time.sleep(1.5)
            events.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(5)
    with account_lock(database, "onesignal", "app-1", "OneSignal app-1", Log()):
        events.append("second in")
    with account_lock(database, "onesignal", "app-2", "OneSignal app-2", Log(), wait_seconds=0.1):
        events.append("another account is not held up")
    thread.join()
    assert events == [
        "OneSignal app-1: waiting for another run's snapshot of this account to finish",
        "first done",
        events[2],  # "... the other run finished after 1.x s"
        "second in",
        "another account is not held up",
    ]
    assert events[2].startswith("OneSignal app-1: the other run finished after")


def test_an_account_held_too_long_fails_the_snapshot_with_a_clear_error(tmp_path):
    database = str(tmp_path / "segment_assets.duckdb")
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with account_lock(database, "usercom", "acme.user.com", "User.com", wait_seconds=1.2):
                pass
        except AccountBusyError as exc:
            errors.append(exc)

    with account_lock(database, "usercom", "acme.user.com", "User.com"):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert "User.com: another run kept this account's snapshot lock" in str(errors[0])
    assert "is a run stuck?" in str(errors[0])
