"""The normalised snapshot table: its columns, types and descriptions, in one place.

Every provider client builds its frame with :func:`to_frame`, the assets publish
:func:`table_schema` to the UI, and storage reads the same names back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    description: str


COMMON_COLUMNS: tuple[Column, ...] = (
    Column("snapshot_date", "DATE", "The day this snapshot describes (the partition)."),
    Column("provider", "VARCHAR", "actionhub, usercom or onesignal."),
    Column(
        "account",
        "VARCHAR",
        "The provider account: ActionHub program id, User.com app host, OneSignal app id.",
    ),
    Column("segment_id", "VARCHAR", "The segment's id, stable across days within an account."),
    Column("segment_name", "VARCHAR", "The segment's name as the provider shows it."),
    Column(
        "user_count",
        "BIGINT",
        "Users in the segment; NULL when the provider cannot count the segment.",
    ),
    Column("fetched_at", "TIMESTAMP", "When the count was read from the provider (UTC)."),
)

PROVIDER_COLUMNS: dict[str, tuple[Column, ...]] = {
    "actionhub": (
        Column("segment_type", "VARCHAR", "growth, base or discovery."),
        Column("segment_basis", "VARCHAR", "labels or assets: what the segment is broken out by."),
        Column("segment_basis_id", "VARCHAR", "The label or asset id."),
        Column("action_type", "VARCHAR", "The recommended event type."),
        Column("strength", "DOUBLE", "Average user weight in the segment."),
        Column("min_weight", "DOUBLE", "The weight cutoff used for the segment."),
    ),
    "usercom": (
        Column("description", "VARCHAR", "The segment's description."),
        Column("too_heavy", "BOOLEAN", "True when User.com could not count it reliably."),
        Column("update_interval", "INTEGER", "Minutes between User.com recounts."),
        Column("last_counted", "TIMESTAMP", "When User.com last recounted (UTC)."),
        Column("updated_at", "TIMESTAMP", "When the segment last changed (UTC)."),
    ),
    "onesignal": (
        Column("description", "VARCHAR", "The segment's description."),
        Column("source", "VARCHAR", "default, custom or quickstart."),
        Column("created_at", "TIMESTAMP", "When the segment was created (UTC)."),
        Column("filters", "VARCHAR", "The segment's filters as JSON text."),
        Column(
            "countable",
            "BOOLEAN",
            "False for user-based segments, whose count the API cannot read.",
        ),
    ),
}

PROVIDERS: tuple[str, ...] = tuple(PROVIDER_COLUMNS)

_PANDAS_TYPES = {
    "VARCHAR": "object",
    "BIGINT": "Int64",
    "INTEGER": "Int32",
    "DOUBLE": "Float64",
    "BOOLEAN": "boolean",
}


def columns(provider: str) -> tuple[Column, ...]:
    """All columns of ``provider``'s table, in table order."""
    return COMMON_COLUMNS + PROVIDER_COLUMNS[provider]


def column_names(provider: str) -> list[str]:
    return [c.name for c in columns(provider)]


def utc_timestamps(values: Iterable[Any]) -> pd.Series:
    """ISO strings, unix seconds or datetimes → naive UTC ``datetime64[us]`` (NaT if unset)."""
    series = pd.Series(list(values), dtype="object")
    numeric = series.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool))
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us, UTC]")
    if numeric.any():
        out[numeric] = pd.to_datetime(series[numeric].astype("float64"), unit="s", utc=True)
    text = ~numeric & series.notna()
    if text.any():
        out[text] = pd.to_datetime(series[text], utc=True, errors="coerce", format="ISO8601")
    return out.dt.tz_localize(None).astype("datetime64[us]")


def to_frame(
    provider: str,
    rows: list[dict[str, Any]],
    *,
    account: str,
    snapshot_date: dt.date,
    fetched_at: dt.datetime,
) -> pd.DataFrame:
    """Build the normalised frame once from row dicts (keys: the provider's columns)."""
    cols = columns(provider)
    frame = pd.DataFrame.from_records(rows, columns=[c.name for c in cols])
    frame["snapshot_date"] = snapshot_date
    frame["provider"] = provider
    frame["account"] = account
    stamp = pd.Timestamp(fetched_at)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    frame["fetched_at"] = stamp
    return coerce(provider, frame)


def coerce(provider: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly ``provider``'s columns, in table order and types (a frame
    built by :func:`to_frame` and one read back from the table concatenate cleanly)."""
    cols = columns(provider)
    frame = frame.reindex(columns=[c.name for c in cols]).reset_index(drop=True)
    for col in cols:
        values = frame[col.name]
        if col.sql_type == "TIMESTAMP" and pd.api.types.is_datetime64_any_dtype(values):
            if getattr(values.dtype, "tz", None) is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
            frame[col.name] = values.astype("datetime64[us]")
        elif col.sql_type == "TIMESTAMP":
            frame[col.name] = utc_timestamps(values)
        elif col.sql_type == "DATE":
            frame[col.name] = frame[col.name].map(_as_date).astype("object")
        else:
            frame[col.name] = frame[col.name].astype(_PANDAS_TYPES[col.sql_type])
    return frame


def _as_date(value: Any) -> Any:
    return value.date() if isinstance(value, dt.datetime) else value  # pd.Timestamp too


def drop_duplicate_segments(frame: pd.DataFrame, log: Any = None) -> pd.DataFrame:
    """Keep one row per segment_id (the first read) and say how many repeats were dropped."""
    repeated = frame["segment_id"].duplicated(keep="first")
    if repeated.any():
        if log is not None:
            sample = ", ".join(frame.loc[repeated, "segment_id"].astype(str).head(5))
            log.warning(
                f"{int(repeated.sum())} segment(s) were listed twice by the provider and "
                f"kept once: {sample}"
            )
        frame = frame.loc[~repeated].reset_index(drop=True)
    return frame
