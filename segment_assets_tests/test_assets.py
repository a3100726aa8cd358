"""The provider assets through real Dagster runs into a real DuckDB file."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import duckdb
import pytest

from segment_assets.defs.assets import PROVIDER_ASSETS, SnapshotConfig, check_partition_age
from segment_assets.store import StoreError
from segment_assets.store.duckdb_files import validate_database_path

from .conftest import YESTERDAY, failure_text

PARTITION = YESTERDAY.isoformat()
ALL = ("actionhub_segments", "usercom_segments", "onesignal_segments")


def table(path: str, name: str):
    with duckdb.connect(path, read_only=True) as conn:
        return conn.sql(f"select * from segments.{name} order by segment_id").df()


def materialize(resources, instance, partition=PARTITION, assets=PROVIDER_ASSETS, **kw):
    return dg.materialize(
        assets, partition_key=partition, resources=resources, instance=instance, **kw
    )


def test_a_daily_run_stores_every_provider_in_its_own_table(resources, instance, duckdb_path):
    result = materialize(resources, instance)
    assert result.success
    for asset in ("actionhub_segments", "usercom_segments", "onesignal_segments"):
        frame = table(duckdb_path, asset)
        assert len(frame) > 0
        assert set(frame["snapshot_date"].astype(str)) == {PARTITION}
        assert frame["segment_id"].is_unique
        materialization = result.asset_materializations_for_node(asset)[0]
        meta = materialization.metadata
        assert meta["dagster/row_count"].value == len(frame)
        assert meta["segments"].value == len(frame)
        assert meta["total_users"].value == int(frame["user_count"].sum())
        assert meta["uncountable_segments"].value == int(frame["user_count"].isna().sum())
        assert "|" in meta["largest_segments"].value


def test_the_tables_have_the_documented_columns_and_types(resources, instance, duckdb_path):
    materialize(resources, instance)
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        described = {
            name: dict(
                (row[0], row[1]) for row in conn.execute(f"describe segments.{name}").fetchall()
            )
            for name in ("actionhub_segments", "usercom_segments", "onesignal_segments")
        }
    common = {
        "snapshot_date": "DATE",
        "provider": "VARCHAR",
        "account": "VARCHAR",
        "segment_id": "VARCHAR",
        "segment_name": "VARCHAR",
        "user_count": "BIGINT",
        "fetched_at": "TIMESTAMP",
    }
    for columns in described.values():
        assert list(columns)[:7] == list(common)
        assert {k: columns[k] for k in common} == common
    assert list(described["actionhub_segments"])[7:] == [
        "segment_type",
        "segment_basis",
        "segment_basis_id",
        "action_type",
        "strength",
        "min_weight",
        "problem",
    ]
    assert list(described["usercom_segments"])[7:] == [
        "description",
        "too_heavy",
        "update_interval",
        "last_counted",
        "updated_at",
        "definition_updated_at",
        "problem",
    ]
    assert described["usercom_segments"]["last_counted"] == "TIMESTAMP"
    assert list(described["onesignal_segments"])[7:] == [
        "description",
        "source",
        "created_at",
        "filters",
        "countable",
        "read_only",
        "is_active",
        "definition_updated_at",
        "problem",
    ]
    assert {t["problem"] for t in described.values()} == {"VARCHAR"}
    for table in ("usercom_segments", "onesignal_segments"):
        assert described[table]["definition_updated_at"] == "TIMESTAMP"
    assert described["onesignal_segments"]["is_active"] == "BOOLEAN"


def test_rematerialising_a_partition_replaces_it(resources, instance, duckdb_path, emulator):
    materialize(resources, instance)
    first = table(duckdb_path, "usercom_segments")
    emulator.state.set_date(YESTERDAY + dt.timedelta(days=1))  # counts move on
    materialize(resources, instance)
    second = table(duckdb_path, "usercom_segments")
    assert len(second) == len(first)
    assert second["segment_id"].is_unique
    assert (second["fetched_at"] > first["fetched_at"]).all()


def late_ok(*assets: str) -> dict:
    return {"ops": {a: {"config": {"allow_late_partition": True}} for a in assets}}


def test_other_partitions_are_left_alone(resources, instance, duckdb_path):
    earlier = (YESTERDAY - dt.timedelta(days=1)).isoformat()
    materialize(resources, instance, partition=earlier, run_config=late_ok(*ALL))
    materialize(resources, instance)
    frame = table(duckdb_path, "onesignal_segments")
    per_day = frame.groupby(frame["snapshot_date"].astype(str)).size()
    assert set(per_day.index) == {earlier, PARTITION}
    assert per_day[earlier] == per_day[PARTITION]


def test_a_partition_from_last_year_is_refused_and_writes_nothing(resources, instance, duckdb_path):
    old = (YESTERDAY - dt.timedelta(days=365)).isoformat()
    result = materialize(resources, instance, partition=old, raise_on_error=False)
    assert not result.success
    message = failure_text(result)
    assert "Providers only report today's counts" in message
    assert "allow_late_partition" in message
    assert not os.path.exists(duckdb_path)  # nothing was written, not even an empty file


def test_allow_late_partition_stores_current_counts_on_request(resources, instance, duckdb_path):
    old = (YESTERDAY - dt.timedelta(days=10)).isoformat()
    config = late_ok("usercom_segments")
    result = dg.materialize(
        [a for a in PROVIDER_ASSETS if a.key.path[-1] == "usercom_segments"],
        partition_key=old,
        resources=resources,
        instance=instance,
        run_config=config,
    )
    assert result.success
    assert set(table(duckdb_path, "usercom_segments")["snapshot_date"].astype(str)) == {old}


@pytest.mark.parametrize(
    ("day_offset_hours", "ok"),
    [(1, True), (35.9, True), (36.1, False), (-1, False)],
)
def test_the_partition_age_guard(day_offset_hours, ok):
    day = dt.date(2026, 1, 10)
    now = dt.datetime(2026, 1, 11, tzinfo=dt.UTC) + dt.timedelta(hours=day_offset_hours)
    if ok:
        check_partition_age(day, now, SnapshotConfig())
    else:
        with pytest.raises(ValueError):
            check_partition_age(day, now, SnapshotConfig())


def test_a_negative_age_limit_is_a_clear_error():
    with pytest.raises(ValueError, match="max_partition_age_hours must be zero or more"):
        check_partition_age(
            dt.date(2026, 1, 10),
            dt.datetime(2026, 1, 11, 1, tzinfo=dt.UTC),
            SnapshotConfig(max_partition_age_hours=-1),
        )


def test_a_missing_credential_fails_before_any_request_naming_the_variable(
    resources, instance, emulator, monkeypatch
):
    monkeypatch.delenv("ONESIGNAL_API_KEY")
    from segment_assets.config import provider_resources_from_env

    fresh = {**resources, **provider_resources_from_env()}
    emulator.state.reset_stats()
    with pytest.raises(dg.DagsterInvalidConfigError, match="ONESIGNAL_API_KEY"):
        materialize(fresh, instance, assets=[PROVIDER_ASSETS[2]])
    assert emulator.state.stats()["onesignal"]["requests"] == 0


def test_an_empty_credential_fails_before_any_request_naming_the_variable(
    resources, instance, emulator, monkeypatch
):
    monkeypatch.setenv("ACTIONHUB_PROGRAM_ID", "  ")
    from segment_assets.config import provider_resources_from_env

    fresh = {**resources, **provider_resources_from_env()}
    emulator.state.reset_stats()
    result = materialize(fresh, instance, assets=[PROVIDER_ASSETS[0]], raise_on_error=False)
    assert not result.success
    assert "ACTIONHUB_PROGRAM_ID is empty" in failure_text(result)
    assert emulator.state.stats()["actionhub"]["requests"] == 0


def test_a_duckdb_file_named_like_the_schema_is_rejected_with_an_explanation():
    with pytest.raises(StoreError, match="ambiguous") as info:
        validate_database_path("/tmp/x/segments.duckdb")
    assert "Rename the file" in str(info.value)
