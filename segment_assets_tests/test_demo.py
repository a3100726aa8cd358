"""A newcomer's ``make demo``: the UI comes up with partitions already materialised through
the real clients, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from segment_assets.demo import CREDENTIALS
from segment_assets.emulator.config import DEMO_ACTIONHUB_PROGRAMS, DEMO_ONESIGNAL_APPS

from .dagster_ui import free_port, latest_check, partitions_by_asset, port_in_use

PROVIDER_ASSETS = ("actionhub_segments", "usercom_segments", "onesignal_segments")

pytestmark = pytest.mark.slow


def wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        assert proc.poll() is None, f"the demo exited early:\n{log.read_text()}"
        time.sleep(0.3)
    raise TimeoutError(f"no {text!r} within {timeout:.0f} s:\n{log.read_text()}")


def processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def test_make_demo_shows_materialised_partitions_and_ctrl_c_stops_everything(tmp_path):
    ui_port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    env.update(
        DEMO_DAYS="1",
        DEMO_PORT=str(ui_port),
        DEMO_EMULATOR_PORT=str(emulator_port),
        DEMO_HOME=str(tmp_path / "dagster_home"),
        SEGMENT_ASSETS_DUCKDB=str(tmp_path / "data" / "segment_assets.duckdb"),
    )
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "segment_assets.demo"], env=env, stdout=out, stderr=out
        )
    try:
        wait_for_line(log, "demo: ready", demo, timeout=50)
        url = f"http://127.0.0.1:{ui_port}"
        materialised = partitions_by_asset(url)
        assert all(materialised[asset] == 1 for asset in PROVIDER_ASSETS), materialised
        check = latest_check(url, "onesignal_segments")["executionForLatestMaterialization"]
        assert check["status"] in ("SUCCEEDED", "FAILED")  # one day is too few to judge
        assert "planted a drop" in log.read_text()
        for secret in ("ah-demo-key", "os_v2_app_"):
            assert secret not in log.read_text()
    finally:
        demo.send_signal(signal.SIGINT)  # what Ctrl-C does
        returncode = demo.wait(timeout=30)
    assert returncode == 0, log.read_text()
    assert not port_in_use(ui_port)
    assert not port_in_use(emulator_port)
    assert processes_mentioning(str(tmp_path)) == []
    assert processes_mentioning(f"--port {emulator_port}") == []
    # the demo's accounts file: two OneSignal apps and two ActionHub programs
    assert "onesignal:\n  web:" in (tmp_path / "dagster_home" / "segment_assets.yaml").read_text()
    with duckdb.connect(env["SEGMENT_ASSETS_DUCKDB"], read_only=True) as conn:
        for table, accounts in (
            ("onesignal_segments", set(DEMO_ONESIGNAL_APPS)),
            ("actionhub_segments", set(DEMO_ACTIONHUB_PROGRAMS)),
        ):
            found = {
                row[0]
                for row in conn.execute(f"select distinct account from segments.{table}").fetchall()
            }
            assert found == accounts, table
