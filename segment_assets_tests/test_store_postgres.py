"""The PostgreSQL store on a real PostgreSQL server, next to the DuckDB store it replaces.

CI starts a server and sets ``SEGMENT_ASSETS_TEST_PG_DSN``; without it a throwaway server is
started from the local PostgreSQL binaries (password authentication on, so a wrong password
is refused). Every test gets its own database, owned by its own role whose password is a
canary that must never appear in an error, a log or a run record.
"""

import datetime as dt
import logging
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from segment_assets.defs.drops import DROPS_COLUMNS
from segment_assets.providers import registry, schema
from segment_assets.store import (
    DATABASE_URL_ENV,
    AccountBusyError,
    SegmentStore,
    StoreError,
    store_from_env,
)
from segment_assets.store.base import EMPTY_DAY_ACCEPTED
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.io_manager import PostgresSegmentsIOManager
from segment_assets.store.migrate import migrate_duckdb
from segment_assets.store.postgres import PostgresStore

from .conftest import failure_text
from .dagster_ui import free_port
from .pg_fixtures import Database, _drop_database, _new_database

REPO = Path(__file__).resolve().parents[1]
FIRST_DAY = dt.date(2025, 3, 1)
TABLES = list(registry.TABLES)
EXTRA = {"usercom_segments": ("last_counted", "too_heavy")}


@pytest.fixture
def pg(database: Database) -> PostgresStore:
    return PostgresStore(database.url, connect_timeout=2)


@pytest.fixture
def duck(tmp_path: Path) -> DuckDBStore:
    return DuckDBStore(str(tmp_path / "warehouse" / "segment_assets.duckdb"))


# -- data --------------------------------------------------------------------------------
def provider_frame(
    provider: str, day: dt.date, segments: int = 6, account: str = "acct-1", factor: float = 1.0
) -> pd.DataFrame:
    """A day's normalised snapshot as a provider client builds it (NULL counts included)."""
    offset = (day - FIRST_DAY).days
    rows = []
    for i in range(segments):
        row: dict[str, object] = {
            "segment_id": f"{account}-seg-{i}",
            # segment 1 is renamed on the fourth day
            "segment_name": f"Segment {i}" + (" (new name)" if i == 1 and offset >= 3 else ""),
            # NULL only where the provider says it cannot count (the registry's count rules)
            "user_count": None
            if (provider, i) in {("onesignal", 2), ("usercom", 4)}
            else int((1000 + 100 * i + offset) * factor),
        }
        if provider == "actionhub":
            row |= {
                "segment_type": "growth",
                "segment_basis": "labels",
                "segment_basis_id": f"l{i}",
                "action_type": "view",
                "strength": 0.5 + i / 10,
                "min_weight": None if i == 3 else 0.1,
            }
        elif provider == "usercom":
            row |= {
                "description": None if i % 2 else f"about {i}",
                "too_heavy": i == 4,
                "update_interval": 60 if i != 5 else None,
                "last_counted": None if i == 5 else f"{day}T0{i}:00:00Z",
                "updated_at": 1_700_000_000 + i,
            }
        else:
            row |= {
                "description": "",
                "source": "custom",
                "created_at": "2024-12-24T10:00:00.123456Z",
                "filters": '[{"field": "tag", "value": "\\u00e9t\\u00e9"}]',
                "countable": i != 2,
            }
        rows.append(row)
    fetched = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 5), dt.UTC)
    return schema.to_frame(provider, rows, account=account, snapshot_date=day, fetched_at=fetched)


def column_types(provider: str) -> dict[str, str]:
    return {c.name: c.sql_type for c in schema.columns(provider)}


def write_days(store: SegmentStore, days: int, accounts: tuple[str, ...] = ("acct-1", "acct-2")):
    for offset in range(days):
        day = FIRST_DAY + dt.timedelta(days=offset)
        for provider in registry.NAMES:
            frame = pd.concat(
                [provider_frame(provider, day, account=a) for a in accounts], ignore_index=True
            )
            store.write_partition(f"{provider}_segments", day, frame, column_types(provider))


