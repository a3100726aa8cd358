"""Store benchmark: the history reads of the drop check and the sensor tick, on the DuckDB file
and on PostgreSQL, same data, same run.

Run ``python bench/store_bench.py`` (a few minutes) or with ``--quick``. The data are the
store case of ``snapshot_bench.py``: 400 days × 10,000 segments per provider × 3 providers,
a few segments dropping 90 % on the last day. They are built in a DuckDB file, then copied
into PostgreSQL with :func:`segment_assets.store.migrate.migrate_duckdb` (timed too).

PostgreSQL is the server of ``SEGMENT_ASSETS_TEST_PG_DSN`` (a new database is created there
and dropped at the end), or a throwaway server started from the local binaries.

For each store: ``read_history`` of the 64 days detection needs (all three tables, as the
sensor tick reads them; one table, as a drop check does), then the same read followed by
``find_drops`` — the bulk of a drop check and of a sensor tick — against the 2 s target.
PostgreSQL is measured with 1, 2 and 3 connections per read. DuckDB is the baseline.
The script exits non-zero when PostgreSQL misses the target.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from snapshot_bench import (  # noqa: E402
    DAY,
    DEFINITION_SQL,
    STORE_DAYS,
    STORE_SEGMENTS,
    TARGET_STORE_SECONDS,
    build_store,
    store_count_sql,
)

from segment_assets.defs.drops import PROVIDER_TABLES, extra_columns  # noqa: E402
from segment_assets.detection import HISTORY_DAYS_NEEDED, find_drops, history_start  # noqa: E402
from segment_assets.providers import registry, schema  # noqa: E402
from segment_assets.store.base import SegmentStore  # noqa: E402
from segment_assets.store.duckdb import DuckDBStore  # noqa: E402
from segment_assets.store.migrate import migrate_duckdb  # noqa: E402
from segment_assets.store.postgres import (  # noqa: E402
    DEFAULT_READ_CONNECTIONS,
    PostgresStore,
)
from segment_assets_tests.dagster_ui import free_port  # noqa: E402
from segment_assets_tests.pg_fixtures import DSN_ENV, _as_postgres, postgres_bin  # noqa: E402

QUICK_DAYS, QUICK_SEGMENTS = 100, 2_000
REPEATS = 3


@contextlib.contextmanager
def server() -> Iterator[str]:
    """A superuser URL: CI's server, or a throwaway one from the local binaries."""
    if os.environ.get(DSN_ENV):
        yield os.environ[DSN_ENV]
        return
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit(f"no PostgreSQL binaries and {DSN_ENV} is not set")
    folder = tempfile.mkdtemp(prefix="segment_assets_bench_pg_")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = f"{folder}/data", free_port()
    run = dict(check=True, capture_output=True, timeout=120)
    subprocess.run(
        _as_postgres([f"{bin_dir}/initdb", "-D", data, "-U", "dagster", "--auth=trust"]), **run
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = f"{bin_dir}/pg_ctl"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", data, "-o", options, "-l", f"{folder}/log", "-w", "start"]),
        **run,
    )
    try:
        yield f"postgresql://dagster@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "fast", "stop"]), **run)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def database(admin_url: str) -> Iterator[str]:
    name = f"segment_assets_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def build_postgres_store(url: str, days: int, segments: int) -> None:
    """The rows :func:`snapshot_bench.build_store` puts in the DuckDB file, made by the
    server itself (much faster than copying them): tables created by the store, as a run
    would create them, then filled with one ``INSERT … SELECT`` each."""
    first = DAY - dt.timedelta(days=days - 1)
    store = PostgresStore(url)
    for provider in registry.NAMES:
        table = f"{provider}_segments"
        store.ensure_table(table, {c.name: c.sql_type for c in schema.columns(provider)})
        values = {
            "snapshot_date": "%(first)s::date + d",
            "provider": f"'{provider}'",
            "account": "'acct'",
            "segment_id": "'seg-' || s",
            "segment_name": "'Segment ' || s",
            "user_count": store_count_sql(days).replace("%", "%%"),  # not a parameter
            "fetched_at": "(%(first)s::date + d)::timestamp + interval '1 day'",
            "definition_updated_at": DEFINITION_SQL,
        }
        exprs = ", ".join(values.get(c.name, "NULL") for c in schema.columns(provider))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO segments.{} SELECT " + exprs + " FROM generate_series(0, "
                    "%(last_day)s) d, generate_series(0, %(last_segment)s) s ORDER BY d, s"
                ).format(sql.Identifier(table)),
                {"first": first, "last_day": days - 1, "last_segment": segments - 1},
            )
            conn.execute(sql.SQL("VACUUM ANALYZE segments.{}").format(sql.Identifier(table)))


