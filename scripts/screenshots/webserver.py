"""Dagster's UI on a world: ``dagster-webserver`` alone (enough for check results), or
``dagster dev`` (the webserver with the daemon, which ticks the drop sensor), on a free
loopback port, started from the world's DAGSTER_HOME against the project's workspace."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from scripts.screenshots.world import HOST, ROOT, WorldPlace, free_port

LOCATION = "segment_assets.definitions"  # workspace.yaml's python_module
SENSOR = "segment_drop_sensor"
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: 5) { id status logKey } } }
  }
}
"""


class WebserverError(RuntimeError):
    """The UI did not come up, or did not get what the screenshots need in time."""


def graphql(url: str, query: str, **variables: Any) -> dict[str, Any]:
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    if "errors" in body:
        raise WebserverError(f"the UI's API answered with errors: {body['errors']}")
    return body["data"]


@dataclass(frozen=True)
class UI:
    """A Dagster UI being started; :meth:`ready` waits until it answers."""

    url: str
    proc: subprocess.Popen

    def ready(self, timeout: float = 90.0) -> str:
        """The UI's URL once it answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise WebserverError(f"the Dagster UI exited with code {self.proc.returncode}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/server_info", timeout=2).ok:
                    return self.url
            time.sleep(0.2)
        raise WebserverError(f"the Dagster UI did not answer at {self.url} within {timeout:.0f} s")


@contextlib.contextmanager
def serve(
    place: WorldPlace,
    daemon: bool = False,
    log: Path | None = None,
    grace_seconds: float = 15.0,
) -> Iterator[UI]:
    """Start the UI on the world in ``place`` on a free port; with ``daemon``, ``dagster dev``
    (webserver and daemon), else ``dagster-webserver``. Its output goes to ``log``. It is
    stopped when the context ends, Ctrl-C first and for good after ``grace_seconds``."""
    bin_dir = Path(sys.executable).parent
    port = free_port()
    where = ["-w", str(ROOT / "workspace.yaml"), "-h", HOST, "-p", str(port)]
    if daemon:
        args = [str(bin_dir / "dagster"), "dev", *where]
    else:
        args = [str(bin_dir / "dagster-webserver"), *where]
    env = {**place.environ(), "PYTHONWARNINGS": "ignore"}
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("w")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            args, cwd=place.home, env=env, stdout=out, stderr=out, start_new_session=True
        )
        try:
            yield UI(f"http://{HOST}:{port}", proc)
        finally:
            stop(proc, grace_seconds)


def stop(proc: subprocess.Popen, grace_seconds: float = 15.0) -> None:
    """Stop the UI and everything it started (its process group): Ctrl-C's signal first, then,
    after ``grace_seconds`` (or at once where SIGINT is ignored, as in a shell's background
    job), for good."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_seconds)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for_sensor_tick(url: str, timeout: float = 120.0) -> str:
    """The id of the drop sensor's first tick that logged something (its alerts), once the
    daemon has run it."""
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": "__repository__",
        "sensorName": SENSOR,
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = graphql(url, SENSOR_TICKS, selector=selector)["sensorOrError"]
        if found["__typename"] != "Sensor":
            raise WebserverError(f"the UI does not know the sensor {SENSOR}: {found}")
        ticks = found["sensorState"]["ticks"]
        done = [t for t in ticks if t["status"] in ("SKIPPED", "SUCCESS") and t["logKey"]]
        if done:
            return done[-1]["id"]
        failed = [t for t in ticks if t["status"] == "FAILURE"]
        if failed:
            raise WebserverError(f"the tick {failed[0]['id']} of {SENSOR} failed")
        time.sleep(0.5)
    raise WebserverError(f"{SENSOR} had no tick within {timeout:.0f} s (is the daemon running?)")
