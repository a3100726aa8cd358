"""Each segment judged with its own thresholds: the same detector, run per group of segments
that share thresholds, on histories read from a real store; and the sensor's age limit per
segment on a real instance."""

from __future__ import annotations

import datetime as dt
import logging
import textwrap
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from segment_assets.config import ConfigurationError
from segment_assets.config.detection import DetectionSettings, detection_settings_from_env
from segment_assets.defs.account_check import ACCOUNT_FAILURES
from segment_assets.defs.alerts import DropAlerts
from segment_assets.defs.drops import flag_drops
from segment_assets.defs.sensor_cursor import DropSensorCursor
from segment_assets.defs.sensors import DropSensorTick, segment_drop_sensor
from segment_assets.detection import DropThresholds, find_drops, is_vanished
from segment_assets.detection.configured import find_configured_drops
from segment_assets.detection.per_segment import find_drops_per_segment
from segment_assets.store import SegmentStore
from segment_assets.store.duckdb import DuckDBStore

AS_OF = dt.date(2025, 3, 26)
DAYS = 10
TABLE = "onesignal_segments"
APP = "7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d"
OTHER_APP = "e4b8d2c6-1a3f-4e5d-8b7c-6f5e4d3c2b1a"
KIOSK = "0b6e1f3a-9c2d-4e7b-8a5f-3d1c2b4a6e8f"
COLUMN_TYPES = {
    "snapshot_date": "DATE",
    "provider": "VARCHAR",
    "account": "VARCHAR",
    "segment_id": "VARCHAR",
    "segment_name": "VARCHAR",
    "user_count": "BIGINT",
    "fetched_at": "TIMESTAMP",
}
# (id, name, usual count, share left on AS_OF; None: no longer listed)
APP_SEGMENTS = [
    ("s-deep", "Paying users", 20_000, 0.1),  # −90 %: a drop by default
    ("s-mild", "Test EU", 50_000, 0.8),  # −20 %: not a drop by default
    ("s-test", "Test US", 8_000, 0.5),  # −50 %: a drop by default
    ("s-flat", "Newsletter", 30_000, 1.0),
    ("s-gone", "Winter sale", 4_000, None),  # vanished
]
OTHER_SEGMENTS = [("s-deep", "Paying users", 20_000, 0.1), ("s-mild", "Test EU", 50_000, 0.8)]


def rows(account: str, segments: list, as_of: dt.date = AS_OF, days: int = DAYS) -> pd.DataFrame:
    """``days`` days of steady counts (1 % noise) ending with ``as_of``, where each segment
    keeps its share of users."""
    rng = np.random.default_rng(len(account))
    frames = []
    for offset in range(days):
        day = as_of - dt.timedelta(days=days - 1 - offset)
        for segment_id, name, level, share in segments:
            if day == as_of and share is None:
                continue
            count = level * np.exp(0.01 * rng.standard_normal())
            if day == as_of:
                count *= share
            frames.append((day, "onesignal", account, segment_id, name, round(count)))
    frame = pd.DataFrame(
        frames,
        columns=[
            "snapshot_date",
            "provider",
            "account",
            "segment_id",
            "segment_name",
            "user_count",
        ],
    )
    return frame.astype({"user_count": "Int64"})


def history() -> pd.DataFrame:
    return pd.concat([rows(APP, APP_SEGMENTS), rows(OTHER_APP, OTHER_SEGMENTS)], ignore_index=True)


def dropped(drops: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(drops["account"], drops["segment_id"], strict=True))


def test_one_group_judges_every_segment_exactly_as_find_drops():
    h = history()

    def one_group(segments: pd.DataFrame):
        return np.zeros(len(segments), dtype=int), [DropThresholds()]

    assert_frame_equal(find_drops_per_segment(h, AS_OF, one_group), find_drops(h, AS_OF))


