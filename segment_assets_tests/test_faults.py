"""Provider faults through real Dagster runs: a fault never becomes a half snapshot.

A transient fault that clears within the retry budget still stores the complete, correct
snapshot; a fault that persists fails the run with a message naming provider, endpoint,
status and the provider's own words, and leaves the partition as it was.
"""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg
import pytest

from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.sensors import segment_drop_sensor
from segment_assets.emulator import EmulatorConfig

from .conftest import YESTERDAY, failure_text
from .drop_story import days, write_history
from .resilience import (
    ONESIGNAL_APP,
    PROVIDERS,
    counts_of,
    expected_counts,
    fast_resources,
    materialize,
    run_messages,
    small_config,
    stored,
)

# fault kind → what the run log says about the retry
TRANSIENT = {
    "429": "HTTP 429",
    "429-date": "HTTP 429",
    "503-html": "HTTP 503 (503 Service Temporarily Unavailable",
    "503-empty": "HTTP 503",
    "500": "HTTP 500",
    "reset": "connection failed",
    "timeout": "timed out after 0.5s",
    "truncated": "body is not valid JSON",
    "not-json": "body is not valid JSON (starts '<!DOCTYPE html>",
    "wrong-shape": "unexpected body: missing list",
}  # a record's bad count is not retried: see test_silent_losses.py


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


@pytest.fixture
def fast(env, duckdb_path) -> dict:
    return fast_resources()


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_a_fault_that_clears_within_the_retry_budget_still_stores_the_complete_snapshot(
    fault, emulator, fast, instance, duckdb_path
):
    for provider in PROVIDERS:
        emulator.state.set_faults(provider, fail_next=[fault], timeout_sleep_s=1.0)

    result = materialize(fast, instance, YESTERDAY)

    assert result.success, failure_text(result)
    for provider in PROVIDERS:
        assert counts_of(stored(duckdb_path, provider, YESTERDAY)) == expected_counts(
            emulator, provider
        )
        assert emulator.state.faults()[provider]["*"]["fail_next"] == []  # the fault was served
    said = ("retry 1 of 2", "rate limited: every request waits")  # a 429 uses no retry
    messages = run_messages(instance, result.run_id)
    retries = [m for m in messages if any(s in m for s in said)]
    assert len(retries) == 3, retries  # one retry per provider, said in the run log
    assert all(TRANSIENT[fault] in m for m in retries), retries


PERSISTENT = [
    # provider, fault kind, what the failure must say (besides provider and endpoint)
    ("actionhub", "503-html", "HTTP 503: gave up after 3 attempts; last problem: HTTP 503 "
     "(503 Service Temporarily Unavailable"),
    ("usercom", "429", "of its 2.5s budget and is asked to wait 1.0s more; last problem: "
     "HTTP 429 (Request was throttled. Expected available in 1 second.). Raise "
     "UserComResource.rate_limit_budget_seconds to wait longer"),
    ("onesignal", "503-empty", "HTTP 503: gave up after 3 attempts"),
    ("actionhub", "reset", "gave up after 3 attempts; last problem: connection failed"),
    ("usercom", "timeout", "gave up after 3 attempts; last problem: timed out after 0.5s"),
    ("onesignal", "truncated", "HTTP 200: gave up after 3 attempts; last problem: body is "
     "not valid JSON"),
    ("usercom", "not-json", "HTTP 200: gave up after 3 attempts; last problem: body is not "
     "valid JSON (starts '<!DOCTYPE html>"),
    ("actionhub", "wrong-shape", "unexpected body: missing list 'items'"),
    ("usercom", "wrong-shape", "unexpected body: missing list 'results'"),
    ("onesignal", "wrong-shape", "unexpected body: missing list 'segments'"),
    # a garbled total spoils the whole page (a record's bad count only that record)
    ("onesignal", "bad-count", "'total_count' is 'lots', not a non-negative integer"),
]  # fmt: skip
ENDPOINT = {  # provider and endpoint, then the status or the problem
    "actionhub": r"actionhub GET /segments[ :]",
    "usercom": r"usercom GET /segments/[ :]",
    "onesignal": r"onesignal GET /apps/0b6f5a52-95b7-4a54-8d3f-6a3c1f2f6b10/segments[/ :]",
}


@pytest.mark.parametrize(
    ("provider", "fault", "says"), PERSISTENT, ids=[f"{p}-{f}" for p, f, _ in PERSISTENT]
)
def test_a_fault_that_persists_fails_the_run_clearly_and_stores_nothing(
    provider, fault, says, emulator, fast, instance, duckdb_path
):
    emulator.state.set_faults(provider, fail_always=fault, timeout_sleep_s=1.0)

    result = materialize(fast, instance, YESTERDAY, providers=[provider])

    assert not result.success
    message = failure_text(result)
    assert re.search(ENDPOINT[provider], message), message
    assert says in message
    assert stored(duckdb_path, provider).empty
    asset_key = dg.AssetKey(f"{provider}_segments")
    assert instance.get_latest_materialization_event(asset_key) is None


def test_a_failed_rerun_keeps_the_rows_the_partition_already_had(
    emulator, fast, instance, duckdb_path
):
    first = materialize(fast, instance, YESTERDAY)
    assert first.success
    before = {p: stored(duckdb_path, p, YESTERDAY) for p in PROVIDERS}
    assert all(len(frame) > 0 for frame in before.values())

    for provider in PROVIDERS:
        emulator.state.set_faults(provider, fail_always="503-html")
    second = materialize(fast, instance, YESTERDAY)

    assert not second.success
    failed = {e.step_key for e in second.all_events if e.event_type_value == "STEP_FAILURE"}
    assert failed == {f"{p}_segments" for p in PROVIDERS}
    for provider in PROVIDERS:
        after = stored(duckdb_path, provider, YESTERDAY)
        assert after.equals(before[provider]), f"{provider} rows changed by a failed run"


@pytest.mark.slow
def test_an_outage_is_not_a_drop_and_the_real_drop_is_reported_once_the_data_arrives(
    emulator, fast, instance, duckdb_path, receiver
):
    hook = "/alerts"
    alerts = DropAlerts(alert_webhook_url=receiver.url(hook))
    write_history(emulator, fast, duckdb_path, days(YESTERDAY - dt.timedelta(days=1), 8))
    truth = [t for t in emulator.state.truth("onesignal") if t["subscriber_count"]]
    largest = max(truth, key=lambda t: t["subscriber_count"])
    emulator.state.plant_drop("onesignal", ONESIGNAL_APP, largest["id"], start=YESTERDAY)
    emulator.state.set_date(YESTERDAY)

    # OneSignal is down all day: the partition fails and stores nothing
    emulator.state.set_faults("onesignal", fail_always="503-html")
    assert not materialize(fast, instance, YESTERDAY, providers=["onesignal"]).success
    assert stored(duckdb_path, "onesignal", YESTERDAY).empty

    first = tick(instance, None, alerts)
    assert receiver.requests == []  # no alert for the missing partition
    assert "0 alert(s)" in first.skip_reason.skip_message

    # it comes back; the re-run stores the day, and the one real drop is reported once
    emulator.state.clear_faults()
    assert materialize(fast, instance, YESTERDAY, providers=["onesignal"]).success
    second = tick(instance, first.cursor, alerts)
    [alert] = receiver.delivered(hook)
    assert [d["segment_id"] for d in alert["drops"]] == [largest["id"]]
    tick(instance, second.cursor, alerts)
    assert len(receiver.requests) == 1


def tick(instance, cursor, alerts) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": alerts}
    )
    return segment_drop_sensor(context)
