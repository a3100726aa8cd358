"""The code location loads, and the schedule asks for the day that just ended."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from segment_assets import definitions


def test_the_code_location_loads_without_any_provider_credentials(monkeypatch):
    for name in ("ACTIONHUB_API_KEY", "USERCOM_API_KEY", "ONESIGNAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    dg.Definitions.validate_loadable(definitions.defs)


def test_the_public_names_exist():
    defs = definitions.defs
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"actionhub_segments", "usercom_segments", "onesignal_segments"} <= keys
    assert defs.resolve_job_def("daily_segment_snapshot")
    schedule = defs.resolve_schedule_def("daily_segment_snapshot_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_schedule_snapshots_the_day_that_just_ended_shortly_after_midnight_utc():
    schedule = definitions.defs.resolve_schedule_def("daily_segment_snapshot_schedule")
    tick = dt.datetime(2026, 3, 15, 0, 20, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        data = schedule.evaluate_tick(context)
    [request] = data.run_requests
    assert request.partition_key == "2026-03-14"
    assert schedule.cron_schedule == "20 0 * * *"
    assert schedule.execution_timezone in (None, "UTC")


def test_the_ui_shows_variable_names_not_secret_values(monkeypatch):
    monkeypatch.setenv("ONESIGNAL_API_KEY", "os_v2_app_do_not_show_me")
    from segment_assets.config import provider_resources_from_env

    resource = provider_resources_from_env()["onesignal"]
    shown = repr(resource.get_resource_definition().config_schema.default_value)
    assert "ONESIGNAL_API_KEY" in shown
    assert "do_not_show_me" not in shown
