"""Column types: the project's names for them (DuckDB's), PostgreSQL's, and pandas'.

Pure functions. A table's columns are written as DuckDB type names everywhere in the project
(``providers/schema.py``, ``drops.py``, the ``dagster/column_schema`` metadata); each store
maps them to its own. Frames read back get the dtypes DuckDB's ``.df()`` gives, so code
reading either store sees the same frame.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from segment_assets.store.base import StoreError

#: DuckDB type name (and its aliases) → PostgreSQL type.
POSTGRES_TYPES: dict[str, str] = {
    "VARCHAR": "text",
    "TEXT": "text",
    "STRING": "text",
    "BIGINT": "bigint",
    "INT8": "bigint",
    "INTEGER": "integer",
    "INT": "integer",
    "INT4": "integer",
    "SMALLINT": "smallint",
    "INT2": "smallint",
    "DOUBLE": "double precision",
    "FLOAT8": "double precision",
    "FLOAT": "real",
    "REAL": "real",
    "FLOAT4": "real",
    "BOOLEAN": "boolean",
    "BOOL": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
    "DATETIME": "timestamp without time zone",
    "TIMESTAMPTZ": "timestamp with time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}

# PostgreSQL type (as format_type names it) → (numpy dtype without NULLs, dtype with NULLs),
# as DuckDB's .df() returns the same column: integers and booleans become pandas' nullable
# types only when a NULL is present; dates and timestamps are datetime64[us].
PANDAS_DTYPES: dict[str, tuple[str, str]] = {
    "bigint": ("int64", "Int64"),
    "integer": ("int32", "Int32"),
    "smallint": ("int16", "Int16"),
    "double precision": ("float64", "float64"),
    "real": ("float32", "float32"),
    "boolean": ("bool", "boolean"),
    "date": ("datetime64[us]", "datetime64[us]"),
    "timestamp without time zone": ("datetime64[us]", "datetime64[us]"),
}


def postgres_type(name: str, column: str = "") -> str:
    """The PostgreSQL type of a DuckDB type name; :class:`StoreError` for one not known."""
    found = POSTGRES_TYPES.get(" ".join(name.upper().split()))
    if found is None:
        raise StoreError(
            f"column {column or '?'} has the type {name!r}, which the store does not know; "
            f"use one of {', '.join(sorted(set(POSTGRES_TYPES)))}"
        )
    return found


def column_types_of(frame: pd.DataFrame) -> dict[str, str]:
    """DuckDB type names for ``frame``'s columns, read from its dtypes (and, for object
    columns, its values: ``datetime.date`` values make a DATE column, anything else
    VARCHAR; a column of NULLs only is VARCHAR)."""
    return {str(name): _type_of(frame[name]) for name in frame.columns}


def _type_of(values: pd.Series) -> str:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _type_of(pd.Series(values.cat.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        size = np.dtype(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype).itemsize
        return {1: "SMALLINT", 2: "SMALLINT", 4: "INTEGER"}.get(size, "BIGINT")
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "TIMESTAMPTZ"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "TIMESTAMP"
    present = values.dropna()
    if len(present) and all(
        isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in present
    ):
        return "DATE"
    return "VARCHAR"


def as_pandas(
    values: list, postgres: str
) -> pd.Series | np.ndarray | pd.api.extensions.ExtensionArray:
    """Values read from PostgreSQL (Python objects, None for NULL) as DuckDB's ``.df()``
    would give the same column."""
    dtypes = PANDAS_DTYPES.get(postgres)
    if dtypes is None:  # text and anything else: Python objects
        return np.array(values, dtype=object) if values else np.array([], dtype=object)
    plain, nullable = dtypes
    has_null = any(v is None for v in values)
    if plain.startswith("datetime64"):
        return (
            pd.Series(pd.to_datetime(values), dtype=plain) if values else pd.Series([], dtype=plain)
        )
    if has_null:
        return pd.array(values, dtype=nullable)
    return np.array(values, dtype=plain)


def python_values(values: pd.Series, postgres: str) -> list:
    """``values`` as the Python objects psycopg writes into a ``postgres`` column (None for
    every missing value: None, NaN, NaT, pd.NA). Vectorised: no pandas call per value."""
    if postgres in ("bigint", "integer", "smallint"):
        return _nulls(pd.array(values, dtype="Int64").tolist())
    if postgres in ("double precision", "real"):
        return _nulls(pd.array(values, dtype="Float64").tolist())
    if postgres == "boolean":
        return _nulls(pd.array(values, dtype="boolean").tolist())
    if postgres == "date":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return _naive_utc(values).to_numpy(dtype="datetime64[D]").astype(object).tolist()
        missing = values.isna().to_numpy()
        return [None if m else _as_date(v) for v, m in zip(values.tolist(), missing, strict=True)]
    if postgres.startswith("timestamp"):
        aware = postgres.endswith("with time zone")
        stamps = pd.Series(pd.to_datetime(values, utc=aware), index=values.index)
        if not aware:
            stamps = _naive_utc(stamps)
        elif stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize("UTC")
        if aware:
            utc = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            plain = utc.to_numpy(dtype="datetime64[us]").astype(object).tolist()
            return [None if v is None else v.replace(tzinfo=dt.UTC) for v in plain]
        return stamps.to_numpy(dtype="datetime64[us]").astype(object).tolist()
    missing = values.isna().to_numpy()
    return [
        None if m else v if isinstance(v, str) else str(v)
        for v, m in zip(values.tolist(), missing, strict=True)
    ]


def _naive_utc(values: pd.Series) -> pd.Series:
    """Datetimes as naive UTC (an aware series is converted to UTC first)."""
    if getattr(values.dtype, "tz", None) is not None:
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def _nulls(values: list) -> list:
    return [None if v is pd.NA else v for v in values]


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):  # pd.Timestamp too
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    return dt.date.fromisoformat(str(value))
