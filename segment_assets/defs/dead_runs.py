"""Runs whose process died without a word, found and closed by the next command.

A run that ``python -m segment_assets snapshot`` executes lives inside that very process.
When the process is killed (SIGKILL, an out-of-memory kill, a closed terminal), nothing
reports the run's end: it stays ``STARTED`` and keeps its provider pool slot, so the next
run waits on "blocked by limit for pool …". Dagster's run monitoring (``dagster.yaml``) only
catches such a run after its maximum runtime, and only while the daemon runs.

Every command-line run is therefore tagged with the host, the process id and that process's
start time; before it starts a run, the command looks for runs of its own host whose
process no longer exists (or is another process under a reused id), marks each failed with
a message saying so, and frees its pool slots. Runs of other hosts, and runs launched by the
daemon or the UI (they carry no such tags), are left to run monitoring.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import dagster as dg

HOST_TAG = "segment_assets/host"
PID_TAG = "segment_assets/pid"
STARTED_TAG = "segment_assets/process_started"
UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces or parentheses: read after its last ')'
    return stat[stat.rindex(")") + 2 :].split()[19]


def process_tags() -> dict[str, str]:
    """The tags that let a later command tell whether this process is still alive."""
    pid = os.getpid()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        STARTED_TAG: process_started(pid) or "",
    }


def is_alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` exists and is the one that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    now = process_started(pid)
    return not (started and now and now != started)


def close_dead_runs(instance: dg.DagsterInstance, say: Callable[[str], None]) -> list[str]:
    """Fail this host's command-line runs whose process is gone and free their pool slots;
    return their run ids."""
    host = socket.gethostname()
    closed = []
    for record in instance.get_run_records(
        dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})
    ):
        run = record.dagster_run
        try:
            pid = int(run.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if pid == os.getpid() or is_alive(pid, run.tags.get(STARTED_TAG, "")):
            continue
        message = (
            f"the process that ran this run (pid {pid} on {host}) no longer exists; marked "
            "failed and its concurrency pool slots freed by the next command-line run"
        )
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        say(f"run {run.run_id} was left unfinished by a process that died (pid {pid}); "
            "marked failed and its pool slots freed")  # fmt: skip
        closed.append(run.run_id)
    return closed
