"""The project with ``SEGMENT_ASSETS_DATABASE_URL`` set: the same runs, checks, sensor and
command line as on the DuckDB file, on a real PostgreSQL server (CI's, or a throwaway one;
see ``pg_fixtures.py``), each test in its own database.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from psycopg import sql

from segment_assets.cli import DROPS_FOUND, OK, RUN_FAILED, USAGE_ERROR, main
from segment_assets.config.environment import provider_resources_from_env
from segment_assets.defs.account_check import ACCOUNTS_CHECK
from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.assets import segment_drops
from segment_assets.defs.sensors import segment_drop_sensor
from segment_assets.emulator import EmulatorConfig, OneSignalApp
from segment_assets.store import DATABASE_URL_ENV, SegmentStore, StoreError, store_from_env
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.postgres import PostgresStore

from .conftest import YESTERDAY
from .dagster_ui import free_port
from .drop_story import (
    APP_ID,
    ASSET,
    days,
    largest_segments,
    small_config,
    snapshot,
    write_history,
)
from .pg_fixtures import Database, _drop_database, _new_database, postgres_bin
from .resilience import FAST, error_text, requests_made

HOOK_PATH = "/alerts"
REPO = Path(__file__).resolve().parents[1]


SECOND_APP = ("5d3c2b1a-6f5e-4d3c-8b7c-1a3f4e5d8b7c", "os_v2_app_second_app_key_for_tests")


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """The drop story's small accounts, and a second OneSignal app."""
    config = small_config()
    config.onesignal.append(OneSignalApp(*SECOND_APP, n_segments=8, n_user_based=1, n_deleted=0))
    return config


@pytest.fixture
def pg_store(database: Database, env, monkeypatch) -> PostgresStore:
    """The store the project picks when SEGMENT_ASSETS_DATABASE_URL names the database."""
    monkeypatch.setenv(DATABASE_URL_ENV, database.url)
    store = store_from_env()
    assert isinstance(store, PostgresStore)
    return store


def project_resources(**overrides: dict) -> dict:
    """What definitions.py wires, built now from the environment (FAST retry budget)."""
    providers = {
        key: type(resource)(
            **{
                **{name: getattr(resource, name) for name in type(resource).model_fields},
                **FAST,
                **overrides.get(key, {}),
            }
        )
        for key, resource in provider_resources_from_env().items()
    }
    return {"io_manager": store_from_env().io_manager(), **providers}


def check_evaluations(result: dg.ExecuteInProcessResult, name: str) -> list:
    return [e for e in result.get_asset_check_evaluations() if e.check_name == name]


@pytest.mark.slow
def test_a_month_on_postgresql_finds_the_planted_drop_stores_it_once_and_alerts_once(
    emulator, pg_store, database, instance, duckdb_path, receiver, capsys
):
    resources = project_resources()
    month = days(YESTERDAY, 30)
    # 28 days as a backfill would have stored them, then the last two through real runs
    write_history(emulator, resources, pg_store, month[:-2])
    [(segment_id, name)] = largest_segments(emulator, 1)
    emulator.state.plant_drop("onesignal", APP_ID, segment_id, start=YESTERDAY, factor=0.1)
    verdicts = []
    for day in (month[-2], YESTERDAY, YESTERDAY):  # the last day materialised twice
        result = snapshot(emulator, resources, instance, day, extra=[segment_drops])
        assert result.success
        [check] = check_evaluations(result, "no_sudden_drops")
        verdicts.append((day, check.passed))
    assert verdicts == [(month[-2], True), (YESTERDAY, False), (YESTERDAY, False)]
    assert check.severity == dg.AssetCheckSeverity.ERROR and name in check.description

    segments = len(emulator.state.truth("onesignal", APP_ID))
    assert pg_store.partition_counts(ASSET) == {day: segments for day in month}  # one copy
    stored = pg_store.read_partition(ASSET, YESTERDAY)
    assert stored["segment_id"].is_unique
    fell = stored.loc[stored["segment_id"] == segment_id, "user_count"].iloc[0]
    before = pg_store.read_partition(ASSET, month[-2])
    assert fell < 0.2 * before.loc[before["segment_id"] == segment_id, "user_count"].iloc[0]
    drops = pg_store.read_partition("segment_drops", YESTERDAY)
    assert drops[["segment_id", "severity"]].values.tolist() == [[segment_id, "ERROR"]]
    assert pg_store.partition_counts("segment_drops") == {YESTERDAY: 1}

    # the sensor, from the event log and the PostgreSQL store: one alert for the day
    alerts = DropAlerts(alert_webhook_url=receiver.url(HOOK_PATH))
    context = dg.build_sensor_context(instance=instance, resources={"alerts": alerts})
    first = segment_drop_sensor(context)
    assert "2 new partition(s), 1 alert(s)" in first.skip_reason.skip_message
    [hook] = receiver.delivered(HOOK_PATH)
    assert (hook["partition"], hook["account"]) == (YESTERDAY.isoformat(), APP_ID)
    assert [d["segment_name"] for d in hook["drops"]] == [name]
    again = dg.build_sensor_context(
        instance=instance, cursor=first.cursor, resources={"alerts": alerts}
    )
    assert "0 alert(s)" in segment_drop_sensor(again).skip_reason.skip_message
    assert len(receiver.requests) == 1

    # the command line reads the same store
    capsys.readouterr()
    assert main(["drops", "--date", YESTERDAY.isoformat()]) == DROPS_FOUND
    assert name in capsys.readouterr().out
    assert main(["drops", "--date", month[-2].isoformat()]) == OK

    # the README's psql examples read the same tables
    onesignal_days, drops_table = readme_psql(database.url)
    rows = [[cell.strip() for cell in line.split("|")] for line in onesignal_days.splitlines()]
    assert [YESTERDAY.isoformat(), "onesignal", str(segments)] == rows[2][:3]
    assert len([row for row in rows if row[1:2] == ["onesignal"]]) == 7
    [drop] = [line for line in drops_table.splitlines() if name in line]
    assert drop.split("|")[0].strip() == YESTERDAY.isoformat() and "ERROR" in drop

    assert not Path(duckdb_path).exists()  # nothing went to the DuckDB file
    # the password is in no run record and no event
    for record in instance.get_run_records():
        assert database.password not in serialize_value(record.dagster_run)
        for entry in instance.all_logs(record.dagster_run.run_id):
            assert database.password not in serialize_value(entry)


