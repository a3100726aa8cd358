"""The one Definitions object: wiring only."""

from __future__ import annotations

import dagster as dg

from segment_assets.assets import PROVIDER_ASSETS
from segment_assets.resources import provider_resources_from_env
from segment_assets.schedules import daily_segment_snapshot, daily_segment_snapshot_schedule
from segment_assets.storage import io_manager

defs = dg.Definitions(
    assets=[*PROVIDER_ASSETS],
    jobs=[daily_segment_snapshot],
    schedules=[daily_segment_snapshot_schedule],
    resources={"io_manager": io_manager(), **provider_resources_from_env()},
)