def comparable(frame: pd.DataFrame) -> tuple[dict[str, str], pd.DataFrame]:
    """The dtypes of ``frame`` and its rows in one order, categoricals as their values."""
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}
    plain = frame.astype({c: object for c, t in dtypes.items() if t == "category"})
    keys = [c for c in ("provider", "account", "segment_id", "snapshot_date") if c in plain]
    if keys:
        plain = plain.sort_values(keys, kind="stable")
    return dtypes, plain.reset_index(drop=True)


def assert_same_frame(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.columns) == list(theirs.columns)
    our_types, our_rows = comparable(ours)
    their_types, their_rows = comparable(theirs)
    assert our_types == their_types
    for name, kind in our_types.items():
        if kind == "category":
            assert ours[name].cat.categories.dtype == theirs[name].cat.categories.dtype
            assert {type(v) for v in ours[name].cat.categories} == {
                type(v) for v in theirs[name].cat.categories
            }
    pd.testing.assert_frame_equal(our_rows, their_rows)


def counts(frame: pd.DataFrame) -> list[int | None]:
    return [None if pd.isna(v) else int(v) for v in frame["user_count"]]


def told(exc: BaseException) -> str:
    """Everything a user could see of an error: message, repr and formatted traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# -- writing and reading partitions -------------------------------------------------------
def test_a_day_written_again_replaces_its_rows_and_leaves_the_other_days(pg, duck):
    day, next_day = FIRST_DAY, FIRST_DAY + dt.timedelta(days=1)
    for store in (pg, duck):
        store.write_partition(
            "onesignal_segments", day, provider_frame("onesignal", day), column_types("onesignal")
        )
        store.write_partition(
            "onesignal_segments",
            next_day,
            provider_frame("onesignal", next_day),
            column_types("onesignal"),
        )
        again = provider_frame("onesignal", day, segments=4, factor=2)
        assert store.write_partition("onesignal_segments", day, again) == 4

    stored = pg.read_partition("onesignal_segments", day)
    assert len(stored) == 4
    assert counts(stored) == [2000, 2200, None, 2600]
    assert pg.partition_counts("onesignal_segments") == {day: 4, next_day: 6}
    # the frame DuckDB gives back, value for value and dtype for dtype
    for when in (day, next_day):
        assert_same_frame(
            pg.read_partition("onesignal_segments", when),
            duck.read_partition("onesignal_segments", when),
        )
    assert pg.read_partition("onesignal_segments", day + dt.timedelta(days=9)).empty
    assert pg.read_partition("usercom_segments", day).equals(pd.DataFrame())
    assert pg.existing_tables(["usercom_segments", "onesignal_segments"]) == ["onesignal_segments"]


def test_the_tables_have_the_documented_column_types(pg, database):
    day = FIRST_DAY
    for provider in registry.NAMES:
        # types read from the frame a provider client builds, none given
        pg.write_partition(f"{provider}_segments", day, provider_frame(provider, day))
    pg.ensure_table("segment_drops", {c.name: c.sql_type for c in DROPS_COLUMNS})
    postgres_names = {
        "VARCHAR": "text",
        "BIGINT": "bigint",
        "INTEGER": "integer",
        "DOUBLE": "double precision",
        "BOOLEAN": "boolean",
        "DATE": "date",
        "TIMESTAMP": "timestamp without time zone",
    }
    rows = database.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'segments' ORDER BY table_name, ordinal_position"
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        found.setdefault(table, []).append((column, kind))
    for provider in registry.NAMES:
        assert found[f"{provider}_segments"] == [
            (c.name, postgres_names[c.sql_type]) for c in schema.columns(provider)
        ]
    assert found["segment_drops"] == [(c.name, postgres_names[c.sql_type]) for c in DROPS_COLUMNS]
    indexed = database.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'segments' "
        "AND tablename = 'usercom_segments'"
    )
    assert any("(snapshot_date)" in d for (d,) in indexed)


def test_a_write_that_fails_midway_keeps_the_old_rows(pg, database):
    day = FIRST_DAY
    pg.write_partition(
        "usercom_segments", day, provider_frame("usercom", day), column_types("usercom")
    )
    before = pg.read_partition("usercom_segments", day)

    # PostgreSQL refuses a NUL character in text: the server stops the COPY after the old
    # rows were deleted, in the same transaction
    broken = provider_frame("usercom", day, factor=3)
    broken.loc[3, "segment_name"] = "Segment\x003"
    with pytest.raises(StoreError) as failed:
        pg.write_partition("usercom_segments", day, broken)
    assert DATABASE_URL_ENV in str(failed.value) and "usercom_segments" in str(failed.value)
    assert database.password not in told(failed.value)
    pd.testing.assert_frame_equal(pg.read_partition("usercom_segments", day), before)

    # rows of another day would escape the day's replacement: refused before anything
    stray = provider_frame("usercom", day + dt.timedelta(days=1))
    with pytest.raises(StoreError, match="row\\(s\\) of other days"):
        pg.write_partition("usercom_segments", day, stray)
    # a column the table does not have
    with pytest.raises(StoreError, match="has no column colour"):
        pg.write_partition("usercom_segments", day, broken.assign(colour="red").iloc[:0])
    pd.testing.assert_frame_equal(pg.read_partition("usercom_segments", day), before)


def test_two_writers_of_one_day_at_once_leave_one_copy(pg):
    day = FIRST_DAY
    frames = [provider_frame("actionhub", day, segments=300, factor=f) for f in (1, 2, 3, 4)]
    errors: list[BaseException] = []

    def write(frame: pd.DataFrame) -> None:
        try:
            PostgresStore(pg.url.conninfo).write_partition("actionhub_segments", day, frame)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = pg.read_partition("actionhub_segments", day)
    assert len(stored) == 300 and stored["segment_id"].is_unique
    assert stored["user_count"].dropna().iloc[0] in {1000 * f for f in (1, 2, 3, 4)}


@pytest.mark.slow
def test_a_writer_killed_while_copying_leaves_the_old_rows(pg, database):
    day = FIRST_DAY
    pg.write_partition(
        "onesignal_segments", day, provider_frame("onesignal", day), column_types("onesignal")
    )
    before = pg.read_partition("onesignal_segments", day)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(REPO)!r})
            from segment_assets_tests.test_store_postgres import big_write
            big_write({pg.url.conninfo!r})
        """),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            copying = database.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND query LIKE 'COPY%%' AND state = 'active'",
                (database.name,),
            )[0][0]
            if copying or writer.poll() is not None:
                break
            time.sleep(0.02)
        assert copying, f"the writer never started its COPY: {writer.communicate()}"
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    pd.testing.assert_frame_equal(pg.read_partition("onesignal_segments", day), before)
    # and the next writer is not held up by the dead one
    started = time.monotonic()
    pg.write_partition("onesignal_segments", day, provider_frame("onesignal", day, factor=2))
    assert time.monotonic() - started < 5
    assert pg.read_partition("onesignal_segments", day)["user_count"].iloc[0] == 2000


