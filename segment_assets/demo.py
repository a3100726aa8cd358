"""``make demo``: the emulator, Dagster's UI and a month of history in one command.

Without provider credentials in the environment, the bundled emulator is started and the
last ``DEMO_DAYS`` daily partitions are materialised through the real clients, driving the
emulator's clock one day at a time; a sudden drop is planted on the latest day. With
credentials, only ``dagster dev`` is started. Ctrl-C stops everything this started.

Knobs: ``DEMO_DAYS`` (30), ``DEMO_PORT`` (3000), ``DEMO_EMULATOR_PORT`` (8765),
``DEMO_HOME`` (``.dagster_home``, the DAGSTER_HOME used).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from segment_assets.emulator.config import (
    DEMO_ACTIONHUB_KEY,
    DEMO_ACTIONHUB_PROGRAMS,
    DEMO_ONESIGNAL_APPS,
    DEMO_USERCOM_KEY,
    DEMO_USERCOM_SUBDOMAIN,
)
from segment_assets.emulator.usercom import api_base
from segment_assets.providers import registry

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
# any provider's single-account key set: the real providers, not the emulator
CREDENTIALS = tuple(p.variable("api_key") for p in registry.PROVIDERS)
DROP_FACTOR = 0.2


# The demo's accounts file: two OneSignal apps and two ActionHub programs behind one key;
# User.com keeps its single-account variables.
DEMO_ONESIGNAL_ACCOUNTS = ("web", "mobile")
DEMO_ACTIONHUB_ACCOUNTS = ("brand_a", "brand_b")


def accounts_file() -> str:
    """The text of the demo's segment_assets.yaml."""
    lines = ["# segment_assets.yaml written by make demo: accounts of the bundled emulator", ""]
    lines.append("onesignal:")
    for name, app_id in zip(DEMO_ONESIGNAL_ACCOUNTS, DEMO_ONESIGNAL_APPS, strict=True):
        lines += [
            f"  {name}:",
            f"    label: {name.capitalize()} app",
            f"    app_id: {app_id}",
            f"    api_key_env: ONESIGNAL_{name.upper()}_API_KEY",
        ]
    lines.append("actionhub:")
    for name, program in zip(DEMO_ACTIONHUB_ACCOUNTS, DEMO_ACTIONHUB_PROGRAMS, strict=True):
        lines += [
            f"  {name}:",
            f"    program_id: {program}",
            "    api_key_env: ACTIONHUB_API_KEY",
        ]
    return "\n".join(lines) + "\n"


def emulator_env(url: str, config: Path | None = None) -> dict[str, str]:
    """Settings that point segment_assets at an emulator at ``url`` (demo accounts); with
    ``config``, the accounts file written there is used (several accounts per provider)."""
    app_id, app_key = next(iter(DEMO_ONESIGNAL_APPS.items()))
    accounts: dict[str, str] = {}
    if config is not None:
        config.write_text(accounts_file())
        accounts["SEGMENT_ASSETS_CONFIG"] = str(config)
        for name, key in zip(DEMO_ONESIGNAL_ACCOUNTS, DEMO_ONESIGNAL_APPS.values(), strict=True):
            accounts[f"ONESIGNAL_{name.upper()}_API_KEY"] = key
    return {
        **accounts,
        "ACTIONHUB_API_KEY": DEMO_ACTIONHUB_KEY,
        "ACTIONHUB_PROGRAM_ID": DEMO_ACTIONHUB_PROGRAMS[0],
        "ACTIONHUB_BASE_URL": f"{url}/actionhub",
        "USERCOM_API_KEY": DEMO_USERCOM_KEY,
        "USERCOM_BASE_URL": api_base(url, DEMO_USERCOM_SUBDOMAIN),
        "ONESIGNAL_API_KEY": app_key,
        "ONESIGNAL_APP_ID": app_id,
        "ONESIGNAL_BASE_URL": f"{url}/onesignal",
        # the emulator has no rate limit: no need to pace like against the real APIs
        "ACTIONHUB_MAX_RPS": "1000",
        "USERCOM_MAX_RPS": "1000",
        "ONESIGNAL_MAX_RPS": "1000",
        "ONESIGNAL_MAX_CONCURRENCY": "8",
    }


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"demo: {name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"demo: {name} must be at least 1, got {raw!r}")
    return value


def _require_free(port: int, knob: str) -> None:
    with socket.socket() as sock:
        if sock.connect_ex((HOST, port)) == 0:
            raise SystemExit(f"demo: port {port} is already in use; set {knob} to another port")


