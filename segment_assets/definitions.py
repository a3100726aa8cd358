"""The one Definitions object: wiring only."""

from __future__ import annotations

import dagster as dg

from segment_assets.config import provider_resources
from segment_assets.defs.alerts import alerts_from_env
from segment_assets.defs.assets import PROVIDER_ASSETS, segment_drops
from segment_assets.defs.checks import DROP_CHECKS
from segment_assets.defs.schedules import daily_segment_snapshot, daily_segment_snapshot_schedule
from segment_assets.defs.sensors import segment_drop_sensor
from segment_assets.store import store_from_env

defs = dg.Definitions(
    assets=[*PROVIDER_ASSETS, segment_drops],
    asset_checks=DROP_CHECKS,
    jobs=[daily_segment_snapshot],
    schedules=[daily_segment_snapshot_schedule],
    sensors=[segment_drop_sensor],
    resources={
        # the store SEGMENT_ASSETS_DATABASE_URL chooses: the DuckDB file, or PostgreSQL
        "io_manager": store_from_env().io_manager(),
        **provider_resources(),
        "alerts": alerts_from_env(),
    },
)
