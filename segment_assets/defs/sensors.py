"""``segment_drop_sensor``: one grouped alert per provider account and partition with drops.

Open-source Dagster does not alert on failed asset checks, so this sensor does. Each tick:

1. retries the channels that failed on an earlier tick (never the ones that succeeded);
2. reads the new materialisations of the three provider assets from the event log, after a
   per-asset storage id kept in the cursor, so a restart neither loses nor repeats one;
3. takes them in the order they were stored, a day at a time: the new partitions of one day
   across the assets (normally one per provider) are judged together, with one store read
   and one detection (never a provider call), with the detection settings the accounts
   file holds at that tick; each provider account with drops gets one alert (drops a mute
   holds are left out: an account whose drops are all muted gets none), named in words
   from the materialisation's ``account_labels``, and each account the materialisation
   lists in ``account_failures`` (a snapshot that failed while the provider's other
   accounts were stored) gets a ``snapshot_failed`` alert. A drop alerts only while its
   partition is no older than its segment's ``alert_max_age_days`` (so backfills stay
   quiet); a partition older than every segment's is not judged at all;
4. on each judged day, the open incidents (``segments.segment_incidents``, see
   :mod:`~segment_assets.defs.incident_log`) whose segment is back are closed, with one
   ``recovered`` message per account (unless ``DropAlerts.recovery_messages`` is off, or
   the incident never alerted), and every drop alerted opens one. A muted drop opens one
   not alerted; once no mute holds, if its segment is still down, it alerts once with the
   account's drops of that day and is marked alerted.

Its cursor (where it is, and the alerts not delivered yet) is
:mod:`~segment_assets.defs.sensor_cursor`; it reads the event log with
:mod:`~segment_assets.defs.new_materializations`. A tick stops early, keeping its place, when
it nears Dagster's 60 s limit or the store stays locked by a writer for ``LOCK_WAIT_SECONDS``.
"""

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from segment_assets.config.detection import DetectionSettings, detection_settings_from_env
from segment_assets.defs.alert_payload import RECOVERED as RECOVERED_KIND
from segment_assets.defs.alert_payload import DropAlert
from segment_assets.defs.alert_text import alert_headline, log_text
from segment_assets.defs.alerts import DropAlerts, deliver_all
from segment_assets.defs.drops import (
    PROVIDER_TABLES,
    TABLE_PROVIDERS,
    by_table,
    flag_drops,
)
from segment_assets.defs.incident_log import EXPIRED, RECOVERED, IncidentLog, expired, recovered
from segment_assets.defs.mute_ends import after_mutes, alerting
from segment_assets.defs.new_materializations import NewMaterializations, account_notes
from segment_assets.defs.sensor_cursor import CursorError, DropSensorCursor, start_over_hint
from segment_assets.defs.tick_report import TickReport
from segment_assets.detection.configured import within_alert_age
from segment_assets.providers import registry
from segment_assets.store import SegmentStore, store_from_env
from segment_assets.store.base import StoreBusyError

MINIMUM_INTERVAL_SECONDS = 60
TICK_BUDGET_SECONDS = 40.0  # of Dagster's 60 s per tick
LOCK_WAIT_SECONDS = 10.0


def partition_age_days(partition: str, today: dt.date) -> int:
    """Days between a daily partition and today (yesterday's partition is 1 day old)."""
    return (today - dt.date.fromisoformat(partition)).days


