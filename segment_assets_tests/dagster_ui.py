"""Talk to a running Dagster webserver the way the UI does: over its GraphQL API."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from typing import Any

import requests

ASSET_NODES = """
query {
  assetNodes {
    assetKey { path }
    description
    groupName
    kinds
    partitionStats { numMaterialized }
  }
}
"""

CHECKS = """
query Checks($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization { status partition evaluation { success } }
          }
        }
      }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def graphql(url: str, query: str, **variables: Any) -> dict[str, Any]:
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a child started with ``start_new_session`` and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def partitions_by_asset(url: str) -> dict[str, int]:
    nodes = graphql(url, ASSET_NODES)["assetNodes"]
    return {
        "/".join(n["assetKey"]["path"]): (n["partitionStats"] or {}).get("numMaterialized", 0)
        for n in nodes
    }


def latest_check(url: str, asset: str, name: str = "no_sudden_drops") -> dict[str, Any]:
    """A check of ``asset`` (the drop check by default) and its execution for the latest
    materialisation."""
    node = graphql(url, CHECKS, path=[asset])["assetNodeOrError"]
    [check] = [c for c in node["assetChecksOrError"]["checks"] if c["name"] == name]
    return check
