"""A cron user runs ``python -m segment_assets`` against the emulator and reads exit codes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import dagster as dg
import duckdb
import pytest

from segment_assets.cli import DROPS_FOUND, OK, RUN_FAILED, USAGE_ERROR, main

from .conftest import YESTERDAY
from .drop_story import APP_ID, days, largest_segments, small_config, write_history

pytestmark = pytest.mark.slow


@pytest.fixture
def emulator_config():
    return small_config()


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segment_assets", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_nightly_snapshot_stores_every_provider_and_records_the_run(
    env, tmp_path, emulator, duckdb_path
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    done = run("snapshot", "--date", YESTERDAY.isoformat(), DAGSTER_HOME=str(home))
    assert done.returncode == OK, done.stderr
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        [(stored,)] = conn.execute(
            "select count(*) from segments.onesignal_segments where snapshot_date = ?",
            [YESTERDAY],
        ).fetchall()
    countable = len(emulator.state.truth("onesignal", APP_ID))
    assert stored == countable
    assert f"onesignal_segments {YESTERDAY}: {countable} segments" in done.stdout
    assert "onesignal_segments no_sudden_drops: passed" in done.stdout
    assert f"OneSignal {APP_ID}: {countable}/{countable} segments" in done.stderr  # progress
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_run_records()
        assert record.dagster_run.tags["dagster/partition"] == YESTERDAY.isoformat()
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS


def test_an_old_partition_is_refused_with_exit_2_unless_late_is_allowed(env):
    old = (YESTERDAY - dt.timedelta(days=10)).isoformat()
    refused = run("snapshot", "--date", old, "--provider", "usercom")
    assert refused.returncode == USAGE_ERROR
    assert "allow_late_partition" in refused.stderr
    allowed = run("snapshot", "--date", old, "--provider", "usercom", "--allow-late")
    assert allowed.returncode == OK, allowed.stderr
    assert f"usercom_segments {old}: 5 segments" in allowed.stdout


def test_a_refused_api_key_exits_3_without_showing_the_key(env):
    wrong = "os_v2_app_this_key_is_not_valid_anywhere"
    done = run("snapshot", "--date", YESTERDAY.isoformat(), "--provider", "onesignal",
               ONESIGNAL_API_KEY=wrong)  # fmt: skip
    assert done.returncode == RUN_FAILED
    assert "error: onesignal_segments" in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_a_missing_variable_or_a_bad_argument_exits_2(env):
    missing = run("snapshot", "--date", YESTERDAY.isoformat(), "--provider", "actionhub",
                  ACTIONHUB_PROGRAM_ID="")  # fmt: skip
    assert missing.returncode == USAGE_ERROR
    assert "ACTIONHUB_PROGRAM_ID" in missing.stderr
    for bad in (["snapshot", "--date", "yesterday"], ["drops"], ["restore"]):
        with pytest.raises(SystemExit) as exited:
            main(bad)
        assert exited.value.code == USAGE_ERROR


def test_an_unset_variable_or_a_day_that_is_not_a_partition_exits_2_saying_what_to_fix(
    env, monkeypatch, capsys
):
    monkeypatch.delenv("ACTIONHUB_API_KEY")
    unset = run("snapshot", "--date", YESTERDAY.isoformat(), "--provider", "actionhub")
    assert unset.returncode == USAGE_ERROR
    assert unset.stderr.startswith('error: You have attempted to fetch the environment variable '
                                   '"ACTIONHUB_API_KEY" which is not set.')  # fmt: skip
    assert "Traceback" not in unset.stderr and "Stack Trace" not in unset.stderr

    today = YESTERDAY + dt.timedelta(days=1)
    for day in (dt.date(2024, 12, 31), today):
        assert main(["snapshot", "--date", day.isoformat(), "--provider", "usercom"]) == (
            USAGE_ERROR
        )
        assert capsys.readouterr().err == (
            f"error: {day} is not a partition: the daily partitions run from 2025-01-01 "
            f"(SEGMENT_ASSETS_START_DATE) to {YESTERDAY}, the last UTC day that has ended\n"
        )


# ``python -m segment_assets`` with one function of the detector broken, as a bug would.
WITH_A_BUG = textwrap.dedent(
    """
    import sys

    import segment_assets.defs.drops
    from segment_assets.cli import main


    def flag_drops(*args, **kwargs):
        raise ValueError("a bug in the detector")


    segment_assets.defs.drops.flag_drops = flag_drops
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_bug_stays_a_traceback_with_exit_1_not_a_usage_error(env):
    done = subprocess.run(
        [sys.executable, "-c", WITH_A_BUG, "drops", "--date", YESTERDAY.isoformat()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.rstrip().endswith("ValueError: a bug in the detector")
    assert "error:" not in done.stderr


def test_drops_exits_1_and_names_the_segment_that_fell(env, emulator, resources, duckdb_path):
    history = days(YESTERDAY - dt.timedelta(days=1), 10)
    onesignal = resources["onesignal"].process_config_and_initialize()  # EnvVars resolved
    write_history(emulator, {"onesignal": onesignal}, duckdb_path, history)
    [(segment_id, name)] = largest_segments(emulator, 1)
    emulator.state.set_date(YESTERDAY)
    emulator.state.plant_drop("onesignal", APP_ID, segment_id, start=YESTERDAY, factor=0.1)
    snapshot = run("snapshot", "--date", YESTERDAY.isoformat(), "--provider", "onesignal")
    assert snapshot.returncode == OK, snapshot.stderr
    assert "onesignal_segments no_sudden_drops: FAILED" in snapshot.stdout

    found = run("drops", "--date", YESTERDAY.isoformat())
    assert found.returncode == DROPS_FOUND, found.stderr
    assert name in found.stdout and "ERROR" in found.stdout

    quiet = run("drops", "--date", history[-1].isoformat())
    assert quiet.returncode == OK
    assert "no drops" in quiet.stdout
