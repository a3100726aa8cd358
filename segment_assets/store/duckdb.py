"""The DuckDB store: a thin adapter over :mod:`segment_assets.store.duckdb_files` and
:mod:`segment_assets.store.file_locks` (one file on one machine; lock files beside it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from segment_assets.store import duckdb_files as storage
from segment_assets.store import file_locks as locks
from segment_assets.store.base import (
    DEFAULT_WAIT_SECONDS,
    HISTORY_COLUMNS,
    LOCK_RETRY_SECONDS,
    LOOKBACK_DAYS,
    SCHEMA,
    ColumnTypes,
    StoreError,
    check_partition_frame,
)
from segment_assets.store.types import column_types_of, postgres_type

if TYPE_CHECKING:
    import dagster as dg


@contextmanager
def _as_store_errors() -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        raise StoreError(f"DuckDB ({storage.DATABASE_ENV}): {exc}") from None


def _name(identifier: str) -> str:
    """A quoted DuckDB identifier."""
    return '"' + identifier.replace('"', '""') + '"'


class DuckDBStore:
    """Snapshots in the DuckDB file ``database`` (``SEGMENT_ASSETS_DUCKDB``)."""

    schema: str = SCHEMA
    kind: str = "duckdb"

    def __init__(self, database: str) -> None:
        with _as_store_errors():
            self.database = storage.validate_database_path(database)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DuckDBStore:
        with _as_store_errors():
            return cls(storage.database_path(None if environ is None else dict(environ)))

    def __repr__(self) -> str:
        return f"DuckDBStore({self.database!r})"

    def describe(self) -> str:
        return f"DuckDB file {self.database}"

    def check(self, tables: Sequence[str] = (), write: bool = True) -> None:
        with _as_store_errors():
            if write:
                storage.check_database_file(self.database)
            else:
                storage.validate_database_path(self.database)

    def _table(self, table: str) -> str:
        return f"{_name(self.schema)}.{_name(table)}"

    def _create(self, conn: Any, table: str, column_types: ColumnTypes) -> None:
        for name, kind in column_types.items():
            postgres_type(kind, name)  # the same names on both stores: reject unknown ones
        columns = ", ".join(f"{_name(n)} {t}" for n, t in column_types.items())
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_name(self.schema)}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self._table(table)} ({columns})")

    @contextmanager
    def _transaction(
        self, lock_wait_seconds: float = LOCK_RETRY_SECONDS
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on the file: committed when the block ends, rolled back (keeping
        the old rows) when it raises."""
        with (
            _as_store_errors(),
            storage.connect(self.database, lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def ensure_table(self, table: str, column_types: ColumnTypes) -> None:
        with _as_store_errors(), storage.connect(self.database) as conn:
            self._create(conn, table, column_types)

    def write_partition(
        self,
        table: str,
        day: dt.date,
        frame: pd.DataFrame,
        column_types: ColumnTypes | None = None,
    ) -> int:
        check_partition_frame(table, day, frame)
        with self._transaction() as conn:
            self._create(conn, table, column_types or column_types_of(frame))
            conn.execute(
                f"DELETE FROM {self._table(table)} WHERE snapshot_date = $day", {"day": day}
            )
            if len(frame):
                conn.register("segment_assets_partition", frame)
                conn.execute(
                    f"INSERT INTO {self._table(table)} BY NAME "
                    "SELECT * FROM segment_assets_partition"
                )
                conn.unregister("segment_assets_partition")
        return len(frame)

    def read_partition(
        self, table: str, day: dt.date, lock_wait_seconds: float = LOCK_RETRY_SECONDS
    ) -> pd.DataFrame:
        with _as_store_errors():
            return storage.read_partition(
                self.database, table, day, lock_wait_seconds=lock_wait_seconds
            )

    def read_history(
        self,
        tables: Sequence[str],
        start: dt.date,
        end: dt.date,
        columns: Sequence[str] = HISTORY_COLUMNS,
        extra_columns: dict[str, Sequence[str]] | None = None,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> pd.DataFrame:
        with _as_store_errors():
            return storage.read_history(
                self.database,
                tables,
                start,
                end,
                columns=columns,
                extra_columns=extra_columns,
                lock_wait_seconds=lock_wait_seconds,
            )

    def latest_stored_counts(
        self,
        table: str,
        day: dt.date,
        lookback_days: int = LOOKBACK_DAYS,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> dict[str, tuple[dt.date, int]]:
        with _as_store_errors():
            return storage.latest_stored_counts(
                self.database, table, day, lookback_days, lock_wait_seconds
            )

    def partition_counts(self, table: str) -> dict[dt.date, int]:
        if not self.existing_tables([table]):
            return {}
        with _as_store_errors(), storage.connect(self.database) as conn:
            rows = conn.execute(
                f"SELECT snapshot_date, count(*) FROM {self._table(table)} "
                "WHERE snapshot_date IS NOT NULL GROUP BY 1"
            ).fetchall()
        return dict(rows)

    def existing_tables(self, tables: Sequence[str]) -> list[str]:
        if not Path(self.database).exists():
            return []
        with _as_store_errors(), storage.connect(self.database) as conn:
            return storage.existing_tables(conn, tables)

    # -- small tables (acknowledgements, incidents) --------------------------------------
    def append_rows(
        self,
        table: str,
        frame: pd.DataFrame,
        column_types: ColumnTypes,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        unknown = [str(c) for c in frame.columns if c not in column_types]
        if unknown:
            raise StoreError(f"{self.schema}.{table} has no column {', '.join(unknown)}")
        with self._transaction(lock_wait_seconds) as conn:
            self._create(conn, table, column_types)
            for name, kind in column_types.items():
                conn.execute(
                    f"ALTER TABLE {self._table(table)} ADD COLUMN IF NOT EXISTS "
                    f"{_name(name)} {kind}"
                )
            if len(frame):
                typed = ", ".join(
                    f"CAST({_name(str(c))} AS {column_types[c]}) AS {_name(str(c))}"
                    for c in frame.columns
                )
                conn.register("segment_assets_rows", frame)
                conn.execute(
                    f"INSERT INTO {self._table(table)} BY NAME "
                    f"SELECT {typed} FROM segment_assets_rows"
                )
                conn.unregister("segment_assets_rows")
        return len(frame)

    def read_rows(self, table: str, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> pd.DataFrame:
        if not Path(self.database).exists():
            return pd.DataFrame()
        with (
            _as_store_errors(),
            storage.connect(self.database, lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            if not storage.table_exists(conn, table):
                return pd.DataFrame()
            return conn.execute(f"SELECT * FROM {self._table(table)}").df()

    def update_rows(
        self,
        table: str,
        key_column: str,
        keys: Sequence[Any],
        values: Mapping[str, Any],
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        if not values or not keys:
            return 0
        names = list(values)
        assignments = ", ".join(f"{_name(n)} = ${i + 1}" for i, n in enumerate(names))
        key = len(names) + 1
        return self._change_rows(
            table,
            f"UPDATE {self._table(table)} SET {assignments} "
            f"WHERE list_contains(${key}, {_name(key_column)})",
            [*(values[n] for n in names), list(keys)],
            lock_wait_seconds,
        )

    def remove_rows(
        self,
        table: str,
        key_column: str,
        keys: Sequence[Any],
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        if not keys:
            return 0
        return self._change_rows(
            table,
            f"DELETE FROM {self._table(table)} WHERE list_contains($1, {_name(key_column)})",
            [list(keys)],
            lock_wait_seconds,
        )

    def _change_rows(
        self, table: str, statement: str, params: list[Any], lock_wait_seconds: float
    ) -> int:
        """Run one UPDATE or DELETE of a small table, with one open of the file; the rows it
        changed (0 when the file or the table does not exist)."""
        if not Path(self.database).exists():
            return 0
        with self._transaction(lock_wait_seconds) as conn:
            if not storage.table_exists(conn, table):
                return 0
            changed = conn.execute(statement, params).fetchone()
        return int(changed[0]) if changed else 0

    def lock_account(
        self,
        provider: str,
        account: str,
        label: str,
        log: Any = None,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> AbstractContextManager[None]:
        return locks.account_lock(self.database, provider, account, label, log, wait_seconds)

    def io_manager(self) -> dg.ConfigurableIOManagerFactory:
        return storage.io_manager(self.database)
