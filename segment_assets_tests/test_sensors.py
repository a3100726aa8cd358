"""The drop sensor on a real instance: real materialisations, real webhooks on loopback."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

from segment_assets.alerts import DropAlerts
from segment_assets.drops import flag_drops
from segment_assets.sensors import DropSensorCursor, DropSensorTick, segment_drop_sensor

from .conftest import YESTERDAY
from .drop_story import APP_ID, ASSET, days, largest_segments, small_config, snapshot, write_history
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
    assert len(flag_drops(duckdb_path, [ASSET], backfilled)) == 1  # a drop, but an old one

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
        tick = DropSensorTick(
            instance=instance,
            alerts=alerts,
            log=log,
            database=duckdb_path,
            today=YESTERDAY + dt.timedelta(days=1),
            max_age_days=2,
            out_of_time=out_of_time,
        )
        tick.run(cursor)
        return tick

    budget = iter([False, True])  # time for one partition only
    cursor = DropSensorCursor()
    first = run(cursor, lambda: next(budget))
    assert (first.report.partitions, first.report.stopped) == (1, "time budget")
    seen = cursor.after[ASSET]
    second = run(cursor, lambda: False)
    assert (second.report.partitions, second.report.stopped) == (1, None)
    assert cursor.after[ASSET] > seen
    assert not receiver.requests  # a day or two of history: nothing to judge yet
