"""Where snapshots live: the DuckDB file, its IO manager, and the history queries.

Tables are ``segments.<asset name>`` in the DuckDB file at ``$SEGMENT_ASSETS_DUCKDB``
(default ``data/segment_assets.duckdb``). Partitions are written by Dagster's DuckDB pandas
IO manager, with three changes:

* the delete of the partition's old rows and the insert of the new ones happen in one
  transaction, so a failed write leaves the old rows in place;
* rows are inserted by column name, and a table made before a column existed gains it
  (``ALTER TABLE … ADD COLUMN IF NOT EXISTS``), so new columns need no manual migration;
* an empty frame never replaces a partition that holds rows unless the output says that
  was decided (``EMPTY_DAY_ACCEPTED`` of :mod:`segment_assets.store.base` in its metadata).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from dagster import MetadataValue, OutputContext, TableColumn, TableSchema
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbIOManager, TableSlice
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from segment_assets.days import dates_of, sql_days_since
from segment_assets.providers import registry, schema
from segment_assets.store.base import (
    HISTORY_COLUMNS,
    LOCK_RETRY_SECONDS,
    LOOKBACK_DAYS,
    SCHEMA,
    StoreBusyError,
    StoreError,
    guard_empty_day,
)

DEFAULT_DATABASE = "data/segment_assets.duckdb"
DATABASE_ENV = "SEGMENT_ASSETS_DUCKDB"


class StorageError(StoreError):
    """The DuckDB file cannot be used; the message says why and what to change."""


class DatabaseBusyError(StorageError, StoreBusyError):
    """Another process kept DuckDB's single write lock for longer than the caller may wait."""


def database_path(environ: dict[str, str] | None = None) -> str:
    """The DuckDB file to use, validated (not opened)."""
    env = os.environ if environ is None else environ
    raw = (env.get(DATABASE_ENV) or DEFAULT_DATABASE).strip()
    return validate_database_path(raw)


def validate_database_path(raw: str) -> str:
    if raw == ":memory:":
        raise StorageError(
            f"{DATABASE_ENV}=':memory:' would lose every snapshot at the end of each run; "
            "give a file path"
        )
    path = Path(raw).expanduser()
    if path.stem.lower() == SCHEMA:
        raise StorageError(
            f"{DATABASE_ENV} points at {raw!r}: DuckDB names the catalog after the file, so "
            f"'{SCHEMA}' would be both a catalog and the schema and every query would be "
            f"ambiguous. Rename the file, e.g. {path.with_name('segment_assets.duckdb')}"
        )
    if path.exists() and path.is_dir():
        raise StorageError(f"{DATABASE_ENV} points at a directory ({raw}); give a file path")
    return str(path)


def ensure_writable(database: str) -> None:
    """Create the parent folder if needed; fail clearly if the file cannot be written."""
    path = Path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the folder for {DATABASE_ENV}={database}: {exc.strerror}"
        ) from None
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        raise StorageError(
            f"{DATABASE_ENV}={database} is not writable by this process; fix its permissions "
            "or point the variable at another file"
        )


DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB file


def check_database_file(database: str) -> None:
    """Fail clearly, without opening DuckDB, if ``database`` cannot hold the snapshots.

    Run when a step's IO manager starts, so a bad path stops the run before any provider is
    called (rather than after the snapshot was fetched).
    """
    validate_database_path(database)
    ensure_writable(database)
    path = Path(database)
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
    except OSError as exc:
        raise StorageError(f"cannot read {DATABASE_ENV}={database}: {exc.strerror}") from None
    if header[8:12] != DUCKDB_MAGIC:
        raise StorageError(
            f"{DATABASE_ENV}={database} exists but is not a DuckDB file; point the variable "
            "at a new path or at the segment_assets database"
        )


