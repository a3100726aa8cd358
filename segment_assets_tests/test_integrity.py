"""Data integrity: a partition is replaced whole or not at all, and an answer with new fields
still gives the documented table."""

from __future__ import annotations

import gc

import dagster as dg
import duckdb
import pandas as pd
import pytest
from dagster_duckdb_pandas import DuckDBPandasIOManager

from segment_assets.defs.assets import DAILY
from segment_assets.emulator import EmulatorConfig
from segment_assets.providers.schema import column_names
from segment_assets.store.duckdb_files import SCHEMA, io_manager

from .conftest import YESTERDAY, failure_text
from .resilience import (
    PROVIDERS,
    counts_of,
    error_text,
    expected_counts,
    fast_resources,
    materialize,
    small_config,
    stored,
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


def unstorable_usercom_snapshot(good: pd.DataFrame) -> dg.AssetsDefinition:
    """usercom_segments for the same partition, whose rows fail on insert: the delete of the
    old rows has run by then, inside the IO manager's write."""
    bad = good.copy()
    bad["user_count"] = bad["user_count"].astype(str) + " users"  # not a BIGINT

    @dg.asset(
        name="usercom_segments", partitions_def=DAILY, metadata={"partition_expr": "snapshot_date"}
    )
    def usercom_segments() -> pd.DataFrame:
        return bad

    return usercom_segments


def test_a_write_that_fails_after_the_delete_keeps_the_old_rows(
    emulator, env, instance, duckdb_path
):
    assert materialize(fast_resources(), instance, YESTERDAY, providers=["usercom"]).success
    before = stored(duckdb_path, "usercom", YESTERDAY)
    assert len(before) == 25

    result = dg.materialize(
        [unstorable_usercom_snapshot(before)],
        partition_key=YESTERDAY.isoformat(),
        resources={"io_manager": io_manager(duckdb_path)},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    assert "Conversion Error" in failure_text(result)
    assert stored(duckdb_path, "usercom", YESTERDAY).equals(before)


def test_the_same_failure_with_dagsters_stock_duckdb_io_manager_would_lose_the_partition(
    emulator, env, instance, duckdb_path
):
    # the control: proves the injected failure lands between the delete and the insert
    assert materialize(fast_resources(), instance, YESTERDAY, providers=["usercom"]).success
    before = stored(duckdb_path, "usercom", YESTERDAY)

    result = dg.materialize(
        [unstorable_usercom_snapshot(before)],
        partition_key=YESTERDAY.isoformat(),
        resources={"io_manager": DuckDBPandasIOManager(database=duckdb_path, schema=SCHEMA)},
        instance=instance,
        raise_on_error=False,
    )

    assert not result.success
    del result
    gc.collect()  # the stock client leaves its connection open when the insert fails
    assert stored(duckdb_path, "usercom", YESTERDAY).empty


def test_a_rerun_replaces_the_partition_in_one_transaction(emulator, env, instance, duckdb_path):
    assert materialize(fast_resources(), instance, YESTERDAY).success
    first = {p: stored(duckdb_path, p, YESTERDAY) for p in PROVIDERS}

    assert materialize(fast_resources(), instance, YESTERDAY).success

    for provider in PROVIDERS:
        second = stored(duckdb_path, provider, YESTERDAY)
        assert len(second) == len(first[provider])
        assert second["segment_id"].is_unique
        assert (second["fetched_at"] > first[provider]["fetched_at"].max()).all()  # all new


def test_undocumented_extra_fields_in_every_answer_do_not_change_the_snapshot(
    emulator, env, instance, duckdb_path
):
    for provider in PROVIDERS:
        emulator.state.set_faults(provider, extra_field=True)

    result = materialize(fast_resources(), instance, YESTERDAY)

    assert result.success, error_text(result)
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        for provider in PROVIDERS:
            described = conn.execute(f"describe {SCHEMA}.{provider}_segments").fetchall()
            assert [row[0] for row in described] == column_names(provider)
    for provider in PROVIDERS:
        assert counts_of(stored(duckdb_path, provider)) == expected_counts(emulator, provider)