def best(call: Callable[[], object]) -> tuple[float, object]:
    """The fastest of a few runs (the machine is shared: the least disturbed one)."""
    times, value = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - started)
    return min(times), value


def measure(label: str, store: SegmentStore, misses: list[str] | None) -> None:
    start = history_start(DAY)
    extra = {t: extra_columns(t) for t in PROVIDER_TABLES if extra_columns(t)}  # as the check
    one = ["usercom_segments"]

    def read(tables: list[str]) -> object:
        return store.read_history(tables, start, DAY, extra_columns=extra)

    def check(tables: list[str]) -> object:
        return find_drops(read(tables), DAY)

    three_s, history = best(lambda: read(list(PROVIDER_TABLES)))
    one_s, _ = best(lambda: read(one))
    find_s, found = best(lambda: find_drops(history, DAY))
    tick_s, _ = best(lambda: check(list(PROVIDER_TABLES)))
    check_s, _ = best(lambda: check(one))
    verdict = ""
    if misses is not None:
        worst = max(tick_s, check_s)
        verdict = "ok" if worst < TARGET_STORE_SECONDS else "MISSED"
        if worst >= TARGET_STORE_SECONDS:
            misses.append(f"{label}: {worst:.2f} s >= {TARGET_STORE_SECONDS:g} s")
    print(
        f"  {label:<34} {three_s:8.2f} {one_s:8.2f} {find_s:10.2f} {tick_s:7.2f} {check_s:7.2f}  "
        f"{len(history):,} rows, {len(found)} drops {verdict}"  # type: ignore[arg-type]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_DAYS} days × {QUICK_SEGMENTS:,} segments"
    )
    args = parser.parse_args()
    days, segments = (QUICK_DAYS, QUICK_SEGMENTS) if args.quick else (STORE_DAYS, STORE_SEGMENTS)
    misses: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, server() as admin, database(admin) as url:
        path = str(Path(tmp) / "store.duckdb")
        started = time.perf_counter()
        build_store(path, days, segments)
        built = time.perf_counter() - started
        duck = DuckDBStore(path)
        started = time.perf_counter()
        summary = migrate_duckdb(path, PostgresStore(url))
        copied = time.perf_counter() - started
        rows = sum(t.rows for t in summary.tables)
        print(
            f"Store bench: {days} days × {segments:,} segments × 3 providers ({rows:,} rows); "
            f"DuckDB file built in {built:.1f} s, copied to PostgreSQL in {copied:.1f} s "
            f"({rows / copied:,.0f} rows/s, row counts "
            f"{'verified' if summary.verified else 'WRONG'})"
            f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print(
            f"  best of {REPEATS}, seconds: read_history of {HISTORY_DAYS_NEEDED + 1} days "
            "(3 tables, 1 table), find_drops on the 3 tables' history, and read + find_drops "
            "(sensor tick: 3 tables, drop check: 1 table)"
        )
        print(
            f"  {'store':<34} {'3 tables':>8} {'1 table':>8} {'find_drops':>10} {'tick':>7} "
            f"{'check':>7}"
        )
        measure("DuckDB (baseline)", duck, None)
        for connections in (1, 2, 3):
            pg = PostgresStore(url, read_connections=connections)
            default = connections == DEFAULT_READ_CONNECTIONS
            label = f"PostgreSQL, {connections} connection(s){' *' if default else ''}"
            measure(label, pg, misses if default else None)
        print(f"  (* the default, read_connections={DEFAULT_READ_CONNECTIONS}: held to the target)")
    if misses:
        print("\nMISSED (target: tick and check < 2 s): " + "; ".join(misses))
        return 1
    print(f"\nAll targets met (< {TARGET_STORE_SECONDS:g} s).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
