"""The normalised snapshot table: its columns, types and descriptions, in one place.

A provider's table is the shared columns, then the provider's own (from its entry in the
registry), then ``problem``. Every provider client builds its frame with :func:`to_frame`,
the assets publish the columns to the UI, and storage reads the same names back.

:func:`to_frame` is also where every provider's records are judged, by one rule written
once (with each provider's count rule from the registry): a count the provider must send
and did not is a :class:`RequiredFieldError` for the account; a count that cannot be
trusted (negative, not an integer) is stored as NULL, text that cannot be stored (a
lone UTF-16 surrogate) is repaired, a flag that is not true or false and a definition
time that cannot be believed (:mod:`~segment_assets.providers.times`) are stored as NULL,
each noted in the row's ``problem`` column, so one bad record never costs the others their
day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from segment_assets.providers import registry
from segment_assets.providers.columns import DEFINITION_COLUMN, PROBLEM_COLUMN, Column, CountRule
from segment_assets.providers.shape import has_lone_surrogate, judge_count, repair_text
from segment_assets.providers.times import judge_definition_times, shown, utc_timestamps

COMMON_COLUMNS: tuple[Column, ...] = (
    Column("snapshot_date", "DATE", "The day this snapshot describes (the partition)."),
    Column("provider", "VARCHAR", f"{registry.NAMES_IN_WORDS}."),
    Column(
        "account",
        "VARCHAR",
        "The provider account: "
        + ", ".join(f"{p.label} {p.account_words}" for p in registry.PROVIDERS)
        + ".",
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


class RequiredFieldError(RuntimeError):
    """A 200 answer lacked a count the provider must send; the account is not stored."""

    def __init__(self, provider: str, account: str, field: str, segments: list[str]) -> None:
        self.provider, self.account, self.field, self.segments = provider, account, field, segments
        more = f" (and {len(segments) - 1} more segment(s))" if len(segments) > 1 else ""
        super().__init__(
            f"{registry.label(provider)} account {account}: segment {segments[0]}{more} "
            f"came without {field!r} (missing or null) although the provider can count it; "
            f"{field} is required, so nothing of this account was stored for the day "
            "(its stored rows are kept). Re-run the partition once the provider sends counts."
        )


_PANDAS_TYPES = {
    "VARCHAR": "object",
    "BIGINT": "Int64",
    "INTEGER": "Int32",
    "DOUBLE": "Float64",
    "BOOLEAN": "boolean",
}


def columns(provider: str) -> tuple[Column, ...]:
    """All columns of ``provider``'s table, in table order: the shared ones, the
    provider's own, its definition time when it says one, ``problem`` last (a table made
    before a column existed gains it at the end, see storage)."""
    spec = registry.get(provider)
    definition = (DEFINITION_COLUMN,) if spec.definition is not None else ()
    return (*COMMON_COLUMNS, *spec.columns, *definition, PROBLEM_COLUMN)


def column_names(provider: str) -> list[str]:
    return [c.name for c in columns(provider)]


def to_frame(
    provider: str,
    rows: list[dict[str, Any]],
    *,
    account: str,
    snapshot_date: dt.date,
    fetched_at: dt.datetime,
) -> pd.DataFrame:
    """Build the normalised frame once from row dicts (keys: the provider's columns, with
    ``user_count`` and ``definition_updated_at`` as the provider sent them), judging every
    record (see module doc).

    Raises :class:`RequiredFieldError` when a segment the provider can count has no count.
    """
    cols = columns(provider)
    rows = judge_records(provider, rows, account)
    frame = pd.DataFrame.from_records(rows, columns=[c.name for c in cols])
    frame["snapshot_date"] = snapshot_date
    frame["provider"] = provider
    frame["account"] = account
    stamp = pd.Timestamp(fetched_at)
    stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    frame["fetched_at"] = stamp
    rule = registry.get(provider).definition
    if rule is not None:
        frame = judge_definition_times(frame, rule, stamp)
    return coerce(provider, frame)


def judge_records(provider: str, rows: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """``rows`` with counts judged and text repaired; a row with a problem says it in
    ``problem`` (in the provider's words: ``subscriber_count -5 is negative``)."""
    spec = registry.get(provider)
    rule = spec.count
    text = [c.name for c in columns(provider) if c.sql_type == "VARCHAR" and c.name != "problem"]
    flags = [c.name for c in spec.columns if c.sql_type == "BOOLEAN"]
    missing: list[str] = []
    judged = []
    for row in rows:
        notes = [row["problem"]] if row.get("problem") else []
        count, why = judge_count(row.get("user_count"))
        if why is not None:
            notes.append(f"{rule.field} {why}; stored as NULL")
        elif count is None and not _uncountable(row, rule):
            missing.append(f"{row.get('segment_id')} ({row.get('segment_name')!r})")
        repaired = [name for name in text if has_lone_surrogate(row.get(name))]
        if repaired:
            notes.append(
                f"{', '.join(repaired)} held text that cannot be stored (a lone UTF-16 "
                "surrogate); replaced with U+FFFD"
            )
        unflagged = [n for n in flags if row.get(n) is not None and not isinstance(row[n], bool)]
        notes += [f"{n} {shown(row[n])} is not true or false; stored as NULL" for n in unflagged]
        if notes or count is not row.get("user_count"):
            row = {**row, "user_count": count, "problem": "; ".join(notes) or None}
            row.update({name: repair_text(row[name]) for name in repaired})
            row.update(dict.fromkeys(unflagged))
        judged.append(row)
    if missing:
        raise RequiredFieldError(provider, account, rule.field, missing)
    return judged


def _uncountable(row: dict[str, Any], rule: CountRule) -> bool:
    if rule.uncountable_when is None:
        return False
    return row.get(rule.uncountable_when) is rule.uncountable_value


def problem_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a provider frame whose ``problem`` is set."""
    if "problem" not in frame:
        return frame.iloc[0:0]
    return frame.loc[frame["problem"].notna()]


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