def _call(url: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _wait_until_up(url: str, proc: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: {what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()
            return
        time.sleep(0.3)
    raise SystemExit(f"demo: {what} did not answer at {url} within {timeout:.0f} s")


def _spawn(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
    """A child in its own process group, so stopping it also stops its children."""
    return subprocess.Popen(args, cwd=cwd, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)  # dagster dev shuts its children down on SIGINT
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left in the group
    proc.wait()


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both raise KeyboardInterrupt, whatever the parent ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def prepare_instance() -> None:
    """Create (or migrate) the instance's storage once, before ``dagster dev`` and the
    seeding open it from two processes."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        instance.upgrade(print_fn=lambda _message: None)


def start_emulator(port: int, env: dict[str, str]) -> subprocess.Popen:
    _require_free(port, "DEMO_EMULATOR_PORT")
    proc = _spawn([sys.executable, "-m", "segment_assets.emulator", "--port", str(port)], env)
    _wait_until_up(f"http://{HOST}:{port}/_emulator/health", proc, "the emulator", 30)
    return proc


def start_dagster(port: int, home: Path, env: dict[str, str]) -> subprocess.Popen:
    """``dagster dev`` run from DAGSTER_HOME, so its copy of dagster.yaml is the one used."""
    _require_free(port, "DEMO_PORT")
    dagster = str(Path(sys.executable).with_name("dagster"))
    args = [dagster, "dev", "-h", HOST, "-p", str(port), "-w", str(ROOT / "workspace.yaml")]
    quiet = {"PYTHONWARNINGS": "ignore:Function `dev_command` is superseded"}
    return _spawn(args, {**env, **quiet}, cwd=home)


def seed(emulator_url: str, days: int) -> None:
    """Materialise the last ``days`` partitions through the job, one emulator day at a time.

    Partitions already stored are skipped, except the latest, which gets the planted drop.
    """
    import dagster as dg

    from segment_assets.definitions import defs
    from segment_assets.defs.assets import PROVIDER_ASSETS

    job = defs.resolve_job_def("daily_segment_snapshot")
    latest = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    run_config = {
        "ops": {
            a.key.path[-1]: {"config": {"allow_late_partition": True}} for a in PROVIDER_ASSETS
        },
        "loggers": {"console": {"config": {"log_level": "ERROR"}}},
    }
    with dg.DagsterInstance.get() as instance:
        stored = set.intersection(
            *(instance.get_materialized_partitions(a.key) for a in PROVIDER_ASSETS)
        )
        for offset in range(days - 1, -1, -1):
            day = latest - dt.timedelta(days=offset)
            if day.isoformat() in stored and day != latest:
                continue
            _call(f"{emulator_url}/_emulator/date", {"date": day.isoformat()})
            if day == latest:
                segment = _plant_drop(emulator_url, day)
                print(f"demo: planted a drop to {DROP_FACTOR:.0%} on {day} in {segment}")
            started = time.monotonic()
            result = job.execute_in_process(
                partition_key=day.isoformat(),
                run_config=run_config,
                instance=instance,
                raise_on_error=False,
            )
            state = "ok" if result.success else "FAILED (see the run in the UI)"
            print(f"demo: {day} materialised in {time.monotonic() - started:.1f} s: {state}")


def _plant_drop(emulator_url: str, day: dt.date) -> str:
    """Shrink the largest countable OneSignal segment from ``day`` on; returns its name."""
    app_id = next(iter(DEMO_ONESIGNAL_APPS))
    query = f"provider=onesignal&account={app_id}"
    segments = _call(f"{emulator_url}/_emulator/truth?{query}")
    largest = max((s for s in segments if not s["user_based"]), key=lambda s: s["subscriber_count"])
    _call(
        f"{emulator_url}/_emulator/drop",
        {
            "provider": "onesignal",
            "account": app_id,
            "segment_id": largest["id"],
            "start": day.isoformat(),
            "factor": DROP_FACTOR,
        },
    )
    return f"OneSignal segment {largest['name']!r} of the {DEMO_ONESIGNAL_ACCOUNTS[0]} app"


def main() -> int:
    days = _setting("DEMO_DAYS", 30)
    port = _setting("DEMO_PORT", 3000)
    emulator_port = _setting("DEMO_EMULATOR_PORT", 8765)
    home = ROOT / os.environ.get("DEMO_HOME", ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.setdefault("SEGMENT_ASSETS_DUCKDB", str(ROOT / "data" / "segment_assets.duckdb"))
    env.setdefault("DAGSTER_WEBSERVER_URL", f"http://{HOST}:{port}")
    use_emulator = not any(os.environ.get(name) for name in CREDENTIALS)
    emulator_url = f"http://{HOST}:{emulator_port}"
    ui_url = f"http://{HOST}:{port}"
    children: list[subprocess.Popen] = []
    _stop_on_signals()
    try:
        if use_emulator:
            children.append(start_emulator(emulator_port, env))
            env.update(emulator_env(emulator_url, home / "segment_assets.yaml"))
        else:
            print("demo: provider credentials found; using the real providers (no emulator)")
        os.environ.update(env)  # the seeding below runs in this process on the same instance
        prepare_instance()
        children.append(start_dagster(port, home, env))
        if use_emulator:
            seed(emulator_url, days)
            _stop_on_signals()  # Dagster's in-process runs re-map SIGTERM
        _wait_until_up(f"{ui_url}/server_info", children[-1], "dagster dev", 120)
        print(f"\ndemo: ready. Open {ui_url}/asset-groups (Ctrl-C stops everything)\n", flush=True)
        children[-1].wait()
        return children[-1].returncode
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
        return 0
    finally:
        for proc in reversed(children):
            _stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