def test_each_group_is_judged_with_its_own_thresholds_and_vanished_segments_once():
    h = history()
    sensitive = DropThresholds(min_drop_pct=15)
    seen = []

    def by_name(segments: pd.DataFrame):
        seen.append(segments)
        # "Test *" segments of the first app get 15 %, the rest the defaults
        test = segments["segment_name"].astype(str).str.startswith("Test")
        group = (test & (segments["account"].astype(str) == APP)).to_numpy().astype(int)
        return group, [DropThresholds(), sensitive]

    found = find_drops_per_segment(h, AS_OF, by_name)

    assert dropped(found) == {
        (APP, "s-deep"),
        (APP, "s-mild"),  # −20 %: a drop at 15 %
        (APP, "s-test"),
        (APP, "s-gone"),
        (OTHER_APP, "s-deep"),  # the other app's "Test EU" keeps the defaults
    }
    # only the segments listed on the day are asked about (a vanished one has no thresholds)
    assert len(seen[0]) == 6 and "s-gone" not in set(seen[0]["segment_id"])
    # each segment exactly as find_drops with its group's thresholds finds it
    alone = find_drops(
        h[h["segment_name"].str.startswith("Test") & (h["account"] == APP)], AS_OF, sensitive
    )
    mine = found[found["segment_name"].str.startswith("Test") & (found["account"] == APP)]
    assert_frame_equal(mine.reset_index(drop=True), alone.reset_index(drop=True))
    assert is_vanished(found).sum() == 1


def write_days(store: SegmentStore, frame: pd.DataFrame) -> None:
    frame = frame.assign(fetched_at=pd.Timestamp("2025-03-27 00:20"))
    for day, rows_of_day in frame.groupby("snapshot_date"):
        store.write_partition(TABLE, day, rows_of_day, column_types=COLUMN_TYPES)


TUNED = f"""
detection:
  onesignal:
    min_drop_pct: 40          # every OneSignal app: only deeper drops
onesignal:
  web:
    app_id: {APP}
    api_key_env: ONESIGNAL_WEB_API_KEY
    detection:
      segments:
        - name: "Test *"
          min_drop_pct: 15    # test segments: also smaller ones
        - id: s-deep
          min_drop_pct: 95    # this one is expected to swing
        - name: "Archive *"   # matches nothing
          min_drop_users: 10
"""


def tuned_env(tmp_path: Path, text: str = TUNED) -> dict[str, str]:
    path = tmp_path / "segment_assets.yaml"
    path.write_text(textwrap.dedent(text))
    return {"SEGMENT_ASSETS_CONFIG": str(path), "ONESIGNAL_WEB_API_KEY": "os_v2_app_secret"}


