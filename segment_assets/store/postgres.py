"""The PostgreSQL store: the same schema, tables and column types as the DuckDB file, in a
database any number of machines can reach.

* A day is replaced in one transaction (delete, then ``COPY`` of the new rows), under a
  transaction-level advisory lock per table, so two writers of one day cannot both insert.
* One snapshot per provider account at a time, across machines: a session-level advisory lock
  keyed by provider and account (:mod:`segment_assets.store.pg_locks`; one session holds all
  of a process's locks). When the holder dies (SIGKILL, lost pod), PostgreSQL ends its
  session and frees the lock.
* Names are composed with :mod:`psycopg.sql` identifiers; values are always parameters.
* Every error names ``SEGMENT_ASSETS_DATABASE_URL`` and never holds its password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from segment_assets.store.base import (
    DATABASE_URL_ENV,
    DEFAULT_WAIT_SECONDS,
    HISTORY_COLUMNS,
    LOCK_RETRY_SECONDS,
    LOOKBACK_DAYS,
    SCHEMA,
    ColumnTypes,
    StoreBusyError,
    StoreError,
    check_partition_frame,
)
from segment_assets.store.pg_history import milliseconds, read_packed_history
from segment_assets.store.pg_locks import AccountLocks, advisory_key
from segment_assets.store.types import as_pandas, column_types_of, postgres_type, python_values
from segment_assets.store.url import DatabaseUrl, parse_database_url

if TYPE_CHECKING:
    import dagster as dg

APPLICATION_NAME = "segment_assets"
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_READ_CONNECTIONS = 2
SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
)
PARTITION_COLUMN = "snapshot_date"

# Type names psycopg knows for COPY, by the names format_type() gives.
_COPY_TYPES = {
    "text": "text",
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "double precision": "float8",
    "real": "float4",
    "boolean": "bool",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}

# Words of libpq's connection errors → what to fix.
_CONNECT_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("password authentication failed", "no password supplied", "authentication failed"),
        "the user name or password is wrong (percent-encode special characters, e.g. %40 for @)",
    ),
    (("does not exist",), "the database or user named in the URL does not exist"),
    (
        ("ssl", "certificate"),
        "the server's TLS settings and the URL's sslmode (and sslrootcert) do not agree",
    ),
    (
        (
            "connection refused",
            "could not connect",
            "timeout expired",
            "timed out",
            "resolve host",
            "translate host name",
            "no route to host",
            "network is unreachable",
            "could not receive data",
            "server closed the connection",
        ),
        "the server cannot be reached: is it running, and are the host and port right?",
    ),
    (("too many connections", "remaining connection slots"), "the server has no free connection"),
)


class PostgresStore:
    """Snapshots in the PostgreSQL database of ``url`` (``SEGMENT_ASSETS_DATABASE_URL``)."""

    kind: str = "postgres"

    def __init__(
        self,
        url: str,
        schema: str = SCHEMA,
        *,
        environ: Mapping[str, str] | None = None,
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
        read_connections: int = DEFAULT_READ_CONNECTIONS,
        env_var: str = DATABASE_URL_ENV,
    ) -> None:
        self.url: DatabaseUrl = parse_database_url(url, environ)
        self.schema = schema
        self.connect_timeout = connect_timeout
        self.read_connections = max(1, read_connections)
        self.env_var = env_var
        self._account_locks = AccountLocks(self)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url.display!r}, schema={self.schema!r})"

    def describe(self) -> str:
        where = f"{self.url.host or 'localhost'}:{self.url.port or 5432}"
        return f"PostgreSQL database {self.url.dbname or self.url.user or '?'} at {where}"

    # -- connections and errors -------------------------------------------------------------
    def explain(self, exc: BaseException, action: str) -> str:
        """The words of a failure: what failed, libpq's reason (scrubbed), what to fix."""
        reason = " ".join(self.url.scrub(str(exc)).split()) or type(exc).__name__
        hint = ""
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            hint = (
                f"the user {self.url.user or '?'} lacks a privilege on schema {self.schema}: "
                f"the database owner can GRANT USAGE, CREATE ON SCHEMA {self.schema} and "
                f"SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA {self.schema}"
            )
        elif isinstance(exc, psycopg.errors.LockNotAvailable):
            hint = "another session kept a lock on the table for longer than allowed"
        elif isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            lowered = reason.lower()
            hint = next(
                (fix for words, fix in _CONNECT_HINTS if any(w in lowered for w in words)), ""
            )
        hint = f"; {hint}" if hint else ""
        return f"{action}: {reason}{hint} ({self.env_var}={self.url.display})"

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn a psycopg error into a :class:`StoreError` that holds no secret and no
        chained exception (whose text could)."""
        message, error = None, StoreError
        try:
            yield
        except psycopg.Error as exc:
            message = self.explain(exc, action)
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                error = StoreBusyError
        if message is not None:
            raise error(message)

    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        """A new connection (the caller closes it); :class:`StoreError` if it cannot be had."""
        given = self.url.conninfo
        options: dict[str, Any] = {"autocommit": autocommit}
        if "connect_timeout" not in given:
            options["connect_timeout"] = self.connect_timeout
        if "application_name" not in given:
            options["application_name"] = APPLICATION_NAME
        with self.errors(f"cannot connect to PostgreSQL at {self.describe()}"):
            # the server's keepalives: a session whose machine vanished (no FIN) ends within
            # about a minute, and with it its transaction and locks
            own = conninfo_to_dict(given).get("options") or ""
            options["options"] = f"{own} {SERVER_KEEPALIVES}".strip()
            conn = psycopg.connect(given, **options)
        return conn

    @contextmanager
    def transaction(
        self, read_only: bool = False, lock_wait_seconds: float | None = None
    ) -> Iterator[psycopg.Connection]:
        """One transaction on a new connection: committed when the block ends, rolled back
        (keeping the old rows) when it raises."""
        conn = self.connect()
        try:
            if read_only:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
            with conn.transaction():
                if lock_wait_seconds is not None:
                    conn.execute(
                        "SELECT set_config('lock_timeout', %s, true)",
                        [milliseconds(lock_wait_seconds)],
                    )
                yield conn
        finally:
            conn.close()

    # -- checks ---------------------------------------------------------------------------
    def check(self, tables: Sequence[str] = (), write: bool = True) -> None:
        with (
            self.errors(f"cannot use PostgreSQL at {self.describe()}"),
            self.connect(autocommit=True) as conn,
        ):
            problem = self._privilege_problem(conn, tables, write)
        if problem:
            raise StoreError(f"{problem} ({self.env_var}={self.url.display})")

    def _privilege_problem(
        self, conn: psycopg.Connection, tables: Sequence[str], write: bool
    ) -> str | None:
        user, database, can_create_schema, schema_oid = conn.execute(
            "SELECT current_user, current_database(), "
            "has_database_privilege(current_database(), 'CREATE'), "
            "(SELECT oid FROM pg_namespace WHERE nspname = %s)",
            [self.schema],
        ).fetchone()
        if schema_oid is None:
            if write and not can_create_schema:
                return (
                    f"the user {user} may not create schema {self.schema} in database "
                    f"{database}: create it for them (CREATE SCHEMA {self.schema} "
                    f"AUTHORIZATION {user}) or GRANT CREATE ON DATABASE {database} TO {user}"
                )
            return None
        usage, create = conn.execute(
            "SELECT has_schema_privilege(%s::oid, 'USAGE'), "
            "has_schema_privilege(%s::oid, 'CREATE')",
            [schema_oid, schema_oid],
        ).fetchone()
        if not usage:
            return (
                f"the user {user} may not use schema {self.schema}: "
                f"GRANT USAGE ON SCHEMA {self.schema} TO {user}"
            )
        needed = ["SELECT", "INSERT", "DELETE"] if write else ["SELECT"]
        rows = conn.execute(
            "SELECT relname, array(SELECT p FROM unnest(%s::text[]) p "
            "WHERE NOT has_table_privilege(c.oid, p)) FROM pg_class c "
            "WHERE relnamespace = %s::oid AND relkind IN ('r', 'p') ORDER BY relname",
            [needed, schema_oid],
        ).fetchall()
        existing = {name: lacking for name, lacking in rows}
        refused = [name for name, lacking in existing.items() if lacking]
        if refused:
            lacking = [p for p in needed if any(p in existing[name] for name in refused)]
            return (
                f"the user {user} lacks {', '.join(lacking)} on {', '.join(refused)} in schema "
                f"{self.schema}: GRANT {', '.join(needed)} ON ALL TABLES IN SCHEMA "
                f"{self.schema} TO {user}"
            )
        missing = [t for t in tables if t not in existing]
        if write and missing and not create:
            return (
                f"the user {user} may not create tables in schema {self.schema} (needed for "
                f"{', '.join(missing)}): GRANT CREATE ON SCHEMA {self.schema} TO {user}"
            )
        return None

    # -- tables ---------------------------------------------------------------------------
    def _name(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(table))

    def table_types(
        self, conn: psycopg.Connection, tables: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """``{table: {column: PostgreSQL type}}`` of the tables of ``tables`` that exist."""
        rows = conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p') "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum",
            [self.schema, list(tables)],
        ).fetchall()
        found: dict[str, dict[str, str]] = {}
        for table, column, kind in rows:
            found.setdefault(table, {})[column] = kind
        return found

    def existing_tables(self, tables: Sequence[str]) -> list[str]:
        with (
            self.errors("cannot list the tables"),
            self.transaction(read_only=True) as conn,
        ):
            found = self.table_types(conn, tables)
        return [t for t in tables if t in found]

    def partition_counts(self, table: str) -> dict[dt.date, int]:
        with (
            self.errors(f"cannot count the rows of {self.schema}.{table}"),
            self.transaction(read_only=True) as conn,
        ):
            if not self.table_types(conn, [table]):
                return {}
            rows = conn.execute(
                sql.SQL("SELECT {0}, count(*) FROM {1} WHERE {0} IS NOT NULL GROUP BY 1").format(
                    sql.Identifier(PARTITION_COLUMN), self._name(table)
                )
            ).fetchall()
        return dict(rows)

    def latest_stored_counts(
        self,
        table: str,
        day: dt.date,
        lookback_days: int = LOOKBACK_DAYS,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> dict[str, tuple[dt.date, int]]:
        query = sql.SQL(
            "SELECT DISTINCT ON (account) account, {0}, n FROM ("
            "SELECT account, {0}, count(*) AS n FROM {1} WHERE {0} BETWEEN %s AND %s "
            "GROUP BY account, {0}) AS days ORDER BY account, {0} DESC"
        ).format(sql.Identifier(PARTITION_COLUMN), self._name(table))
        since = day - dt.timedelta(days=lookback_days)
        with (
            self.errors(f"cannot read the latest stored days of {self.schema}.{table}"),
            self.transaction(read_only=True, lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            if not self.table_types(conn, [table]):
                return {}
            rows = conn.execute(query, [since, day]).fetchall()
        return {str(account): (stored, int(count)) for account, stored, count in rows}

    def lock_table(self, conn: psycopg.Connection, table: str) -> None:
        """Serialise the writers of ``table`` until the transaction ends (two replacements
        of one day would otherwise both insert)."""
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s)", [advisory_key("table", self.schema, table)]
        )

    def ensure_schema(self, conn: psycopg.Connection) -> None:
        exists = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema]
        ).fetchone()
        if not exists:  # CREATE SCHEMA IF NOT EXISTS would need CREATE on the database
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key("schema", self.schema)])
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def create_table(
        self, conn: psycopg.Connection, table: str, column_types: ColumnTypes
    ) -> dict[str, str]:
        """Create ``table`` (DuckDB type names mapped to PostgreSQL's) unless it exists, with
        an index on ``snapshot_date``; returns the table's columns and types."""
        existing = self.table_types(conn, [table]).get(table)
        if existing:
            return existing
        if not column_types:
            raise StoreError(f"cannot create {self.schema}.{table} without columns")
        self.ensure_schema(conn)
        wanted = {name: postgres_type(kind, name) for name, kind in column_types.items()}
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
            for name, kind in wanted.items()
        )
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(self._name(table), columns))
        if PARTITION_COLUMN in wanted:
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(f"{table}_{PARTITION_COLUMN}"[:63]),
                    self._name(table),
                    sql.Identifier(PARTITION_COLUMN),
                )
            )
        return wanted

    def add_columns(
        self,
        conn: psycopg.Connection,
        table: str,
        types: dict[str, str],
        wanted: ColumnTypes,
    ) -> dict[str, str]:
        """Give ``table`` (whose columns are ``types``) the columns of ``wanted`` (DuckDB type
        names) it lacks, so a table made before a column existed gains it; returns the
        table's columns and types."""
        missing = {name: kind for name, kind in wanted.items() if name not in types}
        for name, kind in missing.items():
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    self._name(table), sql.Identifier(name), sql.SQL(postgres_type(kind, name))
                )
            )
        return {**types, **{n: postgres_type(k, n) for n, k in missing.items()}}

    def ensure_table(self, table: str, column_types: ColumnTypes) -> None:
        with (
            self.errors(f"cannot create {self.schema}.{table}"),
            self.transaction() as conn,
        ):
            self.lock_table(conn, table)
            self.create_table(conn, table, column_types)

    # -- writes ---------------------------------------------------------------------------
    def delete_rows(
        self,
        conn: psycopg.Connection,
        table: str,
        where: sql.Composable,
        params: Sequence[Any],
    ) -> None:
        if self.table_types(conn, [table]):
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(self._name(table), where), params
            )

    def copy_rows(
        self, conn: psycopg.Connection, table: str, frame: pd.DataFrame, types: Mapping[str, str]
    ) -> int:
        """``COPY`` the rows of ``frame`` into ``table`` (whose columns are ``types``)."""
        columns = [str(c) for c in frame.columns]
        unknown = [c for c in columns if c not in types]
        if unknown:
            raise StoreError(
                f"{self.schema}.{table} has no column {', '.join(unknown)}; it has "
                f"{', '.join(types)}. Add the column to the table or leave it out of the rows"
            )
        if not len(frame):
            return 0
        values = [python_values(frame[c], types[c]) for c in columns]
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self._name(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with conn.cursor().copy(statement) as copy:
            copy.set_types([_COPY_TYPES.get(types[c], "text") for c in columns])
            for row in zip(*values, strict=True):
                copy.write_row(row)
        return len(frame)

    def write_partition(
        self,
        table: str,
        day: dt.date,
        frame: pd.DataFrame,
        column_types: ColumnTypes | None = None,
    ) -> int:
        check_partition_frame(table, day, frame)
        with (
            self.errors(f"cannot write {self.schema}.{table} for {day}"),
            self.transaction() as conn,
        ):
            self.lock_table(conn, table)
            types = self.create_table(conn, table, column_types or column_types_of(frame))
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                    self._name(table), sql.Identifier(PARTITION_COLUMN)
                ),
                [day],
            )
            written = self.copy_rows(conn, table, frame, types)
        return written

    # -- reads ----------------------------------------------------------------------------
    def select_frame(
        self,
        conn: psycopg.Connection,
        table: str,
        where: sql.Composable | None = None,
        params: Sequence[Any] = (),
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``table`` as a frame with the dtypes DuckDB's ``.df()`` gives; an empty
        frame without columns when the table does not exist."""
        types = self.table_types(conn, [table]).get(table)
        if not types:
            return pd.DataFrame()
        names = list(columns) if columns else list(types)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), self._name(table)
        )
        if where is not None:
            query = sql.SQL("{} WHERE {}").format(query, where)
        rows = conn.execute(query, params, binary=True).fetchall()
        values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pd.DataFrame(
            {name: as_pandas(list(v), types[name]) for name, v in zip(names, values, strict=True)}
        )

    def read_partition(
        self, table: str, day: dt.date, lock_wait_seconds: float = LOCK_RETRY_SECONDS
    ) -> pd.DataFrame:
        where = sql.SQL("{} = %s").format(sql.Identifier(PARTITION_COLUMN))
        with (
            self.errors(f"cannot read {self.schema}.{table} for {day}"),
            self.transaction(read_only=True, lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            frame = self.select_frame(conn, table, where, [day])
        return frame

    def read_history(
        self,
        tables: Sequence[str],
        start: dt.date,
        end: dt.date,
        columns: Sequence[str] = HISTORY_COLUMNS,
        extra_columns: dict[str, Sequence[str]] | None = None,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> pd.DataFrame:
        with self.errors(f"cannot read the history of {', '.join(tables)}"):
            frame = read_packed_history(
                self, tables, start, end, columns, extra_columns or {}, lock_wait_seconds
            )
        return frame

    # -- small tables (acknowledgements, incidents) --------------------------------------
    def append_rows(
        self,
        table: str,
        frame: pd.DataFrame,
        column_types: ColumnTypes,
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        with (
            self.errors(f"cannot add rows to {self.schema}.{table}"),
            self.transaction(lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            self.lock_table(conn, table)
            types = self.create_table(conn, table, column_types)
            types = self.add_columns(conn, table, types, column_types)
            return self.copy_rows(conn, table, frame, types)

    def read_rows(self, table: str, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> pd.DataFrame:
        with (
            self.errors(f"cannot read {self.schema}.{table}"),
            self.transaction(read_only=True, lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            return self.select_frame(conn, table)

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
        query = sql.SQL("UPDATE {} SET {} WHERE {} = ANY(%s)").format(
            self._name(table),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in values),
            sql.Identifier(key_column),
        )
        params = [*values.values(), list(keys)]
        return self._change_rows(table, "update", query, params, lock_wait_seconds)

    def remove_rows(
        self,
        table: str,
        key_column: str,
        keys: Sequence[Any],
        lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    ) -> int:
        if not keys:
            return 0
        query = sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
            self._name(table), sql.Identifier(key_column)
        )
        return self._change_rows(table, "delete from", query, [list(keys)], lock_wait_seconds)

    def _change_rows(
        self,
        table: str,
        action: str,
        query: sql.Composed,
        params: list[Any],
        lock_wait_seconds: float,
    ) -> int:
        """Run one UPDATE or DELETE of a small table, holding its writers' lock; the rows it
        changed (0 when the table does not exist)."""
        with (
            self.errors(f"cannot {action} {self.schema}.{table}"),
            self.transaction(lock_wait_seconds=lock_wait_seconds) as conn,
        ):
            if not self.table_types(conn, [table]):
                return 0
            self.lock_table(conn, table)
            return conn.execute(query, params).rowcount

    # -- account locks --------------------------------------------------------------------
    @contextmanager
    def lock_account(
        self,
        provider: str,
        account: str,
        label: str,
        log: Any = None,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> Iterator[None]:
        key = advisory_key("account", provider, account)
        with self._account_locks.hold(
            key, label, log, wait_seconds, f"PostgreSQL advisory lock {key}, see pg_locks"
        ):
            yield

    # -- Dagster --------------------------------------------------------------------------
    def io_manager(self) -> dg.ConfigurableIOManagerFactory:
        import dagster as dg

        from segment_assets.store.io_manager import PostgresSegmentsIOManager

        return PostgresSegmentsIOManager(database_url=dg.EnvVar(self.env_var), schema=self.schema)
