"""A team tells segment_assets what it knows: an outage it acknowledges leaves the baseline
and alerts nobody, a segment it mutes is judged and shown but alerts nobody until the mute
ends, all recorded from the command line in the store (DuckDB or PostgreSQL) that every run
and the sensor read."""

from __future__ import annotations

import datetime as dt
import os
import re
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pandas as pd
import pytest

from segment_assets.acks import Ack, add_ack, blank_acknowledged, muted, read_acks
from segment_assets.acks.commands import listing
from segment_assets.acks.records import from_frame, normalise, to_frame
from segment_assets.acks.report import acknowledged_markdown
from segment_assets.cli import OK, USAGE_ERROR, main
from segment_assets.config import provider_resources_from_env
from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.assets import segment_drops
from segment_assets.defs.checks import check_result
from segment_assets.defs.drops import flag_drops, to_table
from segment_assets.defs.incident_log import INCIDENTS_TABLE
from segment_assets.defs.sensor_cursor import DropSensorCursor
from segment_assets.defs.sensors import DropSensorTick
from segment_assets.store import DATABASE_URL_ENV, SegmentStore
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.duckdb_files import io_manager

from .ack_story import APP, SEGMENTS, TABLE, name, rows, span, write_days, write_file
from .conftest import YESTERDAY
from .drop_story import ONESIGNAL, ONESIGNAL_CHECK

HOOK = "/alerts"
DAY = dt.timedelta(days=1)
TODAY = YESTERDAY + DAY


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """``python -m segment_assets <args>`` through its main(): exit code, stdout, stderr."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse refused the arguments
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def recorded_id(out: str) -> str:
    found = re.search(r"^id (\w+); remove it with `python -m segment_assets unack \1`$", out, re.M)
    assert found, out
    return found[1]


def tick_after(
    day: dt.date, instance: dg.DagsterInstance, store: SegmentStore, receiver, log, cursor
) -> None:
    """The morning after ``day``: its partition is materialised, then the drop sensor ticks."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=TABLE, partition=day.isoformat())
    )
    DropSensorTick(
        instance=instance,
        alerts=DropAlerts(alert_webhook_url=receiver.url(HOOK)),
        log=log,
        store=store,
        today=day + DAY,
        out_of_time=lambda: False,
    ).run(cursor)


def alerted(receiver, kind: str = "drops") -> list[tuple[str, set[str]]]:
    """(partition, segment names) of each alert of ``kind`` delivered, in order."""
    return [
        (a["partition"], {d["segment_name"] for d in a["drops" if kind == "drops" else kind]})
        for a in receiver.delivered(HOOK)
        if a["kind"] == kind
    ]


def incidents_of(store: SegmentStore, segment_id: str) -> list[tuple]:
    """(opened_on, alerted, closed_on, closed_why) of the segment's incidents, oldest first."""
    rows = store.read_rows(INCIDENTS_TABLE)
    rows = rows[rows["segment_id"] == segment_id].sort_values("opened_on")
    rows = rows.astype(object).where(rows.notna(), None)
    return [
        (
            pd.Timestamp(r.opened_on).date(),
            bool(r.alerted),
            r.closed_on and pd.Timestamp(r.closed_on).date(),
            r.closed_why,
        )
        for r in rows.itertuples()
    ]


