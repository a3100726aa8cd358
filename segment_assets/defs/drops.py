"""The drops of one day, read from the store: the one place the check, the ``segment_drops``
asset and the sensor get them from, so all three always agree.

Each read is one :meth:`~segment_assets.store.SegmentStore.read_history` of the
``HISTORY_DAYS_NEEDED`` days the detector uses, over all the tables asked for (and one read
of the small table of acknowledgements and mutes, :mod:`segment_assets.acks`); the sensor
judges the partitions of one day across the provider tables with a single read and a
single detection (:func:`flag_drops` of those tables, split by :func:`by_table`). How the
check and ``segment_drops`` show them is :mod:`~segment_assets.defs.drops_shown`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from segment_assets.acks import acknowledged_on, blank_acknowledged, muted, read_acks
from segment_assets.acks.report import acknowledged_for
from segment_assets.config.detection import (
    DetectionSettings,
    SegmentRule,
    detection_settings_from_env,
)
from segment_assets.config.segment_settings import resolve_segments
from segment_assets.detection import history_start
from segment_assets.detection.causes import (
    CAUSE_COLUMN,
    DEFINITION_CHANGE_DAYS,
    DEFINITION_TIME,
    definition_changed_on,
)
from segment_assets.detection.configured import find_configured_drops
from segment_assets.detection.incidents import scope_drops
from segment_assets.detection.recovery import empty_recovery, judge_recovery
from segment_assets.providers import registry, schema
from segment_assets.store import SegmentStore
from segment_assets.store.base import LOCK_RETRY_SECONDS

PROVIDER_TABLES: tuple[str, ...] = registry.TABLES
#: The provider whose rows each provider table holds (its ``provider`` column).
TABLE_PROVIDERS: dict[str, str] = {p.table: p.name for p in registry.PROVIDERS}
DROPS_TABLE = "segment_drops"
# the columns beyond the count the detector reads, per table (User.com's count is a cache)
DETECTION_EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    p.table: p.history_columns for p in registry.PROVIDERS if p.history_columns
}
# and what the causes of a drop are read from, per table (providers that say a time)
CAUSE_EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    p.table: (DEFINITION_TIME,) for p in registry.PROVIDERS if p.definition is not None
}
SEGMENT_KEY = ["provider", "account", "segment_id"]

DROPS_COLUMNS: tuple[schema.Column, ...] = (
    schema.Column("snapshot_date", "DATE", "The day the drop was found on (the partition)."),
    schema.Column("provider", "VARCHAR", f"{registry.NAMES_IN_WORDS}."),
    schema.Column("account", "VARCHAR", "The provider account, as in the provider tables."),
    schema.Column("segment_id", "VARCHAR", "The segment's id."),
    schema.Column("segment_name", "VARCHAR", "The segment's name."),
    schema.Column("user_count", "BIGINT", "The count on that day; NULL when it vanished."),
    schema.Column("expected", "DOUBLE", "The count expected from the segment's history."),
    schema.Column("drop_pct", "DOUBLE", "Percent below expected (NULL when it vanished)."),
    schema.Column("severity", "VARCHAR", "ERROR or WARN."),
    schema.Column("reason", "VARCHAR", "The drop in words; starts with 'vanished' for those."),
    schema.Column(
        "scope",
        "VARCHAR",
        "'account' when most of the account's segments fell (or vanished) that day, an "
        "account-wide incident; else 'segment'.",
    ),
    schema.Column(
        "muted",
        "BOOLEAN",
        "A mute held: judged and shown, but no alert was sent that day (one follows if the "
        "segment is still down after the mute ends).",
    ),
    schema.Column(
        CAUSE_COLUMN,
        "DATE",
        "The day the segment's definition last changed, when that was at most "
        f"definition_change_days ({DEFINITION_CHANGE_DAYS}) days before the drop (look at "
        "the filter first); else NULL.",
    ),
)
DROPS_COLUMN_NAMES: list[str] = [c.name for c in DROPS_COLUMNS]


@dataclass(frozen=True)
class DayDrops:
    """What :func:`flag_drops` found: the drops, how many provider accounts the history it
    read holds (a table of drops names the account when there is more than one, even if
    only one of them dropped), how many of the day's segments each segment rule of their
    accounts matched, and the acknowledgements whose days it left out."""

    drops: pd.DataFrame
    accounts: int
    rules_matched: Mapping[SegmentRule, int] = field(default_factory=dict)
    #: :func:`~segment_assets.detection.recovery.judge_recovery` of the segments watched
    back: pd.DataFrame = field(default_factory=empty_recovery)
    acknowledged: pd.DataFrame = field(default_factory=pd.DataFrame)


def flag_drops(
    store: SegmentStore,
    tables: Sequence[str],
    day: dt.date,
    settings: DetectionSettings | None = None,
    lock_wait_seconds: float = LOCK_RETRY_SECONDS,
    watch: pd.DataFrame | None = None,
) -> DayDrops:
    """The segments of ``tables`` in ``store`` that newly dropped on ``day``, in one read,
    each judged with the thresholds ``settings`` give it (read from the accounts file now
    when not given); with ``watch`` (``provider, account, segment_id``: segments with an
    open incident), also whether those are back (``back``, with ``muted``: whether a mute
    holds for the segment on ``day``).

    The drops have the columns of :func:`segment_assets.detection.find_drops`, plus
    ``segment_name``, ``before``: the segment's last known count before ``day`` (NA if
    none), ``scope`` and ``account_segments`` (see
    :func:`segment_assets.detection.incidents.mark_scope`), ``muted`` and
    ``definition_changed_on``: the day the segment's definition changed, when at most its
    account's ``definition_change_days`` before ``day`` (else None). Acknowledged days
    leave the history first (and a segment acknowledged on ``day`` is not judged, nor
    reported vanished); a drop a mute holds on ``day`` is kept, with ``muted`` True.
    """
    if settings is None:
        settings = detection_settings_from_env()
    history = store.read_history(
        tables,
        start=history_start(day),
        end=day,
        extra_columns={t: extra_columns(t) for t in tables if extra_columns(t)},
        lock_wait_seconds=lock_wait_seconds,
    )
    acks = read_acks(store, lock_wait_seconds=lock_wait_seconds)
    history = blank_acknowledged(history, acks)
    providers = [TABLE_PROVIDERS[t] for t in tables]
    drops, matched = find_configured_drops(history, day, settings, providers)
    drops = drops[~acknowledged_on(drops, acks, day)].reset_index(drop=True)
    drops = scope_drops(drops, history, day, rule_of=settings.account)  # account-wide
    if "segment_name" not in drops:
        drops["segment_name"] = pd.Series(dtype=object)
    change_days = [
        settings.account(str(p), str(a)).definition_change_days
        for p, a in zip(drops["provider"], drops["account"], strict=True)
    ]
    drops[CAUSE_COLUMN] = definition_changed_on(history, drops, change_days)
    out = drops.merge(_last_counts_before(history, drops, day), on=SEGMENT_KEY, how="left")
    out["before"] = out["before"].astype("Int64")
    out["muted"] = muted(out, acks, day).astype(bool)
    accounts = int(history[["provider", "account"]].drop_duplicates().shape[0])
    back = _recovery(history, day, watch, settings) if watch is not None else empty_recovery()
    back["muted"] = muted(back, acks, day).astype(bool)
    acknowledged = acknowledged_for(acks, providers, history_start(day), day)
    return DayDrops(out, accounts, matched, back, acknowledged)


def _recovery(
    history: pd.DataFrame, day: dt.date, watch: pd.DataFrame, settings: DetectionSettings
) -> pd.DataFrame:
    """:func:`judge_recovery` of the ``watch`` segments, each with its own thresholds."""
    if watch.empty:
        return judge_recovery(history, day, watch)
    codes, groups = resolve_segments(settings, watch).thresholds()
    parts = [
        judge_recovery(history, day, watch[codes == i], th)
        for i, th in enumerate(groups)
        if (codes == i).any()
    ]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def extra_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` a history read for :func:`flag_drops` adds to the count."""
    return (*DETECTION_EXTRA_COLUMNS.get(table, ()), *CAUSE_EXTRA_COLUMNS.get(table, ()))


