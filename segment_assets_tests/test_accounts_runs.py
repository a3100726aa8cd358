"""Several accounts per provider through real Dagster runs: each account on its own, a failed
one visible and repaired alone, nothing of the others lost."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from segment_assets.cli import RUN_FAILED, USAGE_ERROR
from segment_assets.config import provider_resources
from segment_assets.defs.account_check import ACCOUNTS_CHECK
from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.drops import flag_drops
from segment_assets.defs.drops_shown import drops_markdown
from segment_assets.defs.sensors import segment_drop_sensor
from segment_assets.emulator import ActionHubProgram, EmulatorConfig, OneSignalApp, UserComApp
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.duckdb_files import connect, io_manager

from .conftest import YESTERDAY
from .drop_story import days
from .resilience import ASSETS, FAST, counts_of, run_messages, stored

APPS = {
    "brand_a": ("0b6f5a52-95b7-4a54-8d3f-6a3c1f2f6b10", "os_v2_app_brand_a_key_for_tests"),
    "brand_b": ("5d3c2b1a-6f5e-4d3c-8b7c-1a3f4e5d8b7c", "os_v2_app_brand_b_key_for_tests"),
    "brand_c": ("9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "os_v2_app_brand_c_key_for_tests"),
}
PROGRAMS = ("prog-eu", "prog-us")
ACTIONHUB_KEY = "ah-one-key-for-two-programs"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        actionhub=[ActionHubProgram(p, ACTIONHUB_KEY, segments_per_list=6) for p in PROGRAMS],
        usercom=[UserComApp("acme", "u" * 64, n_segments=10)],
        onesignal=[
            OneSignalApp(app_id, key, n_segments=8, n_user_based=1, n_deleted=0)
            for app_id, key in APPS.values()
        ],
    )


@pytest.fixture
def accounts_env(emulator, duckdb_path, tmp_path, monkeypatch) -> dict[str, str]:
    """A segment_assets.yaml with three OneSignal apps and two ActionHub programs."""
    config = tmp_path / "segment_assets.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            onesignal:
              brand_a:
                app_id: {APPS["brand_a"][0]}
                api_key_env: OS_BRAND_A_KEY
              brand_b:
                label: Brand B
                app_id: {APPS["brand_b"][0]}
                api_key_env: OS_BRAND_B_KEY
              brand_c:
                app_id: {APPS["brand_c"][0]}
                api_key_env: OS_BRAND_C_KEY
            actionhub:
              eu:
                program_id: prog-eu
                api_key_env: AH_KEY
              us:
                program_id: prog-us
                api_key_env: AH_KEY
            """
        )
    )
    env = {
        "SEGMENT_ASSETS_CONFIG": str(config),
        "ONESIGNAL_BASE_URL": emulator.base_url("onesignal"),
        "ACTIONHUB_BASE_URL": emulator.base_url("actionhub"),
        "ONESIGNAL_MAX_RPS": "1000",
        "ACTIONHUB_MAX_RPS": "1000",
        "OS_BRAND_A_KEY": APPS["brand_a"][1],
        "OS_BRAND_B_KEY": "os_v2_app_revoked_key_of_brand_b",  # refused by the provider
        "OS_BRAND_C_KEY": APPS["brand_c"][1],
        "AH_KEY": ACTIONHUB_KEY,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def fast(resource):
    """The configured resource with a short retry budget (same accounts, same variables)."""
    accounts = [a.model_copy(update=FAST) for a in resource.all_accounts()]
    return type(resource)(accounts=accounts)


def run(instance, providers=("onesignal",), config=None):
    resources = provider_resources()
    return dg.materialize(
        [ASSETS[p] for p in providers],
        partition_key=YESTERDAY.isoformat(),
        resources={"io_manager": io_manager(), **{p: fast(resources[p]) for p in providers}},
        instance=instance,
        raise_on_error=False,
        run_config=config,
    )


def truth(emulator, app_id: str) -> dict[str, int | None]:
    """segment id → count a complete snapshot of this app must hold."""
    return {t["id"]: t["subscriber_count"] for t in emulator.state.truth("onesignal", app_id)}


def check_result(result, asset: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == ACCOUNTS_CHECK
        and e.event_specific_data.asset_key.path[-1] == asset
    ]
    return evaluation


def test_three_onesignal_apps_one_with_a_bad_key_store_the_other_two_and_name_the_failure(
    emulator, accounts_env, duckdb_path, instance
):
    result = run(instance)

    assert result.success  # the run stores what it could
    frame = stored(duckdb_path, "onesignal")
    by_app = {app: counts_of(rows) for app, rows in frame.groupby("account")}
    assert set(by_app) == {APPS["brand_a"][0], APPS["brand_c"][0]}
    for name in ("brand_a", "brand_c"):
        assert by_app[APPS[name][0]] == truth(emulator, APPS[name][0])

    check = check_result(result, "onesignal_segments")
    assert check.partition == YESTERDAY.isoformat()  # shown on the partition in the UI
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith(
        f"1 of 3 account(s) failed: OneSignal Brand B ({APPS['brand_b'][0]}): "
    )
    assert "credentials refused" in check.description
    assert "Check OS_BRAND_B_KEY" in check.description
    meta = result.asset_materializations_for_node("onesignal_segments")[0].metadata
    assert (meta["accounts"].value, meta["failed_accounts"].value) == (3, 1)
    assert "FAILED: ProviderAuthError" in meta["account_status"].value
    log = "\n".join(run_messages(instance, result.run_id))
    assert f"OneSignal Brand B ({APPS['brand_b'][0]}): snapshot failed, the other accounts" in log
    assert "os_v2_app_revoked_key_of_brand_b" not in log


def test_a_rerun_fetches_only_the_failed_app_and_keeps_the_others_rows(
    emulator, accounts_env, duckdb_path, instance, monkeypatch
):
    run(instance)
    first = stored(duckdb_path, "onesignal")
    emulator.state.reset_stats()
    monkeypatch.setenv("OS_BRAND_B_KEY", APPS["brand_b"][1])  # the key is fixed

    result = run(instance)

    assert result.success
    assert check_result(result, "onesignal_segments").passed
    by_account = emulator.state.stats()["onesignal"]["by_account"]
    assert set(by_account) == {APPS["brand_b"][0]}  # the other two apps were not asked again
    frame = stored(duckdb_path, "onesignal")
    assert set(frame["account"]) == {app_id for app_id, _ in APPS.values()}
    assert not frame.duplicated(["account", "segment_id"]).any()
    kept = frame.loc[frame["account"] != APPS["brand_b"][0]].reset_index(drop=True)
    assert kept[["account", "segment_id", "user_count", "fetched_at"]].equals(
        first[["account", "segment_id", "user_count", "fetched_at"]].reset_index(drop=True)
    )
    assert counts_of(frame.loc[frame["account"] == APPS["brand_b"][0]]) == truth(
        emulator, APPS["brand_b"][0]
    )
    log = "\n".join(run_messages(instance, result.run_id))
    assert "already holds 2 of 3 accounts; fetching the 1 missing" in log

    # a complete day is taken again in full
    emulator.state.reset_stats()
    again = run(instance)
    assert again.success
    assert len(emulator.state.stats()["onesignal"]["by_account"]) == 3


def test_refetch_all_asks_every_account_again_on_a_partial_day(
    emulator, accounts_env, duckdb_path, instance
):
    run(instance)  # brand_b's key is refused: the day lacks one app
    emulator.state.reset_stats()

    result = run(
        instance, config={"ops": {"onesignal_segments": {"config": {"refetch_all": True}}}}
    )

    assert result.success
    assert len(emulator.state.stats()["onesignal"]["by_account"]) == 3
    meta = result.asset_materializations_for_node("onesignal_segments")[0].metadata
    assert meta["failed_accounts"].value == 1
    assert set(stored(duckdb_path, "onesignal")["account"]) == {
        APPS["brand_a"][0],
        APPS["brand_c"][0],
    }


def test_two_actionhub_programs_behind_one_key_are_two_accounts_with_the_same_segment_ids(
    emulator, accounts_env, duckdb_path, instance
):
    result = run(instance, providers=("actionhub",))

    assert result.success
    frame = stored(duckdb_path, "actionhub")
    assert set(frame["account"]) == set(PROGRAMS)
    eu = frame.loc[frame["account"] == "prog-eu"]
    us = frame.loc[frame["account"] == "prog-us"]
    # the same segment id in two programs: two segments, each with its own count
    assert set(eu["segment_id"]) == set(us["segment_id"])
    assert len(frame) == len(eu) + len(us)
    assert check_result(result, "actionhub_segments").passed
    by_account = emulator.state.stats()["actionhub"]["by_account"]
    assert set(by_account) == set(PROGRAMS)


def test_removing_an_account_keeps_its_history_and_the_others(
    emulator, accounts_env, duckdb_path, instance, monkeypatch, tmp_path
):
    monkeypatch.setenv("OS_BRAND_B_KEY", APPS["brand_b"][1])
    assert run(instance).success
    config = tmp_path / "segment_assets.yaml"
    text = config.read_text()
    start = text.index("  brand_c:")
    config.write_text(text[:start] + text[text.index("actionhub:") :])  # brand_c removed

    result = run(instance, config=None)

    assert result.success
    frame = stored(duckdb_path, "onesignal")
    assert set(frame["account"]) == {app_id for app_id, _ in APPS.values()}  # nothing lost
    log = "\n".join(run_messages(instance, result.run_id))
    assert f"kept the stored rows of accounts no longer configured: {APPS['brand_c'][0]}" in log
    meta = result.asset_materializations_for_node("onesignal_segments")[0].metadata
    assert meta["accounts"].value == 2


@pytest.mark.slow
def test_the_command_line_exits_3_naming_the_failed_app_and_2_for_a_bad_file(
    emulator, accounts_env, duckdb_path, tmp_path
):
    env = {**os.environ, "SEGMENT_ASSETS_DUCKDB": duckdb_path}
    command = [sys.executable, "-m", "segment_assets", "snapshot", "--date",
               YESTERDAY.isoformat(), "--provider", "onesignal"]  # fmt: skip

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == RUN_FAILED, done.stderr
    assert "onesignal_segments all_accounts_snapshotted: FAILED" in done.stdout
    assert f"OneSignal Brand B ({APPS['brand_b'][0]}): " in done.stderr
    assert set(stored(duckdb_path, "onesignal")["account"]) == {
        APPS["brand_a"][0],
        APPS["brand_c"][0],
    }

    bad = tmp_path / "bad.yaml"
    bad.write_text("onesignal:\n  brand_a:\n    app_id: x\n    api_key_env: NOT_SET_HERE\n")
    env["SEGMENT_ASSETS_CONFIG"] = str(bad)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == USAGE_ERROR
    assert "onesignal.brand_a.api_key_env: the variable NOT_SET_HERE is not set" in done.stderr


def test_no_key_of_any_account_reaches_the_event_log_metadata_or_the_table(
    emulator, accounts_env, duckdb_path, instance, capfd
):
    result = run(instance, providers=("onesignal", "actionhub"))

    assert result.success
    keys = [key for _, key in APPS.values()]
    keys += [accounts_env["OS_BRAND_B_KEY"], ACTIONHUB_KEY]
    captured = capfd.readouterr()
    places = {"stdout": captured.out, "stderr": captured.err}
    for entry in instance.all_logs(result.run_id):
        places[f"event {entry.timestamp}"] = serialize_value(entry)
    places["duckdb"] = Path(duckdb_path).read_bytes().decode("latin-1")
    failures = result.asset_materializations_for_node("onesignal_segments")[0].metadata
    assert "credentials refused" in str(failures["account_failures"].value)  # searched below
    assert any("account_failures" in text for text in places.values())
    leaked = {where for where, text in places.items() for key in keys if key in text}
    assert leaked == set()


@pytest.mark.slow
def test_a_drop_in_one_program_alerts_that_program_in_words_and_a_failed_app_alerts_too(
    emulator, accounts_env, duckdb_path, instance, receiver
):
    """Two ActionHub programs list the same segment ids; only the one that fell alerts, and
    the OneSignal app whose key is refused gets a snapshot_failed alert of its own."""
    programs = [
        a.process_config_and_initialize()
        for a in fast(provider_resources()["actionhub"]).all_accounts()
    ]
    frames = []
    for day in days(YESTERDAY - dt.timedelta(days=1), 9):
        emulator.state.set_date(day)
        frames += [program.snapshot(day) for program in programs]
    history = pd.concat(frames, ignore_index=True)  # noqa: F841 - read by DuckDB below
    with connect(duckdb_path) as conn:
        conn.execute("create schema segments")
        conn.execute("create table segments.actionhub_segments as select * from history")
    us = frames[-1]
    fallen = us.loc[us["user_count"].idxmax(), "segment_id"]
    emulator.state.plant_drop("actionhub", "prog-us", fallen, start=YESTERDAY, factor=0.1)
    emulator.state.set_date(YESTERDAY)
    assert run(instance, providers=("actionhub", "onesignal")).success

    alerts = DropAlerts(alert_webhook_url=receiver.url("/hook"), webserver_url="http://d")
    context = dg.build_sensor_context(instance=instance, resources={"alerts": alerts})
    segment_drop_sensor(context)

    hooks = {h["kind"]: h for h in receiver.delivered("/hook")}
    assert set(hooks) == {"drops", "snapshot_failed"}
    drop = hooks["drops"]
    assert (drop["provider"], drop["account"], drop["account_name"]) == (
        "actionhub",
        "prog-us",
        "us",
    )
    assert [d["segment_id"] for d in drop["drops"]] == [fallen]  # prog-eu's twin did not fall
    found = flag_drops(DuckDBStore(duckdb_path), ["actionhub_segments"], YESTERDAY)
    table = drops_markdown(found.drops, found.accounts)
    assert "| prog-us " in table  # the check's table says which program fell
    failed = hooks["snapshot_failed"]
    assert (failed["account"], failed["account_name"]) == (APPS["brand_b"][0], "Brand B")
    assert "credentials refused" in failed["error"]
    assert "Check OS_BRAND_B_KEY" in failed["error"]


def test_a_provider_given_no_accounts_stores_an_empty_day_and_asks_nothing(
    emulator, accounts_env, duckdb_path, instance, tmp_path
):
    config = tmp_path / "segment_assets.yaml"
    config.write_text(config.read_text() + "usercom: {}\n")

    result = run(instance, providers=("usercom",))

    assert result.success
    assert stored(duckdb_path, "usercom").empty
    assert emulator.state.stats()["usercom"]["requests"] == 0
    meta = result.asset_materializations_for_node("usercom_segments")[0].metadata
    assert (meta["segments"].value, meta["accounts"].value) == (0, 0)
    assert meta["account_status"].value == "_no accounts configured_"


@pytest.mark.slow
def test_an_app_whose_answers_lost_segments_fails_alone_and_alerts_snapshot_failed_not_vanished(
    emulator, accounts_env, duckdb_path, instance, receiver, monkeypatch
):
    """Half of one app's views answer a proxy's 404 page and another app's listing comes back
    empty: neither replaces its stored day, both are failed accounts (check and alert), and
    no segment is reported vanished."""
    monkeypatch.setenv("OS_BRAND_B_KEY", APPS["brand_b"][1])
    day_before = YESTERDAY - dt.timedelta(days=1)
    emulator.state.set_date(day_before)
    resources = provider_resources()
    earlier = dg.materialize(
        [ASSETS["onesignal"]],
        partition_key=day_before.isoformat(),
        resources={"io_manager": io_manager(), "onesignal": fast(resources["onesignal"])},
        instance=instance,
        run_config={"ops": {"onesignal_segments": {"config": {"allow_late_partition": True}}}},
    )
    assert earlier.success
    emulator.state.set_date(YESTERDAY)
    half_404, emptied = APPS["brand_a"][0], APPS["brand_c"][0]
    emulator.state.set_faults("onesignal", half_404, view_404="html", view_404_share=0.5)
    emulator.state.set_faults("onesignal", emptied, empty_listing=True)

    result = run(instance)

    assert result.success  # brand_b is stored
    assert set(stored(duckdb_path, "onesignal", YESTERDAY)["account"]) == {APPS["brand_b"][0]}
    check = check_result(result, "onesignal_segments")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith("2 of 3 account(s) failed: ")
    assert f"OneSignal brand_a ({half_404}): onesignal GET /apps/{half_404}/segments/" in (
        check.description
    )
    assert "HTTP 404: a segment's view answered 404 without OneSignal's 'segment not found'" in (
        check.description
    )
    assert (
        f"OneSignal brand_c ({emptied}): OneSignal brand_c ({emptied}) listed 0 segment(s) "
        f"where its latest stored day ({day_before}) had 8"
    ) in check.description

    alerts = DropAlerts(alert_webhook_url=receiver.url("/hook"), webserver_url="http://d")
    segment_drop_sensor(dg.build_sensor_context(instance=instance, resources={"alerts": alerts}))

    hooks = receiver.delivered("/hook")
    assert sorted((h["kind"], h["account"]) for h in hooks) == sorted(
        [("snapshot_failed", half_404), ("snapshot_failed", emptied)]
    )  # no "drops" alert: nothing vanished
    errors = {h["account"]: h["error"] for h in hooks}
    assert "404 Not Found nginx" in errors[half_404]
    assert "so about 8 were expected" in errors[emptied]
