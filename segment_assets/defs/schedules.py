"""The daily job and its schedule."""

from __future__ import annotations

import dagster as dg

from segment_assets.defs.assets import PROVIDER_ASSETS, segment_drops

SNAPSHOT_HOUR_UTC = 0
SNAPSHOT_MINUTE_UTC = 20

daily_segment_snapshot = dg.define_asset_job(
    name="daily_segment_snapshot",
    selection=dg.AssetSelection.assets(*PROVIDER_ASSETS, segment_drops),
    description=(
        "Snapshot every segment of every provider for one UTC day (the partition), "
        "after that day has ended; check each snapshot for drops, then store the day's drops "
        "in segment_drops."
    ),
)

daily_segment_snapshot_schedule = dg.build_schedule_from_partitioned_job(
    daily_segment_snapshot,
    name="daily_segment_snapshot_schedule",
    description=(
        f"Runs daily_segment_snapshot at {SNAPSHOT_HOUR_UTC:02d}:{SNAPSHOT_MINUTE_UTC:02d} UTC "
        "for the day that has just ended."
    ),
    hour_of_day=SNAPSHOT_HOUR_UTC,
    minute_of_hour=SNAPSHOT_MINUTE_UTC,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