def test_a_tuned_file_stops_one_drop_and_causes_another_on_each_store(
    any_store: SegmentStore, tmp_path, monkeypatch
):
    write_days(any_store, history())
    env = tuned_env(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    untuned = flag_drops(any_store, [TABLE], AS_OF, DetectionSettings())
    tuned = flag_drops(any_store, [TABLE], AS_OF)  # the settings of the file, read now

    assert dropped(untuned.drops) == {
        (APP, "s-deep"),
        (APP, "s-test"),
        (APP, "s-gone"),
        (OTHER_APP, "s-deep"),
    }
    assert dropped(tuned.drops) == {
        (APP, "s-mild"),  # −20 %: the Test * rule's 15 % makes it a drop
        (APP, "s-test"),  # −50 %: beyond both 40 % and 15 %
        (APP, "s-gone"),  # vanished: no threshold hides it
        (OTHER_APP, "s-deep"),  # −90 % beyond the provider's 40 %
    }
    assert untuned.rules_matched == {}
    assert sorted((r.target(), n) for r, n in tuned.rules_matched.items()) == [
        ("id s-deep", 1),
        ("name 'Archive *'", 0),
        ("name 'Test *'", 2),
    ]
    mild = tuned.drops.set_index("segment_id").loc["s-mild"]
    assert mild["severity"] == "WARN" and 15 < mild["drop_pct"] < 30


def test_a_segment_rule_may_judge_a_young_segment_sooner(tmp_path):
    young = rows(APP, [("s-young", "Test launch", 10_000, 0.2)], days=5)  # 4 days of history
    text = TUNED.replace("min_drop_pct: 15    # test segments", "min_history_days: 3  #")
    settings = detection_settings_from_env(tuned_env(tmp_path, text))

    untuned, _ = find_configured_drops(young, AS_OF, DetectionSettings(), ["onesignal"])
    tuned, matched = find_configured_drops(young, AS_OF, settings, ["onesignal"])

    assert untuned.empty
    assert set(tuned["segment_id"]) == {"s-young"}
    assert sorted(matched.values()) == [0, 0, 1]


AGES = f"""
onesignal:
  web:
    app_id: {APP}
    api_key_env: ONESIGNAL_WEB_API_KEY
    detection:
      segments:
        - name: "Test *"
          alert_max_age_days: 5   # worth knowing late
  kiosk:
    app_id: {KIOSK}
    api_key_env: ONESIGNAL_WEB_API_KEY
    detection:
      alert_max_age_days: 4       # a failed snapshot of it is worth knowing late too
"""


class Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.logger = logging.getLogger("segment_assets_tests")

    def info(self, message: str) -> None:
        self.logger.info(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def test_the_sensor_alerts_a_late_partition_only_for_segments_whose_age_limit_allows(
    tmp_path, receiver
):
    store = DuckDBStore(str(tmp_path / "segment_assets.duckdb"))
    write_days(store, history())
    settings = detection_settings_from_env(tuned_env(tmp_path, AGES))
    alerts = DropAlerts(alert_webhook_url=receiver.url("/hook"))

    def tick(today: dt.date, instance: dg.DagsterInstance) -> DropSensorTick:
        tick = DropSensorTick(
            instance=instance,
            alerts=alerts,
            log=Log(),
            store=store,
            today=today,
            out_of_time=lambda: False,
            settings=settings,
        )
        tick.run(DropSensorCursor())
        return tick

    with dg.DagsterInstance.ephemeral() as instance:  # in memory: a real instance, fast
        # the day stored two apps; two more could not be snapshotted
        failed = [
            {"account": KIOSK, "error": "HTTP 403", "account_name": "kiosk"},
            {"account": "2f4e6a8c-0b1d-4c3e-9f5a-7b6d8c0e2a41", "error": "HTTP 403"},
        ]
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=TABLE,
                partition=AS_OF.isoformat(),
                metadata={ACCOUNT_FAILURES: dg.MetadataValue.json(failed)},
            )
        )
        four_days_late = tick(AS_OF + dt.timedelta(days=4), instance)
        six_days_late = tick(AS_OF + dt.timedelta(days=6), instance)

    # 4 days old: past the default 2 days, within the Test * rule's 5 and the kiosk's 4
    drops, kiosk = receiver.delivered("/hook")
    assert (drops["account"], [d["segment_id"] for d in drops["drops"]]) == (APP, ["s-test"])
    assert (kiosk["kind"], kiosk["account"]) == ("snapshot_failed", KIOSK)
    assert four_days_late.report.alerts == 2 and four_days_late.report.old_partitions == 0
    # 6 days old: older than every segment's limit, so not even judged
    assert six_days_late.report.old_partitions == 1 and six_days_late.report.alerts == 0


def test_the_sensor_reads_the_accounts_file_at_each_tick(tmp_path, monkeypatch, duckdb_path):
    config = tmp_path / "segment_assets.yaml"
    monkeypatch.setenv("SEGMENT_ASSETS_CONFIG", str(config))
    config.write_text("detection: {alert_max_age_days: 0}\n")
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), resources={"alerts": DropAlerts()}
    )

    with pytest.raises(ConfigurationError, match=r"detection.alert_max_age_days: must be"):
        segment_drop_sensor(context)

    config.write_text("detection: {alert_max_age_days: 4}\n")  # fixed: the next tick runs
    assert "0 new partition(s)" in segment_drop_sensor(context).skip_reason.skip_message
