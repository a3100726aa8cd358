"""The drop sensor on a real instance: real materialisations, real webhooks on loopback."""

from __future__ import annotations

import datetime as dt
import json
import re

import dagster as dg
import pandas as pd
import pytest

from segment_assets.defs.alert_payload import DropAlert
from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.drops import PROVIDER_TABLES, by_table, flag_drops
from segment_assets.defs.sensor_cursor import CursorError, DropSensorCursor
from segment_assets.defs.sensors import DropSensorTick, segment_drop_sensor
from segment_assets.providers import registry, schema
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.duckdb_files import connect

from .conftest import YESTERDAY
from .drop_story import (
    APP_ID,
    ASSET,
    ERROR_DROP,
    days,
    drop_frame,
    largest_segments,
    small_config,
    snapshot,
    write_history,
)
from .webhook_receiver import Receiver, free_port

SLACK_PATH = "/services/T0000/B0000/slack-secret-part"
HOOK_PATH = "/alerts?token=hook-secret-part"


@pytest.fixture
def emulator_config():
    return small_config()


def tick(instance: dg.DagsterInstance, cursor: str | None, alerts: DropAlerts) -> dg.SensorResult:
    """One sensor evaluation, as the daemon runs it, from the cursor it stored last time."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": alerts}
    )
    result = segment_drop_sensor(context)
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    return result


def run_tick(
    instance: dg.DagsterInstance,
    alerts: DropAlerts,
    log,
    database: str,
    cursor: DropSensorCursor,
    out_of_time,
) -> DropSensorTick:
    """One tick on ``cursor`` as of today (yesterday's partition is 1 day old), with the
    given time budget; returns the tick for its report."""
    tick = DropSensorTick(
        instance=instance,
        alerts=alerts,
        log=log,
        store=DuckDBStore(database),
        today=YESTERDAY + dt.timedelta(days=1),
        out_of_time=out_of_time,
    )
    tick.run(cursor)
    return tick


def names_in(body: dict) -> set[str]:
    return {d["segment_name"] for d in body["drops"]}


@pytest.mark.slow
def test_a_new_drop_alerts_once_per_partition_and_backfills_stay_quiet(
    emulator, resources, instance, duckdb_path, receiver
):
    (old_id, old_name), (new_id, new_name), (next_id, next_name) = largest_segments(emulator, 3)
    alerts = DropAlerts(
        slack_webhook_url=receiver.url(SLACK_PATH),
        alert_webhook_url=receiver.url(HOOK_PATH),
        webserver_url="http://dagster.example:3000",
    )
    backfilled = YESTERDAY - dt.timedelta(days=4)  # older than the default 2 days
    write_history(emulator, resources, duckdb_path, days(backfilled - dt.timedelta(days=1), 8))
    emulator.state.plant_drop(
        "onesignal", APP_ID, old_id, start=backfilled, factor=0.1, end=YESTERDAY
    )
    emulator.state.plant_drop("onesignal", APP_ID, new_id, start=YESTERDAY, factor=0.1)
    assert snapshot(emulator, resources, instance, backfilled).success
    assert snapshot(emulator, resources, instance, YESTERDAY).success
    old_drops = flag_drops(DuckDBStore(duckdb_path), [ASSET], backfilled).drops
    assert len(old_drops) == 1  # a drop, but an old one

    first = tick(instance, None, alerts)
    [slack] = receiver.delivered(SLACK_PATH)
    [hook] = receiver.delivered(HOOK_PATH)
    assert hook["version"] == 1
    assert (hook["partition"], hook["provider"], hook["account"], hook["asset"]) == (
        YESTERDAY.isoformat(),
        "onesignal",
        APP_ID,
        ASSET,
    )
    assert names_in(hook) == {new_name}
    [drop] = hook["drops"]
    assert (
        drop["severity"] == "ERROR"
        and drop["drop_pct"] > 80
        and drop["user_count"] < drop["before"]
    )
    assert hook["url"] == (
        "http://dagster.example:3000/assets/onesignal_segments"
        f"?view=partitions&partition={YESTERDAY.isoformat()}"
    )
    assert new_name in slack["text"] and "→" in slack["text"] and "−9" in slack["text"]
    assert hook["url"] in slack["text"]
    assert old_name not in json.dumps([slack, hook])
    assert "too old" in first.skip_reason.skip_message

    # The next tick, from the stored cursor, finds nothing new and sends nothing.
    second = tick(instance, first.cursor, alerts)
    assert len(receiver.requests) == 2
    assert "0 new partition(s), 0 alert(s)" in second.skip_reason.skip_message

    # A partition materialised later is picked up from where the cursor left off.
    emulator.state.plant_drop(
        "onesignal", APP_ID, next_id, start=YESTERDAY - dt.timedelta(days=1), factor=0.1
    )
    assert snapshot(emulator, resources, instance, YESTERDAY - dt.timedelta(days=1)).success
    tick(instance, second.cursor, alerts)
    assert len(receiver.requests) == 4
    assert names_in(receiver.delivered(HOOK_PATH)[-1]) == {next_name}


@pytest.mark.slow
def test_a_channel_that_is_down_gets_the_alert_later_and_the_others_get_it_once(
    emulator, resources, instance, duckdb_path, receiver, capfd
):
    (dropped_id, dropped_name), *_ = largest_segments(emulator, 1)
    slack_port = free_port()  # Slack is not listening yet
    alerts = DropAlerts(
        slack_webhook_url=f"http://127.0.0.1:{slack_port}{SLACK_PATH}",
        alert_webhook_url=receiver.url(HOOK_PATH),
        connect_timeout_seconds=1,
        read_timeout_seconds=2,
    )
    receiver.status[HOOK_PATH] = 500  # the JSON webhook answers with an error
    write_history(emulator, resources, duckdb_path, days(YESTERDAY - dt.timedelta(days=1), 8))
    emulator.state.plant_drop("onesignal", APP_ID, dropped_id, start=YESTERDAY, factor=0.1)
    assert snapshot(emulator, resources, instance, YESTERDAY).success

    first = tick(instance, None, alerts)
    assert receiver.attempts(HOOK_PATH) == 1 and not receiver.delivered(HOOK_PATH)
    pending = DropSensorCursor.parse(first.cursor).pending
    assert [entry["channels"] for entry in pending.values()] == [["slack", "webhook"]]

    with Receiver(slack_port) as slack:  # Slack comes back; the webhook still fails
        second = tick(instance, first.cursor, alerts)
        assert [names_in_text(b) for b in slack.delivered(SLACK_PATH)] == [dropped_name]
        assert receiver.attempts(HOOK_PATH) == 2 and not receiver.delivered(HOOK_PATH)

        receiver.status[HOOK_PATH] = 200  # the webhook recovers
        third = tick(instance, second.cursor, alerts)
        [hook] = receiver.delivered(HOOK_PATH)
        assert names_in(hook) == {dropped_name}
        assert len(slack.requests) == 1  # Slack is not sent the same alert again

        tick(instance, third.cursor, alerts)
        assert len(slack.requests) == 1 and receiver.attempts(HOOK_PATH) == 3
    assert DropSensorCursor.parse(third.cursor).pending == {}

    logged = capfd.readouterr().err  # the Dagster log of the ticks
    assert "slack failed (ConnectionError)" in logged and "webhook failed (HTTP 500)" in logged
    assert "secret-part" not in logged and str(slack_port) not in logged


def names_in_text(body: dict) -> str:
    """The segment named on the Slack message's only drop line."""
    [line] = [line for line in body["text"].splitlines() if line.startswith("•")]
    return line.removeprefix("• ").split(" (", 1)[0]


def test_the_code_location_runs_the_sensor_by_default_with_its_alert_channels():
    from segment_assets.definitions import defs

    sensor = defs.resolve_sensor_def("segment_drop_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.required_resource_keys == {"alerts"}
    assert "backfills stay quiet" in sensor.description
    dg.Definitions.validate_loadable(defs)


def test_a_tick_that_runs_out_of_time_keeps_its_place(
    emulator, resources, instance, duckdb_path, receiver, log
):
    for day in days(YESTERDAY, 2):
        assert snapshot(emulator, resources, instance, day).success
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK_PATH))

    def run(cursor: DropSensorCursor, out_of_time) -> DropSensorTick:
        return run_tick(instance, alerts, log, duckdb_path, cursor, out_of_time)

    budget = iter([False, True])  # time for one partition only
    cursor = DropSensorCursor()
    first = run(cursor, lambda: next(budget))
    assert (first.report.partitions, first.report.stopped) == (1, "time budget")
    seen = cursor.after[ASSET]
    second = run(cursor, lambda: False)
    assert (second.report.partitions, second.report.stopped) == (1, None)
    assert cursor.after[ASSET] > seen
    assert not receiver.requests  # a day or two of history: nothing to judge yet