@contextmanager
def connect(
    database: str, read_only: bool = False, lock_wait_seconds: float = LOCK_RETRY_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the file, waiting up to ``lock_wait_seconds`` while another process holds
    DuckDB's single-writer lock."""
    if not read_only:
        ensure_writable(database)
    elif not Path(database).exists():
        raise FileNotFoundError(database)
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(database, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StorageError(f"cannot open DuckDB file {database}: {exc}") from None
            if time.monotonic() > deadline:
                raise DatabaseBusyError(f"cannot open DuckDB file {database}: {exc}") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield conn
    finally:
        conn.close()


class AtomicDuckDbClient(DuckDbClient):
    """DuckDbClient whose delete-then-insert of a partition is one transaction."""

    @staticmethod
    @contextmanager
    def connect(context, _):  # noqa: ANN001 - Dagster's DbClient signature
        with connect(context.resource_config["database"]) as conn:
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:  # noqa: ANN001
        # A failed DELETE would abort the transaction, so skip it when there is no table yet.
        row = connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()
        if row and row[0]:
            DuckDbClient.delete_table_slice(context, table_slice, connection)


class SegmentsTypeHandler(DuckDBPandasTypeHandler):
    """Writes a frame by column name, adding the table's missing columns first."""

    def handle_output(
        self,
        context: OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame,
        connection: duckdb.DuckDBPyConnection,
    ) -> None:
        target = f"{table_slice.schema}.{table_slice.table}"
        rows = typed_select(table_slice.table, obj, "obj")
        declared = {**schema_types(context), **declared_types(table_slice.table)}
        if obj.empty:
            context.log.warning(f"no rows to write to {target}")
        elif not add_missing_columns(
            connection, table_slice.schema, table_slice.table, obj, declared
        ):
            connection.execute(f"CREATE TABLE {target} AS {rows}")
        else:
            connection.execute(f"INSERT INTO {target} BY NAME {rows}")
        context.add_output_metadata(
            {
                # the storage_kind field of TableMetadataSet is newer than dagster 1.13.0
                **TableMetadataSet(partition_row_count=len(obj)),
                "dagster/storage_kind": "duckdb",
                "dataframe_columns": MetadataValue.table_schema(
                    TableSchema(
                        columns=[
                            TableColumn(name=str(n), type=str(t)) for n, t in obj.dtypes.items()
                        ]
                    )
                ),
            }
        )


def declared_types(table: str) -> dict[str, str]:
    """column → SQL type of a provider table (from the one schema), else empty."""
    if table not in registry.TABLES:
        return {}
    return {c.name: c.sql_type for c in schema.columns(registry.by_table(table).name)}


def typed_select(table: str, frame: pd.DataFrame, name: str) -> str:
    """``SELECT`` of the frame called ``name`` with each column cast to its declared type,
    so a column that is NULL on every row still gets its type (not DuckDB's ``NULL``)."""
    types = declared_types(table)
    if not types:
        return f"SELECT * FROM {name}"
    cols = [
        f'"{c}"::{types[c]} AS "{c}"' if c in types else f'"{c}"' for c in map(str, frame.columns)
    ]
    return f"SELECT {', '.join(cols)} FROM {name}"


def schema_types(context: OutputContext) -> dict[str, str]:
    """Column types an asset declares in its ``dagster/column_schema`` metadata (so a
    column that is NULL on every row of a write still gets its type)."""
    declared = (context.definition_metadata or {}).get("dagster/column_schema")
    columns = getattr(getattr(declared, "schema", declared), "columns", None) or []
    return {c.name: c.type for c in columns}


def add_missing_columns(
    connection: duckdb.DuckDBPyConnection,
    schema_name: str,
    table: str,
    frame: pd.DataFrame,
    declared: dict[str, str] | None = None,
) -> bool:
    """Give an existing table the columns of ``frame`` it lacks (with their declared type,
    from ``declared`` or the provider's schema, else as DuckDB types them); False when the
    table does not exist."""
    have = {
        name
        for (name,) in connection.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema_name, table],
        ).fetchall()
    }
    if not have:
        return False
    declared = declared or declared_types(table)
    described = connection.execute("DESCRIBE SELECT * FROM frame").fetchall()
    for name, sql_type, *_ in described:
        if name not in have:
            connection.execute(
                f"ALTER TABLE {schema_name}.{table} ADD COLUMN IF NOT EXISTS "
                f'"{name}" {declared.get(name, sql_type)}'
            )
    return True


