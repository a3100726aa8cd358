"""The Dagster IO manager of the PostgreSQL store, on Dagster's ``DbIOManager``.

Like the DuckDB one (:class:`segment_assets.store.duckdb_files.SegmentsIOManager`): an asset
with ``metadata={"partition_expr": "snapshot_date"}`` has its partition's rows replaced in one
transaction (delete, then ``COPY``); a new table takes its column types from the asset's
``dagster/column_schema`` metadata (DuckDB type names), else from the frame's dtypes, and a
table made before a column existed gains it on the next write; an empty frame never replaces
a partition that holds rows unless the output says that was decided
(``EMPTY_DAY_ACCEPTED`` in its metadata).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd
import psycopg
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import (
    DbClient,
    DbIOManager,
    DbTypeHandler,
    TablePartitionDimension,
    TableSlice,
)
from psycopg import sql
from pydantic import Field

from segment_assets.store.base import (
    DATABASE_URL_ENV,
    SCHEMA,
    StoreError,
    guard_empty_day,
)
from segment_assets.store.postgres import DEFAULT_CONNECT_TIMEOUT, PostgresStore
from segment_assets.store.types import column_types_of

COLUMN_SCHEMA = "dagster/column_schema"


def slice_filter(
    dimensions: Sequence[TablePartitionDimension] | None,
) -> tuple[sql.Composable | None, list[Any]]:
    """The WHERE clause (and its parameters) of a table slice's partitions.

    A time window is ``start <= column < end`` in the partition's own wall-clock time (as
    the DuckDB IO manager compares); other partitions are ``column = ANY(keys)``. The
    ``partition_expr`` must name a column.
    """
    if not dimensions:
        return None, []
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for dimension in dimensions:
        column = dimension.partition_expr
        if not isinstance(column, str) or not column.isidentifier():
            raise StoreError(
                f"partition_expr {column!r} must be a column name on the PostgreSQL store"
            )
        if isinstance(dimension.partitions, TimeWindow):
            start, end = dimension.partitions
            parts.append(sql.SQL("{0} >= %s AND {0} < %s").format(sql.Identifier(column)))
            params += [start.replace(tzinfo=None), end.replace(tzinfo=None)]
        else:
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
            params.append(list(dimension.partitions))
    return sql.SQL(" AND ").join(parts), params


def declared_types(context: dg.OutputContext) -> dict[str, str]:
    """Column types the asset declares in its ``dagster/column_schema`` metadata."""
    schema = (context.definition_metadata or {}).get(COLUMN_SCHEMA)
    value = getattr(schema, "schema", schema)  # TableSchemaMetadataValue or TableSchema
    columns = getattr(value, "columns", None) or []
    return {c.name: c.type for c in columns}


class PostgresDbClient(DbClient):
    """Connections and partition deletes for :class:`DbIOManager`, through the store."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    @contextmanager
    def connect(self, context: Any, table_slice: TableSlice) -> Iterator[psycopg.Connection]:
        with (
            self.store.errors(f"cannot store {table_slice.schema}.{table_slice.table}"),
            self.store.transaction() as conn,
        ):
            yield conn

    def ensure_schema_exists(
        self, context: Any, table_slice: TableSlice, connection: psycopg.Connection
    ) -> None:
        self.store.lock_table(connection, table_slice.table)
        self.store.ensure_schema(connection)

    def delete_table_slice(
        self, context: Any, table_slice: TableSlice, connection: psycopg.Connection
    ) -> None:
        where, params = slice_filter(table_slice.partition_dimensions)
        self.store.delete_rows(connection, table_slice.table, where or sql.SQL("true"), params)

    def get_select_statement(self, table_slice: TableSlice) -> str:
        """The query shown in the UI (dates as text: it is for people to read)."""
        columns = ", ".join(table_slice.columns) if table_slice.columns else "*"
        query = f"SELECT {columns} FROM {table_slice.schema}.{table_slice.table}"
        conditions = []
        for dimension in table_slice.partition_dimensions or ():
            if isinstance(dimension.partitions, TimeWindow):
                start, end = (t.replace(tzinfo=None).isoformat(" ") for t in dimension.partitions)
                conditions.append(
                    f"{dimension.partition_expr} >= '{start}' AND "
                    f"{dimension.partition_expr} < '{end}'"
                )
            else:
                keys = ", ".join(f"'{k}'" for k in dimension.partitions)
                conditions.append(f"{dimension.partition_expr} IN ({keys})")
        return query + (" WHERE " + " AND ".join(conditions) if conditions else "")


class PostgresPandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Writes a frame with ``COPY`` and reads a slice back as a frame."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def handle_output(
        self,
        context: dg.OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame,
        connection: psycopg.Connection,
    ) -> Mapping[str, Any]:
        types = {**column_types_of(obj), **declared_types(context)}
        table_types = self.store.create_table(connection, table_slice.table, types)
        wanted = {str(c): types[str(c)] for c in obj.columns}
        table_types = self.store.add_columns(connection, table_slice.table, table_types, wanted)
        rows = self.store.copy_rows(connection, table_slice.table, obj, table_types)
        counted = (
            TableMetadataSet(partition_row_count=rows)
            if context.has_partition_key
            else TableMetadataSet(row_count=rows)
        )
        # the storage_kind field of TableMetadataSet is newer than dagster 1.13.0
        return {**counted, "dagster/storage_kind": "postgresql"}

    def load_input(
        self, context: dg.InputContext, table_slice: TableSlice, connection: psycopg.Connection
    ) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        where, params = slice_filter(table_slice.partition_dimensions)
        return self.store.select_frame(
            connection, table_slice.table, where, params, columns=table_slice.columns
        )

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame]


class PostgresDbIOManager(DbIOManager):
    """Refuses an empty frame over a partition that holds rows, unless it was decided."""

    def __init__(self, store: PostgresStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        guard_empty_day(context, obj, lambda table, day: len(self.store.read_partition(table, day)))
        super().handle_output(context, obj)


class PostgresSegmentsIOManager(dg.ConfigurableIOManagerFactory):
    """Asset partitions as rows of ``<schema>.<asset name>`` in PostgreSQL.

    Give the URL as ``dg.EnvVar("SEGMENT_ASSETS_DATABASE_URL")`` so that run configuration
    shows the variable's name, never the password. The store is checked (reachable, the
    privileges to write) when a step starts, before the asset runs.
    """

    database_url: str = Field(
        description=f"libpq URL of the database; pass dg.EnvVar('{DATABASE_URL_ENV}')."
    )
    schema_: str = Field(default=SCHEMA, alias="schema", description="Schema of the tables.")
    connect_timeout: int = Field(
        default=DEFAULT_CONNECT_TIMEOUT, description="Seconds to wait for a connection."
    )

    def store(self) -> PostgresStore:
        return PostgresStore(
            self.database_url, schema=self.schema_, connect_timeout=self.connect_timeout
        )

    def create_io_manager(self, context: dg.InitResourceContext) -> DbIOManager:
        store = self.store()
        store.check()
        return PostgresDbIOManager(
            store,
            type_handlers=[PostgresPandasTypeHandler(store)],
            db_client=PostgresDbClient(store),
            database=store.url.dbname or "",
            schema=self.schema_,
            io_manager_name="PostgresSegmentsIOManager",
            default_load_type=pd.DataFrame,
        )