# -- several providers at once -------------------------------------------------------------
# A store written directly (as the IO manager would), with materialisations reported to a
# real instance: three provider tables, a month of steady segments each.
STEADY_DAYS, STEADY_SEGMENTS = 30, 12
PLANTED = {"actionhub_segments": 3, "onesignal_segments": 5}  # table → segment dropping 90 %


def write_steady_store(path: str, last: dt.date) -> None:
    """A month of ``STEADY_SEGMENTS`` segments per provider up to ``last``; on ``last`` one
    segment of ActionHub and one of OneSignal lose 90 % (User.com stays steady, each count
    a fresh recount: ``last_counted`` moves every day)."""
    first = last - dt.timedelta(days=STEADY_DAYS - 1)
    with connect(path) as conn:
        conn.execute("create schema if not exists segments")
        for provider in registry.NAMES:
            table = f"{provider}_segments"
            dropping = PLANTED.get(table, -1)
            values = {
                "snapshot_date": "$first::date + d::int",
                "provider": f"'{provider}'",
                "account": f"'{provider}-account'",
                "segment_id": "'seg-' || s",
                "segment_name": f"'{provider} segment ' || s",
                "user_count": (
                    "((2000 + 300 * s + hash(s, d) % 40) * "
                    f"(CASE WHEN d = {STEADY_DAYS - 1} AND s = {dropping} THEN 0.1 ELSE 1 END)"
                    ")::bigint"
                ),
                "last_counted": "($first::date + d::int)::timestamp + interval 3 hour",
            }
            columns = schema.columns(provider)
            conn.execute(
                f"create table segments.{table} "
                f"({', '.join(f'{c.name} {c.sql_type}' for c in columns)})"
            )
            conn.execute(
                f"insert into segments.{table} select "
                f"{', '.join(values.get(c.name, 'NULL') for c in columns)} "
                f"from range({STEADY_DAYS}) t(d), range({STEADY_SEGMENTS}) u(s)",
                {"first": first},
            )


