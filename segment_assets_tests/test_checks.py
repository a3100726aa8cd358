"""The drop check and the segment_drops table, through real runs against the emulator."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from segment_assets.defs.account_check import ACCOUNTS_CHECK
from segment_assets.defs.assets import segment_drops
from segment_assets.defs.checks import CHECK_NAME, check_result
from segment_assets.defs.drops import DROPS_COLUMNS
from segment_assets.defs.drops_shown import drops_markdown
from segment_assets.store import duckdb_files as storage

from .conftest import YESTERDAY
from .drop_story import (
    APP_ID,
    ERROR_DROP,
    VANISHED_DROP,
    days,
    drop_frame,
    largest_segments,
    small_config,
    snapshot,
    write_history,
)


@pytest.fixture
def emulator_config():
    return small_config()


def evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [found] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    return found


def stored_drops(path: str) -> pd.DataFrame:
    with duckdb.connect(path, read_only=True) as conn:
        return conn.sql("select * from segments.segment_drops order by snapshot_date").df()


@pytest.mark.slow
def test_a_week_of_snapshots_then_drops_fail_the_check_on_their_partition(
    emulator, resources, instance, duckdb_path
):
    (deep_id, deep_name), (mild_id, mild_name), (gone_id, gone_name) = largest_segments(emulator, 3)
    clean_day, warn_day, error_day = days(YESTERDAY, 3)
    # A week of history, a clean day, a mild drop for one day, then a deep drop and a
    # vanished segment the next day.
    emulator.state.plant_drop(
        "onesignal", APP_ID, mild_id, start=warn_day, end=error_day, factor=0.55
    )
    emulator.state.plant_drop("onesignal", APP_ID, deep_id, start=error_day, factor=0.1)
    emulator.state.remove_segment("onesignal", APP_ID, gone_id, start=error_day)

    write_history(emulator, resources, duckdb_path, days(clean_day - dt.timedelta(days=1), 7))
    clean = snapshot(emulator, resources, instance, clean_day, [segment_drops])
    warned = snapshot(emulator, resources, instance, warn_day, [segment_drops])
    failed = snapshot(emulator, resources, instance, error_day, [segment_drops])

    ok = evaluation(clean)
    assert ok.passed
    assert ok.partition == clean_day.isoformat()
    assert ok.metadata["drops"].value == 0

    mild = evaluation(warned)
    assert not mild.passed
    assert mild.partition == warn_day.isoformat()
    assert mild.severity == dg.AssetCheckSeverity.WARN
    assert mild.metadata["drops"].value == 1
    table = mild.metadata["dropped_segments"].value
    assert mild_name in table and "−4" in table  # about −45 %
    assert deep_name not in table

    deep = evaluation(failed)
    assert not deep.passed
    assert deep.partition == error_day.isoformat()
    assert deep.severity == dg.AssetCheckSeverity.ERROR
    assert deep.metadata["drops"].value == 2
    assert deep.metadata["errors"].value == 1
    assert deep.metadata["vanished"].value == 1
    table = deep.metadata["dropped_segments"].value
    deep_row = next(line for line in table.splitlines() if deep_name in line)
    assert "→" in deep_row and "ERROR" in deep_row and "−9" in deep_row  # about −90 %
    gone_row = next(line for line in table.splitlines() if gone_name in line)
    assert "gone" in gone_row and "vanished" in gone_row
    assert mild_name not in table  # recovered the day before: nothing new to report

    # The same findings are stored per day for teams to query, one row per drop.
    stored = stored_drops(duckdb_path)
    assert list(stored.columns) == [c.name for c in DROPS_COLUMNS]
    by_day = stored.groupby(stored["snapshot_date"].astype(str))["segment_id"].apply(set)
    assert by_day.to_dict() == {
        warn_day.isoformat(): {mild_id},
        error_day.isoformat(): {deep_id, gone_id},
    }
    deep_stored = stored.set_index("segment_id").loc[deep_id]
    assert deep_stored["severity"] == "ERROR" and deep_stored["drop_pct"] > 80
    assert deep_stored["segment_name"] == deep_name
    assert pd.isna(stored.set_index("segment_id").loc[gone_id, "user_count"])

    # Re-running a day replaces its drops rather than adding to them.
    again = snapshot(emulator, resources, instance, error_day, [segment_drops])
    assert not evaluation(again).passed
    assert len(stored_drops(duckdb_path)) == 3


def test_the_drops_table_exists_from_the_first_clean_day(
    emulator, resources, instance, duckdb_path
):
    result = snapshot(emulator, resources, instance, YESTERDAY, [segment_drops])
    assert evaluation(result).passed  # a single day is never judged
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        described = conn.execute("describe segments.segment_drops").fetchall()
        rows = conn.execute("select count(*) from segments.segment_drops").fetchone()
    assert [(r[0], r[1]) for r in described] == [(c.name, c.sql_type) for c in DROPS_COLUMNS]
    assert rows == (0,)


def test_a_vanished_segment_alone_is_a_warning_and_names_keep_the_table_intact():
    vanished = drop_frame(VANISHED_DROP)
    result = check_result(vanished)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    table = drops_markdown(drop_frame({**ERROR_DROP, "segment_name": "Paying | EU"}))
    [row] = [line for line in table.splitlines() if "seg-0" in line]
    assert "Paying \\| EU (seg-0)" in row
    assert row.count("|") - row.count("\\|") == 6  # five columns, pipes in names escaped
    assert "5,400 → 510" in row and "−90 %" in row


def test_the_daily_job_checks_every_provider_and_then_stores_the_drops():
    from segment_assets.definitions import defs

    graph = defs.resolve_job_def("daily_segment_snapshot").asset_layer.asset_graph
    providers = {f"{p}_segments" for p in ("actionhub", "usercom", "onesignal")}
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == {(p, name) for p in providers for name in (CHECK_NAME, ACCOUNTS_CHECK)}
    drops_node = graph.get(dg.AssetKey("segment_drops"))
    assert {k.to_user_string() for k in drops_node.parent_keys} == providers


def test_the_history_the_check_reads_is_the_same_when_two_segments_share_a_text_hash(
    duckdb_path, monkeypatch
):
    # The history read keys each row's text (provider, account, id, name) by a 64-bit hash
    # and reads the text once per segment; two segments sharing a hash must not be mixed up.
    with storage.connect(duckdb_path) as conn:
        conn.execute("create schema segments")
        for table in ("onesignal_segments", "usercom_segments"):
            conn.execute(
                f"create table segments.{table} as select "
                "date '2026-03-01' + d::int as snapshot_date, "
                f"'{table.removesuffix('_segments')}' as provider, 'acct-' || (s % 2) as account, "
                "'seg-' || s as segment_id, "
                "case when s = 3 then null else 'Segment ' || s end as segment_name, "
                "case when s = 4 and d = 2 then null else 100 * s + d end::bigint as user_count "
                "from range(5) t(d), range(6) u(s)"
            )
    tables = ["onesignal_segments", "usercom_segments"]
    start, end = dt.date(2026, 3, 2), dt.date(2026, 3, 4)

    def rows() -> pd.DataFrame:
        frame = storage.read_history(duckdb_path, tables, start, end).astype(object)
        frame = frame.where(frame.notna(), None)
        return frame.sort_values(["provider", "segment_id", "snapshot_date"], ignore_index=True)

    def text_dtype() -> object:
        return storage.read_history(duckdb_path, tables, start, end)["segment_id"].dtype

    hashed = rows()
    assert text_dtype() == "category"  # each text read once
    monkeypatch.setattr(storage, "_LABEL_HASH", "hash({}) % 2")  # every hash is shared
    assert_frame_equal(rows(), hashed)
    assert text_dtype() == "object"  # read on every row instead
    assert len(hashed) == 2 * 6 * 3
    assert set(hashed["snapshot_date"]) == {dt.date(2026, 3, d) for d in (2, 3, 4)}
    assert hashed["segment_name"].isna().sum() == 2 * 3  # seg-3 has no name
    assert hashed["user_count"].isna().sum() == 2  # seg-4 on 2026-03-03
    pairs = set(zip(hashed["segment_id"], hashed["account"], strict=True))
    assert pairs == {(f"seg-{s}", f"acct-{s % 2}") for s in range(6)}


def test_drops_of_several_accounts_show_the_account_in_the_table():
    two = drop_frame(ERROR_DROP, {**ERROR_DROP, "account": "app-2"})
    table = drops_markdown(two)
    header = [cell.strip() for cell in table.splitlines()[0].split("|")[1:-1]]
    assert header[:2] == ["segment", "account"]
    assert "| app-2 " in table
    assert "account" not in drops_markdown(drop_frame(ERROR_DROP))  # one account: as before
    one_of_two = drop_frame(ERROR_DROP)  # flag_drops read two accounts, one of them dropped
    assert "| app-1 " in drops_markdown(one_of_two, accounts=2)
