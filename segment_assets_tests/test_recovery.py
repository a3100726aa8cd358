"""Recovery: a segment that alerted and is back gets one "recovered" message, and its
incident, kept in the store, closes. The real drop sensor on a real instance, over days
written through either store."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pytest

from segment_assets.acks import Ack, add_ack
from segment_assets.config.errors import ConfigurationError
from segment_assets.defs import sensors
from segment_assets.defs.alerts import DropAlerts, alerts_from_env
from segment_assets.defs.incident_log import (
    DROPPED_AGAIN,
    INCIDENT_TYPES,
    INCIDENTS_TABLE,
    OPEN_DAYS,
    IncidentLog,
    expired,
)
from segment_assets.defs.sensor_cursor import DropSensorCursor
from segment_assets.defs.sensors import build_drop_sensor
from segment_assets.detection.recovery import judge_recovery
from segment_assets.store import DATABASE_URL_ENV, SegmentStore, store_from_env
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.duckdb_files import connect
from segment_assets.store.pg_locks import advisory_key

from .conftest import YESTERDAY
from .drop_story import ERROR_DROP, drop_frame
from .incident_story import level, report, write_day, write_days

SLACK, HOOK = "/slack", "/hook"
BROKEN, STEADY = "broken-app", "steady-app"
APPS = {BROKEN: 6, STEADY: 6}
LABELS = {BROKEN: "Web app"}
SENSOR = build_drop_sensor()


@pytest.fixture(autouse=True)
def five_days_of_alerts(tmp_path, monkeypatch):
    """An accounts file that lets the sensor alert for the last five days, so a story of
    four days is told from its start."""
    config = tmp_path / "segment_assets.yaml"
    config.write_text("detection:\n  alert_max_age_days: 5\n")
    monkeypatch.setenv("SEGMENT_ASSETS_CONFIG", str(config))


@pytest.fixture
def instance():
    """A real instance keeping its event log in memory (quick to make)."""
    return dg.DagsterInstance.ephemeral()


def tick(instance: dg.DagsterInstance, cursor: str | None, alerts: DropAlerts) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": alerts}
    )
    result = SENSOR(context)
    assert isinstance(result, dg.SensorResult)
    return result


def incidents(store: SegmentStore) -> pd.DataFrame:
    rows = store.read_rows(INCIDENTS_TABLE)
    for name in ("opened_on", "closed_on"):
        rows[name] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in rows[name]]
    return rows.set_index("segment_id").sort_index()


def readme_open_incidents(store: SegmentStore) -> list[tuple]:
    """The rows of the README's query of the open incidents, run on ``store``."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [query] = re.findall(r"```sql\n(.*?segments\.segment_incidents.*?)```", readme, re.S)
    if isinstance(store, DuckDBStore):
        with connect(store.database, read_only=True) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(os.environ[DATABASE_URL_ENV]) as conn:
        return conn.execute(query).fetchall()