@dataclass
class DropSensorTick:
    """One evaluation of the sensor; Dagster appears only as the instance and the log."""

    instance: dg.DagsterInstance
    alerts: DropAlerts
    log: Any
    store: SegmentStore
    today: dt.date
    out_of_time: Callable[[], bool]
    settings: DetectionSettings = field(default_factory=DetectionSettings)
    assets: Sequence[str] = PROVIDER_TABLES
    report: TickReport = field(default_factory=TickReport)

    def run(self, cursor: DropSensorCursor) -> DropSensorCursor:
        self.retry_pending(cursor)
        if not self.report.stopped:
            self.read_new(cursor)
        return cursor

    def retry_pending(self, cursor: DropSensorCursor) -> None:
        for key, entry in list(cursor.pending.items()):
            if self.out_of_time():
                self.report.stopped = "time budget"
                return
            alert = DropAlert.from_payload(entry["alert"])
            own = self.settings.account(alert.provider, alert.account or "")
            max_age = own.longest_alert_age_days()
            if partition_age_days(alert.partition, self.today) > max_age:
                self.log.warning(
                    f"drop alert {key} could not be sent to {', '.join(entry['channels'])} "
                    f"within {max_age} days; giving up"
                )
                del cursor.pending[key]
                continue
            failed = deliver_all(alert, entry["channels"], self.alerts, self.log)
            if failed:
                entry["channels"] = failed
            else:
                del cursor.pending[key]
                self.report.delivered_late += 1

    def read_new(self, cursor: DropSensorCursor) -> None:
        """Judge the new materialisations in the order they were stored, a partition (day) at
        a time: the earliest asset's next partition, together with the next partition of each
        other asset whose next one is the same day. An asset's storage id in the cursor moves
        past a materialisation once it is judged, so a tick that stops resumes there."""
        new = [NewMaterializations(self.instance, asset, cursor) for asset in self.assets]
        while True:
            heads = [(m, head) for m in new if (head := m.next_partition()) is not None]
            if not heads:
                return
            _, partition = min(head for _, head in heads)
            same_day = [m for m, (_, p) in heads if p == partition]
            assets = [m.asset for m in same_day]
            if self.out_of_time():
                self.report.stopped = "time budget"
                return
            try:
                self.judge(partition, {m.asset: m.records[0] for m in same_day}, cursor)
            except StoreBusyError as exc:
                self.report.stopped = "store busy"
                self.log.warning(f"{', '.join(assets)} {partition}: {exc}; trying again next tick")
                return
            for m in same_day:
                m.done()

    def judge(
        self, partition: str, records: dict[str, dg.EventLogRecord], cursor: DropSensorCursor
    ) -> None:
        """Find the drops of ``partition`` of each asset in ``records`` (one read, one
        detection) and alert once per provider account with drops, and once per account the
        materialisation says could not be snapshotted."""
        assets = list(records)
        self.report.partitions += len(assets)
        age = partition_age_days(partition, self.today)
        providers = [TABLE_PROVIDERS[asset] for asset in assets]
        if age > self.settings.longest_alert_age_days(providers):
            self.report.old_partitions += len(assets)
            return
        day = dt.date.fromisoformat(partition)
        incidents = IncidentLog(self.store, LOCK_WAIT_SECONDS)
        watch = incidents.watch(providers, day)
        old = expired(watch, day)
        judged = flag_drops(
            self.store,
            assets,
            day,
            self.settings,
            lock_wait_seconds=LOCK_WAIT_SECONDS,
            watch=watch[~old],
        )
        found = by_table(judged.drops, assets)
        incidents.close(watch.loc[old, "incident_id"].tolist(), day, EXPIRED)
        self.recoveries(partition, records, incidents, recovered(watch[~old], judged.back), cursor)
        url = self.alerts.webserver_url
        judged_drops = {
            asset: within_alert_age(found[asset], self.settings, age) for asset in assets
        }
        unmuted = after_mutes(watch[~old], judged.back, judged.drops, self.settings, age)
        # Their incidents first: a store that stays busy stops the tick before any alert of
        # the day is sent, and the next tick judges the day again (no alert sent twice).
        for drops in judged_drops.values():
            incidents.open(drops, day)  # muted ones too, not alerted
        incidents.mark_alerted(unmuted["incident_id"].tolist())
        alerted = {
            asset: self.to_alert(asset, partition, judged_drops[asset], unmuted) for asset in assets
        }
        for asset in assets:
            labels, failures = account_notes(records[asset])
            drops = alerted[asset]
            for account, own in drops.groupby(drops["account"].astype(str), sort=True):
                alert = DropAlert.from_drops(asset, partition, own, url, labels.get(account))
                self.alert(alert, cursor)
            provider = TABLE_PROVIDERS[asset]
            for failure in failures:
                own = self.settings.account(provider, str(failure["account"]))
                if age > own.alert_max_age_days:
                    continue  # too late to tell for this account
                self.alert(
                    DropAlert.snapshot_failed(
                        asset,
                        partition,
                        failure["account"],
                        failure["error"],
                        url,
                        failure.get("account_name"),
                    ),
                    cursor,
                )

    def to_alert(
        self, asset: str, partition: str, drops: pd.DataFrame, unmuted: pd.DataFrame
    ) -> pd.DataFrame:
        """:func:`alerting` drops of ``asset``, saying in the log how many a mute holds."""
        if drops["muted"].any():
            self.log.info(f"{asset} {partition}: {int(drops['muted'].sum())} muted drop(s)")
        return alerting(drops, unmuted, TABLE_PROVIDERS[asset])

    def recoveries(
        self,
        partition: str,
        records: dict[str, dg.EventLogRecord],
        incidents: IncidentLog,
        back: pd.DataFrame,
        cursor: DropSensorCursor,
    ) -> None:
        """Close the incidents whose segment is back, with one recovered message per account
        (when they are switched on)."""
        quiet = back[~back["alerted"].astype(bool)] if "alerted" in back else back.iloc[:0]
        if len(quiet):  # their drop began under a mute and never alerted: nothing to take back
            incidents.close(
                quiet["incident_id"].tolist(), dt.date.fromisoformat(partition), RECOVERED
            )
            back = back.drop(quiet.index)
        for (provider, account), own in back.groupby(["provider", "account"], sort=True):
            asset = registry.get(provider).table
            labels, _ = account_notes(records[asset])
            alert = DropAlert.recoveries(
                asset, partition, own, self.alerts.webserver_url, labels.get(account)
            )
            if self.alerts.recovery_messages:
                self.alert(alert, cursor)
            else:
                self.log.info(f"{alert_headline(alert)} (recovery messages are off)")
        incidents.close(back["incident_id"].tolist(), dt.date.fromisoformat(partition), RECOVERED)

    def alert(self, alert: DropAlert, cursor: DropSensorCursor) -> None:
        self.report.alerts += 1
        if alert.kind == RECOVERED_KIND:
            self.log.info(log_text(alert))
        else:
            self.log.warning(log_text(alert))
        failed = deliver_all(alert, self.alerts.channels(), self.alerts, self.log)
        if failed:
            cursor.pending[alert.key] = {"alert": alert.payload(), "channels": failed}
        else:
            cursor.pending.pop(alert.key, None)


