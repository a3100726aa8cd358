"""Snapshot benchmark: each provider client against the emulator, next to its theoretical bound.

Run ``python bench/snapshot_bench.py`` (about ten minutes), with ``--quick`` (about two
minutes), with ``--store-only`` for the store case alone (no emulator; about two minutes;
``--no-postgres`` for DuckDB only), or with ``--accounts-only`` for the many-accounts case
alone (about six minutes; ``--apps``, ``--app-segments``, ``--pace`` and ``--no-baseline``
change it).

The emulator runs in its own process (so the client under test has a core and an
interpreter of its own, as against a real API) with a set latency on every request and a
rate limit per account: OneSignal's view limit is strict (a token bucket holding two
requests, i.e. one request of tolerance for network jitter), ActionHub's and User.com's
bucket holds one second's worth of requests (the emulator's default). For each provider
the snapshot runs with its configured concurrency and then one request at a time
(``max_concurrency=1``, the baseline), and the bench prints segments, requests, 429s
received, TCP connections opened, the most requests in flight at once, wall time, the bound
``max(requests / rate, requests × latency / concurrency)`` and wall / bound. Every snapshot
is compared with the emulator's truth: no segment may be lost or repeated.

Then, with no latency and no rate limit:

* memory: a 100,000-segment ActionHub snapshot in a fresh process (peak RSS);
* Dagster: a full ``daily_segment_snapshot`` run (provider assets, drop checks,
  ``segment_drops``) of 1,000 segments per provider, next to the clients' own fetch time;
* store: 400 days × 10,000 segments per provider, with a few planted drops on the last day,
  in a DuckDB file and — when a PostgreSQL server is at hand (``SEGMENT_ASSETS_TEST_PG_DSN``
  or the local binaries; ``--no-postgres`` leaves it out) — the same rows in PostgreSQL; on
  each store, side by side (best of three): the time of ``read_history`` (the 64 days
  detection needs) and ``find_drops``, then — each against the 2 s target — the drop check
  of one partition and one drop-sensor tick over three new partitions (one per provider,
  same day).

Last, many accounts: 200 OneSignal apps × 20 segments in an emulator process of their own,
each app held to a strict bucket of one request a second per endpoint (no burst) with 50 ms
latency, snapshotted by ``python -m segment_assets snapshot --provider onesignal`` with an
accounts file — once with this code, once with the code of ``BASELINE_COMMIT`` (unpacked from
git: 16 accounts at a time, a thread per request). Targets, for this code: (wall − start-up)
within 1.3 × the physical bound (requests per app at the provider's one request a second),
429s under 1 % of requests, fewer than 100 threads and under 400 MB peak RSS, every row exact.

The script exits non-zero and says which target was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segment_assets.providers import actionhub  # noqa: E402
from segment_assets.providers.actionhub import ActionHubResource  # noqa: E402
from segment_assets.providers.onesignal import OneSignalResource  # noqa: E402
from segment_assets.providers.resource import ProviderResource  # noqa: E402
from segment_assets.providers.usercom import UserComResource  # noqa: E402

# Targets
TARGET_RATIO = 1.15  # wall / bound, OneSignal and ActionHub at their configured concurrency
TARGET_429_SHARE = 0.01
TARGET_RSS_MB = 300.0
TARGET_STORE_SECONDS = 2.0

DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
AH_KEY, UC_KEY = "bench-actionhub-key", "c" * 64
OS_APP, OS_KEY = "2f7e4c1a-9b3d-4e5f-8a6b-7c8d9e0f1a2b", "os_v2_app_benchappkey"
OS_SMALL, OS_SMALL_KEY = "8a1b2c3d-4e5f-4a6b-9c7d-0e1f2a3b4c5d", "os_v2_app_benchsmallkey"
MEMORY_SEGMENTS = 100_000
DAGSTER_SEGMENTS = 1_000
STORE_DAYS, STORE_SEGMENTS = 400, 10_000
STORE_DROPS_EVERY = 1_000  # on the last day, one segment in this many per provider drops 90 %

# Runs in the emulator process: build the config from JSON, serve until stdin closes.
EMULATOR_MAIN = """
import datetime as dt, json, sys
from segment_assets.emulator import (ActionHubProgram, EmulatorConfig, EmulatorServer,
                                     OneSignalApp, UserComApp)
spec = json.loads(sys.argv[1])
config = EmulatorConfig(
    actionhub=[ActionHubProgram(*p) for p in spec["actionhub"]],
    usercom=[UserComApp(*a) for a in spec["usercom"]],
    onesignal=[OneSignalApp(*a) for a in spec["onesignal"]],
    today=dt.date.fromisoformat(spec["today"]),
)
with EmulatorServer(config) as emu:
    print(emu.url, flush=True)
    sys.stdin.read()