def test_a_drop_alerts_once_stays_quiet_while_low_and_one_recovered_message_closes_it(
    any_store: SegmentStore, instance, receiver
):
    first = YESTERDAY - dt.timedelta(days=3)
    write_days(any_store, first - dt.timedelta(days=9), first - dt.timedelta(days=1), APPS)
    alerts = DropAlerts(slack_webhook_url=receiver.url(SLACK), alert_webhook_url=receiver.url(HOOK))
    cursor: str | None = None

    def next_day(n: int, changed: dict) -> str:
        nonlocal cursor
        day = first + dt.timedelta(days=n)
        write_day(any_store, day, APPS, changed)
        report(instance, day, LABELS)
        result = tick(instance, cursor, alerts)
        cursor = result.cursor
        return result.skip_reason.skip_message

    # Day 0: the broken app's integration returns zeros for four of its six segments, and
    # one segment of the steady app loses 90 %.
    zeros = {(BROKEN, s): 0.0 for s in range(4)}
    assert "2 alert(s)" in next_day(0, zeros | {(STEADY, 1): 0.1})
    broken, steady = sorted(receiver.delivered(HOOK), key=lambda h: h["account"])
    assert (broken["kind"], broken["account_name"], broken["drop_count"]) == ("drops", "Web app", 4)
    assert {k: broken["incident"][k] for k in ("scope", "fell", "of", "median_drop_pct")} == {
        "scope": "account",
        "fell": 4,
        "of": 6,
        "median_drop_pct": 100.0,
    }
    assert [d["segment_id"] for d in broken["incident"]["largest"]] == [
        f"{BROKEN}-seg-{s}" for s in (3, 2, 1, 0)
    ]
    assert (steady["incident"]["scope"], steady["incident"]["fell"]) == ("segment", 1)
    broken_text = next(s["text"] for s in receiver.delivered(SLACK) if BROKEN in s["text"])
    assert (
        "Account-wide: 4 of 6 segments fell, by a median of −100 %; the largest 4:" in broken_text
    )
    opened = incidents(any_store)
    assert len(opened) == 5 and opened["closed_on"].isna().all()
    assert set(opened["opened_on"]) == {first}
    assert opened.groupby("scope").size().to_dict() == {"account": 4, "segment": 1}

    # Day 1: still low, and the steady app's segment climbs part of the way: quiet.
    still = zeros | {(STEADY, 1): 0.1}
    assert "1 new partition(s), 0 alert(s)" in next_day(1, still)
    assert len(receiver.requests) == 4

    # Day 2: the broken app is back; the steady app's segment is 40 % under (not back). The
    # webhook is down when the recovered message goes out.
    receiver.status[HOOK] = 500
    assert "1 alert(s)" in next_day(2, {(STEADY, 1): 0.6})
    recovered_slack = receiver.delivered(SLACK)[-1]["text"]
    day2 = (first + dt.timedelta(days=2)).isoformat()
    assert recovered_slack.startswith(
        f":white_check_mark: *4 OneSignal segments recovered on {day2} in Web app ({BROKEN})*"
    )
    assert f"• {BROKEN} segment 3 ({BROKEN}-seg-3): 0 → " in recovered_slack
    assert f"(dropped on {first.isoformat()})" in recovered_slack
    assert list(DropSensorCursor.parse(cursor).pending) == [
        f"onesignal_segments|{day2}|{BROKEN}|recovered"
    ]
    after = incidents(any_store)
    closed = after[after["account"] == BROKEN]
    assert set(closed["closed_on"]) == {first + dt.timedelta(days=2)}
    assert set(closed["closed_why"]) == {"recovered"}
    assert after.loc[f"{STEADY}-seg-1", "closed_on"] is None
    [still_open] = readme_open_incidents(any_store)
    assert still_open[1:] == ("onesignal", STEADY, f"{STEADY} segment 1", "segment", "ERROR")

    # Day 3: the webhook is back and gets the recovered message it missed. Recovery messages
    # are now switched off: the steady app's segment is back, its incident closes, unsaid.
    receiver.status[HOOK] = 200
    alerts = DropAlerts(
        slack_webhook_url=receiver.url(SLACK),
        alert_webhook_url=receiver.url(HOOK),
        recovery_messages=False,
    )
    assert "0 alert(s); 1 earlier alert(s) delivered" in next_day(3, {})
    late = receiver.delivered(HOOK)[-1]
    assert (late["kind"], late["recovered_count"], late["partition"]) == ("recovered", 4, day2)
    for segment in late["recovered"]:
        s = int(segment["segment_id"].rsplit("-", 1)[1])
        assert segment["opened_on"] == first.isoformat() and segment["low"] == 0
        assert abs(segment["user_count"] - level(s)) < 0.05 * level(s)
        assert segment["scope"] == "account"
    assert not any(STEADY in str(r.body) for r in receiver.requests[-2:])
    closed = incidents(any_store)
    assert closed.loc[f"{STEADY}-seg-1", "closed_why"] == "recovered"
    assert closed["closed_on"].notna().all()

    # Nothing new: nothing sent.
    sent = len(receiver.requests)
    tick(instance, cursor, alerts)
    assert len(receiver.requests) == sent


def test_a_fall_under_a_mute_that_is_back_before_it_ends_alerts_nobody_on_either_store(
    any_store: SegmentStore, instance, receiver
):
    """The incidents table was written before incidents knew whether they alerted: its
    open incident counts as alerted, and the table gains the column on the next write."""
    first = YESTERDAY - dt.timedelta(days=2)
    write_days(any_store, first - dt.timedelta(days=9), first - dt.timedelta(days=1), APPS)
    earlier = first - dt.timedelta(days=1)
    old_columns = {k: v for k, v in INCIDENT_TYPES.items() if k != "alerted"}
    steady = {"provider": "onesignal", "account": STEADY, "segment_id": f"{STEADY}-seg-1"}
    any_store.append_rows(
        INCIDENTS_TABLE,
        pd.DataFrame([{**steady, "incident_id": f"onesignal|{STEADY}|{STEADY}-seg-1|{earlier}",
                       "segment_name": f"{STEADY} segment 1", "opened_on": earlier,
                       "scope": "segment", "severity": "ERROR", "reason": "−90 %",
                       "user_count": 270, "expected": 2700.0, "vanished": False}]),
        old_columns,
    )  # fmt: skip
    # The broken app's integration is being rebuilt: the whole app is muted up to day 1.
    until = first + dt.timedelta(days=1)
    add_ack(any_store, Ack("mb", "mute", "onesignal", BROKEN, None, None, until, "rebuild",
                           dt.datetime(2026, 1, 1)))  # fmt: skip
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK))
    cursor: str | None = None
    for n, changed in enumerate([{(BROKEN, 2): 0.1}, {}, {}]):
        day = first + dt.timedelta(days=n)
        write_day(any_store, day, APPS, changed)
        report(instance, day, LABELS)
        cursor = tick(instance, cursor, alerts).cursor

    # Day 0: the steady app's old incident is back (one recovered message); the broken
    # app's segment falls under the mute (nothing said). Day 1: it is back while the mute
    # still holds: its incident closes, unsaid. Day 2: nothing.
    [recovered] = receiver.delivered(HOOK)
    assert (recovered["kind"], recovered["account"]) == ("recovered", STEADY)
    rows = incidents(any_store)
    muted_fall = rows.loc[f"{BROKEN}-seg-2"]
    assert (muted_fall["opened_on"], muted_fall["closed_on"]) == (first, first + dt.timedelta(1))
    assert (muted_fall["closed_why"], bool(muted_fall["alerted"])) == ("recovered", False)
    assert rows.loc[f"{STEADY}-seg-1", "closed_why"] == "recovered"
    assert pd.isna(rows.loc[f"{STEADY}-seg-1", "alerted"])  # as written, read as alerted