def build_drop_sensor(name: str = "segment_drop_sensor") -> dg.SensorDefinition:
    """The drop sensor; a drop alerts while its partition is no older than its segment's
    ``alert_max_age_days`` (the accounts file's detection settings, read each tick)."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Alerts once per provider account and new partition with dropped segments, and "
            "for accounts whose snapshot failed (Dagster log, Slack, JSON webhook), from the "
            "stored snapshots; never for partitions older than the segment's "
            "alert_max_age_days (default 2 days), so backfills stay quiet. A drop that began "
            "under a mute alerts once the mute has ended if the segment is still down. A "
            "segment that alerted and is back gets one recovered message. Failed deliveries "
            "are retried on the next tick."
        ),
    )
    def segment_drop_sensor(
        context: dg.SensorEvaluationContext, alerts: DropAlerts
    ) -> dg.SensorResult:
        started = time.monotonic()
        settings = detection_settings_from_env()  # as the accounts file says now
        try:
            cursor = DropSensorCursor.parse(context.cursor)
        except CursorError as exc:
            max_age = settings.longest_alert_age_days(list(TABLE_PROVIDERS.values()))
            hint = start_over_hint(name, max_age)
            raise CursorError(f"{name} cannot read its cursor: {exc}. {hint}") from None
        tick = DropSensorTick(
            instance=context.instance,
            alerts=alerts,
            log=context.log,
            store=store_from_env(),
            today=dt.datetime.now(dt.UTC).date(),
            out_of_time=lambda: time.monotonic() - started > TICK_BUDGET_SECONDS,
            settings=settings,
        )
        cursor = tick.run(cursor)
        return dg.SensorResult(skip_reason=tick.report.text(), cursor=cursor.serialize())

    return segment_drop_sensor


segment_drop_sensor = build_drop_sensor()