def big_write(url: str) -> None:
    """Replace FIRST_DAY of onesignal_segments by 400,000 rows (run in a child process)."""
    frame = pd.concat([provider_frame("onesignal", FIRST_DAY)] * 1, ignore_index=True)
    frame = frame.loc[frame.index.repeat(400_000 // len(frame))].reset_index(drop=True)
    frame["segment_id"] = [f"s{i}" for i in range(len(frame))]
    PostgresStore(url).write_partition("onesignal_segments", FIRST_DAY, frame)


# -- history ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("read_connections", [1, 3])
def test_read_history_gives_the_frame_the_duckdb_store_gives(pg, duck, read_connections):
    pg.read_connections = read_connections
    for store in (pg, duck):
        write_days(store, 6)
    window = (FIRST_DAY + dt.timedelta(days=1), FIRST_DAY + dt.timedelta(days=4))
    cases = [
        dict(tables=TABLES, extra_columns=EXTRA),
        dict(tables=["usercom_segments"], extra_columns=EXTRA),
        dict(tables=["onesignal_segments"]),
        dict(tables=TABLES, columns=("account", "segment_id", "snapshot_date", "user_count")),
        dict(
            tables=["actionhub_segments"],
            columns=("segment_id", "snapshot_date", "strength", "min_weight", "fetched_at"),
        ),
        dict(
            tables=["usercom_segments"],
            columns=("segment_id", "description", "updated_at", "update_interval", "snapshot_date"),
        ),
    ]
    for case in cases:
        ours = pg.read_history(start=window[0], end=window[1], **case)
        theirs = duck.read_history(start=window[0], end=window[1], **case)
        assert len(ours) == len(theirs) > 0, case
        assert_same_frame(ours, theirs)
    history = pg.read_history(TABLES, *window, extra_columns=EXTRA)
    assert history["snapshot_date"].dtype == "category"
    assert set(history["snapshot_date"].cat.categories) == {
        window[0] + dt.timedelta(days=i) for i in range(4)
    }
    assert history["user_count"].dtype == "Int64"
    # the renamed segment is read under each of its names, on its own days
    renamed = history[history["segment_id"] == "acct-1-seg-1"]
    assert set(renamed["segment_name"].astype(str)) == {"Segment 1", "Segment 1 (new name)"}

    # days without rows, tables never written, and no table at all
    later = (FIRST_DAY + dt.timedelta(days=30), FIRST_DAY + dt.timedelta(days=40))
    assert_same_frame(
        pg.read_history(TABLES, *later, extra_columns=EXTRA),
        duck.read_history(TABLES, *later, extra_columns=EXTRA),
    )
    nothing = pg.read_history(["segment_drops"], *window)
    assert nothing.empty and list(nothing.columns) == list(
        duck.read_history(["segment_drops"], *window).columns
    )


def test_history_with_extra_columns_of_a_table_never_written_reads_them_as_nulls(pg, duck):
    # a drop check of OneSignal asks for User.com's extra columns too; User.com may not exist
    for store in (pg, duck):
        store.write_partition(
            "onesignal_segments", FIRST_DAY, provider_frame("onesignal", FIRST_DAY)
        )
    ours = pg.read_history(TABLES, FIRST_DAY, FIRST_DAY, extra_columns=EXTRA)
    theirs = duck.read_history(TABLES, FIRST_DAY, FIRST_DAY, extra_columns=EXTRA)
    assert len(ours) == 6 and ours["last_counted"].isna().all()
    assert_same_frame(ours, theirs)
    with pytest.raises(StoreError, match="no table of the history read has a column colour"):
        pg.read_history(TABLES, FIRST_DAY, FIRST_DAY, columns=("segment_id", "colour"))


# -- account locks ------------------------------------------------------------------------
class Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def said() -> Iterator[tuple[logging.Logger, Said]]:
    log = logging.getLogger(f"segment_assets_tests.locks.{uuid.uuid4().hex}")
    log.setLevel(logging.INFO)
    handler = Said()
    log.addHandler(handler)
    yield log, handler
    log.removeHandler(handler)


@pytest.mark.slow
def test_an_account_lock_keeps_a_second_run_waiting_and_it_says_so(pg, said):
    log, handler = said
    other_machine = PostgresStore(pg.url.conninfo)
    got: list[float] = []

    def second() -> None:
        with other_machine.lock_account("onesignal", "app-1", "OneSignal app-1", log):
            got.append(time.monotonic())

    with pg.lock_account("onesignal", "app-1", "OneSignal app-1"):
        thread = threading.Thread(target=second)
        thread.start()
        # another account of the same provider, and the same id at another provider, are free
        with other_machine.lock_account("onesignal", "app-2", "OneSignal app-2", wait_seconds=1):
            pass
        with other_machine.lock_account("usercom", "app-1", "User.com app-1", wait_seconds=1):
            pass
        time.sleep(1.5)
        assert got == []
        assert handler.lines == [
            "OneSignal app-1: waiting for another run's snapshot of this account to finish"
        ]
        # a run that may not wait that long gives up with a clear error
        impatient = other_machine.lock_account(
            "onesignal", "app-1", "OneSignal app-1", wait_seconds=1.2
        )
        with pytest.raises(AccountBusyError, match="OneSignal app-1: another run kept"), impatient:
            pass
    thread.join(10)
    assert len(got) == 1
    assert handler.lines[-1].startswith("OneSignal app-1: the other run finished after")


def test_threads_of_one_process_take_turns_and_many_accounts_share_one_connection(
    pg, database, said
):
    log, handler = said
    inside, most = 0, 0
    guard = threading.Lock()
    ready = threading.Barrier(24)

    def snapshot(account: str) -> None:
        nonlocal inside, most
        ready.wait()
        with pg.lock_account("onesignal", account, f"OneSignal {account}", log):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.3)
            with guard:
                inside -= 1

    # 20 accounts side by side, and 4 more threads for an account that one of them holds
    accounts = [f"app-{i}" for i in range(20)] + ["app-0"] * 4
    threads = [threading.Thread(target=snapshot, args=(a,)) for a in accounts]
    for t in threads:
        t.start()
    time.sleep(0.15)
    sessions = database.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND application_name = 'segment_assets'",
        (database.name,),
    )[0][0]
    for t in threads:
        t.join(30)
    assert sessions == 1
    assert most == 20  # app-0 was snapshotted by one thread at a time
    assert (
        handler.lines.count(
            "OneSignal app-0: waiting for another run's snapshot of this account to finish"
        )
        >= 1
    )
    # this test's database only: tests running alongside hold locks in theirs
    assert database.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
        (database.name,),
    ) == [(0,)]