def test_the_recovery_switch_takes_on_or_off_and_says_what_else_it_takes(monkeypatch):
    for value, on in (("", True), ("ON", True), ("false", False), ("0", False)):
        monkeypatch.setenv("ALERT_RECOVERIES", value)
        assert alerts_from_env().recovery_messages is on
    monkeypatch.setenv("ALERT_RECOVERIES", "sometimes")
    with pytest.raises(
        ConfigurationError, match="ALERT_RECOVERIES must be on or off .* 'sometimes'"
    ):
        alerts_from_env()


# -- what "back" means, and how incidents end -------------------------------------------------


def one_segment(counts: list[int], last: dt.date) -> pd.DataFrame:
    days = [last - dt.timedelta(days=len(counts) - 1 - i) for i in range(len(counts))]
    return pd.DataFrame(
        {
            "provider": "onesignal",
            "account": "app",
            "segment_id": "seg",
            "segment_name": "Paying users",
            "snapshot_date": days,
            "user_count": pd.array(counts, dtype="Int64"),
        }
    )


def test_a_segment_is_back_once_within_the_recovery_band_of_its_level_before_the_drop():
    rng = np.random.default_rng(3)
    steady = [int(5000 * np.exp(0.01 * e)) for e in rng.standard_normal(30)]
    climb = [500] * 10 + [2000, 4000, 4400, 4900]  # 90 % down, then back step by step
    history = one_segment(steady + climb, dt.date(2026, 3, 20))
    watched = history[["provider", "account", "segment_id"]].head(1)
    days = sorted(history["snapshot_date"])[-len(climb) :]
    judged = [judge_recovery(history, day, watched).iloc[0] for day in days]
    assert [bool(j["back"]) for j in judged] == [False] * 12 + [True, True]
    # back within 15 % (half of min_drop_pct) of the level before the drop, not of the low
    assert all(abs(j["expected"] - 5000) < 150 for j in judged)
    assert judged[11]["drop_pct"] > 15 > judged[12]["drop_pct"]


def test_an_incident_ends_as_dropped_again_or_expired_and_is_never_opened_twice(tmp_path):
    log = IncidentLog(DuckDBStore(str(tmp_path / "s.duckdb")), lock_wait_seconds=5)
    day = dt.date(2026, 3, 1)
    drops = drop_frame(ERROR_DROP)
    assert log.open(drops, day) == 1
    assert log.open(drops, day) == 0  # the partition judged again
    later = day + dt.timedelta(days=9)
    assert log.open(drops, later) == 1
    rows = log.rows().sort_values("opened_on")
    assert list(rows["closed_why"].fillna("open")) == [DROPPED_AGAIN, "open"]
    watch = log.watch(["onesignal"], later + dt.timedelta(days=OPEN_DAYS - 1))
    assert list(expired(watch, later + dt.timedelta(days=OPEN_DAYS - 1))) == [False]
    assert list(expired(watch, later + dt.timedelta(days=OPEN_DAYS))) == [True]


def test_a_store_busy_while_incidents_are_opened_stops_the_tick_before_any_alert_is_sent(
    database, instance, receiver, monkeypatch
):
    """Another writer holds the incidents table longer than the tick may wait: the tick
    stops before sending anything, keeps its place, and the next tick alerts once."""
    monkeypatch.setenv(DATABASE_URL_ENV, database.url)
    monkeypatch.setattr(sensors, "LOCK_WAIT_SECONDS", 0.5)
    store = store_from_env()
    day = YESTERDAY
    write_days(store, day - dt.timedelta(days=10), day - dt.timedelta(days=1), APPS)
    write_day(store, day, APPS, {(STEADY, 1): 0.1})
    report(instance, day, LABELS)
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK))

    with psycopg.connect(database.url) as other:  # in a transaction until the block ends
        other.execute(
            "SELECT pg_advisory_xact_lock(%s)",
            [advisory_key("table", store.schema, INCIDENTS_TABLE)],
        )
        busy = tick(instance, None, alerts)
        assert "stopped early: store busy" in busy.skip_reason.skip_message
        assert receiver.delivered(HOOK) == []

    result = tick(instance, busy.cursor, alerts)
    assert "1 alert(s)" in result.skip_reason.skip_message
    [sent] = receiver.delivered(HOOK)
    assert (sent["kind"], sent["drop_count"]) == ("drops", 1)
    assert len(incidents(store)) == 1
    assert "0 alert(s)" in tick(instance, result.cursor, alerts).skip_reason.skip_message
    assert len(receiver.delivered(HOOK)) == 1
