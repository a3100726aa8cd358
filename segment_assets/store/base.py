"""The one interface to where snapshots live, and the choice of implementation.

Everything outside ``segment_assets.store`` talks to a :class:`SegmentStore`; only
:func:`store_from_env` knows which database it is. ``SEGMENT_ASSETS_DATABASE_URL`` chooses:

* unset (or empty): the DuckDB file at ``SEGMENT_ASSETS_DUCKDB`` (the embedded default);
* ``postgresql://user:password@host:port/db?sslmode=…`` (libpq URL syntax, every libpq
  parameter accepted; ``postgres://`` too): a PostgreSQL database.

Both hold the same schema (``segments``), tables and column types, replace a day's rows in
one transaction, and keep one snapshot per provider account at a time: DuckDB with lock
files beside its file (one machine), PostgreSQL with advisory locks (any number of machines;
a crashed holder's lock dies with its session).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from segment_assets.store.duckdb_files import LOCK_RETRY_SECONDS, SCHEMA
from segment_assets.store.file_locks import DEFAULT_WAIT_SECONDS, AccountBusyError

if TYPE_CHECKING:
    import dagster as dg

DATABASE_URL_ENV = "SEGMENT_ASSETS_DATABASE_URL"

#: The columns :meth:`SegmentStore.read_history` returns unless asked for others.
HISTORY_COLUMNS: tuple[str, ...] = (
    "provider",
    "account",
    "segment_id",
    "segment_name",
    "snapshot_date",
    "user_count",
)

#: Column types as the project writes them (``providers/schema.py``, ``drops.py``): DuckDB's
#: names, which each store maps to its own.
ColumnTypes = Mapping[str, str]

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_WAIT_SECONDS",
    "HISTORY_COLUMNS",
    "LOCK_RETRY_SECONDS",
    "SCHEMA",
    "AccountBusyError",
    "ColumnTypes",
    "SegmentStore",
    "StoreError",
    "check_partition_frame",
    "store_from_env",
]


class StoreError(RuntimeError):
    """The store cannot be used; the message says why and what to change (never a secret)."""


@runtime_checkable
class SegmentStore(Protocol):
    """Where the snapshot tables live: ``<schema>.<table>``, one row per segment and day."""

    schema: str

    def describe(self) -> str:
        """Secret-free words for logs: which database, where."""
        ...

    def check(self, tables: Sequence[str] = (), write: bool = True) -> None:
        """Fail now, with a :class:`StoreError` saying what to fix, if the store cannot be
        reached, or cannot be written (``write``) or read: run before any provider request.
        ``tables`` are the tables about to be written (they need not exist yet)."""
        ...

    def write_partition(
        self,
        table: str,
        day: dt.date,
        frame: pd.DataFrame,
        column_types: ColumnTypes | None = None,
    ) -> int:
        """Replace the rows of ``day`` (``snapshot_date``) in ``table`` by ``frame``, in one
        transaction: never duplicated, and a failed write keeps the old rows. The table (and
        schema) is created on first write, with ``column_types`` (DuckDB type names, e.g.
        ``{"user_count": "BIGINT"}``) or else types read from ``frame``'s dtypes. Returns
        the rows written."""
        ...

    def ensure_table(self, table: str, column_types: ColumnTypes) -> None:
        """Create ``table`` with these columns (DuckDB type names) if it does not exist."""
        ...

    def read_partition(
        self, table: str, day: dt.date, lock_wait_seconds: float = LOCK_RETRY_SECONDS
    ) -> pd.DataFrame:
        """Every stored row of ``table`` for ``day`` (all columns, with the dtypes DuckDB's
        ``.df()`` gives); an empty frame without columns when the table does not exist."""
        ...

    def read_history(
        self,
        tables: Sequence[str],
        start: dt.date,
        end: dt.date,
        columns: Sequence[str] = HISTORY_COLUMNS,
        extra_columns: dict[str, Sequence[str]] | None = None,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> pd.DataFrame:
        """Rows of ``tables`` with ``start <= snapshot_date <= end``, as one consistent read.

        The contract of :func:`~segment_assets.store.duckdb_files.read_history`:
        ``extra_columns`` adds columns per table (NULL for the other tables); tables never
        written are skipped, and none at all gives an empty frame of object columns.
        ``snapshot_date`` is a categorical of ``datetime.date``, ``user_count`` nullable
        ``Int64``, and ``provider, account, segment_id, segment_name`` categoricals of their
        text. Row order is not specified.
        """
        ...

    def partition_counts(self, table: str) -> dict[dt.date, int]:
        """Rows per ``snapshot_date`` of ``table`` (empty when it does not exist)."""
        ...

    def existing_tables(self, tables: Sequence[str]) -> list[str]:
        """The tables of ``tables`` that exist (were ever written), in the same order."""
        ...

    def lock_account(
        self,
        provider: str,
        account: str,
        label: str,
        log: Any = None,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> AbstractContextManager[None]:
        """Hold the snapshot lock of ``provider``/``account`` while the block runs.

        Waits for a run that holds it, saying so in ``log`` (``label: waiting for another
        run's snapshot of this account to finish``) after a second, up to
        ``wait_seconds``, then raises :class:`AccountBusyError`.
        """
        ...

    def io_manager(self) -> dg.ConfigurableIOManagerFactory:
        """The Dagster IO manager that writes and reads asset partitions in this store
        (assets give ``metadata={"partition_expr": "snapshot_date"}``)."""
        ...


def check_partition_frame(table: str, day: dt.date, frame: pd.DataFrame) -> None:
    """A frame written as ``day``'s partition holds rows of ``day`` only (a row of another
    day would escape the replacement of that day, and could be stored twice)."""
    if "snapshot_date" not in frame.columns:
        raise StoreError(f"the rows for {table} on {day} have no snapshot_date column")
    if not len(frame):
        return
    days = pd.to_datetime(frame["snapshot_date"], errors="coerce").dt.date
    wrong = days.ne(day)
    if wrong.any():
        found = sorted({str(d) for d in frame.loc[wrong, "snapshot_date"].head(5)})
        raise StoreError(
            f"the rows for {table} on {day} include {int(wrong.sum())} row(s) of other days "
            f"(snapshot_date {', '.join(found)}); a partition holds its own day only"
        )


def store_from_env(environ: Mapping[str, str] | None = None) -> SegmentStore:
    """The store ``SEGMENT_ASSETS_DATABASE_URL`` names (see the module's docstring).

    Nothing is opened: call :meth:`SegmentStore.check` to find out whether it can be used.
    An unknown scheme or a malformed URL raises :class:`StoreError` naming the variable.
    """
    env = os.environ if environ is None else environ
    raw = (env.get(DATABASE_URL_ENV) or "").strip()
    if not raw:
        from segment_assets.store.duckdb import DuckDBStore

        return DuckDBStore.from_env(env)
    from segment_assets.store.postgres import PostgresStore

    return PostgresStore(raw, environ=env)
