"""A killed run never blocks the next one.

A run killed with SIGKILL in the middle of its OneSignal fetch cannot free the ``onesignal``
pool slot it holds; Dagster's run monitoring (on in ``dagster.yaml`` and
``deploy/dagster.yaml``) frees it once the run is known to have ended. The end-to-end test
runs a real ``dagster-daemon`` on an instance made from the repository's ``dagster.yaml``
(with the monitoring and queue intervals shortened) and the code location in its own code
server, as ``deploy/`` runs them, kills a real run process mid-fetch, and then runs the next
snapshot.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from signal import SIGKILL

import dagster as dg
import pytest
import yaml

from segment_assets.emulator import EmulatorConfig

from .conftest import YESTERDAY
from .dagster_ui import free_port, port_in_use
from .resilience import expected_counts, fast_resources, materialize, small_config, stored

REPO = Path(__file__).resolve().parents[1]
INSTANCE_FILES = ("dagster.yaml", "deploy/dagster.yaml")
POOL = "onesignal"
VIEW_LATENCY_MS = 400  # 12 views one at a time: the fetch lasts about 5 s
# The production intervals, shortened for the test; the rest is the repository's file.
SHORT = {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1}
DEQUEUE_SECONDS = 1  # the run queue's daemon looks for queued runs this often (Dagster: 5)
MAX_RUNTIME_SECONDS = 2  # any run not tagged otherwise: the killed one
GOES_THROUGH = {"dagster/max_runtime": "3600"}  # a run that must never be cut short


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_both_instance_files_free_a_dead_runs_pool_slots_within_minutes(name):
    settings = yaml.safe_load((REPO / name).read_text())["run_monitoring"]

    assert settings["enabled"] is True
    assert settings["max_resume_run_attempts"] == 0  # the default launcher cannot resume
    # a dead run's slots are free at most one poll after the grace period
    assert settings["poll_interval_seconds"] + settings["free_slots_after_run_end_seconds"] <= 120
    assert settings["start_timeout_seconds"] <= 300
    assert settings["max_runtime_seconds"] >= 4 * 3600  # never cuts a long snapshot short


def test_the_local_instance_runs_the_monitoring_daemon(tmp_path):
    home = instance_home(tmp_path, {})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert "MONITORING" in instance.get_required_daemon_types()
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60


def instance_home(tmp_path: Path, overrides: dict, **sections: dict) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is the repository's, run_monitoring overridden (and
    any further ``sections`` added)."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    settings = yaml.safe_load((REPO / "dagster.yaml").read_text())
    settings["run_monitoring"].update(overrides)
    settings.update(sections)
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return home


def wait_for(what: str, check: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {timeout:g}s")


def holders(instance: dg.DagsterInstance) -> set[str]:
    """The runs holding a slot of the onesignal pool."""
    return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def dagster_command(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextmanager
def running(command: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def code_server(env: dict[str, str], cwd: Path) -> Iterator[Path]:
    """The code location in its own ``dagster api grpc`` process, as deploy/ runs it; yields
    a workspace.yaml for it (deploy/workspace.yaml's, on a free local port). It starts the
    run workers of the runs launched through it and sees them die. One server serves the
    daemon and the launch command, as in a deployment."""
    port = free_port()
    workspace = cwd / "workspace.yaml"
    settings = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    settings["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=port)
    workspace.write_text(yaml.safe_dump(settings))
    command = [dagster_command("dagster"), "api", "grpc", "-m", "segment_assets.definitions",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    with running(command, env, cwd) as process:
        # it listens once the definitions are loaded; the daemon must find it up
        wait_for("the code server", lambda: process.poll() is not None or port_in_use(port))
        assert process.poll() is None, "the code server exited"
        yield workspace


def daemon(
    env: dict[str, str], cwd: Path, workspace: Path
) -> AbstractContextManager[subprocess.Popen]:
    """``dagster-daemon run`` on the instance: the run queue, run monitoring, the rest."""
    return running([dagster_command("dagster-daemon"), "run", "-w", str(workspace)], env, cwd)


def enqueue_daily_job(instance: dg.DagsterInstance, workspace: Path) -> str:
    """``dagster job launch -w workspace.yaml``, done in this process by the function that
    command runs (a command would only add a Python start): the run is queued, as the
    schedule's are; the daemon dequeues it and the code server starts its worker."""
    from dagster._cli.job import execute_launch_command
    from dagster_shared.cli import WorkspaceOpts

    config = {"execution": {"config": {"in_process": {}}}}
    tags = {"dagster/partition": YESTERDAY.isoformat(), **GOES_THROUGH}
    run = execute_launch_command(
        instance=instance,
        workspace_opts=WorkspaceOpts(workspace=[str(workspace)]),
        job_name="daily_segment_snapshot",
        tags=json.dumps(tags),
        config_json=json.dumps(config),
    )
    assert run.status == dg.DagsterRunStatus.QUEUED
    return run.run_id


SNAPSHOT_ARGS = [sys.executable, "-m", "segment_assets", "snapshot", "--date",
                 YESTERDAY.isoformat(), "--provider", "onesignal"]  # fmt: skip


def snapshot_command(env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """``python -m segment_assets snapshot``: the run executes in this very process."""
    return subprocess.Popen(
        SNAPSHOT_ARGS, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the code server's run worker, once it has said it."""
    for entry in instance.all_logs(run_id):
        found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if found:
            return int(found.group(1))
    return None


def views_served(emulator) -> int:
    return emulator.state.stats()["onesignal"]["by_endpoint"].get("view", 0)


def status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def the_next_snapshot_goes_through(instance, emulator, database) -> None:
    emulator.state.clear_faults()
    following = materialize(
        fast_resources(database), instance, YESTERDAY, ["onesignal"], tags=GOES_THROUGH
    )
    assert following.success
    messages = [e.message or "" for e in instance.all_logs(following.run_id)]
    assert not [m for m in messages if "blocked by limit for pool" in m]
    frame = stored(database, "onesignal", YESTERDAY)
    assert len(frame) == len(expected_counts(emulator, "onesignal"))


@pytest.mark.slow
def test_a_run_killed_mid_fetch_frees_its_pool_slot_and_the_next_run_goes_through(
    emulator, env, duckdb_path, tmp_path
):
    # the repository's dagster.yaml with the monitoring intervals shortened; a death nobody
    # sees is caught by max_runtime_seconds (6 h in the file, seconds here: the runs that must
    # go through are tagged with an hour)
    home = instance_home(
        tmp_path,
        {**SHORT, "max_runtime_seconds": MAX_RUNTIME_SECONDS},
        run_queue={"dequeue_interval_seconds": DEQUEUE_SECONDS},
    )
    environ = {**os.environ, "DAGSTER_HOME": str(home), "ONESIGNAL_MAX_CONCURRENCY": "1"}
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        code_server(environ, tmp_path) as workspace,
    ):
        # 1. a run inside a command that is killed: nothing sees it die. It dies before the
        # daemon starts: a daemon already running would wait out max_runtime_seconds the
        # same way, and the test would wait with it.
        emulator.state.set_faults("onesignal", latency_ms=VIEW_LATENCY_MS)
        command = snapshot_command(environ, tmp_path)
        wait_for("the OneSignal fetch to be under way", lambda: views_served(emulator) >= 2)
        killed = instance.get_runs(limit=1)[0]
        assert holders(instance) == {killed.run_id}
        command.send_signal(SIGKILL)
        command.wait(timeout=30)
        assert status(instance, killed.run_id) == dg.DagsterRunStatus.STARTED  # looks alive
        assert holders(instance) == {killed.run_id}  # and holds the slot: the next run waits

        with daemon(environ, tmp_path, workspace):
            wait_for(
                "the daemon to fail the run after its maximum runtime and free its slot",
                lambda: (
                    status(instance, killed.run_id) == dg.DagsterRunStatus.FAILURE
                    and not holders(instance)
                ),
            )
            said = " ".join(e.message or "" for e in instance.all_logs(killed.run_id))
            assert f"exceeding maximum runtime of {MAX_RUNTIME_SECONDS} seconds" in said
            the_next_snapshot_goes_through(instance, emulator, duckdb_path)

            # 2. the schedule's kind of run: its worker is killed; the code server sees it die
            emulator.state.reset_stats()
            emulator.state.set_faults("onesignal", latency_ms=VIEW_LATENCY_MS)
            queued = enqueue_daily_job(instance, workspace)
            wait_for("the OneSignal fetch to be under way", lambda: views_served(emulator) >= 2)
            assert holders(instance) == {queued}
            worker = wait_for("the worker's pid", lambda: worker_pid(instance, queued))
            os.kill(worker, SIGKILL)
            wait_for(
                "the run to be marked failed",
                lambda: status(instance, queued) == dg.DagsterRunStatus.FAILURE,
            )
            wait_for("the daemon to free the dead run's slot", lambda: not holders(instance))
            the_next_snapshot_goes_through(instance, emulator, duckdb_path)


@pytest.mark.slow
def test_a_killed_command_line_run_is_closed_by_the_next_command_which_goes_through(
    emulator, env, duckdb_path, tmp_path
):
    # no daemon at all: the next command itself sees the dead process and frees its slot
    home = instance_home(tmp_path, {})
    environ = {**os.environ, "DAGSTER_HOME": str(home), "ONESIGNAL_MAX_CONCURRENCY": "1"}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        emulator.state.set_faults("onesignal", latency_ms=VIEW_LATENCY_MS)
        command = snapshot_command(environ, tmp_path)
        wait_for("the OneSignal fetch to be under way", lambda: views_served(emulator) >= 2)
        killed = instance.get_runs(limit=1)[0]
        assert killed.tags["segment_assets/pid"] == str(command.pid)
        assert holders(instance) == {killed.run_id}
        command.send_signal(SIGKILL)
        command.wait(timeout=30)
        assert status(instance, killed.run_id) == dg.DagsterRunStatus.STARTED  # looks alive

        emulator.state.clear_faults()
        started = time.monotonic()
        following = subprocess.run(
            SNAPSHOT_ARGS, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert following.returncode == 0, following.stdout + following.stderr
        assert time.monotonic() - started < 60  # not the 6 h of max_runtime_seconds
        assert f"run {killed.run_id} was left unfinished" in following.stderr
        assert status(instance, killed.run_id) == dg.DagsterRunStatus.FAILURE
        assert "no longer exists" in " ".join(
            e.message or "" for e in instance.all_logs(killed.run_id)
        )
        assert not holders(instance)
        newest = instance.get_runs(limit=1)[0]
        assert newest.status == dg.DagsterRunStatus.SUCCESS
        assert not [
            e for e in instance.all_logs(newest.run_id)
            if "blocked by limit for pool" in (e.message or "")
        ]  # fmt: skip
        frame = stored(duckdb_path, "onesignal", YESTERDAY)
        assert len(frame) == len(expected_counts(emulator, "onesignal"))


def test_only_this_hosts_command_line_runs_whose_process_is_gone_are_closed(tmp_path):
    from segment_assets.defs.dead_runs import close_dead_runs, process_tags

    def run(name: str, **tags: str) -> dg.DagsterRun:
        return instance.create_run_for_job(
            dg.GraphDefinition(name).to_job(),
            tags={**process_tags(), **tags},
            status=dg.DagsterRunStatus.STARTED,
        )

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_pid.wait()
        alive = run("alive")  # this very process
        elsewhere = run("elsewhere", **{"segment_assets/host": "another-host"})
        reused = run("reused", **{"segment_assets/pid": "1"})  # pid 1 started long before
        dead = run("dead", **{"segment_assets/pid": str(dead_pid.pid)})
        said: list[str] = []

        assert set(close_dead_runs(instance, said.append)) == {reused.run_id, dead.run_id}
        assert len(said) == 2 and "marked failed" in said[0]
        status_of = {r.job_name: instance.get_run_by_id(r.run_id).status
                     for r in (alive, elsewhere, reused, dead)}  # fmt: skip
        assert status_of == {
            "alive": dg.DagsterRunStatus.STARTED,
            "elsewhere": dg.DagsterRunStatus.STARTED,
            "reused": dg.DagsterRunStatus.FAILURE,
            "dead": dg.DagsterRunStatus.FAILURE,
        }