def report(instance: dg.DagsterInstance, asset: str, day: dt.date) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=asset, partition=day.isoformat())
    )


@pytest.fixture
def history_reads(monkeypatch) -> list[tuple[str, ...]]:
    """The tables of each history read (the real read, counted)."""
    reads: list[tuple[str, ...]] = []
    real = DuckDBStore.read_history

    def counted(store: DuckDBStore, tables, *args, **kwargs):
        reads.append(tuple(tables))
        return real(store, tables, *args, **kwargs)

    monkeypatch.setattr(DuckDBStore, "read_history", counted)
    return reads


def test_a_day_of_three_providers_is_judged_with_one_read_and_alerts_once_per_provider(
    instance, duckdb_path, receiver, history_reads
):
    write_steady_store(duckdb_path, YESTERDAY)
    for table in PROVIDER_TABLES:
        report(instance, table, YESTERDAY)
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK_PATH))

    first = tick(instance, None, alerts)
    assert history_reads == [PROVIDER_TABLES]
    assert "3 new partition(s), 2 alert(s)" in first.skip_reason.skip_message
    hooks = {hook["asset"]: hook for hook in receiver.delivered(HOOK_PATH)}
    assert set(hooks) == set(PLANTED)
    for table, planted in PLANTED.items():
        provider = table.removesuffix("_segments")
        assert (hooks[table]["provider"], hooks[table]["partition"]) == (
            provider,
            YESTERDAY.isoformat(),
        )
        assert names_in(hooks[table]) == {f"{provider} segment {planted}"}

    # Nothing new: no read, no alert.
    second = tick(instance, first.cursor, alerts)
    assert "0 new partition(s), 0 alert(s)" in second.skip_reason.skip_message
    assert len(history_reads) == 1 and len(receiver.requests) == 2


def test_a_tick_stopped_between_days_resumes_with_the_next_day_of_every_provider(
    instance, duckdb_path, receiver, log, history_reads
):
    write_steady_store(duckdb_path, YESTERDAY)
    before = YESTERDAY - dt.timedelta(days=1)
    for asset in ("actionhub_segments", "usercom_segments"):
        report(instance, asset, before)
    for table in PROVIDER_TABLES:
        report(instance, table, YESTERDAY)
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK_PATH))

    def run(cursor: DropSensorCursor, out_of_time) -> DropSensorTick:
        return run_tick(instance, alerts, log, duckdb_path, cursor, out_of_time)

    budget = iter([False, True])  # time for one day only
    cursor = DropSensorCursor()
    first = run(cursor, lambda: next(budget))
    assert (first.report.partitions, first.report.alerts, first.report.stopped) == (
        2,
        0,
        "time budget",
    )
    assert history_reads == [("actionhub_segments", "usercom_segments")]
    assert "onesignal_segments" not in cursor.after

    second = run(cursor, lambda: False)
    assert (second.report.partitions, second.report.alerts, second.report.stopped) == (3, 2, None)
    assert history_reads[1:] == [PROVIDER_TABLES]
    assert run(cursor, lambda: False).report.partitions == 0
    assert sorted(hook["asset"] for hook in receiver.delivered(HOOK_PATH)) == sorted(PLANTED)


