"""The production deployment needs no node pinning: the image, the Helm values and the code
location keep nothing on local disk when SEGMENT_ASSETS_DATABASE_URL names the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PINNING = ("volume", "persistentvolumeclaim", "readwriteonce", "nodeselector", "affinity")


def test_the_helm_values_mount_no_volume_pin_no_node_and_take_the_store_from_a_secret():
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    text = json.dumps(values).lower()
    assert not [word for word in PINNING if word in text]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # run pods too
    assert "segment-assets-store" in [s["name"] for s in deployment["envSecrets"]]
    assert not [e for e in deployment.get("env", []) if e["name"].startswith("SEGMENT_ASSETS_")]
    readme = (DEPLOY / "README.md").read_text()
    assert "create secret generic segment-assets-store" in readme
    assert "--from-literal=SEGMENT_ASSETS_DATABASE_URL=" in readme


def test_the_image_needs_no_volume_and_installs_what_the_deployment_uses():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line[:1].isupper()]
    assert "VOLUME" not in instructions
    assert "SEGMENT_ASSETS_DUCKDB" not in dockerfile
    assert "pip install --no-cache-dir '.[deploy]'" in dockerfile
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["deploy"]
    names = {requirement.split(">")[0].split("=")[0] for requirement in extra}
    # the instance's storage (deploy/dagster.yaml) and the chart's run launcher
    assert {"dagster-postgres", "dagster-k8s"} <= names
    assert "postgres" in (DEPLOY / "dagster.yaml").read_text()


def test_the_code_location_with_the_variable_set_uses_postgresql_for_everything(tmp_path):
    # (nothing is connected while the code location loads: no server is needed)
    probe = (
        "import json\n"
        "from segment_assets.definitions import defs\n"
        "io = defs.resources['io_manager']\n"
        "kinds = sorted({kind for a in defs.assets for s in a.specs for kind in s.kinds})\n"
        "print(json.dumps({'io_manager': type(io).__name__, 'kinds': kinds}))\n"
    )
    env = {
        **os.environ,
        "SEGMENT_ASSETS_DATABASE_URL": "postgresql://u:canary-pw@db.example.invalid:5432/x",
        "SEGMENT_ASSETS_DUCKDB": str(tmp_path / "never" / "segment_assets.duckdb"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["io_manager"] == "PostgresSegmentsIOManager"
    assert "postgres" in loaded["kinds"] and "duckdb" not in loaded["kinds"]
    assert "canary-pw" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where it runs
