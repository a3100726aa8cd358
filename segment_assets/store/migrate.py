"""Copy the history of a DuckDB file into another store (PostgreSQL), day by day.

Each day of each table is one transaction in the target (:meth:`SegmentStore.write_partition`),
so an interrupted copy leaves whole days, and running it again is safe: a day the target
already holds with exactly the same rows is skipped, a missing day is copied, and a day the
target holds with other rows (written there by a run since) is kept and reported, unless
``overwrite`` is set. At the end the rows of every table are counted on both sides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from segment_assets.store import duckdb_files as storage
from segment_assets.store.base import (
    DATABASE_URL_ENV,
    SCHEMA,
    SegmentStore,
    StoreError,
)
from segment_assets.store.choose import store_from_env

PARTITION_COLUMN = "snapshot_date"


class CopyNotVerifiedError(StoreError):
    """The target's row counts differ from the file's after the copy (``summary`` says
    where); the days copied stay copied."""

    def __init__(self, message: str, summary: MigrationSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class TableCopy:
    """What became of one table's days."""

    table: str
    days: int = 0
    rows: int = 0  # rows in the DuckDB file (days with a snapshot_date)
    copied: list[dt.date] = field(default_factory=list)
    already_there: list[dt.date] = field(default_factory=list)
    kept_different: list[dt.date] = field(default_factory=list)  # the target's rows kept
    rows_compared: int = 0  # rows of the copied and already-there days in the DuckDB file
    target_rows: int = 0  # rows of those days in the target afterwards
    mismatched: list[dt.date] = field(default_factory=list)  # days whose counts differ

    @property
    def verified(self) -> bool:
        """The target holds as many rows as the file on every day (none kept different)."""
        return not self.kept_different and not self.mismatched


@dataclass
class MigrationSummary:
    source: str
    target: str
    tables: list[TableCopy]

    @property
    def verified(self) -> bool:
        return all(t.verified for t in self.tables)

    def text(self) -> str:
        lines = [f"{self.source} → {self.target}"]
        for t in self.tables:
            state = "row counts verified" if t.verified else "NOT VERIFIED"
            lines.append(
                f"  {t.table}: {t.days} day(s), {t.rows:,} row(s): {len(t.copied)} copied, "
                f"{len(t.already_there)} already there, {len(t.kept_different)} kept as the "
                f"target holds them; {t.target_rows:,} row(s) in the target, {state}"
            )
            if t.kept_different:
                days = ", ".join(str(d) for d in t.kept_different[:10])
                lines.append(
                    f"    days that differ (the target's rows were kept; overwrite to replace "
                    f"them): {days}{' …' if len(t.kept_different) > 10 else ''}"
                )
        return "\n".join(lines)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    if not len(a):
        return True
    columns = list(a.columns)

    def canonical(frame: pd.DataFrame) -> pd.DataFrame:
        text = frame.astype(str)  # one comparable form for sorting, NULLs included
        order = text.sort_values(columns, kind="stable").index.to_numpy()
        return frame.iloc[order].reset_index(drop=True)

    return canonical(a).equals(canonical(b))


def migrate_duckdb(
    database: str,
    target: SegmentStore,
    tables: Sequence[str] | None = None,
    overwrite: bool = False,
    log: Any = None,
) -> MigrationSummary:
    """Copy the tables of the DuckDB file ``database`` (all of schema ``segments`` unless
    ``tables`` names some) into ``target``; see the module's docstring.

    Raises :class:`StoreError` when the file cannot be read or a table's rows cannot be
    verified after the copy; days already copied stay copied.
    """
    if not Path(database).exists():
        raise StoreError(f"there is no DuckDB file at {database} to copy from")
    copies: list[TableCopy] = []
    with ExitStack() as stack:
        try:
            source = stack.enter_context(storage.connect(database, read_only=True))
        except storage.StorageError as exc:
            raise StoreError(str(exc)) from None
        present = [
            name
            for (name,) in source.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "ORDER BY table_name",
                [SCHEMA],
            ).fetchall()
        ]
        wanted = list(tables) if tables is not None else present
        missing = [t for t in wanted if t not in present]
        if missing:
            raise StoreError(f"{database} has no table {', '.join(missing)} in schema {SCHEMA}")
        target.check(wanted)
        for table in wanted:
            copies.append(_copy_table(source, table, target, overwrite, log))
    summary = MigrationSummary(database, target.describe(), copies)
    if log is not None:
        log.info(summary.text())
    unverified = [t for t in copies if t.mismatched]
    if unverified:
        raise CopyNotVerifiedError(
            "the copy could not be verified: "
            + "; ".join(
                f"{t.table} has {t.rows_compared:,} rows on the days copied, the target "
                f"{t.target_rows:,} (days {', '.join(map(str, t.mismatched[:5]))})"
                for t in unverified
            ),
            summary,
        )
    return summary


def copy_history(
    source: str,
    environ: dict[str, str] | None = None,
    tables: Sequence[str] | None = None,
    overwrite: bool = False,
    log: Any = None,
) -> MigrationSummary:
    """Copy the DuckDB file ``source`` into the store ``SEGMENT_ASSETS_DATABASE_URL`` names
    (see :func:`migrate_duckdb`); :class:`StoreError` when that variable names no database to
    copy into, and before anything is copied when the target cannot be written."""
    target = store_from_env(environ)
    if target.kind == "duckdb":
        raise StoreError(
            f"{DATABASE_URL_ENV} is not set: set it to the PostgreSQL database to copy the "
            f"history into (postgresql://user:password@host:5432/database); {source} is read, "
            "never changed"
        )
    return migrate_duckdb(source, target, tables=tables, overwrite=overwrite, log=log)


def _copy_table(
    source: duckdb.DuckDBPyConnection,
    table: str,
    target: SegmentStore,
    overwrite: bool,
    log: Any,
) -> TableCopy:
    name = f'"{SCHEMA}"."{table.replace(chr(34), chr(34) * 2)}"'
    types = {
        column: kind
        for column, kind in source.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [SCHEMA, table],
        ).fetchall()
    }
    if PARTITION_COLUMN not in types:
        raise StoreError(f"{SCHEMA}.{table} in the DuckDB file has no {PARTITION_COLUMN} column")
    counts = dict(
        source.execute(
            f"SELECT {PARTITION_COLUMN}, count(*) FROM {name} "
            f"WHERE {PARTITION_COLUMN} IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    copy = TableCopy(table, days=len(counts), rows=sum(counts.values()))
    target.ensure_table(table, types)
    held_counts = target.partition_counts(table)
    for day in counts:
        rows = source.execute(f"SELECT * FROM {name} WHERE {PARTITION_COLUMN} = ?", [day]).df()
        if not held_counts.get(day):
            target.write_partition(table, day, rows, column_types=types)
            copy.copied.append(day)
            continue
        held = target.read_partition(table, day)
        if _same_rows(rows, held.reindex(columns=rows.columns)):
            copy.already_there.append(day)
        elif overwrite:
            target.write_partition(table, day, rows, column_types=types)
            copy.copied.append(day)
        else:
            copy.kept_different.append(day)
    after = target.partition_counts(table)
    copy.target_rows = sum(after.get(day, 0) for day in counts if day not in copy.kept_different)
    copy.rows_compared = sum(n for day, n in counts.items() if day not in copy.kept_different)
    copy.mismatched = [
        day
        for day, n in counts.items()
        if day not in copy.kept_different and after.get(day, 0) != n
    ]
    if log is not None:
        log.info(
            f"{table}: {len(copy.copied)} day(s) copied, {len(copy.already_there)} already there"
        )
    return copy