def test_every_session_asks_the_server_to_notice_a_vanished_machine_within_a_minute(database):
    store = PostgresStore(database.url + "?options=-c%20search_path%3Dpublic")
    with store.connect() as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('tcp_keepalives_idle', "
                "'tcp_keepalives_interval', 'tcp_keepalives_count', 'search_path')"
            ).fetchall()
        )
    assert settings == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
        "search_path": "public",  # the URL's own options are kept
    }


def test_a_lock_dies_with_the_session_of_its_holder(pg, database, said):
    log, handler = said
    holder = PostgresStore(pg.url.conninfo)
    with holder.lock_account("actionhub", "program-1", "ActionHub program-1", log):
        [(pid,)] = database.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
            (database.name,),
        )
        # an operator (or the server) ends the holder's session
        database.execute("SELECT pg_terminate_backend(%s)", (pid,))
        started = time.monotonic()
        with pg.lock_account("actionhub", "program-1", "ActionHub program-1", wait_seconds=10):
            waited = time.monotonic() - started
    assert waited < 2
    # the holder learns, when its snapshot ends, that it lost the lock on the way
    assert handler.lines == [
        "ActionHub program-1: the connection holding this account's snapshot lock was lost "
        "before the snapshot ended; another run may have snapshotted it meanwhile"
    ]