"""

# Runs in a fresh process: the cold import of the code location.
IMPORT_MAIN = """
import time
started = time.perf_counter()
import segment_assets.definitions
print(time.perf_counter() - started)
"""

# Runs in a fresh process: one ActionHub snapshot, then its peak RSS.
MEMORY_MAIN = """
import datetime as dt, json, resource, sys, time
from segment_assets.providers.actionhub import ActionHubResource
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = ActionHubResource(api_key=sys.argv[2], program_id="memory", base_url=sys.argv[1],
                        max_requests_per_second=None, max_concurrency=4, page_size=100)
started = time.perf_counter()
frame = res.snapshot(dt.date.fromisoformat(sys.argv[3]))
print(json.dumps({"rows": len(frame), "unique": int(frame["segment_id"].nunique()),
                  "seconds": time.perf_counter() - started, "rss_before_kb": before,
                  "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@dataclass(frozen=True)
class Sizes:
    onesignal: int
    actionhub_per_list: int
    usercom: int


FULL = Sizes(onesignal=2_000, actionhub_per_list=3_334, usercom=5_000)
QUICK = Sizes(onesignal=200, actionhub_per_list=334, usercom=1_000)


@dataclass(frozen=True)
class Pace:
    provider: str
    rate: float  # the account's limit at the emulator, and the client's max_requests_per_second
    concurrency: int
    burst: int  # the emulator's token bucket: requests it accepts at once


class Emulator:
    """The emulator process and its ``/_emulator`` control endpoints."""

    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url, self.process, self.http = url, process, requests.Session()

    def post(self, action: str, body: dict | None = None) -> None:
        self.http.post(f"{self.url}/_emulator/{action}", json=body or {}).raise_for_status()

    def get(self, action: str, **params: str) -> object:
        response = self.http.get(f"{self.url}/_emulator/{action}", params=params)
        response.raise_for_status()
        return response.json()

    def stats(self, provider: str) -> dict:
        return self.get("stats")[provider]  # type: ignore[index]


@contextlib.contextmanager
def emulator(sizes: Sizes) -> Iterator[Emulator]:
    per_list = sizes.actionhub_per_list
    spec = {
        "today": DAY.isoformat(),
        "actionhub": [
            ["bench", AH_KEY, per_list],
            ["memory", AH_KEY, -(-MEMORY_SEGMENTS // 6)],
            ["dagster", AH_KEY, -(-DAGSTER_SEGMENTS // 6)],
        ],
        "usercom": [["bench", UC_KEY, sizes.usercom, 100], ["dagster", UC_KEY, DAGSTER_SEGMENTS]],
        "onesignal": [
            [OS_APP, OS_KEY, sizes.onesignal, 5, 0],
            [OS_SMALL, OS_SMALL_KEY, DAGSTER_SEGMENTS, 5, 1],
        ],
    }
    with emulator_process(spec) as emu:
        yield emu


@contextlib.contextmanager
def emulator_process(spec: dict) -> Iterator[Emulator]:
    """The emulator of ``spec`` (see EMULATOR_MAIN) in a process of its own."""
    process = subprocess.Popen(
        [sys.executable, "-c", EMULATOR_MAIN, json.dumps(spec)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        url = process.stdout.readline().strip()  # type: ignore[union-attr]
        if not url.startswith("http"):
            raise RuntimeError("the emulator did not start")
        yield Emulator(url, process)
    finally:
        process.stdin.close()  # type: ignore[union-attr]
        process.wait(timeout=30)


# -- provider runs ---------------------------------------------------------------------
def make_resource(emu: Emulator, pace: Pace, concurrency: int, account: str = "bench"):
    common = {"max_requests_per_second": pace.rate, "max_concurrency": concurrency}
    if pace.provider == "onesignal":
        return OneSignalResource(
            api_key=OS_KEY, app_id=OS_APP, base_url=f"{emu.url}/onesignal", **common
        )
    if pace.provider == "actionhub":
        return ActionHubResource(
            api_key=AH_KEY, program_id=account, base_url=f"{emu.url}/actionhub", **common
        )
    return UserComResource(
        api_key=UC_KEY, base_url=f"{emu.url}/usercom/{account}/api/public", **common
    )


def truth_ids(emu: Emulator, provider: str, account: str) -> set[str]:
    items = emu.get("truth", provider=provider, account=account)
    if provider == "actionhub":
        return {
            actionhub.segment_id(
                i["segment_type"], i["segment_basis"] + "s", i["segment_basis_id"], i["action_type"]
            )
            for i in items  # type: ignore[union-attr]
        }
    return {str(i["id"]) for i in items}  # type: ignore[union-attr]


@dataclass
class Run:
    label: str
    concurrency: int
    segments: int
    lost: int
    repeated: int
    requests: int
    rate_limited: int
    connections: int
    max_in_flight: int
    wall: float
    bound: float

    @property
    def ratio(self) -> float:
        return self.wall / self.bound

    def line(self) -> str:
        return (
            f"  {self.label:<22} {self.concurrency:>4} {self.segments:>8,} {self.lost:>4} "
            f"{self.repeated:>4} {self.requests:>6,} {self.rate_limited:>5} "
            f"{self.connections:>5} {self.max_in_flight:>6} {self.wall:>8.2f} "
            f"{self.bound:>8.2f} {self.ratio:>6.2f}"
        )


HEADER = (
    f"  {'snapshot':<22} {'conc':>4} {'segments':>8} {'lost':>4} {'rep':>4} {'reqs':>6} "
    f"{'429s':>5} {'conns':>5} {'in-fl':>6} {'wall s':>8} {'bound s':>8} {'ratio':>6}"
)


def run_snapshot(emu: Emulator, pace: Pace, concurrency: int, latency: float, label: str) -> Run:
    account = OS_APP if pace.provider == "onesignal" else "bench"
    emu.post("stats/reset")
    resource = make_resource(emu, pace, concurrency)
    started = time.perf_counter()
    frame = resource.snapshot(DAY)
    wall = time.perf_counter() - started
    stats = emu.stats(pace.provider)
    truth = truth_ids(emu, pace.provider, account)
    ids = frame["segment_id"].astype(str)
    n = stats["requests"]
    return Run(
        label=label,
        concurrency=concurrency,
        segments=len(frame),
        lost=len(truth - set(ids)),
        repeated=int(ids.duplicated().sum()) + len(set(ids) - truth),
        requests=n,
        rate_limited=stats["429"],
        connections=stats["connections"],
        max_in_flight=stats["max_in_flight"],
        wall=wall,
        bound=max(n / pace.rate, n * latency / concurrency),
    )


def pacing(
    emu: Emulator, latency: float, paces: list[Pace], misses: list[str], quick: bool = False
) -> None:
    """The three providers at their pace; the ratio target holds for the full sizes only
    (in a quick run the first request, sent alone, and the last round weigh too much)."""
    print(f"\nPacing: emulator latency {latency * 1000:.0f} ms; bound = max(requests / rate, ")
    print("requests × latency / concurrency); baseline = one request at a time")
    print(HEADER)
    for pace in paces:
        emu.post("clear", {})
        emu.post("faults", {"provider": pace.provider, "latency_ms": latency * 1000})
        if pace.provider == "onesignal":
            emu.post("view-rate-limit", {"rps": pace.rate, "burst": pace.burst})
        else:
            limit = {"rate_limit_rps": pace.rate, "rate_limit_burst": pace.burst}
            emu.post("faults", {"provider": pace.provider, **limit})
        name = f"{pace.provider} @{pace.rate:g}/s"
        runs = [run_snapshot(emu, pace, pace.concurrency, latency, name)]
        if pace.concurrency > 1:
            runs.append(run_snapshot(emu, pace, 1, latency, f"{pace.provider} baseline"))
        for run in runs:
            print(run.line())
            if run.lost or run.repeated:
                misses.append(f"{run.label}: {run.lost} lost, {run.repeated} repeated segments")
            if run.rate_limited > TARGET_429_SHARE * run.requests:
                misses.append(f"{run.label}: {run.rate_limited} 429s in {run.requests} requests")
        ratio_target = pace.provider in ("onesignal", "actionhub") and not quick
        if ratio_target and runs[0].ratio > TARGET_RATIO:
            misses.append(f"{runs[0].label}: wall / bound {runs[0].ratio:.2f} > {TARGET_RATIO}")
        if len(runs) > 1:
            print(f"    configured vs baseline: {runs[1].wall / runs[0].wall:.1f}× faster")
    emu.post("clear", {})
    emu.post("view-rate-limit", {"rps": None})


# -- memory ------------------------------------------------------------------------------
def memory(emu: Emulator, misses: list[str]) -> None:
    emu.post("clear", {})
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_MAIN, f"{emu.url}/actionhub", AH_KEY, DAY.isoformat()],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    m = json.loads(out.stdout.strip().splitlines()[-1])
    peak, before = m["rss_peak_kb"] / 1024, m["rss_before_kb"] / 1024
    print(
        f"\nMemory: ActionHub snapshot of {m['rows']:,} segments ({m['unique']:,} unique) in "
        f"{m['seconds']:.1f} s; peak RSS {peak:.0f} MB (after imports {before:.0f} MB)"
    )
    if m["rows"] < MEMORY_SEGMENTS or m["unique"] != m["rows"]:
        misses.append(f"memory run returned {m['rows']} rows, {m['unique']} unique")
    if peak > TARGET_RSS_MB:
        misses.append(f"peak RSS {peak:.0f} MB > {TARGET_RSS_MB:.0f} MB")


# -- Dagster ---------------------------------------------------------------------------
def dagster_run(emu: Emulator, workdir: Path) -> None:
    env = {
        "ACTIONHUB_API_KEY": AH_KEY,
        "ACTIONHUB_PROGRAM_ID": "dagster",
        "ACTIONHUB_BASE_URL": f"{emu.url}/actionhub",
        "USERCOM_API_KEY": UC_KEY,
        "USERCOM_BASE_URL": f"{emu.url}/usercom/dagster/api/public",
        "ONESIGNAL_API_KEY": OS_SMALL_KEY,
        "ONESIGNAL_APP_ID": OS_SMALL,
        "ONESIGNAL_BASE_URL": f"{emu.url}/onesignal",
        "SEGMENT_ASSETS_DUCKDB": str(workdir / "dagster_run.duckdb"),
        **{f"{p}_MAX_RPS": "1000" for p in ("ACTIONHUB", "USERCOM", "ONESIGNAL")},
        "ONESIGNAL_MAX_CONCURRENCY": "8",
    }
    os.environ.update(env)
    emu.post("clear", {})
    cold_import = subprocess.run(
        [sys.executable, "-c", IMPORT_MAIN], capture_output=True, text=True, cwd=ROOT, check=True
    )
    imported = float(cold_import.stdout.strip())
    import dagster as dg

    from segment_assets.definitions import defs

    # the same settings as the run's resources, built directly (no EnvVar to resolve)
    resources: dict[str, ProviderResource] = {
        "actionhub": ActionHubResource(
            api_key=AH_KEY,
            program_id="dagster",
            base_url=env["ACTIONHUB_BASE_URL"],
            max_requests_per_second=1000,
        ),
        "usercom": UserComResource(
            api_key=UC_KEY, base_url=env["USERCOM_BASE_URL"], max_requests_per_second=1000
        ),
        "onesignal": OneSignalResource(
            api_key=OS_SMALL_KEY,
            app_id=OS_SMALL,
            base_url=env["ONESIGNAL_BASE_URL"],
            max_requests_per_second=1000,
            max_concurrency=8,
        ),
    }
    fetch = {}
    for name, resource in resources.items():
        t0 = time.perf_counter()
        resource.snapshot(DAY)
        fetch[name] = time.perf_counter() - t0
    job = defs.resolve_job_def("daily_segment_snapshot")

    def run(instance: dg.DagsterInstance) -> float:
        t0 = time.perf_counter()
        result = job.execute_in_process(partition_key=DAY.isoformat(), instance=instance)
        assert result.success
        return time.perf_counter() - t0

    with dg.instance_for_test() as instance:
        first, second = run(instance), run(instance)
    in_memory = run(dg.DagsterInstance.ephemeral())
    fetched = sum(fetch.values())
    print(f"\nDagster: full daily_segment_snapshot run, {DAGSTER_SEGMENTS:,} segments per provider")
    print(f"  cold import of segment_assets.definitions (dagster, pandas)    {imported:6.2f} s")
    print(
        "  clients' own fetch time: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in fetch.items())
        + f"; together {fetched:.2f} s"
    )
    print(f"  job run, SQLite instance (as dagster dev), first run          {first:6.2f} s")
    print(f"  job run, SQLite instance, second run                          {second:6.2f} s")
    print(f"  job run, in-memory instance (no event-log storage)            {in_memory:6.2f} s")
    print(
        f"  beyond the fetches: {second - fetched:.2f} s with SQLite event storage, "
        f"{in_memory - fetched:.2f} s in memory (DuckDB writes, drop checks, segment_drops, "
        "Dagster's step machinery)"
    )


# -- store -----------------------------------------------------------------------------
def store_count_sql(days: int) -> str:
    """The count of segment ``s`` on day ``d`` (0 = the first): steady with a little noise,
    one segment in ``STORE_DROPS_EVERY`` losing 90 % on the last day. Plain integer SQL, so
    DuckDB and PostgreSQL build the same rows."""
    return (
        "((1000 + s * 37 + ((s * 7919 + d * 104729) % 50)) * "
        f"(CASE WHEN d = {days - 1} AND s % {STORE_DROPS_EVERY} = 7 THEN 0.1 ELSE 1 END))::bigint"
    )


# When each segment's definition last changed: a time of its own, long before the days
# (plain SQL, so DuckDB and PostgreSQL build the same rows).
DEFINITION_SQL = "timestamp '2024-06-01' + (s * 7) * interval '1 minute'"


def build_store(database: str, days: int, segments: int) -> None:
    import duckdb

    from segment_assets.providers import registry, schema

    first = DAY - dt.timedelta(days=days - 1)
    with duckdb.connect(database) as conn:
        conn.execute("create schema if not exists segments")
        for provider in registry.NAMES:
            cols = ", ".join(f"{c.name} {c.sql_type}" for c in schema.columns(provider))
            table = f"segments.{provider}_segments"
            conn.execute(f"create or replace table {table} ({cols})")
            values = {
                "snapshot_date": "$first::date + d::int",
                "provider": f"'{provider}'",
                "account": "'acct'",
                "segment_id": "'seg-' || s",
                "segment_name": "'Segment ' || s",
                "user_count": store_count_sql(days),
                "fetched_at": "($first::date + d::int)::timestamp + interval 1 day",
                "definition_updated_at": DEFINITION_SQL,
            }
            exprs = ", ".join(values.get(c.name, "NULL") for c in schema.columns(provider))
            conn.execute(
                f"insert into {table} select {exprs} from range({days}) t(d), "
                f"range({segments}) u(s) order by d, s",
                {"first": first},
            )


def store(workdir: Path, misses: list[str], postgres: bool = True) -> None:
    """The drop check and the sensor tick on the DuckDB file and, when a PostgreSQL server
    is at hand (``SEGMENT_ASSETS_TEST_PG_DSN``, or the local binaries), on PostgreSQL with
    the same rows: printed side by side, each against the 2 s target."""
    from segment_assets.defs.drops import PROVIDER_TABLES, extra_columns, flag_drops
    from segment_assets.detection import find_drops, history_start
    from segment_assets.store import DATABASE_URL_ENV, SegmentStore
    from segment_assets.store.duckdb import DuckDBStore
    from segment_assets.store.postgres import PostgresStore

    database = str(workdir / "store.duckdb")
    t0 = time.perf_counter()
    build_store(database, STORE_DAYS, STORE_SEGMENTS)
    built = {"DuckDB": time.perf_counter() - t0}
    planted = STORE_SEGMENTS // STORE_DROPS_EVERY
    stores: dict[str, tuple[SegmentStore, dict[str, str]]] = {
        "DuckDB": (DuckDBStore(database), {"SEGMENT_ASSETS_DUCKDB": database})
    }
    with contextlib.ExitStack() as stack:
        if postgres:
            from store_bench import build_postgres_store, server
            from store_bench import database as pg_database

            try:
                admin = stack.enter_context(server())
            except SystemExit as exc:  # no server and no binaries: DuckDB alone
                print(f"\n(PostgreSQL left out: {exc})")
            else:
                url = stack.enter_context(pg_database(admin))
                t0 = time.perf_counter()
                build_postgres_store(url, STORE_DAYS, STORE_SEGMENTS)
                built["PostgreSQL"] = time.perf_counter() - t0
                stores["PostgreSQL"] = (PostgresStore(url), {DATABASE_URL_ENV: url})
        print(
            f"\nStore: {STORE_DAYS} days × {STORE_SEGMENTS:,} segments × 3 providers "
            f"({3 * STORE_DAYS * STORE_SEGMENTS:,} rows, built in "
            + ", ".join(f"{seconds:.1f} s ({name})" for name, seconds in built.items())
            + f"); {planted} segments per provider drop 90 % on {DAY}"
        )
        start = history_start(DAY)
        one = "usercom_segments"

        def history_of(chosen: SegmentStore, tables: list[str]) -> object:
            extra = {t: extra_columns(t) for t in tables if extra_columns(t)}  # as the check
            return chosen.read_history(tables, start, DAY, extra_columns=extra)

        rows: dict[str, dict[str, float]] = {}
        said: dict[str, str] = {}
        for name, (chosen, env) in stores.items():
            os.environ.pop(DATABASE_URL_ENV, None)
            os.environ.update(env)  # the sensor finds its store as the code location does
            times = rows.setdefault(name, {})
            for label, tables in (("all three tables", list(PROVIDER_TABLES)), (one, [one])):
                times[f"read_history, 64 days of {label}"], history = best_of(
                    partial(history_of, chosen, tables)
                )
                times[f"  find_drops on the rows of {label}"], _ = best_of(
                    partial(find_drops, history, DAY)
                )
            times[CHECK_LABEL], _ = best_of(partial(flag_drops, chosen, [one], DAY))
            ticks = [sensor_tick() for _ in range(STORE_REPEATS)]
            times[TICK_LABEL], said[name] = min(ticks)
        os.environ.pop(DATABASE_URL_ENV, None)

    names = list(stores)
    print(
        f"  {f'seconds, best of {STORE_REPEATS}':<58}"
        + "".join(f"{n:>12}" for n in names)
        + "   target"
    )
    for label in rows["DuckDB"]:
        figures = "".join(f"{rows[n][label]:10.2f} s" for n in names)
        verdict = ""
        if label in (CHECK_LABEL, TICK_LABEL):
            worst = max(rows[n][label] for n in names)
            verdict = f"   < {TARGET_STORE_SECONDS:g} s: " + (
                "ok" if worst < TARGET_STORE_SECONDS else "MISSED"
            )
            for n in names:
                if rows[n][label] >= TARGET_STORE_SECONDS:
                    misses.append(f"{label} ({n}): {rows[n][label]:.2f} s")
        print(f"  {label:<58}{figures}{verdict}")
    for name, text in said.items():
        print(f"    the tick on {name}: {text}")
        if "3 new partition(s), 3 alert(s)" not in text:
            misses.append(f"the sensor tick on {name} should alert on 3 partitions: {text}")


STORE_REPEATS = 3  # the machine may be shared: the best of three, the least disturbed run
CHECK_LABEL = "drop check of one partition (flag_drops, usercom)"


def best_of(call: Callable[[], object]) -> tuple[float, object]:
    """The fastest of ``STORE_REPEATS`` calls, and what the last one returned."""
    times, value = [], None
    for _ in range(STORE_REPEATS):
        t0 = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - t0)
    return min(times), value


TICK_LABEL = "drop sensor tick over 3 new partitions"


def sensor_tick() -> tuple[float, str]:
    """One tick of the drop sensor over three new partitions of DAY (one per provider), on a
    fresh instance; its time and what it said."""
    import dagster as dg

    from segment_assets.defs.alerts import DropAlerts
    from segment_assets.defs.drops import PROVIDER_TABLES
    from segment_assets.defs.sensors import segment_drop_sensor

    with dg.instance_for_test() as instance:
        for table in PROVIDER_TABLES:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=table, partition=DAY.isoformat())
            )
        context = dg.build_sensor_context(instance=instance, resources={"alerts": DropAlerts()})
        t0 = time.perf_counter()
        tick = segment_drop_sensor(context)
        seconds = time.perf_counter() - t0
    text = tick.skip_reason.skip_message if tick.skip_reason else ""  # type: ignore[union-attr]
    return seconds, text


# -- many accounts ----------------------------------------------------------------------
# The last commit whose snapshot ran at most 16 accounts side by side, with a thread per
# account and per request in flight: the baseline the agency case runs next to the code here.
BASELINE_COMMIT = "ad51759e4b1c75f53289daba7f2772714d95444a"
TARGET_AGENCY_RATIO = 1.3  # (wall - start-up) / physical bound
TARGET_THREADS = 100
TARGET_AGENCY_RSS_MB = 400.0


@dataclass(frozen=True)
class Agency:
    """Many OneSignal apps, each held by the emulator to a strict bucket (no burst) per
    endpoint, every answer ``latency`` late."""

    apps: int
    segments: int
    limit: float = 1.0  # requests per second per app at the provider
    latency: float = 0.05

    @property
    def requests_per_app(self) -> int:
        return 1 + self.segments  # one listing page (up to 300 segments) and one view each

    def bound(self, rate: float) -> float:
        """Seconds the slowest app needs at ``rate`` requests a second."""
        return self.requests_per_app / rate

    def app(self, i: int) -> tuple[str, str]:
        return f"00000000-0000-4000-8000-{i:012d}", f"os_v2_app_agency_{i:06d}"


AGENCY = Agency(apps=200, segments=20)
QUICK_AGENCY = Agency(apps=40, segments=5)


@dataclass
class AgencyRun:
    label: str
    exit_code: int
    requests: int
    rate_limited: int
    max_in_flight_per_app: int
    peak_threads: int
    peak_rss_mb: float
    cpu: float  # seconds of CPU the process used, user and system
    started: float  # wall clock, when the process was started
    first_request: float
    last_answer: float
    ended: float
    rows: int
    wrong: int  # rows missing, repeated or with a count the emulator did not give

    @property
    def wall(self) -> float:
        return self.ended - self.started

    @property
    def startup(self) -> float:
        return self.first_request - self.started

    def line(self, agency: Agency, pace: float) -> str:
        share = self.rate_limited / max(1, self.requests)
        return (
            f"  {self.label:<10} {self.exit_code:>4} {self.rows:>6,} {self.wrong:>5} "
            f"{self.requests:>6,} {self.rate_limited:>5} {share:>6.1%} "
            f"{self.max_in_flight_per_app:>5} {self.peak_threads:>7} {self.peak_rss_mb:>6.0f} "
            f"{self.cpu:>5.1f} {self.startup:>7.1f} "
            f"{self.last_answer - self.first_request:>8.1f} {self.wall:>7.1f} "
            f"{agency.bound(agency.limit):>7.1f} {agency.bound(pace):>7.1f} "
            f"{(self.wall - self.startup) / agency.bound(agency.limit):>6.2f}"
        )


AGENCY_HEADER = (
    f"  {'code':<10} {'exit':>4} {'rows':>6} {'wrong':>5} {'reqs':>6} {'429s':>5} {'share':>6} "
    f"{'infl':>5} {'threads':>7} {'RSS MB':>6} {'cpu s':>5} {'start s':>7} {'fetch s':>8} "
    f"{'wall s':>7} "
    f"{'bound':>7} {'b@pace':>7} {'ratio':>6}"
)


def baseline_tree(workdir: Path) -> Path:
    """The package as of BASELINE_COMMIT, unpacked from this repository's history."""
    archive = workdir / "baseline.tar"
    done = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive),
         BASELINE_COMMIT, "segment_assets"],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(
            f"cannot unpack the baseline {BASELINE_COMMIT[:10]} from git ({done.stderr.strip()}); "
            "run the bench from a clone with its history, or pass --no-baseline"
        )
    tree = workdir / "baseline"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def agency_env(agency: Agency, emu: Emulator, workdir: Path, pace: float) -> dict[str, str]:
    """An accounts file listing every app, each key in a variable of its own."""
    lines, env = ["onesignal:"], {}
    for i in range(agency.apps):
        app_id, key = agency.app(i)
        lines += [f"  app_{i:04d}:", f"    app_id: {app_id}", f"    api_key_env: OS_APP_{i:04d}"]
        env[f"OS_APP_{i:04d}"] = key
    accounts = workdir / "segment_assets.yaml"
    accounts.write_text("\n".join(lines) + "\n")
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "SEGMENT_ASSETS_WORKERS")
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        **env,
        "SEGMENT_ASSETS_CONFIG": str(accounts),
        "SEGMENT_ASSETS_DUCKDB": str(workdir / "agency.duckdb"),
        "ONESIGNAL_BASE_URL": f"{emu.url}/onesignal",
        "ONESIGNAL_MAX_RPS": f"{pace:g}",
        "PYTHONUNBUFFERED": "1",
    }


def status_of(pid: int) -> dict[str, int]:
    """Its threads now and its peak RSS so far in kB (``VmHWM``: of this program, unlike
    the rusage of a child, which counts the RSS its parent had when it was forked)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("Threads", "VmHWM") if key in fields}


def agency_run(
    label: str, code: Path, agency: Agency, emu: Emulator, workdir: Path, pace: float
) -> AgencyRun:
    """``python -m segment_assets snapshot`` of the OneSignal apps, run from ``code``."""
    workdir.mkdir()
    env = agency_env(agency, emu, workdir, pace)
    where = subprocess.run(
        [sys.executable, "-c", "import segment_assets; print(segment_assets.__file__)"],
        cwd=code, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(code)):
        raise SystemExit(f"{label}: python imports segment_assets from {where}, not from {code}")
    emu.post("stats/reset")
    log = (workdir / "run.log").open("w")
    command = [sys.executable, "-m", "segment_assets", "snapshot", "--date", DAY.isoformat(),
               "--provider", "onesignal"]  # fmt: skip
    started = time.time()
    process = subprocess.Popen(command, cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT)
    peak = rss_kb = 0
    while True:  # reaped here, so that its CPU time comes with it
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        now = status_of(process.pid)
        peak = max(peak, now.get("Threads", 0))
        rss_kb = max(rss_kb, now.get("VmHWM", 0))
        time.sleep(0.02)
    ended = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    stats = emu.stats("onesignal")
    rows, wrong = agency_rows(agency, emu, workdir / "agency.duckdb")
    if process.returncode:
        print((workdir / "run.log").read_text()[-3000:])
    return AgencyRun(
        label=label,
        exit_code=process.returncode,
        requests=stats["requests"],
        rate_limited=stats["429"],
        max_in_flight_per_app=max(stats["max_in_flight_by_account"].values(), default=0),
        peak_threads=peak,
        peak_rss_mb=rss_kb / 1024,
        cpu=usage.ru_utime + usage.ru_stime,
        started=started,
        first_request=stats["first_request_at"] or ended,
        last_answer=stats["last_answer_at"] or ended,
        ended=ended,
        rows=rows,
        wrong=wrong,
    )


def agency_rows(agency: Agency, emu: Emulator, database: Path) -> tuple[int, int]:
    """Rows stored, and rows wrong: each app's segments must be there once with the
    emulator's count."""
    import duckdb

    if not database.exists():
        return 0, agency.apps * agency.segments
    with duckdb.connect(str(database), read_only=True) as conn:
        stored = conn.sql(
            "select account, segment_id, user_count from segments.onesignal_segments"
        ).df()
    truth = {
        (app_id, item["id"]): item["subscriber_count"]
        for app_id in (agency.app(i)[0] for i in range(agency.apps))
        for item in emu.get("truth", provider="onesignal", account=app_id)  # type: ignore[union-attr]
    }
    got = {(a, s): c for a, s, c in stored.itertuples(index=False)}
    wrong = len(stored) - len(got) + sum(1 for k, v in truth.items() if got.get(k) != v)
    return len(stored), wrong


def many_accounts(
    agency: Agency, pace: float, baseline: bool, misses: list[str], quick: bool = False
) -> None:
    """The agency case: one snapshot of every app, this code next to the baseline's. The
    ratio target holds for the full size only (in a quick run the fixed costs weigh more)."""
    spec = {
        "today": DAY.isoformat(),
        "actionhub": [],
        "usercom": [],
        "onesignal": [[*agency.app(i), agency.segments, 0, 0] for i in range(agency.apps)],
    }
    print(
        f"\nMany accounts: {agency.apps} OneSignal apps × {agency.segments} segments, each app "
        f"held to a strict {agency.limit:g} request/s per endpoint (no burst), "
        f"{agency.latency * 1000:.0f} ms latency; the client paces each app at {pace:g}/s"
    )
    print(
        "  one process per code: python -m segment_assets snapshot --provider onesignal with "
        "an accounts file; bound = requests per app / the provider's limit (the physical\n"
        f"  bound, judged); b@pace = the same at the client's pace; ratio = (wall - start-up)"
        f" / bound, target <= {TARGET_AGENCY_RATIO}; start-up = process start to its first "
        "request;\n  fetch = first request to last answer; threads and RSS are the process's "
        "peaks, cpu its CPU time; wrong = rows missing, repeated or with another count than the "
        "emulator's"
    )
    print(AGENCY_HEADER)
    with emulator_process(spec) as emu, tempfile.TemporaryDirectory() as tmp:
        emu.post(
            "faults",
            {
                "provider": "onesignal",
                "rate_limit_rps": agency.limit,
                "rate_limit_burst": 1,
                "latency_ms": agency.latency * 1000,
            },
        )
        now = agency_run("this code", ROOT, agency, emu, Path(tmp) / "now", pace)
        print(now.line(agency, pace))
        if baseline:
            tree = baseline_tree(Path(tmp))
            before = agency_run(BASELINE_COMMIT[:7], tree, agency, emu, Path(tmp) / "then", pace)
            print(before.line(agency, pace))
            print(f"    this code vs {BASELINE_COMMIT[:7]}: {before.wall / now.wall:.1f}× faster")
    expected = agency.apps * agency.segments
    ratio = (now.wall - now.startup) / agency.bound(agency.limit)
    checks = [
        (now.exit_code == 0, f"the snapshot exited {now.exit_code}"),
        (now.rows == expected and not now.wrong, f"{now.rows} rows, {now.wrong} wrong"),
        (
            now.rate_limited < TARGET_429_SHARE * now.requests,
            f"{now.rate_limited} 429s in {now.requests} requests",
        ),
        (ratio <= TARGET_AGENCY_RATIO or quick, f"ratio {ratio:.2f} > {TARGET_AGENCY_RATIO}"),
        (now.peak_threads < TARGET_THREADS, f"{now.peak_threads} threads"),
        (now.peak_rss_mb < TARGET_AGENCY_RSS_MB, f"peak RSS {now.peak_rss_mb:.0f} MB"),
    ]
    misses += [f"many accounts: {why}" for ok, why in checks if not ok]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument(
        "--store-only", action="store_true", help="only the store case (no emulator)"
    )
    parser.add_argument("--accounts-only", action="store_true", help="only the many-accounts case")
    parser.add_argument("--apps", type=int, help="OneSignal apps of the many-accounts case")
    parser.add_argument("--app-segments", type=int, help="segments per app of that case")
    parser.add_argument(
        "--pace",
        type=float,
        default=OneSignalResource.model_fields["max_requests_per_second"].default,
        help="the client's pace per app in the many-accounts case (default: the project's)",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="many accounts: skip the baseline's run"
    )
    parser.add_argument("--no-postgres", action="store_true", help="the store case on DuckDB only")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--onesignal-rps", type=float, default=20.0)
    parser.add_argument("--actionhub-rps", type=float, default=200.0)
    parser.add_argument("--usercom-rps", type=float, default=50.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    sizes = QUICK if args.quick else FULL
    paces = [
        # OneSignal: a strict per-second view limit (one request of tolerance for jitter);
        # the others: a bucket of one second's worth, the emulator's default
        Pace("onesignal", args.onesignal_rps, 2, burst=2),
        Pace("actionhub", args.actionhub_rps, 4, burst=math.ceil(args.actionhub_rps)),
        Pace("usercom", args.usercom_rps, 1, burst=math.ceil(args.usercom_rps)),
    ]
    misses: list[str] = []
    agency = QUICK_AGENCY if args.quick else AGENCY
    agency = Agency(
        apps=args.apps or agency.apps,
        segments=args.app_segments or agency.segments,
        latency=args.latency_ms / 1000,
    )
    if args.accounts_only:
        many_accounts(agency, args.pace, not args.no_baseline, misses, quick=args.quick)
        return report(misses)
    if args.store_only:
        with tempfile.TemporaryDirectory() as tmp:
            store(Path(tmp), misses, postgres=not args.no_postgres)
        return report(misses)
    print(
        f"Snapshot bench ({'quick' if args.quick else 'full'}): OneSignal {sizes.onesignal:,} "
        f"segments, ActionHub {6 * sizes.actionhub_per_list:,} in six type × basis lists, "
        f"User.com {sizes.usercom:,}; {os.cpu_count()} CPUs"
    )
    with emulator(sizes) as emu, tempfile.TemporaryDirectory() as tmp:
        pacing(emu, args.latency_ms / 1000, paces, misses, quick=args.quick)
        memory(emu, misses)
        dagster_run(emu, Path(tmp))
        store(Path(tmp), misses, postgres=not args.no_postgres)
    many_accounts(agency, args.pace, not args.no_baseline, misses, quick=args.quick)
    return report(misses)


def report(misses: list[str]) -> int:
    if misses:
        print("\nMISSED: " + "; ".join(misses))
        return 1
    print("\nAll targets met.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
