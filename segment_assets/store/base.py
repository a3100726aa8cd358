"""The one interface to where snapshots live.

Everything outside ``segment_assets.store`` talks to a :class:`SegmentStore`; only
:func:`~segment_assets.store.choose.store_from_env` knows which database it is.
``SEGMENT_ASSETS_DATABASE_URL`` chooses:

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
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    import dagster as dg

DATABASE_URL_ENV = "SEGMENT_ASSETS_DATABASE_URL"
SCHEMA = "segments"
#: How long a read or write waits for a lock another session holds on the tables.
LOCK_RETRY_SECONDS = 60.0
#: How long a snapshot waits for another run's snapshot of the same account.
DEFAULT_WAIT_SECONDS = 6 * 3600.0  # a OneSignal snapshot of a big app takes hours at 1 req/s
#: A snapshot that waits for an account's lock says so in the run's log after this long.
NOTICE_AFTER_SECONDS = 1.0
#: How far back :meth:`SegmentStore.latest_stored_counts` looks for an account's latest day.
LOOKBACK_DAYS = 92
#: Output metadata key: the run decided that the partition may lose its rows (accounts whose
#: shrunken snapshot was accepted); without it an empty frame never replaces stored rows.
EMPTY_DAY_ACCEPTED = "accepted_shrunk_accounts"

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
    "EMPTY_DAY_ACCEPTED",
    "HISTORY_COLUMNS",
    "LOCK_RETRY_SECONDS",
    "LOOKBACK_DAYS",
    "SCHEMA",
    "AccountBusyError",
    "ColumnTypes",
    "SegmentStore",
    "StoreBusyError",
    "StoreError",
    "check_partition_frame",
    "store_kind",
]


class StoreError(RuntimeError):
    """The store cannot be used; the message says why and what to change (never a secret)."""


class StoreBusyError(StoreError):
    """Another session held a lock on the tables for longer than the caller may wait; trying
    again later is the fix."""


class AccountBusyError(RuntimeError):
    """Another run kept the account's snapshot lock for longer than allowed."""


@runtime_checkable
class SegmentStore(Protocol):
    """Where the snapshot tables live: ``<schema>.<table>``, one row per segment and day."""

    schema: str
    #: What the store is, in Dagster's words for ``kinds`` ("duckdb", "postgres").
    kind: str

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

    def latest_stored_counts(
        self,
        table: str,
        day: dt.date,
        lookback_days: int = LOOKBACK_DAYS,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> dict[str, tuple[dt.date, int]]:
        """account → (its latest stored day on or before ``day``, the rows stored that day),
        over the ``lookback_days`` before ``day``, in one query; empty when nothing is."""
        ...

    def partition_counts(self, table: str) -> dict[dt.date, int]:
        """Rows per ``snapshot_date`` of ``table`` (empty when it does not exist)."""
        ...

    def existing_tables(self, tables: Sequence[str]) -> list[str]:
        """The tables of ``tables`` that exist (were ever written), in the same order."""
        ...

    def append_rows(
        self,
        table: str,
        frame: pd.DataFrame,
        column_types: ColumnTypes,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        """Add the rows of ``frame`` to ``table`` in one transaction (for the project's small
        tables: acknowledgements, incidents). The table is created with ``column_types``
        (DuckDB type names) if it does not exist, and gains the columns of
        ``column_types`` it lacks. Returns the rows added. The small-table writes wait up to
        ``lock_wait_seconds`` for another writer, then raise :class:`StoreBusyError`."""
        ...

    def read_rows(self, table: str, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> pd.DataFrame:
        """Every row of ``table``; an empty frame without columns when it does not exist."""
        ...

    def update_rows(
        self,
        table: str,
        key_column: str,
        keys: Sequence[Any],
        values: Mapping[str, Any],
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        """Set the columns of ``values`` (column → Python value, None for NULL) on the rows
        of ``table`` whose ``key_column`` is one of ``keys``; returns the rows changed (0
        when the table does not exist)."""
        ...

    def remove_rows(
        self,
        table: str,
        key_column: str,
        keys: Sequence[Any],
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        """Delete the rows of ``table`` whose ``key_column`` is one of ``keys``; returns the
        rows deleted (0 when the table does not exist)."""
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
        run's snapshot of this account to finish``) after :data:`NOTICE_AFTER_SECONDS`, up to
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


def guard_empty_day(
    context: dg.OutputContext, obj: object, rows_held: Callable[[str, dt.date], int]
) -> None:
    """For the stores' IO managers: raise :class:`StoreError` when ``obj`` is an empty frame
    for a partition whose day holds rows (``rows_held(table, day)``), unless the output's
    metadata says the run accepted an empty day (:data:`EMPTY_DAY_ACCEPTED`, a count or a
    Dagster metadata value of one)."""
    if not (isinstance(obj, pd.DataFrame) and obj.empty and context.has_partition_key):
        return
    accepted = (context.output_metadata or {}).get(EMPTY_DAY_ACCEPTED)
    if getattr(accepted, "value", accepted):
        return
    table, day = context.asset_key.path[-1], dt.date.fromisoformat(context.partition_key)
    held = rows_held(table, day)
    if held:
        raise StoreError(
            f"refusing to replace the {held} stored rows of {table} for {day} with an empty "
            "snapshot; they are kept. An empty snapshot replaces a stored day only when the "
            "run accepts it (accept_shrunk_accounts: true)"
        )


def store_kind(environ: Mapping[str, str] | None = None) -> str:
    """The kind of store ``SEGMENT_ASSETS_DATABASE_URL`` chooses ("duckdb" or "postgres"),
    for labels; nothing is checked (:func:`store_from_env` does that)."""
    env = os.environ if environ is None else environ
    return "postgres" if (env.get(DATABASE_URL_ENV) or "").strip() else "duckdb"