@pytest.mark.slow
def test_a_lock_held_by_a_killed_process_is_free_within_seconds(pg, said):
    log, handler = said
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(REPO)!r})
            from segment_assets.store.postgres import PostgresStore
            with PostgresStore({pg.url.conninfo!r}).lock_account("usercom", "acme", "acme"):
                print("holding", flush=True)
                time.sleep(600)
        """),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        timer = threading.Timer(1.5, holder.send_signal, args=(signal.SIGKILL,))
        timer.start()
        started = time.monotonic()
        with pg.lock_account("usercom", "acme", "User.com acme", log, wait_seconds=30):
            waited = time.monotonic() - started
        timer.join()
    finally:
        holder.kill()
        holder.wait(10)
    assert 1.4 < waited < 5
    assert handler.lines[0] == (
        "User.com acme: waiting for another run's snapshot of this account to finish"
    )


# -- configuration and errors -------------------------------------------------------------
def test_the_variable_chooses_the_store(tmp_path, database):
    duck_file = str(tmp_path / "w" / "s.duckdb")
    chosen = store_from_env({"SEGMENT_ASSETS_DUCKDB": duck_file})
    assert isinstance(chosen, DuckDBStore) and chosen.database == duck_file
    empty = store_from_env({DATABASE_URL_ENV: "  ", "SEGMENT_ASSETS_DUCKDB": duck_file})
    assert isinstance(empty, DuckDBStore)
    for scheme in ("postgresql", "postgres"):
        url = database.url.replace("postgresql://", f"{scheme}://", 1) + "?sslmode=disable"
        chosen = store_from_env({DATABASE_URL_ENV: url})
        assert isinstance(chosen, PostgresStore) and isinstance(chosen, SegmentStore)
        chosen.check(TABLES)
        assert database.password not in repr(chosen) + chosen.describe()
    assert isinstance(DuckDBStore(duck_file), SegmentStore)


def test_errors_name_the_variable_and_never_the_password(database):
    canary = database.password
    host = f"127.0.0.1:{free_port()}"
    bad = {
        f"mysql://u:{canary}@{host}/db": "unknown scheme 'mysql'",
        f"postgresql+psycopg://u:{canary}@{host}/db": "drop the driver suffix",
        f"user=u password={canary} host=127.0.0.1": "no scheme",
        f"postgresql://u:{canary}%zz@{host}/db": "not a valid PostgreSQL URL",
        f"postgresql://u@{host}/db?password={canary}&bogus=1": "not a valid PostgreSQL URL",
    }
    for url, words in bad.items():
        with pytest.raises(StoreError) as failed:
            store_from_env({DATABASE_URL_ENV: url})
        assert words in str(failed.value) and DATABASE_URL_ENV in str(failed.value)
        assert canary not in told(failed.value), url

    # nothing listens there
    unreachable = PostgresStore(f"postgresql://u:{canary}@{host}/db", connect_timeout=2)
    with pytest.raises(StoreError) as failed:
        unreachable.check()
    assert "the server cannot be reached" in str(failed.value)
    assert DATABASE_URL_ENV in str(failed.value) and canary not in told(failed.value)
    assert canary not in repr(unreachable)

    missing = PostgresStore(database.url.rsplit("/", 1)[0] + "/no_such_db", connect_timeout=2)
    with pytest.raises(StoreError, match="does not exist"):
        missing.check()


def test_a_wrong_password_is_refused_with_a_clear_error(password_server):
    db = _new_database(password_server)
    try:
        canary = f"canary-{secrets.token_hex(8)}"
        wrong = PostgresStore(password_server.url(db.owner, canary, db.name), connect_timeout=2)
        with pytest.raises(StoreError) as failed:
            wrong.check()
        message = str(failed.value)
        assert "the user name or password is wrong" in message and DATABASE_URL_ENV in message
        assert canary not in told(failed.value)
        PostgresStore(db.url).check(TABLES)  # the right one works
    finally:
        _drop_database(db)


def test_missing_privileges_are_named_with_the_grant_that_fixes_them(pg, database):
    write_days(pg, 2)
    role, password = database.role()
    other = PostgresStore(database.server.url(role, password, database.name), connect_timeout=2)
    database.execute(
        sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database.name))
    )
    steps = [
        (None, "may not use schema segments: GRANT USAGE ON SCHEMA segments"),
        ("GRANT USAGE ON SCHEMA segments TO {role}", "lacks SELECT, INSERT, DELETE on"),
        ("GRANT SELECT ON ALL TABLES IN SCHEMA segments TO {role}", "lacks INSERT, DELETE on"),
    ]
    for grant, words in steps:
        if grant:
            database.execute(grant.format(role=role))
        with pytest.raises(StoreError) as failed:
            other.check(TABLES)
        assert words in str(failed.value) and DATABASE_URL_ENV in str(failed.value)
        assert password not in told(failed.value)
    # a reader may read
    other.check(TABLES, write=False)
    assert len(other.read_history(TABLES, FIRST_DAY, FIRST_DAY)) == 3 * 12
    # and a write it may not make fails clearly, keeping the rows
    with pytest.raises(StoreError, match="lacks a privilege on schema segments") as failed:
        other.write_partition("usercom_segments", FIRST_DAY, provider_frame("usercom", FIRST_DAY))
    assert password not in told(failed.value)
    assert pg.partition_counts("usercom_segments")[FIRST_DAY] == 12

    database.execute(
        sql.SQL("GRANT INSERT, DELETE ON ALL TABLES IN SCHEMA segments TO {}").format(
            sql.Identifier(role)
        )
    )
    other.check(TABLES[:2])
    with pytest.raises(StoreError, match="may not create tables in schema segments"):
        other.check([*TABLES, "segment_drops"])
    # a database without the schema, where the user may not create it
    newcomer = _new_database(database.server)
    try:
        database_url = database.server.url(role, password, newcomer.name)
        with psycopg.connect(newcomer.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(newcomer.name)
                )
            )
        with pytest.raises(StoreError, match="may not create schema segments"):
            PostgresStore(database_url).check(TABLES)
    finally:
        _drop_database(newcomer)


# -- Dagster IO manager ---------------------------------------------------------------------
DAILY = dg.DailyPartitionsDefinition(start_date="2025-03-01", end_date="2025-03-10")


@dg.asset(
    partitions_def=DAILY,
    config_schema={"factor": dg.Field(int, default_value=1)},
    metadata={
        "partition_expr": "snapshot_date",
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn("snapshot_date", "DATE"),
                dg.TableColumn("segment_id", "VARCHAR"),
                dg.TableColumn("user_count", "BIGINT"),
                dg.TableColumn("note", "VARCHAR"),
            ]
        ),
    },
)
def store_test_counts(context: dg.AssetExecutionContext) -> pd.DataFrame:
    day = context.partition_time_window.start.date()
    factor = context.op_execution_context.op_config["factor"]
    context.log.info("store_test_counts ran")
    return pd.DataFrame(
        {
            "snapshot_date": [day] * 3,
            "segment_id": ["a", "b", "c"],
            "user_count": pd.array([10 * factor, None, 30 * factor], "Int64"),
            "note": [None, None, None],  # only NULLs: the declared type still applies
        }
    )


@dg.asset(partitions_def=DAILY, metadata={"partition_expr": "snapshot_date"})
def store_test_totals(store_test_counts: pd.DataFrame) -> pd.DataFrame:
    day = store_test_counts["snapshot_date"].iloc[0].date()
    total = int(store_test_counts["user_count"].sum())
    return pd.DataFrame({"snapshot_date": [day], "total": [total]})


@pytest.mark.slow
def test_the_io_manager_writes_and_reads_daily_partitions(pg, database, monkeypatch):
    monkeypatch.setenv(DATABASE_URL_ENV, database.url)
    resources = {"io_manager": pg.io_manager()}
    assets = [store_test_counts, store_test_totals]
    with dg.instance_for_test() as instance:
        for day, factor in (("2025-03-02", 1), ("2025-03-03", 2), ("2025-03-02", 5)):
            result = dg.materialize(
                assets,
                partition_key=day,
                resources=resources,
                instance=instance,
                run_config={"ops": {"store_test_counts": {"config": {"factor": factor}}}},
            )
            assert result.success
        stored = pg.read_partition("store_test_counts", dt.date(2025, 3, 2))
        assert counts(stored) == [50, None, 150]  # replaced, one copy
        assert pg.partition_counts("store_test_counts") == {
            dt.date(2025, 3, 2): 3,
            dt.date(2025, 3, 3): 3,
        }
        assert pg.read_partition("store_test_totals", dt.date(2025, 3, 3))["total"].tolist() == [80]
        types = dict(
            database.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'segments' AND table_name = 'store_test_counts'"
            )
        )
        assert types == {
            "snapshot_date": "date",
            "segment_id": "text",
            "user_count": "bigint",
            "note": "text",
        }
        [materialization] = [
            e
            for e in result.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey("store_test_counts")
        ]
        metadata = materialization.materialization.metadata
        assert metadata["dagster/partition_row_count"].value == 3
        assert metadata["dagster/table_name"].value == f"{database.name}.segments.store_test_counts"

        # the password is nowhere in what the instance recorded
        for record in instance.get_run_records():
            assert database.password not in repr(record.dagster_run.run_config)
            for entry in instance.all_logs(record.dagster_run.run_id):
                assert database.password not in repr(entry)


@dg.asset(
    partitions_def=DAILY,
    config_schema={"rows": dg.Field(int, default_value=2), "accepted": dg.Field(int, 0)},
    metadata={"partition_expr": "snapshot_date"},
)
def store_test_days(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
    day = context.partition_time_window.start.date()
    rows = context.op_execution_context.op_config["rows"]
    frame = pd.DataFrame(
        {
            "snapshot_date": [day] * rows,
            "segment_id": [f"s{i}" for i in range(rows)],
            "colour": ["red"] * rows,  # a column the table made earlier does not have
        }
    )
    accepted = context.op_execution_context.op_config["accepted"]
    return dg.Output(frame, metadata={EMPTY_DAY_ACCEPTED: accepted})


def test_the_io_manager_adds_new_columns_and_never_empties_a_day_unless_accepted(pg, monkeypatch):
    monkeypatch.setenv(DATABASE_URL_ENV, pg.url.conninfo)
    day = dt.date(2025, 3, 2)
    pg.ensure_table("store_test_days", {"snapshot_date": "DATE", "segment_id": "VARCHAR"})

    def run(rows: int, accepted: int = 0) -> dg.ExecuteInProcessResult:
        with dg.instance_for_test() as instance:
            return dg.materialize(
                [store_test_days],
                partition_key=day.isoformat(),
                resources={"io_manager": pg.io_manager()},
                instance=instance,
                raise_on_error=False,
                run_config={"ops": {"store_test_days": {"config": {"rows": rows,
                                                                    "accepted": accepted}}}},
            )  # fmt: skip

    assert run(2).success
    stored = pg.read_partition("store_test_days", day)
    assert list(stored.columns) == ["snapshot_date", "segment_id", "colour"]
    assert stored["colour"].tolist() == ["red", "red"]

    refused = run(0)
    assert not refused.success
    assert "refusing to replace the 2 stored rows of store_test_days" in failure_text(refused)
    assert len(pg.read_partition("store_test_days", day)) == 2
    assert run(0, accepted=1).success
    assert pg.read_partition("store_test_days", day).empty


def test_the_io_manager_stops_a_step_before_the_asset_runs_when_it_may_not_write(
    database, monkeypatch
):
    role, password = database.role()
    database.execute(
        sql.SQL("REVOKE CREATE ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database.name))
    )
    monkeypatch.setenv(DATABASE_URL_ENV, database.server.url(role, password, database.name))
    resources = {
        "io_manager": PostgresSegmentsIOManager(
            database_url=dg.EnvVar(DATABASE_URL_ENV), connect_timeout=2
        )
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [store_test_counts],
            partition_key="2025-03-02",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        logs = [
            repr(entry)
            for r in instance.get_run_records()
            for entry in instance.all_logs(r.dagster_run.run_id)
        ]
    assert not any("store_test_counts ran" in line for line in logs)
    assert any("may not create schema segments" in line for line in logs)
    assert any(DATABASE_URL_ENV in line for line in logs)
    assert not any(password in line for line in logs)


# -- migration ----------------------------------------------------------------------------
@pytest.mark.slow
def test_migrating_duckdb_history_copies_each_day_once_and_verifies_the_counts(pg, duck):
    write_days(duck, 4)
    duck.ensure_table("segment_drops", {c.name: c.sql_type for c in DROPS_COLUMNS})
    summary = migrate_duckdb(duck.database, pg)
    assert summary.verified
    by_table = {t.table: t for t in summary.tables}
    assert set(by_table) == {*TABLES, "segment_drops"}
    for table in TABLES:
        copied = by_table[table]
        assert (copied.days, copied.rows, len(copied.copied)) == (4, 48, 4)
        assert copied.target_rows == 48
        assert pg.partition_counts(table) == duck.partition_counts(table)
    assert by_table["segment_drops"].rows == 0 and pg.existing_tables(["segment_drops"])
    window = (FIRST_DAY, FIRST_DAY + dt.timedelta(days=3))
    assert_same_frame(
        pg.read_history(TABLES, *window, extra_columns=EXTRA),
        duck.read_history(TABLES, *window, extra_columns=EXTRA),
    )

    # again: nothing is copied twice
    again = migrate_duckdb(duck.database, pg)
    assert again.verified
    for table in TABLES:
        done = next(t for t in again.tables if t.table == table)
        assert (len(done.copied), len(done.already_there)) == (0, 4)
        assert pg.partition_counts(table) == duck.partition_counts(table)
    assert "4 already there" in again.text()

    # a day written to PostgreSQL since is kept (and reported) unless overwritten
    day = FIRST_DAY + dt.timedelta(days=2)
    pg.write_partition("usercom_segments", day, provider_frame("usercom", day, factor=7))
    kept = migrate_duckdb(duck.database, pg, tables=["usercom_segments"])
    [usercom] = kept.tables
    assert usercom.kept_different == [day] and not kept.verified
    assert "kept as the target holds them" in kept.text()
    assert counts(pg.read_partition("usercom_segments", day))[0] == 7 * (1000 + 2)
    replaced = migrate_duckdb(duck.database, pg, tables=["usercom_segments"], overwrite=True)
    assert replaced.verified and replaced.tables[0].copied == [day]
    assert_same_frame(
        pg.read_partition("usercom_segments", day), duck.read_partition("usercom_segments", day)
    )

    with pytest.raises(StoreError, match="has no table nope"):
        migrate_duckdb(duck.database, pg, tables=["nope"])