class SegmentsDbIOManager(DbIOManager):
    """Refuses an empty frame over a partition that holds rows, unless it was decided."""

    def handle_output(self, context: OutputContext, obj: object) -> None:
        guard_empty_day(context, obj, lambda table, day: rows_of_day(self._database, table, day))
        super().handle_output(context, obj)


def rows_of_day(database: str, table: str, day: dt.date) -> int:
    """How many rows ``table`` holds for ``day`` (0 without the file or the table)."""
    if not Path(database).exists():
        return 0
    with connect(database) as conn:
        if not table_exists(conn, table):
            return 0
        (held,) = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.{table} WHERE snapshot_date = $day", {"day": day}
        ).fetchone() or (0,)
    return int(held)


class SegmentsIOManager(DuckDBPandasIOManager):
    """DuckDB pandas IO manager with atomic partition replacement, by-name inserts that
    add new columns to old tables, and no empty frame over stored rows."""

    @staticmethod
    def type_handlers() -> Sequence[SegmentsTypeHandler]:
        return [SegmentsTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:  # noqa: ANN001
        check_database_file(self.database)
        return SegmentsDbIOManager(
            db_client=AtomicDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="SegmentsIOManager",
        )


def io_manager(database: str | None = None) -> SegmentsIOManager:
    return SegmentsIOManager(database=database or database_path(), schema=SCHEMA)


def table_columns(conn: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> dict[str, set[str]]:
    """The columns each table of ``tables`` has (tables that do not exist are left out)."""
    found: dict[str, set[str]] = {}
    for table, column in conn.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = ? and list_contains(?, table_name)",
        [SCHEMA, list(tables)],
    ).fetchall():
        found.setdefault(table, set()).add(column)
    return found


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(existing_tables(conn, [table]))


def existing_tables(conn: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> list[str]:
    """The tables of ``tables`` that exist (were ever materialised), in the same order."""
    found = {
        name
        for (name,) in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and list_contains(?, table_name)",
            [SCHEMA, list(tables)],
        ).fetchall()
    }
    return [t for t in tables if t in found]


#: Text columns read once per distinct combination rather than once per row (see
#: :func:`read_history`); a history holds one combination per segment, but a row per day.
LABEL_COLUMNS: tuple[str, ...] = ("provider", "account", "segment_id", "segment_name")
# The SQL expression that numbers a row's combination of LABEL_COLUMNS (a 64-bit hash).
_LABEL_HASH = "hash({})"


def _code_type(categories: int) -> type[np.signedinteger]:
    """The integer type pandas keeps a categorical's codes in (so it need not convert)."""
    for kind in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(kind).max:
            return kind
    return np.int64


def read_history(
    database: str,
    tables: Sequence[str],
    start: dt.date,
    end: dt.date,
    columns: Sequence[str] = HISTORY_COLUMNS,
    extra_columns: dict[str, Sequence[str]] | None = None,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
) -> pd.DataFrame:
    """Rows of ``tables`` with ``start <= snapshot_date <= end``, in one read: one
    connection, one transaction.

    ``extra_columns`` adds provider-specific columns per table (NULL for the others).
    Missing tables (never materialised) are skipped; no file means an empty frame.
    ``lock_wait_seconds`` bounds the wait for a writer (a sensor tick has 60 s in all).

    The history holds a row per segment and day, so it is read without a Python object per
    row: ``snapshot_date`` is a categorical of ``datetime.date`` objects, ``user_count``
    nullable ``Int64``, and the :data:`LABEL_COLUMNS` are categoricals of their text. The
    read is two queries of the same rows in the transaction: the distinct combinations of
    that text (one per segment) with a 64-bit hash of each, then the rows with the hash in
    place of the text. Should two combinations ever share a hash, the text is read on every
    row instead (same result, slower).
    """
    extra_columns = extra_columns or {}
    all_extra = sorted({c for cols in extra_columns.values() for c in cols})
    if not Path(database).exists():
        return pd.DataFrame(columns=[*columns, *all_extra])
    labels = [c for c in columns if c in LABEL_COLUMNS]
    label_hash = _LABEL_HASH.format(", ".join(labels))
    # snapshot_date is read as days since start (a number), then made a categorical
    fetched = [
        f"{sql_days_since(c, '$start')} AS {c}" if c == "snapshot_date" else c
        for c in [*columns, *all_extra]
    ]
    with connect(database, lock_wait_seconds=lock_wait_seconds) as conn:
        present = existing_tables(conn, tables)
        if not present:
            return pd.DataFrame(columns=[*columns, *all_extra])
        held = table_columns(conn, present)  # a table made before a column lacks it: NULL
        extra_columns = {
            t: [c for c in cols if c in held.get(t, ())] for t, cols in extra_columns.items()
        }
        selects = []
        for table in present:
            own = set(extra_columns.get(table, ()))
            cols = [*columns, *(c if c in own else f"NULL AS {c}" for c in all_extra)]
            selects.append(
                f"SELECT {', '.join(cols)} FROM {SCHEMA}.{table} "
                "WHERE snapshot_date BETWEEN $start AND $end"
            )
        rows = " UNION ALL ".join(selects)
        window = {"start": start, "end": end}
        conn.begin()
        if labels:
            text = conn.execute(
                f"SELECT DISTINCT {label_hash} AS label, {', '.join(labels)} FROM ({rows})",
                window,
            ).df()
            if text["label"].duplicated().any():
                labels = []  # two combinations share a hash: read the text on every row
        if labels:
            rest = [c for c in fetched if c not in labels]
            frame = conn.execute(
                f"SELECT {label_hash} AS label, {', '.join(rest)} FROM ({rows})", window
            ).df()
        else:
            frame = conn.execute(f"SELECT {', '.join(fetched)} FROM ({rows})", window).df()
        conn.commit()
    if labels:
        row_label = pd.Index(text["label"]).get_indexer(frame["label"])
        decoded = {}
        for name in labels:
            codes, uniques = pd.factorize(text[name].to_numpy(dtype=object))
            codes = codes.astype(_code_type(len(uniques)))  # as small as the categorical's
            decoded[name] = pd.Categorical.from_codes(codes[row_label], categories=uniques)
        frame = pd.DataFrame(
            {c: decoded[c] if c in decoded else frame[c] for c in [*columns, *all_extra]},
            copy=False,
        )
    if "snapshot_date" in frame:
        frame["snapshot_date"] = dates_of(frame["snapshot_date"].to_numpy(), start)
    if "user_count" in frame:
        frame["user_count"] = frame["user_count"].astype("Int64")
    owned = {c for table in present for c in extra_columns.get(table, ())}
    for name in set(all_extra) - owned:  # NULL in every table read: its type varies by DuckDB
        frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame


def read_partition(
    database: str, table: str, day: dt.date, lock_wait_seconds: float = LOCK_RETRY_SECONDS
) -> pd.DataFrame:
    """Every stored row of ``table`` for ``day`` (all columns); empty when nothing is."""
    if not Path(database).exists():
        return pd.DataFrame()
    with connect(database, lock_wait_seconds=lock_wait_seconds) as conn:
        if not table_exists(conn, table):
            return pd.DataFrame()
        return conn.execute(
            f"SELECT * FROM {SCHEMA}.{table} WHERE snapshot_date = $day", {"day": day}
        ).df()


def latest_stored_counts(
    database: str,
    table: str,
    day: dt.date,
    lookback_days: int = LOOKBACK_DAYS,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
) -> dict[str, tuple[dt.date, int]]:
    """account → (its latest stored day on or before ``day``, the segments stored that day),
    over the ``lookback_days`` before ``day``, in one query; empty when nothing is stored."""
    if not Path(database).exists():
        return {}
    with connect(database, lock_wait_seconds=lock_wait_seconds) as conn:
        if not table_exists(conn, table):
            return {}
        rows = conn.execute(
            f"SELECT account, snapshot_date, count(*) FROM {SCHEMA}.{table} "
            "WHERE snapshot_date BETWEEN $since AND $day GROUP BY account, snapshot_date "
            "QUALIFY row_number() OVER (PARTITION BY account ORDER BY snapshot_date DESC) = 1",
            {"since": day - dt.timedelta(days=lookback_days), "day": day},
        ).fetchall()
    return {str(account): (stored_day, int(count)) for account, stored_day, count in rows}
