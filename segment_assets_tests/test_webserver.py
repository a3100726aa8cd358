"""A real client of the UI's API: start dagster-webserver on the project, launch the daily
job for one partition over GraphQL, and read the drop check's verdict back."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import YESTERDAY
from .dagster_ui import (
    ASSET_NODES,
    free_port,
    graphql,
    latest_check,
    port_in_use,
    stop_group,
    wait_for,
)
from .drop_story import APP_ID, days, largest_segments, small_config, write_history

ROOT = Path(__file__).resolve().parents[1]
LOCATION = "segment_assets.definitions"  # workspace.yaml's python_module
# No daemon in this test, so runs are launched right away instead of queued.
INSTANCE_YAML = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"

pytestmark = pytest.mark.slow


@pytest.fixture
def emulator_config():
    return small_config()


@pytest.fixture
def webserver(env, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=home,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, proc)
        yield url
    finally:
        stop_group(proc)
    assert not port_in_use(port)


def launch(url: str, partition: str) -> str:
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "daily_segment_snapshot",
        },
        # one process for the whole run: the same steps, without a worker process per step
        "runConfigData": {"execution": {"config": {"in_process": {}}}},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = graphql(url, LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def wait_for_run(url: str, run_id: str, timeout: float = 40.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = graphql(url, RUN_STATUS, id=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} still {status} after {timeout:.0f} s")


def test_a_partition_launched_through_the_ui_api_fails_its_drop_check(
    webserver, emulator, resources, duckdb_path
):
    nodes = {
        "/".join(n["assetKey"]["path"]): n for n in graphql(webserver, ASSET_NODES)["assetNodes"]
    }
    assert {"actionhub_segments", "usercom_segments", "onesignal_segments"} <= set(nodes)
    for node in nodes.values():  # what the UI shows for every asset
        assert node["description"] and node["groupName"] == "segments"
        assert "duckdb" in node["kinds"]
    assert set(nodes["onesignal_segments"]["kinds"]) == {"duckdb", "onesignal"}

    onesignal = resources["onesignal"].process_config_and_initialize()
    write_history(emulator, {"onesignal": onesignal}, duckdb_path, days(YESTERDAY, 9)[:-1])
    emulator.state.set_date(YESTERDAY)
    [(segment_id, name)] = largest_segments(emulator, 1)
    emulator.state.plant_drop("onesignal", APP_ID, segment_id, start=YESTERDAY, factor=0.1)

    run_id = launch(webserver, YESTERDAY.isoformat())
    assert wait_for_run(webserver, run_id) == "SUCCESS"

    check = latest_check(webserver, "onesignal_segments")
    assert check["name"] == "no_sudden_drops"
    execution = check["executionForLatestMaterialization"]
    assert execution["partition"] == YESTERDAY.isoformat()
    assert execution["status"] == "FAILED"
    assert execution["evaluation"]["success"] is False
    clean = latest_check(webserver, "usercom_segments")["executionForLatestMaterialization"]
    assert clean["status"] == "SUCCEEDED"
    assert dt.date.fromisoformat(clean["partition"]) == YESTERDAY