def by_table(drops: pd.DataFrame, tables: Sequence[str]) -> dict[str, pd.DataFrame]:
    """``{table: its rows}`` of a frame of several provider tables' segments (by
    ``provider``), for every table of ``tables`` (an empty frame, with the same columns, for
    a table without rows).

    The detector judges each segment against its own history and each provider account on
    its own, so the drops :func:`flag_drops` finds over several tables, split per table, are
    exactly what it finds for each table alone."""
    return {
        table: drops[drops["provider"] == TABLE_PROVIDERS[table]].reset_index(drop=True)
        for table in tables
    }


def _last_counts_before(history: pd.DataFrame, drops: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """``SEGMENT_KEY`` and ``before`` of the segments in ``drops``: the last non-NULL count of
    ``history`` before ``day`` (segments without one are left out).

    Only the rows of the dropped segments are looked at (usually a handful of segments out
    of thousands), so this costs next to nothing next to the detection.
    """
    columns = [*SEGMENT_KEY, "snapshot_date", "user_count"]
    if drops.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SEGMENT_KEY}).assign(
            before=pd.Series(dtype="Int64")
        )
    candidates = history["segment_id"].isin(drops["segment_id"].unique())
    rows = history.loc[candidates.to_numpy(), columns].astype(
        {c: object for c in [*SEGMENT_KEY, "snapshot_date"]}
    )
    rows = rows.merge(drops[SEGMENT_KEY].drop_duplicates(), on=SEGMENT_KEY)
    earlier = rows[(rows["snapshot_date"] < day) & rows["user_count"].notna()]
    return (
        earlier.sort_values("snapshot_date", kind="stable")
        .groupby(SEGMENT_KEY, sort=False)
        .tail(1)
        .drop(columns="snapshot_date")
        .rename(columns={"user_count": "before"})
    )


def to_table(drops: pd.DataFrame) -> pd.DataFrame:
    """The rows stored in ``segments.segment_drops``: its columns, in table order and types."""
    out = drops.reindex(columns=DROPS_COLUMN_NAMES)
    out["snapshot_date"] = out["snapshot_date"].astype(object)
    out["user_count"] = out["user_count"].astype("Int64")
    for name in ("expected", "drop_pct"):
        out[name] = out[name].astype("float64")
    out["muted"] = out["muted"].fillna(False).astype(bool)
    out[CAUSE_COLUMN] = out[CAUSE_COLUMN].astype(object).where(out[CAUSE_COLUMN].notna(), None)
    return out.reset_index(drop=True)


def ensure_drops_table(store: SegmentStore) -> None:
    """Create ``segments.segment_drops`` with its documented types if it does not exist.

    The IO manager writes no table for a day without drops; creating it up front lets teams
    query their alert history from the first run on.
    """
    store.ensure_table(DROPS_TABLE, {c.name: c.sql_type for c in DROPS_COLUMNS})
