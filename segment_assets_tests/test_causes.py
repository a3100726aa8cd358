"""Causes in the alert: a segment whose definition changed just before it fell is flagged
"definition changed on <date>", so the team looks at the filter, not at tracking.

The real clients against the emulator over a socket store each segment's definition time;
the drops read from a real store (a DuckDB file and a PostgreSQL database) carry the day
of the change; the check, the ``segment_drops`` table and the alert say it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import dagster as dg
import duckdb
import pandas as pd
import pytest
import requests

from segment_assets.config.detection import detection_settings_from_env
from segment_assets.defs.alert_payload import DropAlert
from segment_assets.defs.alert_text import log_text, slack_message
from segment_assets.defs.assets import segment_drops
from segment_assets.defs.checks import check_result
from segment_assets.defs.drops import DROPS_COLUMNS, flag_drops, to_table
from segment_assets.defs.drops_shown import drops_markdown
from segment_assets.detection.causes import definition_changed_on
from segment_assets.emulator import EmulatorConfig, EmulatorServer, OneSignalApp, UserComApp
from segment_assets.providers.onesignal import OneSignalResource
from segment_assets.providers.schema import columns, to_frame
from segment_assets.providers.usercom import UserComResource
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.duckdb_files import io_manager
from segment_assets.store.postgres import PostgresStore

from .conftest import YESTERDAY
from .drop_story import days

APP, APP_KEY = "0b6f5a52-95b7-4a54-8d3f-6a3c1f2f6b10", "os_v2_app_testkeyforthecausetests"
UC_APP, UC_KEY = "acme", "u" * 64
ASSET = "onesignal_segments"
LOG = logging.getLogger("segment_assets_tests")


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        onesignal=[OneSignalApp(APP, APP_KEY, n_segments=10, n_user_based=0, n_deleted=0)],
        usercom=[UserComApp(UC_APP, UC_KEY, n_segments=8)],
    )


def onesignal(emu: EmulatorServer) -> OneSignalResource:
    return OneSignalResource(
        api_key=APP_KEY,
        app_id=APP,
        base_url=emu.base_url("onesignal"),
        max_requests_per_second=None,
        max_concurrency=8,
        env_names={"api_key": "ONESIGNAL_API_KEY", "app_id": "ONESIGNAL_APP_ID"},
    )


def usercom(emu: EmulatorServer) -> UserComResource:
    return UserComResource(
        api_key=UC_KEY,
        base_url=emu.base_url("usercom", UC_APP),
        max_requests_per_second=None,
        env_names={"api_key": "USERCOM_API_KEY"},
    )


def DEFAULT_ID(emu: EmulatorServer) -> str:  # noqa: N802 - reads like the constant it is
    return next(t["id"] for t in emu.state.truth("onesignal", APP) if t["read_only"])


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(frame["segment_id"].astype(str))


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC").tz_localize(None)


# -- what the clients store ------------------------------------------------------------------


def test_the_clients_store_when_each_definition_last_changed_as_the_listings_say(emulator):
    editable = [t["id"] for t in emulator.state.truth("onesignal", APP) if not t["read_only"]]
    edited, plain = editable[:2]
    edit = {"provider": "onesignal", "account": APP, "segment_id": edited}
    said = requests.post(  # as a demo or a script edits it
        f"{emulator.url}/_emulator/edit", json={**edit, "at": f"{YESTERDAY}T09:30:00"}, timeout=5
    )
    assert said.status_code == 200, said.text
    with pytest.raises(ValueError, match="read-only"):  # OneSignal's default segments
        emulator.state.edit_definition("onesignal", APP, DEFAULT_ID(emulator), YESTERDAY)

    frame = by_id(onesignal(emulator).snapshot(YESTERDAY, LOG))

    served = {t["id"]: t for t in emulator.state.truth("onesignal", APP)}
    assert served[edited]["updated_at"] == f"{YESTERDAY}T09:30:00.000Z"  # the edit moved it
    assert len(frame) == len(served)
    for segment_id, row in frame.iterrows():
        listed = served[segment_id]
        assert row["definition_updated_at"] == utc(listed["updated_at"])
        assert row["read_only"] == listed["read_only"]
        assert row["is_active"] == listed["is_active"]
        assert pd.isna(row["problem"])
    assert frame.loc[edited, "definition_updated_at"] == at(YESTERDAY, 9, 30)
    assert frame.loc[plain, "definition_updated_at"].date() < YESTERDAY
    added = {"field": "session_count", "relation": ">", "value": "0"}
    assert served[edited]["filters"][-2:] == [{"operator": "AND"}, added]  # the edit's
    assert json.loads(frame.loc[edited, "filters"]) == served[edited]["filters"]
    assert frame["read_only"].any() and not frame["read_only"].all()  # defaults are read-only


def test_a_usercom_time_stamped_by_a_recount_is_not_read_as_a_definition_change(emulator):
    truth = emulator.state.truth("usercom", UC_APP)
    counted = {t["id"]: utc(t["last_counted"]) for t in truth}
    # one segment is edited after its last recount of the day, another before a recount
    after = next(i for i, t in counted.items() if t < at(YESTERDAY, 11, 50))
    before = next(i for i, t in counted.items() if i != after and t > at(YESTERDAY, 0, 10))
    emulator.state.edit_definition("usercom", UC_APP, after, at(YESTERDAY, 11, 55))
    emulator.state.edit_definition("usercom", UC_APP, before, at(YESTERDAY, 0, 5))

    frame = by_id(usercom(emulator).snapshot(YESTERDAY, LOG))

    served = {str(t["id"]): t for t in emulator.state.truth("usercom", UC_APP)}
    for segment_id, row in frame.iterrows():
        assert row["updated_at"] == utc(served[segment_id]["updated_at"])  # as sent
    assert frame.loc[str(after), "definition_updated_at"] == at(YESTERDAY, 11, 55)
    # User.com touched updated_at when it saved the recount that followed the edit (and when
    # it saved every other recount): that time says nothing about the definition
    assert frame.drop(index=str(after))["definition_updated_at"].isna().all()
    assert frame["problem"].isna().all()


@pytest.mark.parametrize("provider", ["onesignal", "usercom"])
@pytest.mark.parametrize(
    ("kind", "noted"),
    [
        ("missing-updated-at", "updated_at not sent"),
        ("bad-updated-at", "updated_at '0000-00-00 00:00:00' is not a time"),
    ],
    ids=["dropped-field", "no-time"],
)
def test_a_definition_time_the_provider_left_out_or_garbled_is_null_and_noted_not_a_failure(
    provider, kind, noted, emulator
):
    target = str(emulator.state.truth(provider)[2]["id"])
    emulator.state.set_faults(provider, bad_record=kind, bad_record_id=target)
    client = onesignal(emulator) if provider == "onesignal" else usercom(emulator)

    frame = by_id(client.snapshot(YESTERDAY, LOG))

    assert len(frame) == len(emulator.state.truth(provider))  # the account is stored whole
    assert frame["user_count"].notna().all()
    assert pd.isna(frame.loc[target, "definition_updated_at"])
    assert frame.loc[target, "problem"] == f"{noted}; definition_updated_at stored as NULL"
    assert frame.drop(index=target)["problem"].isna().all()


def test_times_and_flags_that_cannot_be_believed_are_null_and_noted():
    fetched = dt.datetime(2026, 3, 15, 0, 20, tzinfo=dt.UTC)
    rows = [
        {"segment_id": "a", "segment_name": "A", "user_count": 5, "countable": True,
         "is_active": "yes", "read_only": False, "definition_updated_at": 1773400000},
        {"segment_id": "b", "segment_name": "B", "user_count": 5, "countable": True,
         "is_active": True, "definition_updated_at": "2031-01-01T00:00:00Z"},
        {"segment_id": "c", "segment_name": "C", "user_count": 5, "countable": True,
         "is_active": True, "definition_updated_at": 10**20},
    ]  # fmt: skip
    frame = by_id(
        to_frame("onesignal", rows, account=APP, snapshot_date=fetched.date(), fetched_at=fetched)
    )
    assert frame.loc["a", "definition_updated_at"] == pd.Timestamp(1773400000, unit="s")
    assert pd.isna(frame.loc["a", "is_active"])
    assert pd.notna(frame.loc["a", "read_only"]) and not frame.loc["a", "read_only"]
    assert frame.loc["a", "problem"] == "is_active 'yes' is not true or false; stored as NULL"
    assert pd.isna(frame.loc["b", "definition_updated_at"])
    assert "'2031-01-01T00:00:00Z' is after the snapshot was read" in frame.loc["b", "problem"]
    assert pd.isna(frame.loc["c", "definition_updated_at"])
    assert "is not a time" in frame.loc["c", "problem"]


# -- drops, the check, the table and the alert -----------------------------------------------


def test_a_drop_after_a_definition_change_says_so_everywhere_and_other_drops_do_not(
    emulator, database, duckdb_path, tmp_path
):
    history = days(YESTERDAY, 9)
    truth = [t for t in emulator.state.truth("onesignal", APP) if not t["read_only"]]
    truth.sort(key=lambda t: -t["subscriber_count"])
    edited, tracking, earlier = (t["id"] for t in truth[:3])
    # the filter of one segment is narrowed on the day it falls; another falls untouched;
    # a third was edited five days before it fell
    emulator.state.edit_definition("onesignal", APP, edited, at(YESTERDAY, 10), factor=0.1)
    emulator.state.plant_drop("onesignal", APP, tracking, start=YESTERDAY, factor=0.1)
    emulator.state.edit_definition("onesignal", APP, earlier, at(history[3], 8))
    emulator.state.plant_drop("onesignal", APP, earlier, start=YESTERDAY, factor=0.1)

    duck, pg = DuckDBStore(duckdb_path), PostgresStore(database.url, connect_timeout=2)
    client = onesignal(emulator)
    types = {c.name: c.sql_type for c in columns("onesignal")}
    for day in history:
        emulator.state.set_date(day)
        frame = client.snapshot(day, LOG)
        for store in (duck, pg):
            store.write_partition(ASSET, day, frame, column_types=types)

    # a team that edits filters days ahead looks five days back, for OneSignal
    wider_file = tmp_path / "segment_assets.yaml"
    wider_file.write_text("detection:\n  onesignal:\n    definition_change_days: 5\n")
    wider_days = detection_settings_from_env({"SEGMENT_ASSETS_CONFIG": str(wider_file)})
    for store in (duck, pg):
        found = by_id(flag_drops(store, [ASSET], YESTERDAY).drops)
        assert set(found.index) == {edited, tracking, earlier}, store
        assert found.loc[edited, "definition_changed_on"] == YESTERDAY
        assert found.loc[tracking, "definition_changed_on"] is None
        assert found.loc[earlier, "definition_changed_on"] is None  # five days: too long ago
        wider = by_id(flag_drops(store, [ASSET], YESTERDAY, wider_days).drops)
        assert wider.loc[earlier, "definition_changed_on"] == history[3]

    drops = flag_drops(duck, [ASSET], YESTERDAY).drops
    cause = f"definition changed on {YESTERDAY}"
    # the check: its table has a cause column, and the description names the cause
    table = drops_markdown(drops)
    assert table.splitlines()[0].split("|")[-2].strip() == "cause"
    rows = {
        i: next(line for line in table.splitlines() if i in line)
        for i in (edited, tracking, earlier)
    }
    assert cause in rows[edited]
    assert "definition changed" not in rows[tracking] + rows[earlier]
    edited_first = drops.sort_values("segment_id", key=lambda s: s != edited)
    assert check_result(edited_first).description.endswith(f"; {cause} and 2 more")
    # the alert: the payload field, the log and the Slack lines
    alert = DropAlert.from_drops(ASSET, YESTERDAY.isoformat(), drops, "http://dagster")
    fields = {d["segment_id"]: d["definition_changed_on"] for d in alert.payload()["drops"]}
    assert fields == {edited: YESTERDAY.isoformat(), tracking: None, earlier: None}
    assert DropAlert.from_payload(alert.payload()) == alert
    lines = {i: next(line for line in log_text(alert).splitlines() if i in line) for i in fields}
    assert lines[edited].endswith(f"ERROR — {cause}")
    assert lines[tracking].endswith("ERROR") and lines[earlier].endswith("ERROR")
    slack = slack_message(alert)["text"]
    assert next(line for line in slack.splitlines() if edited in line).endswith(cause)

    # the segment_drops table stores the day (see the next test for the table's column)
    stored = to_table(drops).set_index("segment_id")["definition_changed_on"].to_dict()
    assert stored == {edited: YESTERDAY, tracking: None, earlier: None}


def test_tables_made_before_the_cause_columns_are_read_as_saying_nothing_then_gain_them(
    emulator, duckdb_path, instance, monkeypatch
):
    monkeypatch.delenv("SEGMENT_ASSETS_DATABASE_URL", raising=False)
    store = DuckDBStore(duckdb_path)
    client = onesignal(emulator)
    old = {c.name: c.sql_type for c in columns("onesignal") if c.name != "definition_updated_at"}
    fell = next(t["id"] for t in emulator.state.truth("onesignal", APP) if not t["read_only"])
    emulator.state.plant_drop("onesignal", APP, fell, start=YESTERDAY, factor=0.1)
    for day in days(YESTERDAY, 9):
        emulator.state.set_date(day)
        store.write_partition(ASSET, day, client.snapshot(day, LOG)[list(old)], old)
    before = [c for c in DROPS_COLUMNS if c.name != "definition_changed_on"]
    store.ensure_table("segment_drops", {c.name: c.sql_type for c in before})

    found = flag_drops(store, [ASSET], YESTERDAY).drops  # read without failing
    run = dg.materialize(
        [segment_drops],
        partition_key=YESTERDAY.isoformat(),
        resources={"io_manager": io_manager(duckdb_path)},
        instance=instance,
    )

    assert list(found["segment_id"]) == [fell]
    assert found["definition_changed_on"].isna().all()
    assert run.success
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        described = conn.execute("describe segments.segment_drops").fetchall()
        stored = conn.execute(
            "select segment_id, definition_changed_on from segments.segment_drops"
        )
        stored = stored.fetchall()
    # a column that is NULL on every row of the write still gets its declared type
    assert described[-1][:2] == ("definition_changed_on", "DATE")
    assert stored == [(fell, None)]


def test_the_window_is_set_per_drop_and_a_bad_one_is_refused_with_what_to_fix():
    day = dt.date(2026, 3, 14)
    history = pd.DataFrame(
        {
            "provider": "onesignal",
            "account": ["app-1", "app-2"],
            "segment_id": "seg-1",
            "snapshot_date": day,
            "definition_updated_at": pd.Timestamp("2026-03-10 23:59"),
        }
    )
    drops = history[["provider", "account", "segment_id", "snapshot_date"]].assign(reason="x")
    assert list(definition_changed_on(history, drops)) == [None, None]  # four days ago
    per_account = definition_changed_on(history, drops, pd.Series([4, 3]))
    assert list(per_account) == [dt.date(2026, 3, 10), None]
    # an edit just after midnight, read by the day's snapshot, explains the day's fall; a
    # later day's snapshot does not; a vanished segment has no cause
    history["definition_updated_at"] = pd.Timestamp("2026-03-15 00:05")
    later = history.assign(snapshot_date=dt.date(2026, 3, 15), account="app-1")
    seen = definition_changed_on(pd.concat([history.iloc[:1], later.iloc[:1]]), drops.iloc[:1])
    assert list(seen) == [dt.date(2026, 3, 15)]
    unseen = definition_changed_on(later.iloc[:1], drops.iloc[:1])
    assert list(unseen) == [None]
    gone = drops.assign(reason="vanished: segment no longer listed (was 1,200 users)")
    assert list(definition_changed_on(history, gone)) == [None, None]
    with pytest.raises(ValueError, match="definition_change_days must be a whole number"):
        definition_changed_on(history, drops, -1)