def test_the_drops_of_several_tables_split_per_table_are_each_tables_own(duckdb_path):
    write_steady_store(duckdb_path, YESTERDAY)
    store = DuckDBStore(duckdb_path)
    together = by_table(flag_drops(store, PROVIDER_TABLES, YESTERDAY).drops, PROVIDER_TABLES)
    assert list(together) == list(PROVIDER_TABLES)
    for table in PROVIDER_TABLES:
        alone = flag_drops(store, [table], YESTERDAY).drops
        pd.testing.assert_frame_equal(together[table], alone)
        assert len(alone) == (1 if table in PLANTED else 0)
    dropped = together["onesignal_segments"].iloc[0]
    assert (dropped["segment_id"], dropped["severity"]) == ("seg-5", "ERROR")
    assert dropped["before"] > 5 * dropped["user_count"]  # its last count before the day


# -- a cursor the sensor cannot read -------------------------------------------------------


def test_a_cursor_of_another_version_fails_the_tick_and_says_how_to_start_over(
    instance, duckdb_path, receiver
):
    write_steady_store(duckdb_path, YESTERDAY)
    for table in PROVIDER_TABLES:
        report(instance, table, YESTERDAY)
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK_PATH))
    # What a later release might store: its positions under names this code does not know.
    later = json.dumps({"version": 2, "positions": {"onesignal_segments": [12, 40]}})

    context = dg.build_sensor_context(instance=instance, cursor=later, resources={"alerts": alerts})
    with pytest.raises(CursorError) as failed:
        segment_drop_sensor(context)
    message = str(failed.value)
    assert message.startswith(
        "segment_drop_sensor cannot read its cursor: the cursor has version 2, and this code "
        "reads version 1 only"
    )
    assert "`dagster sensor cursor segment_drop_sensor --delete`" in message
    assert "alerts again for partitions up to 2 days old" in message
    assert not receiver.requests  # nothing was judged from a misread cursor

    # Deleted as the message says, the cursor starts over and the day's drops are alerted.
    restarted = tick(instance, None, alerts)
    assert "3 new partition(s), 2 alert(s)" in restarted.skip_reason.skip_message
    assert DropSensorCursor.parse(restarted.cursor).after.keys() == set(PROVIDER_TABLES)


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ('{"after": {"onesignal_segments": 12}', "the cursor is not JSON"),
        ("12", "the cursor has no version"),
        ('{"after": {"onesignal_segments": 12}}', "the cursor has no version"),
        ('{"version": "1", "after": {}}', "the cursor has version '1'"),
        (
            '{"version": 1, "after": {"onesignal_segments": "last week"}}',
            "after.onesignal_segments: Input should be a valid integer",
        ),
        (
            '{"version": 1, "after": {}, "pending": {"k": {"channels": ["slack"]}}}',
            "pending.k.alert: Field required",
        ),
        ('{"version": 1, "afterwards": {}}', "afterwards: Extra inputs are not permitted"),
    ],
)
def test_a_cursor_that_is_not_what_the_sensor_writes_is_refused_naming_the_problem(
    stored: str, problem: str
):
    with pytest.raises(CursorError, match=re.escape(problem)):
        DropSensorCursor.parse(stored)


def test_an_undelivered_alert_of_another_payload_version_is_refused_not_resent(
    instance, duckdb_path, receiver
):
    waiting = DropAlert.from_drops(
        ASSET, YESTERDAY.isoformat(), drop_frame(ERROR_DROP), "http://dagster.example"
    )
    cursor = DropSensorCursor(pending={waiting.key: {"alert": waiting.payload(), "channels": []}})
    assert DropSensorCursor.parse(cursor.serialize()) == cursor  # what it writes, it reads
    cursor.pending[waiting.key]["alert"]["version"] = 3
    cursor.pending[waiting.key]["channels"] = ["webhook"]
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor.serialize(),
        resources={"alerts": DropAlerts(alert_webhook_url=receiver.url(HOOK_PATH))},
    )
    with pytest.raises(CursorError, match=f"the undelivered alert {waiting.key}: the alert "
                       "payload has version 3, and this code reads version 1 only"):  # fmt: skip
        segment_drop_sensor(context)
    assert not receiver.requests
