"""The daily partitions and a snapshot run's config: how old a partition may be, and how far
an account may shrink before its snapshot is refused.

Partition ``D`` holds the snapshot taken once day ``D`` (UTC) has ended. Providers only
report the current count, so materialising a partition long after its day would store
today's counts under an old date: such partitions are refused unless the run config says
``allow_late_partition: true``.
"""

import datetime as dt
import os

import dagster as dg
from pydantic import Field

from segment_assets.snapshot import ShrinkGuard

DEFAULT_START_DATE = "2025-01-01"
START_DATE_ENV = "SEGMENT_ASSETS_START_DATE"


def partitions_start(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    raw = (env.get(START_DATE_ENV) or DEFAULT_START_DATE).strip()
    try:
        dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{START_DATE_ENV} must be a date like 2025-01-01, got {raw!r}") from None
    return raw


DAILY = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")


class SnapshotConfig(dg.Config):
    """Run config of a provider snapshot."""

    max_partition_age_hours: float = Field(
        default=36.0,
        description="Refuse a partition whose day ended longer ago than this (providers only "
        "report the current count).",
    )
    allow_late_partition: bool = Field(
        default=False,
        description="Store today's counts under an older partition anyway.",
    )
    refetch_all: bool = Field(
        default=False,
        description="Fetch every account again even when the stored day lacks only some "
        "(by default a re-run fetches just the accounts an earlier run failed for).",
    )
    accept_shrunk_accounts: bool = Field(
        default=False,
        description="Store an account's snapshot even when it lists far fewer segments than "
        "its latest stored day (see shrink_min_segments and shrink_max_lost_share): for a "
        "real mass deletion. Without it such an account fails and keeps its stored rows.",
    )
    shrink_min_segments: int = Field(
        default=10,
        description="An account whose latest stored day had at least this many segments fails "
        "when more than shrink_max_lost_share of them are gone (one that lists none fails "
        "whatever it had).",
    )
    shrink_max_lost_share: float = Field(
        default=0.5,
        description="The share of an account's segments (0 to 1) that may be gone from one "
        "snapshot to the next before the snapshot is refused as shrunk.",
    )

    def shrink_guard(self) -> ShrinkGuard:
        return ShrinkGuard(
            min_segments=self.shrink_min_segments,
            max_lost_share=self.shrink_max_lost_share,
            accept=self.accept_shrunk_accounts,
        )


class LatePartitionError(ValueError):
    """A partition too old to snapshot honestly."""


def check_partition_age(
    day: dt.date, now: dt.datetime, config: SnapshotConfig, log: object = None
) -> None:
    """Raise unless ``day`` ended (UTC) within the allowed age, or lateness is allowed."""
    if config.max_partition_age_hours < 0:
        raise ValueError(
            f"max_partition_age_hours must be zero or more, got {config.max_partition_age_hours}"
        )
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    age_hours = (now - day_end).total_seconds() / 3600
    if age_hours < 0:
        raise LatePartitionError(
            f"partition {day} has not ended yet (ends {day_end:%Y-%m-%d %H:%M} UTC); "
            "its snapshot is taken once the day is over"
        )
    if age_hours > config.max_partition_age_hours:
        message = (
            f"partition {day} ended {age_hours:,.0f} h ago, more than max_partition_age_hours="
            f"{config.max_partition_age_hours:g}. Providers only report today's counts, so "
            f"this run would store today's numbers under {day}"
        )
        if not config.allow_late_partition:
            raise LatePartitionError(
                message + ". Materialise recent partitions only, or set "
                "allow_late_partition: true in the run config to store today's counts anyway."
            )
        if log is not None:
            log.warning(message + " (allowed by allow_late_partition)")
