"""Run workers as production runs them: separate processes, each with its own working
directory and DAGSTER_HOME, sharing nothing on disk — only the PostgreSQL server, which holds
the Dagster instance (deploy/dagster.yaml) and the store (SEGMENT_ASSETS_DATABASE_URL).

The instance's provider pools (one slot per provider) would keep the workers apart on their
own; here they get room for several steps at once, so what keeps two snapshots of one account
apart is the store's own lock, and a killed worker's pool slot (run monitoring's job, see
test_run_monitoring.py) does not hold up the next run.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster._serdes import serialize_value
from psycopg import sql

from segment_assets.config.environment import provider_resources_from_env
from segment_assets.defs.assets import PROVIDER_ASSETS
from segment_assets.emulator import ActionHubProgram, EmulatorConfig, OneSignalApp, UserComApp
from segment_assets.store import DATABASE_URL_ENV
from segment_assets.store.pg_locks import advisory_key
from segment_assets.store.postgres import PostgresStore

from .conftest import YESTERDAY, emulator_env
from .pg_fixtures import Database
from .resilience import counts_of, expected_counts

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
APPS = {  # name → (app id, key)
    "alpha": ("0b6f5a52-95b7-4a54-8d3f-6a3c1f2f6b10", "os_v2_app_alpha_key_for_tests"),
    "beta": ("5d3c2b1a-6f5e-4d3c-8b7c-1a3f4e5d8b7c", "os_v2_app_beta_key_for_tests"),
    "gamma": ("9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "os_v2_app_gamma_key_for_tests"),
}
BETA = APPS["beta"][0]
WAITING = "waiting for another run's snapshot of this account to finish"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        actionhub=[ActionHubProgram("prog-1", "ah-key-for-tests", segments_per_list=300)],
        usercom=[UserComApp("acme", "u" * 64, n_segments=5)],
        onesignal=[
            OneSignalApp(
                app_id, key, n_segments=10 if name == "beta" else 3, n_user_based=0, n_deleted=0
            )
            for name, (app_id, key) in APPS.items()
        ],  # fmt: skip
    )


@pytest.fixture
def instance_db(database: Database) -> Iterator[dict[str, str]]:
    """A database of its own for the Dagster instance, as DAGSTER_PG_* variables."""
    name = f"sa_instance_{uuid.uuid4().hex[:10]}"
    with database.server.admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin = urlsplit(database.server.admin_url)
    try:
        yield {
            "DAGSTER_PG_HOST": admin.hostname or "127.0.0.1",
            "DAGSTER_PG_PORT": str(admin.port or 5432),
            "DAGSTER_PG_USER": admin.username or "",
            "DAGSTER_PG_PASSWORD": admin.password or "",
            "DAGSTER_PG_DB": name,
        }
    finally:
        with database.server.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class Worker:
    """One run worker: a working directory with its accounts file and DAGSTER_HOME."""

    cwd: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)

    def start(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a pod is
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def said(self, words: str) -> bool:
        return any(words in line for line in list(self.lines))

    def wait(self, timeout: float = 90) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        time.sleep(0.1)  # the reader thread takes the last lines
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def make_worker(
    tmp_path: Path,
    name: str,
    emulator,
    database: Database,
    instance_env: dict[str, str],
    apps: list[str],
    **extra: str,
) -> Worker:
    cwd = tmp_path / name
    home = cwd / "dagster_home"
    home.mkdir(parents=True)
    settings = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    settings["concurrency"]["pools"]["default_limit"] = 4  # room: the store keeps them apart
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    (cwd / "segment_assets.yaml").write_text(
        "onesignal:\n"
        + "".join(
            f"  {app}:\n    app_id: {APPS[app][0]}\n    api_key_env: OS_{app.upper()}_KEY\n"
            for app in apps
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SEGMENT_ASSETS_DUCKDB", "SEGMENT_ASSETS_CONFIG", "DAGSTER_HOME")
    }
    env |= emulator_env(emulator) | instance_env
    env |= {f"OS_{app.upper()}_KEY": key for app, (_, key) in APPS.items()}
    env |= {
        "DAGSTER_HOME": str(home),
        DATABASE_URL_ENV: database.url,
        "ONESIGNAL_MAX_CONCURRENCY": "1",  # one request in flight is one snapshot in flight
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return Worker(cwd, env)


def places_to_search(workers: list[Worker], instance: dg.DagsterInstance) -> dict[str, str]:
    """Everything a run leaves behind: its output, the instance's records and events, and
    every file in each worker's directory (DAGSTER_HOME, compute logs)."""
    places = {f"output {w.cwd.name}": w.output for w in workers}
    for record in instance.get_run_records():
        run_id = record.dagster_run.run_id
        places[f"run {run_id}"] = serialize_value(record.dagster_run)
        places[f"events {run_id}"] = "\n".join(
            serialize_value(entry) for entry in instance.all_logs(run_id)
        )
    for worker in workers:
        for path in worker.cwd.rglob("*"):
            if path.is_file():
                places[str(path)] = path.read_bytes().decode("latin-1")
    return places


