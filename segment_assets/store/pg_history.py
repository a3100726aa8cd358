"""``read_history`` on PostgreSQL: a row per segment and day, read without a Python object
per row.

The history is grouped by its text (provider, account, segment id and name: one group per
segment) and each group's other columns come back packed in one ``bytea``: a fixed-width
record per row (a NULL mask, then each column's binary form; dates as days since ``start``)
built by the server with ``string_agg(int8send(…) || …)``. A 64-day read of 30,000 segments is
then 30,000 result rows instead of 1.9 million, and numpy decodes the records in one go.

The tables and days are split over a few connections that share one snapshot
(``pg_export_snapshot``), so the server reads them side by side and the result is one
consistent read, as on DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from segment_assets.days import dates_of, datetimes_of, sql_days_since
from segment_assets.store.base import StoreError
from segment_assets.store.duckdb_files import LABEL_COLUMNS, _code_type
from segment_assets.store.types import as_pandas

if TYPE_CHECKING:
    from segment_assets.store.postgres import PostgresStore


def milliseconds(seconds: float) -> str:
    """A PostgreSQL duration of at least 1 ms (0 would mean "no limit")."""
    return f"{max(1, round(seconds * 1000))}ms"


PARTITION_COLUMN = "snapshot_date"
# Session settings of a history read: hash the groups (the planner overestimates their
# number and would sort), with room for them in memory, and no JIT compilation (its start-up
# costs more than it saves on these queries).
READ_SETTINGS = (("enable_sort", "off"), ("jit", "off"), ("work_mem", "128MB"))

# PostgreSQL type → (SQL of its fixed-width binary form with {} for the column, numpy dtype)
_PACKED: dict[str, tuple[str, str]] = {
    "bigint": ("int8send(coalesce({}, 0))", ">i8"),
    "integer": ("int4send(coalesce({}, 0))", ">i4"),
    "smallint": ("int2send(coalesce({}, 0::smallint))", ">i2"),
    "double precision": ("float8send(coalesce({}, 0))", ">f8"),
    "real": ("float4send(coalesce({}, 0))", ">f4"),
    "boolean": ("boolsend(coalesce({}, false))", "u1"),
    "date": (f"int4send(coalesce({sql_days_since('{}', '%(start)s::date')}, 0))", ">i4"),
    "timestamp without time zone": (
        "timestamp_send(coalesce({}, '2000-01-01'::timestamp))",
        ">i8",
    ),
}
_MASKS = ((15, "int2send", ">i2"), (31, "int4send", ">i4"), (63, "int8send", ">i8"))
_EPOCH_2000 = np.datetime64("2000-01-01T00:00:00", "us")


@dataclass(frozen=True)
class Plan:
    """What each column of the read is: a group key (its own value per group) or packed."""

    names: list[str]  # in output order
    types: dict[str, str]  # PostgreSQL type of each
    keys: list[str]  # text and other columns the rows are grouped by
    packed: list[str]  # fixed-width columns packed in each group's bytea
    mask: tuple[str, str]  # send function and numpy dtype of the NULL mask

    @property
    def record(self) -> np.dtype:
        fields = [("mask", self.mask[1])]
        fields += [(f"c{i}", _PACKED[self.types[c]][1]) for i, c in enumerate(self.packed)]
        return np.dtype(fields)


def plan(
    names: list[str],
    owners: dict[str, dict[str, str]],
    wanted_by: dict[str, set[str]],
    extras: frozenset[str] | set[str] = frozenset(),
) -> Plan:
    """Sort the columns into group keys and packed ones, with their types. An extra column
    of tables that were never written is NULL text on every row (as DuckDB reads it)."""
    types: dict[str, str] = {}
    for name in names:
        kinds = [cols[name] for t, cols in owners.items() if name in cols and name in wanted_by[t]]
        if not kinds and name in extras:
            kinds = ["text"]
        if not kinds:
            raise StoreError(f"no table of the history read has a column {name}")
        types[name] = kinds[0]
    packed = [n for n in names if types[n] in _PACKED]
    keys = [n for n in names if n not in packed]
    mask = next(((f, d) for limit, f, d in _MASKS if len(packed) <= limit), None)
    if mask is None:
        raise StoreError(f"a history read holds at most {_MASKS[-1][0]} number/date columns")
    return Plan(names, types, keys, packed, mask)


def group_query(store: PostgresStore, table: str, plan: Plan, own: set[str]) -> sql.Composed:
    """The grouped, packed read of one table's days %(first)s to %(end)s (dates are packed
    as days since %(start)s)."""

    def column(name: str) -> sql.Composable:
        if name in own:
            return sql.Identifier(name)
        return sql.SQL("NULL::{}").format(sql.SQL(plan.types[name]))

    flags = [  # the partition column is never NULL within the window: no flag to compute
        sql.SQL("(({} IS NULL)::integer << {})").format(column(n), sql.Literal(bit))
        for bit, n in enumerate(plan.packed)
        if n != PARTITION_COLUMN or n not in own
    ] or [sql.SQL("0")]
    mask_cast = {"int2send": "smallint", "int4send": "integer", "int8send": "bigint"}
    record = [
        sql.SQL("{}(({})::{})").format(
            sql.SQL(plan.mask[0]), sql.SQL(" + ").join(flags), sql.SQL(mask_cast[plan.mask[0]])
        )
    ]
    record += [sql.SQL(_PACKED[plan.types[n]][0]).format(column(n)) for n in plan.packed]
    keys = [sql.SQL("{} AS {}").format(column(k), sql.Identifier(k)) for k in plan.keys]
    select = sql.SQL(", ").join(
        [*keys, sql.SQL("string_agg({}, ''::bytea)").format(sql.SQL(" || ").join(record))]
    )
    query = sql.SQL("SELECT {} FROM {}.{} WHERE {} BETWEEN %(first)s AND %(end)s").format(
        select,
        sql.Identifier(store.schema),
        sql.Identifier(table),
        sql.Identifier(PARTITION_COLUMN),
    )
    if plan.keys:
        positions = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(plan.keys)))
        query = sql.SQL("{} GROUP BY {}").format(query, positions)
    return query


@dataclass(frozen=True)
class Task:
    table: str
    start: dt.date
    end: dt.date


def split(tables: Sequence[str], start: dt.date, end: dt.date, parts: int) -> list[list[Task]]:
    """The (table, day) pairs of the read cut into ``parts`` runs of about equal size."""
    days = (end - start).days + 1
    total = len(tables) * days
    parts = max(1, min(parts, total))
    runs: list[list[Task]] = []
    for part in range(parts):
        first, last = part * total // parts, (part + 1) * total // parts - 1
        run: list[Task] = []
        for index in range(len(tables)):
            lo, hi = max(first, index * days), min(last, index * days + days - 1)
            if lo <= hi:
                run.append(
                    Task(
                        tables[index],
                        start + dt.timedelta(days=lo - index * days),
                        start + dt.timedelta(days=hi - index * days),
                    )
                )
        runs.append(run)
    return runs


def _prepare(conn: psycopg.Connection, lock_wait_seconds: float) -> None:
    for name, value in (*READ_SETTINGS, ("lock_timeout", milliseconds(lock_wait_seconds))):
        conn.execute("SELECT set_config(%s, %s, true)", [name, value])


def read_packed_history(
    store: PostgresStore,
    tables: Sequence[str],
    start: dt.date,
    end: dt.date,
    columns: Sequence[str],
    extra_columns: dict[str, Sequence[str]],
    lock_wait_seconds: float,
) -> pd.DataFrame:
    all_extra = sorted({c for cols in extra_columns.values() for c in cols})
    names = [*columns, *all_extra]
    with store.transaction(read_only=True, lock_wait_seconds=lock_wait_seconds) as conn:
        owners = store.table_types(conn, tables)
        present = [t for t in tables if t in owners]
        if not present:
            return pd.DataFrame(columns=names)
        wanted_by = {t: {*columns, *extra_columns.get(t, ())} for t in present}
        owned = {t: owners[t] for t in present}
        the_plan = plan(names, owned, wanted_by, set(all_extra) - set(columns))
        queries = {
            t: group_query(store, t, the_plan, set(owned[t]) & wanted_by[t]) for t in present
        }
        runs = [r for r in split(present, start, end, store.read_connections) if r]
        _prepare(conn, lock_wait_seconds)
        if len(runs) == 1:
            groups = _fetch(conn, queries, runs[0], start)
        else:
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            with ThreadPoolExecutor(len(runs) - 1) as pool:
                others = [
                    pool.submit(_fetch_in_snapshot, store, snapshot, queries, run, start,
                                lock_wait_seconds)
                    for run in runs[1:]
                ]  # fmt: skip
                groups = _fetch(conn, queries, runs[0], start)
                for future in others:
                    groups += future.result()
    return decode(groups, the_plan, start)


def _fetch(
    conn: psycopg.Connection, queries: dict[str, sql.Composed], tasks: list[Task], start: dt.date
) -> list[tuple]:
    rows: list[tuple] = []
    for task in tasks:
        # dates count from the read's start in every task, so the records of all tasks agree
        params = {"start": start, "end": task.end, "first": task.start}
        rows += conn.execute(queries[task.table], params, binary=True).fetchall()
    return rows


def _fetch_in_snapshot(
    store: PostgresStore,
    snapshot: str,
    queries: dict[str, sql.Composed],
    tasks: list[Task],
    start: dt.date,
    lock_wait_seconds: float,
) -> list[tuple]:
    conn = store.connect()
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            _prepare(conn, lock_wait_seconds)
            return _fetch(conn, queries, tasks, start)
    finally:
        conn.close()


def decode(groups: list[tuple], plan: Plan, start: dt.date) -> pd.DataFrame:
    """The frame of the grouped rows: one row per packed record, key values repeated."""
    blobs = [g[-1] or b"" for g in groups]
    record = plan.record
    counts = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    counts //= record.itemsize
    records = np.frombuffer(b"".join(blobs), dtype=record)
    group_of_row = np.repeat(np.arange(len(groups)), counts)
    mask = records["mask"].astype(np.int64)
    out: dict[str, object] = {}
    for position, name in enumerate(plan.keys):
        values = [g[position] for g in groups]
        if name in LABEL_COLUMNS:
            codes, uniques = pd.factorize(np.array(values, dtype=object))
            codes = codes.astype(_code_type(len(uniques)))
            out[name] = pd.Categorical.from_codes(codes[group_of_row], categories=uniques)
        else:
            per_row = np.array(values, dtype=object)[group_of_row]
            out[name] = as_pandas(list(per_row), plan.types[name])
    for index, name in enumerate(plan.packed):
        null = ((mask >> index) & 1).astype(bool)
        out[name] = _unpack(records[f"c{index}"], null, plan.types[name], name, start)
    frame = pd.DataFrame({name: out[name] for name in plan.names}, copy=False)
    if "user_count" in frame:
        frame["user_count"] = frame["user_count"].astype("Int64")
    return frame


def _unpack(values: np.ndarray, null: np.ndarray, kind: str, name: str, start: dt.date) -> object:
    """One packed column as DuckDB's ``.df()`` gives it (``snapshot_date``: a categorical of
    ``datetime.date``, as :func:`segment_assets.store.duckdb_files.read_history`)."""
    native = values.astype(values.dtype.newbyteorder("="))
    if kind == "date":
        if name == PARTITION_COLUMN:
            return dates_of(native, start)
        return np.where(null, np.datetime64("NaT", "us"), datetimes_of(native, start))
    if kind == "timestamp without time zone":
        stamps = _EPOCH_2000 + native.astype("timedelta64[us]")
        return np.where(null, np.datetime64("NaT", "us"), stamps)
    if kind in ("double precision", "real"):
        return np.where(null, np.nan, native).astype(native.dtype)
    if kind == "boolean":
        flags = native.astype(bool)
        return pd.arrays.BooleanArray(flags, null) if null.any() else flags
    # integers
    return pd.arrays.IntegerArray(native, null) if null.any() else native
