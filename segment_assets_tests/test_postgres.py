"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server.

CI starts a server and sets ``SEGMENT_ASSETS_TEST_PG_DSN``
(``postgresql://user:password@host:port/db``); without it, a throwaway server is started
from the local PostgreSQL binaries. Only when there are none is the test skipped.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest

from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.sensors import segment_drop_sensor

from .conftest import YESTERDAY
from .drop_story import APP_ID, days, largest_segments, small_config, snapshot, write_history
from .pg_fixtures import Server

DEPLOY_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture
def server_dsn(pg_server: Server) -> str:
    """The tests' PostgreSQL server (CI's, or the throwaway one the other PostgreSQL tests of
    this worker use): a database of its own is all this test needs, not a server of its own."""
    return pg_server.admin_url


@pytest.fixture
def pg_instance(server_dsn, tmp_path, monkeypatch) -> Iterator[dg.DagsterInstance]:
    """A DagsterInstance from deploy/dagster.yaml on a fresh database of that server."""
    import psycopg2

    url = urlsplit(server_dsn)
    database = f"segment_assets_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    conn.close()
    for name, value in {
        "DAGSTER_PG_HOST": url.hostname,
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USER": url.username,
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": database,
    }.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance
    conn = psycopg2.connect(server_dsn)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {database} WITH (FORCE)")  # the server outlives it
    conn.close()


@pytest.fixture
def emulator_config():
    return small_config()


def test_the_production_instance_stores_runs_checks_and_sensor_state_in_postgres(
    pg_instance, emulator, resources, duckdb_path
):
    instance = pg_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

    onesignal = resources["onesignal"].process_config_and_initialize()
    write_history(emulator, {"onesignal": onesignal}, duckdb_path, days(YESTERDAY, 9)[:-1])
    [(segment_id, name)] = largest_segments(emulator, 1)
    emulator.state.plant_drop("onesignal", APP_ID, segment_id, start=YESTERDAY, factor=0.1)
    result = snapshot(emulator, resources, instance, YESTERDAY)
    assert result.success

    [record] = instance.get_run_records()
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert record.dagster_run.tags["dagster/partition"] == YESTERDAY.isoformat()
    key = dg.AssetKey("onesignal_segments")
    assert instance.get_materialized_partitions(key) == {YESTERDAY.isoformat()}
    [check] = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(key, "no_sudden_drops"), limit=1
    )
    assert check.run_id == record.dagster_run.run_id
    assert check.evaluation.passed is False

    context = dg.build_sensor_context(
        instance=instance, resources={"alerts": DropAlerts()}, sensor_name=segment_drop_sensor.name
    )
    tick = segment_drop_sensor(context)
    assert "1 alert(s)" in tick.skip_reason.skip_message
    again = dg.build_sensor_context(
        instance=instance, resources={"alerts": DropAlerts()}, cursor=tick.cursor
    )
    assert "0 alert(s)" in segment_drop_sensor(again).skip_reason.skip_message