def run_check(day: dt.date, instance: dg.DagsterInstance):
    """A real run of the OneSignal drop check and of segment_drops for ``day``, on the
    stored snapshots (the provider is not called)."""
    result = dg.materialize(
        [ONESIGNAL, ONESIGNAL_CHECK, segment_drops],
        selection=dg.AssetSelection.checks(ONESIGNAL_CHECK)
        | dg.AssetSelection.assets(segment_drops),
        partition_key=day.isoformat(),
        instance=instance,
        # the OneSignal resource as the code location builds it; not started by this run
        resources={"io_manager": io_manager(), **provider_resources_from_env()},
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_an_acknowledged_week_long_outage_then_a_real_drop_alerts_once_for_the_real_drop(
    instance, duckdb_path, receiver, log, capsys
):
    last = YESTERDAY
    outage = span(last - 10 * DAY, last - 4 * DAY)  # a week of near-zero counts
    fell = outage[-1] + DAY  # the day after it, Segment 5 really lost 60 %, and stays there
    planted = {(d, None): 0.02 for d in outage} | {(d, 5): 0.4 for d in span(fell, last)}
    write_file(duckdb_path, rows(span(last - 34 * DAY, last), planted))
    store = DuckDBStore(duckdb_path)

    # The provider announced the outage: the team acknowledges it for the whole app.
    code, out, _ = cli(
        capsys, "ack", "onesignal", APP, "--from", outage[0], "--to", outage[-1],
        "--reason", "OneSignal API outage (status page)",
    )  # fmt: skip
    assert code == OK and "every segment" in out and "(7 days)" in out
    ack_id = recorded_id(out)

    cursor = DropSensorCursor()
    for day in span(outage[0], last):
        tick_after(day, instance, store, receiver, log, cursor)
    assert alerted(receiver) == [(fell.isoformat(), {name(5)})]
    [drop] = receiver.delivered(HOOK)[0]["drops"]
    assert drop["before"] > 2 * drop["user_count"]  # the level before the outage, not in it

    # The check of that day fails for Segment 5 and lists the acknowledged days it left out.
    check = run_check(fell, instance)
    assert not check.passed and name(5) in check.metadata["dropped_segments"].value
    assert check.metadata["drops"].value == 1
    left_out = check.metadata["acknowledged"].value
    assert ack_id in left_out and f"{outage[0]} → {outage[-1]}" in left_out
    assert "OneSignal API outage (status page)" in left_out
    with duckdb.connect(duckdb_path, read_only=True) as conn:  # the run's segment_drops
        stored = conn.sql("select segment_id, muted from segments.segment_drops").fetchall()
    assert stored == [("seg-5", False)]

    # Without the acknowledgement, the outage alerts for every segment and the real drop
    # passes for the outage going on.
    assert cli(capsys, "unack", ack_id)[0] == OK
    assert len(flag_drops(store, [TABLE], outage[0]).drops) == SEGMENTS
    assert flag_drops(store, [TABLE], fell).drops.empty


def test_a_mute_holds_a_segments_alerts_until_its_last_day_then_it_alerts_if_still_down(
    instance, duckdb_path, receiver, log, caplog
):
    last = YESTERDAY
    both_fell = last - 5 * DAY  # Segments 3 and 7 lose 70 % for a day
    muted_fell = last - 3 * DAY  # Segment 3 again, on the mute's last day, and the next day
    planted = {(both_fell, 3): 0.3, (both_fell, 7): 0.3, (last, 3): 0.3}
    planted |= {(muted_fell, 3): 0.3, (muted_fell + DAY, 3): 0.3}
    write_file(duckdb_path, rows(span(last - 29 * DAY, last), planted))
    store = DuckDBStore(duckdb_path)
    # Segment 3's filter is being rebuilt: muted up to and including muted_fell (recorded
    # through the store, as the command line refuses a mute whose last day has passed).
    add_ack(store, Ack("m3", "mute", "onesignal", APP, "seg-3", None, muted_fell, "rebuild",
                       dt.datetime(2026, 1, 1)))  # fmt: skip

    cursor = DropSensorCursor()
    for day in span(both_fell, muted_fell):
        tick_after(day, instance, store, receiver, log, cursor)
    # While the mute holds, Segment 7 alerts alone. Segment 3's first fall, back the next
    # day, is closed unsaid; its second fall, on the mute's last day, waits unsaid.
    assert alerted(receiver) == [(both_fell.isoformat(), {name(7)})]
    seg_3 = incidents_of(store, "seg-3")
    assert seg_3 == [
        (both_fell, False, both_fell + DAY, "recovered"),
        (muted_fell, False, None, None),
    ]

    for day in span(muted_fell + DAY, last):
        tick_after(day, instance, store, receiver, log, cursor)
    # The day after the mute ended Segment 3 is still down: one alert, that day, saying so;
    # the next day it is back (one recovered message); its next fall alerts as any drop.
    assert alerted(receiver) == [
        (both_fell.isoformat(), {name(7)}),
        ((muted_fell + DAY).isoformat(), {name(3)}),
        (last.isoformat(), {name(3)}),
    ]
    [late] = [a for a in receiver.delivered(HOOK) if a["partition"] == str(muted_fell + DAY)]
    [drop] = late["drops"]
    assert (drop["dropped_on"], drop["severity"]) == (muted_fell.isoformat(), "ERROR")
    assert re.fullmatch(
        rf"still \d+ % below expected after its mute ended \(dropped on {muted_fell}\)",
        drop["reason"],
    )
    said = "still down after its mute ended (dropped on"
    assert f"{name(3)} (seg-3): " in caplog.text and said in caplog.text
    assert alerted(receiver, "recovered") == [
        ((both_fell + DAY).isoformat(), {name(7)}),
        ((muted_fell + 2 * DAY).isoformat(), {name(3)}),
    ]
    assert incidents_of(store, "seg-3") == [
        (both_fell, False, both_fell + DAY, "recovered"),
        (muted_fell, True, muted_fell + 2 * DAY, "recovered"),
        (last, True, None, None),
    ]

    # Muted drops are still judged and shown: in the check's result and in the rows of
    # segment_drops (both made from flag_drops, as the check and the asset make them).
    found = flag_drops(store, [TABLE], both_fell)
    check = check_result(found.drops, found.accounts)
    assert not check.passed and check.metadata["muted"].value == 1
    lines = check.metadata["dropped_segments"].value.splitlines()
    assert "muted: no alert" in next(line for line in lines if name(3) in line)
    assert "muted" not in next(line for line in lines if name(7) in line)
    stored = to_table(found.drops).sort_values("segment_id")
    assert stored[["segment_id", "muted"]].values.tolist() == [["seg-3", True], ["seg-7", False]]


def test_acks_are_recorded_listed_and_removed_from_the_command_line_on_either_store(
    any_store, tmp_path, monkeypatch, capsys
):
    last = YESTERDAY
    fell = {(last, 2): 0.1, (last, 4): 0.1}  # two segments lose 90 % on the last day ...
    gone = {(last, 9): 0.0}  # ... and one is not listed
    write_days(any_store, rows(span(last - 7 * DAY, last), fell, gone))
    accounts = tmp_path / "segment_assets.yaml"
    accounts.write_text(f"onesignal:\n  web:\n    app_id: {APP}\n"
                        "    api_key_env: ONESIGNAL_WEB_API_KEY\n")  # fmt: skip
    monkeypatch.setenv("SEGMENT_ASSETS_CONFIG", str(accounts))
    monkeypatch.setenv("ONESIGNAL_WEB_API_KEY", "os_v2_app_canary-key-value")
    assert read_acks(any_store).empty  # none recorded yet
    before = flag_drops(any_store, [TABLE], last).drops
    assert set(before["segment_id"]) == {"seg-2", "seg-4", "seg-9"}

    outputs = []
    for args in (
        ("ack", "onesignal", "web", "--segment", "seg-2", "--from", last, "--reason", "re-import"),
        ("ack", "onesignal", APP, "--segment", "seg-9", "--from", last - DAY, "--to", last,
         "--reason", "deleted by mistake, restored"),
        ("mute", "onesignal", "web", "--segment", "seg-4", "--until", TODAY + 7 * DAY),
    ):  # fmt: skip
        code, out, err = cli(capsys, *args)
        assert (code, err) == (OK, ""), err
        outputs.append(out)
    ack_2, ack_9, mute_4 = (recorded_id(out) for out in outputs)
    stored = {a.ack_id: a for a in from_frame(read_acks(any_store))}
    assert {a.account for a in stored.values()} == {APP}  # the file's name became the app id
    assert (stored[ack_9].first_day, stored[ack_9].last_day) == (last - DAY, last)
    assert (stored[mute_4].kind, stored[mute_4].first_day) == ("mute", None)
    assert stored[ack_2].reason == "re-import" and stored[mute_4].segment_id == "seg-4"

    # Acknowledged on the day: not judged, not reported vanished. Muted: shown, muted.
    found = flag_drops(any_store, [TABLE], last)
    assert found.drops[["segment_id", "muted"]].values.tolist() == [["seg-4", True]]
    assert set(found.acknowledged["ack_id"]) == {ack_2, ack_9}
    shown = acknowledged_markdown(found.acknowledged, last).splitlines()  # as the check shows
    assert "not judged" in next(line for line in shown if ack_2 in line)

    code, listing, _ = cli(capsys, "acks")
    assert code == OK
    lines = listing.splitlines()
    assert lines[0].split() == [
        "id", "kind", "status", "provider", "account", "segment", "days", "reason",
        "recorded", "(UTC)",
    ]  # fmt: skip
    mute_line = next(line for line in lines if line.startswith(mute_4))
    assert f"web ({APP})" in mute_line and f"until {TODAY + 7 * DAY}" in mute_line
    assert "active" in mute_line
    ack_line = next(line for line in lines if line.startswith(ack_9))
    assert f"{last - DAY} → {last}" in ack_line and "deleted by mistake, restored" in ack_line

    code, out, _ = cli(capsys, "unack", mute_4)
    assert code == OK and out.startswith(f"removed mute {mute_4} (onesignal account {APP}")
    assert flag_drops(any_store, [TABLE], last).drops["muted"].tolist() == [False]
    assert set(read_acks(any_store)["ack_id"]) == {ack_2, ack_9}

    password = urlsplit(str(os.environ.get(DATABASE_URL_ENV, ""))).password
    shown = "".join([*outputs, listing, out])
    assert "canary-key-value" not in shown and (not password or password not in shown)


def test_what_cannot_be_recorded_is_refused_saying_what_to_fix_and_nothing_is_stored(
    duckdb_path, tmp_path, monkeypatch, capsys
):
    store = DuckDBStore(duckdb_path)
    write_days(store, rows(span(YESTERDAY - DAY, YESTERDAY)))
    accounts = tmp_path / "segment_assets.yaml"
    accounts.write_text(f"onesignal:\n  web: {{app_id: {APP}, api_key_env: WEB_KEY}}\n")
    monkeypatch.setenv("SEGMENT_ASSETS_CONFIG", str(accounts))
    monkeypatch.setenv("WEB_KEY", "os_v2_app_canary-key-value")
    ack = ("ack", "onesignal", "web", "--reason", "outage")
    for args, message in [
        (("ack", "braze", "web", "--from", YESTERDAY, "--reason", "x"),
         "argument provider: invalid choice: 'braze'"),
        (("ack", "onesignal", "mobile", "--from", YESTERDAY, "--reason", "x"),
         f"'mobile' is no OneSignal account (onesignal): give the accounts file's name for it "
         f"or its app id (names web; account ids in the store {APP})"),
        ((*ack, "--from", YESTERDAY, "--to", YESTERDAY - DAY),
         f"--to {YESTERDAY - DAY} is before --from {YESTERDAY}"),
        ((*ack, "--from", "2026-3-1"),
         "argument --from: '2026-3-1' is not a day: write it as YYYY-MM-DD"),
        ((*ack, "--from", "2026-02-30"), "'2026-02-30' is not a day"),
        (("ack", "onesignal", "web", "--from", YESTERDAY, "--reason", " "), "--reason is empty"),
        (("mute", "onesignal", "web", "--until", YESTERDAY),
         f"the mute would end on {YESTERDAY}, which has passed (today is {TODAY}, UTC)"),
        ((*ack, "--from", YESTERDAY, "--segment", "seg-99"),
         f"segment 'seg-99' is not listed in account {APP} on {YESTERDAY}"),
        ((*ack, "--from", YESTERDAY, "--segment", name(4)),
         f"'{name(4)}' is the name of segment seg-4: give --segment seg-4"),
        (("unack", "zzzzzz"), "no acknowledgement or mute has the id 'zzzzzz'"),
    ]:  # fmt: skip
        code, out, err = cli(capsys, *args)
        assert code == USAGE_ERROR, (args, out, err)
        assert message in err, err
        assert "canary" not in out + err
    assert read_acks(store).empty
    assert cli(capsys, "acks")[1].startswith("no acknowledgements or mutes in force")


# -- what they do, on their own ----------------------------------------------------------


def history(*days: dt.date) -> pd.DataFrame:
    """Three segments of two accounts, as a store's read returns them (categoricals)."""
    frame = pd.DataFrame(
        [("onesignal", acc, seg, day, 1000) for day in days
         for acc, seg in (("app-1", "s1"), ("app-1", "s2"), ("app-2", "s1"))],
        columns=["provider", "account", "segment_id", "snapshot_date", "user_count"],
    )  # fmt: skip
    frame["user_count"] = frame["user_count"].astype("Int64")
    return frame.astype({c: "category" for c in ["provider", "account", "segment_id",
                                                  "snapshot_date"]})  # fmt: skip


def acks(*records: tuple) -> pd.DataFrame:
    """Acks as read from the store: (kind, account, segment, first day, last day)."""
    return pd.DataFrame(
        [(f"a{i}", kind, "onesignal", acc, seg, first, last, "", dt.datetime(2026, 1, 1))
         for i, (kind, acc, seg, first, last) in enumerate(records)],
        columns=["ack_id", "kind", "provider", "account", "segment_id", "first_day",
                 "last_day", "reason", "created_at"],
    )  # fmt: skip


def test_acknowledged_days_lose_their_count_and_nothing_else():
    d1, d2, d3 = span(dt.date(2026, 3, 1), dt.date(2026, 3, 3))
    seen = history(d1, d2, d3)
    out = blank_acknowledged(
        seen,
        acks(("ack", "app-1", None, d2, d2), ("ack", "app-2", "s1", d3, d3),
             ("mute", "app-1", None, None, d3), ("ack", "app-2", "s1", d1 - 9 * DAY, d1 - DAY)),
    )  # fmt: skip
    blanked = out[out["user_count"].isna()]
    assert sorted(zip(blanked["account"], blanked["segment_id"], blanked["snapshot_date"],
                      strict=True)) == [("app-1", "s1", d2), ("app-1", "s2", d2),
                                        ("app-2", "s1", d3)]  # fmt: skip
    assert len(out) == len(seen) and seen["user_count"].notna().all()  # the input is kept
    quiet = acks(("mute", "app-1", None, None, d3), ("ack", "app-2", "s9", d1, d3))
    assert blank_acknowledged(seen, quiet) is seen


def test_a_mute_holds_up_to_and_including_its_last_day():
    d = dt.date(2026, 3, 10)
    drops = history(d).astype(object)
    mutes = acks(("mute", "app-1", "s2", None, d), ("mute", "app-2", None, None, d - DAY),
                 ("ack", "app-1", None, d, d))  # fmt: skip
    assert muted(drops, mutes, d).tolist() == [False, True, False]
    assert muted(drops, mutes, d - DAY).tolist() == [False, True, True]
    assert not muted(drops, mutes, d + DAY).any()


def test_the_list_shows_what_is_in_force_and_what_ended_lately_latest_first():
    today = dt.date(2026, 6, 30)
    at = dt.datetime(2026, 6, 1, 9, 5)
    records = [
        Ack("mute01", "mute", "usercom", "acme.user.com", "1001", None, today, "", at),
        Ack("mute02", "mute", "usercom", "acme.user.com", None, None, today - 20 * DAY, "", at),
        Ack("mute03", "mute", "usercom", "acme.user.com", None, None, today - 40 * DAY, "", at),
        Ack("ack001", "ack", "onesignal", APP, None, today - 70 * DAY, today - 60 * DAY, "", at),
        Ack("ack002", "ack", "onesignal", APP, None, today - 99 * DAY, today - 95 * DAY, "", at),
        Ack("ack003", "ack", "onesignal", APP, "seg-1", today + DAY, today + 2 * DAY, "", at),
    ]
    stored = normalise(to_frame(records))
    shown = listing(stored, today, names={("onesignal", APP): "web"}).splitlines()
    statuses = {line.split()[0]: line.split()[2] for line in shown[2:]}
    assert list(statuses) == ["ack003", "mute01", "mute02", "ack001"]  # by last day
    assert statuses == {
        "ack003": "planned",
        "mute01": "active",  # holds on its last day
        "mute02": "ended",  # ended 20 days ago: still listed
        "ack001": "active",  # its days are still in the nine weeks a day is judged against
    }
    assert f"web ({APP})" in shown[2] and "2026-06-01 09:05" in shown[2]
    everything = listing(stored, today, everything=True)
    assert "mute03" in everything and "ack002" in everything