def readme_psql(url: str) -> list[str]:
    """The output of each ``psql`` example of the README, run against ``url``."""
    psql = shutil.which("psql") or str((postgres_bin() or Path("/usr/bin")) / "psql")
    examples = re.findall(
        r'psql "\$SEGMENT_ASSETS_DATABASE_URL" -c "(.*?)"', (REPO / "README.md").read_text(), re.S
    )
    assert len(examples) == 2
    outputs = []
    for query in examples:
        done = subprocess.run([psql, url, "-c", query], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    return outputs


# -- the same behaviour on both stores ------------------------------------------------------
@pytest.fixture(params=["duckdb", "postgres"])
def either_store(request, env, monkeypatch, tmp_path) -> Iterator[SegmentStore]:
    """The store the variable chooses (unset: the DuckDB file; set: a PostgreSQL database),
    with OneSignal's two apps listed in an accounts file."""
    config = tmp_path / "segment_assets.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            onesignal:
              first: {{app_id: {APP_ID}, api_key_env: ONESIGNAL_API_KEY}}
              second: {{app_id: {SECOND_APP[0]}, api_key_env: OS_SECOND_KEY}}
            """
        )
    )
    monkeypatch.setenv("SEGMENT_ASSETS_CONFIG", str(config))
    monkeypatch.setenv("OS_SECOND_KEY", "os_v2_app_a_revoked_key")  # refused at first
    if request.param == "duckdb":
        yield store_from_env()
        return
    db = _new_database(request.getfixturevalue("pg_server"))
    try:
        monkeypatch.setenv(DATABASE_URL_ENV, db.url)
        yield store_from_env()
    finally:
        _drop_database(db)


def onesignal_run(instance: dg.DagsterInstance, config: dict | None = None):
    """The OneSignal asset for yesterday, with the resources the code location builds."""
    from segment_assets.config import provider_resources
    from segment_assets.defs.assets import PROVIDER_ASSETS

    resource = provider_resources()["onesignal"]
    accounts = [a.model_copy(update=FAST) for a in resource.all_accounts()]
    return dg.materialize(
        [a for a in PROVIDER_ASSETS if a.key.path[-1] == ASSET],
        partition_key=YESTERDAY.isoformat(),
        resources={
            "io_manager": store_from_env().io_manager(),
            "onesignal": type(resource)(accounts=accounts),
        },
        instance=instance,
        raise_on_error=False,
        run_config=config,
    )


def test_a_rerun_fetches_only_the_failed_app_and_keeps_the_others_rows_on_either_store(
    emulator, either_store, instance, monkeypatch
):
    store = either_store
    first = onesignal_run(instance)
    assert first.success  # the first app is stored, the second refused
    [check] = check_evaluations(first, ACCOUNTS_CHECK)
    assert not check.passed and "OS_SECOND_KEY" in check.description
    kept = store.read_partition(ASSET, YESTERDAY)
    assert set(kept["account"]) == {APP_ID}

    monkeypatch.setenv("OS_SECOND_KEY", SECOND_APP[1])  # the key is fixed
    emulator.state.reset_stats()
    second = onesignal_run(instance)

    assert second.success
    assert set(emulator.state.stats()["onesignal"]["by_account"]) == {SECOND_APP[0]}
    day = store.read_partition(ASSET, YESTERDAY)
    assert day.groupby("account")["segment_id"].count().to_dict() == {
        APP_ID: len(emulator.state.truth("onesignal", APP_ID)),
        SECOND_APP[0]: len(emulator.state.truth("onesignal", SECOND_APP[0])),
    }
    carried = day.loc[day["account"] == APP_ID].sort_values("segment_id", ignore_index=True)
    columns = ["segment_id", "user_count", "fetched_at"]
    assert carried[columns].equals(kept.sort_values("segment_id", ignore_index=True)[columns])


def test_a_snapshot_far_smaller_than_the_latest_stored_day_is_refused_on_either_store(
    emulator, either_store, instance, monkeypatch
):
    store = either_store
    monkeypatch.setenv("OS_SECOND_KEY", SECOND_APP[1])
    day_before = YESTERDAY - dt.timedelta(days=1)
    write_history(emulator, project_resources(), store, [day_before])
    assert store.latest_stored_counts(ASSET, YESTERDAY) == {
        APP_ID: (day_before, len(emulator.state.truth("onesignal", APP_ID)))
    }
    emulator.state.set_date(YESTERDAY)
    emulator.state.set_faults("onesignal", account=APP_ID, empty_listing=True)

    result = onesignal_run(instance)

    assert result.success  # the second app is stored; the first is refused as shrunk
    [check] = check_evaluations(result, ACCOUNTS_CHECK)
    assert f"its latest stored day ({day_before}) had 12" in check.description
    assert set(store.read_partition(ASSET, YESTERDAY)["account"]) == {SECOND_APP[0]}
    assert store.latest_stored_counts(ASSET, YESTERDAY) == {
        APP_ID: (day_before, 12),
        SECOND_APP[0]: (YESTERDAY, len(emulator.state.truth("onesignal", SECOND_APP[0]))),
    }
    assert store.latest_stored_counts(ASSET, YESTERDAY, lookback_days=0) == {
        SECOND_APP[0]: (YESTERDAY, len(emulator.state.truth("onesignal", SECOND_APP[0])))
    }
    assert store.latest_stored_counts("usercom_segments", YESTERDAY) == {}


# -- a store that cannot be used: a clear error before any provider request ----------------
def materialize_all(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    from segment_assets.defs.assets import PROVIDER_ASSETS

    return dg.materialize(
        PROVIDER_ASSETS,
        partition_key=YESTERDAY.isoformat(),
        resources=project_resources(),
        instance=instance,
        raise_on_error=False,
    )


def assert_refused_before_any_request(
    result: dg.ExecuteInProcessResult, emulator, words: str, password: str
) -> None:
    assert not result.success
    told = error_text(result)
    assert words in told and f"({DATABASE_URL_ENV}=postgresql://" in told
    assert password not in told
    assert requests_made(emulator) == 0


def test_an_unreachable_server_fails_every_step_before_any_provider_request(
    emulator, env, instance, monkeypatch
):
    canary = "canary-unreachable-password"
    monkeypatch.setenv(DATABASE_URL_ENV, f"postgresql://u:{canary}@127.0.0.1:{free_port()}/db")
    result = materialize_all(instance)
    assert_refused_before_any_request(
        result, emulator, "the server cannot be reached: is it running", canary
    )
    # the run's resources could not start: no step ran
    kinds = [e.event_type_value for e in result.all_events]
    assert "RESOURCE_INIT_FAILURE" in kinds and "STEP_START" not in kinds

    # the sensor fails its tick with the same words, and keeps its cursor for the next one
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=ASSET, partition=YESTERDAY.isoformat())
    )
    context = dg.build_sensor_context(instance=instance, resources={"alerts": DropAlerts()})
    with pytest.raises(StoreError, match="the server cannot be reached") as failed:
        segment_drop_sensor(context)
    assert DATABASE_URL_ENV in str(failed.value) and canary not in str(failed.value)


def test_a_user_without_privileges_is_told_the_grant_before_any_provider_request(
    emulator, env, database, instance, monkeypatch
):
    role, password = database.role()
    database.execute(
        sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database.name))
    )
    monkeypatch.setenv(DATABASE_URL_ENV, database.server.url(role, password, database.name))
    result = materialize_all(instance)
    assert_refused_before_any_request(
        result, emulator, f"may not create schema segments in database {database.name}", password
    )
    for record in instance.get_run_records():
        for entry in instance.all_logs(record.dagster_run.run_id):
            assert password not in serialize_value(entry)


def test_a_wrong_password_fails_before_any_provider_request(
    emulator, env, password_server, instance, monkeypatch
):
    db = _new_database(password_server)
    try:
        canary = "canary-wrong-password"
        monkeypatch.setenv(DATABASE_URL_ENV, password_server.url(db.owner, canary, db.name))
        result = materialize_all(instance)
        assert_refused_before_any_request(
            result, emulator, "the user name or password is wrong", canary
        )
    finally:
        _drop_database(db)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segment_assets", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_the_command_line_exits_2_naming_the_variable_for_a_store_it_cannot_use(
    emulator, env, password_server, tmp_path
):
    canary = "canary-cli-password"
    db = _new_database(password_server)
    try:
        cases = {
            f"mysql://u:{canary}@127.0.0.1/db": "has the unknown scheme 'mysql'",
            password_server.url(db.owner, canary, db.name): "the user name or password is wrong",
        }
        for url, words in cases.items():
            done = cli("snapshot", "--date", YESTERDAY.isoformat(), env={DATABASE_URL_ENV: url})
            assert done.returncode == USAGE_ERROR, done.stderr
            assert words in done.stderr and DATABASE_URL_ENV in done.stderr
            assert canary not in done.stdout + done.stderr
    finally:
        _drop_database(db)
    assert requests_made(emulator) == 0


# -- copying DuckDB history into PostgreSQL -------------------------------------------------
@pytest.fixture
def duckdb_history(emulator, env, duckdb_path) -> str:
    """Ten days of OneSignal snapshots in the DuckDB file, as a project used it so far."""
    write_history(emulator, project_resources(), duckdb_path, days(YESTERDAY, 10))
    DuckDBStore(duckdb_path).ensure_table("segment_drops", {"snapshot_date": "DATE"})
    return duckdb_path


def test_migrate_copies_the_history_once_verifies_it_and_says_what_it_did(
    duckdb_history, database, monkeypatch, capfd
):
    source = duckdb_history
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert main(["migrate", "--from", source]) == USAGE_ERROR
    assert f"{DATABASE_URL_ENV} is not set" in capfd.readouterr().err

    monkeypatch.setenv(DATABASE_URL_ENV, database.url)
    assert main(["migrate", "--from", source]) == OK
    said = capfd.readouterr().out
    assert "onesignal_segments: 10 day(s), 120 row(s): 10 copied, 0 already there" in said
    assert "120 row(s) in the target, row counts verified" in said
    target = store_from_env()
    assert target.partition_counts(ASSET) == DuckDBStore(source).partition_counts(ASSET)
    assert target.existing_tables(["segment_drops"]) == ["segment_drops"]

    assert main(["migrate", "--from", source]) == OK  # again: nothing copied twice
    assert "0 copied, 10 already there" in capfd.readouterr().out
    assert sum(target.partition_counts(ASSET).values()) == 120

    # a day written to PostgreSQL since is kept unless --overwrite
    day = YESTERDAY - dt.timedelta(days=3)
    changed = target.read_partition(ASSET, day).iloc[:5]
    target.write_partition(ASSET, day, changed)
    assert main(["migrate", "--from", source]) == RUN_FAILED
    out, err = capfd.readouterr()
    assert "1 kept as the target holds them" in out and "--overwrite" in err
    assert target.partition_counts(ASSET)[day] == 5
    assert main(["migrate", "--from", source, "--overwrite"]) == OK
    assert target.partition_counts(ASSET)[day] == 12
    assert database.password not in "".join(capfd.readouterr())

    for wrong, words in (
        (str(Path(source).with_name("nothing.duckdb")), "there is no DuckDB file"),
        (str(Path(source).parent), "cannot open"),
    ):
        assert main(["migrate", "--from", wrong]) == USAGE_ERROR
        assert words in capfd.readouterr().err
    assert main(["migrate", "--from", source, "--table", "nope"]) == USAGE_ERROR
    assert "has no table nope" in capfd.readouterr().err