def truth(emulator, app: str) -> dict[str, int]:
    return {t["id"]: t["subscriber_count"] for t in emulator.state.truth("onesignal", APPS[app][0])}


def counts(frame: pd.DataFrame, app: str) -> dict[str, int]:
    rows = frame.loc[frame["account"] == APPS[app][0]]
    return dict(zip(rows["segment_id"], rows["user_count"].astype(int), strict=True))


def wait_until(what: str, check, timeout: float = 60.0, every: float = 0.05) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(every)
    return time.monotonic() - started


def test_two_workers_on_two_machines_never_snapshot_one_app_at_once(
    emulator, database, instance_db, tmp_path, monkeypatch
):
    # a strict per-app limit the two workers would break together: each paces itself to
    # 10 requests/s, the app allows 15
    emulator.state.set_faults("onesignal", rate_limit_rps=15, rate_limit_burst=1, latency_ms=30)
    first = make_worker(tmp_path, "worker-1", emulator, database, instance_db,
                        ["alpha", "beta"], ONESIGNAL_MAX_RPS="10")  # fmt: skip
    second = make_worker(tmp_path, "worker-2", emulator, database, instance_db,
                         ["beta", "gamma"], ONESIGNAL_MAX_RPS="10")  # fmt: skip
    for name, value in instance_db.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(first.cwd / "dagster_home")) as instance:
        # the instance's tables and the pool's row, made once before the workers start (two
        # first uses of a pool at the same moment can collide inside Dagster's own storage)
        instance.event_log_storage.initialize_concurrency_limit_to_default("onesignal")
    two_days_ago = YESTERDAY - dt.timedelta(days=1)
    store = PostgresStore(database.url)

    # A third machine holds beta while both start, so both certainly reach it at once.
    with store.lock_account("onesignal", BETA, "beta"):
        first.start("-m", "segment_assets", "snapshot", "--date", YESTERDAY.isoformat(),
                    "--provider", "onesignal")  # fmt: skip
        second.start("-m", "segment_assets", "snapshot", "--date", two_days_ago.isoformat(),
                     "--provider", "onesignal", "--allow-late")  # fmt: skip
        try:
            wait_until("both workers to wait for beta", lambda: first.said(WAITING) and
                       second.said(WAITING), timeout=90)  # fmt: skip
        except AssertionError:
            first.kill(), second.kill()
            raise AssertionError(first.output[-3000:] + second.output[-3000:]) from None
    assert first.wait() == 0, first.output[-4000:]
    assert second.wait() == 0, second.output[-4000:]

    stats = emulator.state.stats()["onesignal"]
    assert stats["429"] == 0
    assert stats["max_in_flight_by_account"] == {app_id: 1 for app_id, _ in APPS.values()}
    assert stats["by_account"][BETA] == 2 * (1 + 10)  # two whole snapshots, one at a time
    for day, apps in ((YESTERDAY, ("alpha", "beta")), (two_days_ago, ("beta", "gamma"))):
        stored = store.read_partition("onesignal_segments", day)
        assert set(stored["account"]) == {APPS[a][0] for a in apps}
        assert not stored.duplicated(["account", "segment_id"]).any()
        for app in apps:
            assert counts(stored, app) == truth(emulator, app)
    for worker in (first, second):
        assert not (worker.cwd / "data").exists()  # nothing went to a local file
        assert "the other run finished after" in worker.output

    with dg.DagsterInstance.from_config(str(second.cwd / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        places = places_to_search([first, second], instance)
    assert any(WAITING in text for name, text in places.items() if name.startswith("events"))
    leaked = sorted(where for where, text in places.items() if database.password in text)
    assert leaked == [], f"the store's password leaked into: {leaked}"


def test_a_worker_killed_while_it_holds_a_lock_and_writes_leaves_whole_days_and_no_lock(
    emulator, env, database, instance_db, tmp_path, monkeypatch
):
    store = PostgresStore(database.url)
    monkeypatch.setenv(DATABASE_URL_ENV, database.url)
    # the day as an earlier run stored it (the day before's counts)
    emulator.state.set_date(YESTERDAY - dt.timedelta(days=1))
    client = provider_resources_from_env()["actionhub"].process_config_and_initialize()
    old = client.snapshot(YESTERDAY)
    store.write_partition("actionhub_segments", YESTERDAY, old)
    emulator.state.set_date(YESTERDAY)
    fresh = expected_counts(emulator, "actionhub")
    assert counts_of(old) != fresh  # the day's counts moved since the earlier run
    # alpha's answers are slow: its snapshot holds alpha's lock for about 10 s
    emulator.state.set_faults("onesignal", latency_ms=2500)
    # and the server stalls at the end of the new rows of ActionHub's day, as a slow disk
    # would: the old rows are deleted and every new one written, in one open transaction
    # (the server checks for a vanished client during the stall, as it does while a COPY
    # waits for the client's rows)
    database.execute(
        sql.SQL("ALTER DATABASE {} SET client_connection_check_interval = '100ms'").format(
            sql.Identifier(database.name)
        )
    )
    database.execute(
        "CREATE FUNCTION segments.stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM pg_sleep(600); RETURN NULL; END $$; "
        "CREATE TRIGGER stall AFTER INSERT ON segments.actionhub_segments "
        "FOR EACH STATEMENT EXECUTE FUNCTION segments.stall()"
    )

    worker = make_worker(tmp_path, "worker-1", emulator, database, instance_db, ["alpha"])
    for name, value in instance_db.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(worker.cwd / "dagster_home")):
        pass
    alpha_key = advisory_key("account", "onesignal", APPS["alpha"][0])
    key_parts = ((alpha_key >> 32) & 0xFFFFFFFF, alpha_key & 0xFFFFFFFF)

    def alpha_locked() -> bool:
        return bool(
            database.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
                (*key_parts, database.name),
            )[0][0]
        )

    def writing_actionhub() -> bool:
        return bool(
            database.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND query LIKE 'COPY%%actionhub_segments%%' AND wait_event = 'PgSleep'",
                (database.name,),
            )[0][0]
        )

    # the multiprocess executor: both provider steps at once, in child processes
    worker.start("-m", "dagster", "asset", "materialize", "-m", "segment_assets.definitions",
                 "--select", "actionhub_segments,onesignal_segments",
                 "--partition", YESTERDAY.isoformat())  # fmt: skip
    try:
        wait_until("the worker to hold alpha's lock while it writes ActionHub's day",
                   lambda: alpha_locked() and writing_actionhub(), timeout=90)  # fmt: skip
    except AssertionError:
        worker.kill()
        raise AssertionError(worker.output[-4000:]) from None
    worker.kill()  # SIGKILL to the whole worker, as a lost node or the OOM killer would
    killed = time.monotonic()

    freed = wait_until("the lock to die with the worker's session", lambda: not alpha_locked(), 10)
    assert freed < 5
    database.execute("DROP TRIGGER stall ON segments.actionhub_segments")
    kept = store.read_partition("actionhub_segments", YESTERDAY)
    assert counts_of(kept) == counts_of(old)  # the old rows, whole: the write never happened
    assert kept["fetched_at"].nunique() == 1

    # the next run, on another machine, goes ahead at once and replaces the day whole
    emulator.state.set_faults("onesignal", latency_ms=0)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [a for a in PROVIDER_ASSETS if a.key.path[-1] != "usercom_segments"],
            partition_key=YESTERDAY.isoformat(),
            resources={"io_manager": store.io_manager(), **provider_resources_from_env()},
            instance=instance,
        )
        assert result.success
        log = [e.user_message for e in instance.all_logs(result.run_id)]
    assert not any(WAITING in line for line in log)
    assert time.monotonic() - killed < 30
    new = store.read_partition("actionhub_segments", YESTERDAY)
    assert counts_of(new) == fresh and new["fetched_at"].nunique() == 1
    alpha = store.read_partition("onesignal_segments", YESTERDAY)
    assert counts(alpha, "alpha") == truth(emulator, "alpha")
