"""The Dagster objects: assets, checks, sensors, schedules and alerts."""
