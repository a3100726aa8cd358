"""The new materialisations of a provider asset, read from the event log after the storage
id the drop sensor's cursor holds for it (the sensor moves that id past each one it has
judged, so a restart neither loses nor repeats one), and what a materialisation says of its
accounts."""

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from segment_assets.defs.account_check import ACCOUNT_FAILURES, ACCOUNT_LABELS
from segment_assets.defs.sensor_cursor import DropSensorCursor

BATCH_SIZE = 50


@dataclass(eq=False)
class NewMaterializations:
    """An asset's materialisations after its storage id in the cursor, oldest first, read
    from the event log ``BATCH_SIZE`` at a time."""

    instance: dg.DagsterInstance
    asset: str
    cursor: DropSensorCursor
    records: deque[dg.EventLogRecord] = field(default_factory=deque)
    latest: dict[str | None, int] = field(default_factory=dict)  # partition → last storage id
    complete: bool = False  # nothing is stored after ``records``

    def next_partition(self) -> tuple[int, str] | None:
        """Storage id and partition of the next materialisation to judge; None when none is
        left. Those that need no judging are passed: no partition, or the same partition
        materialised again later in the batch (a partition is judged once, at its latest)."""
        while True:
            while self.records:
                record = self.records[0]
                partition = record.partition_key
                if partition is not None and self.latest[partition] == record.storage_id:
                    return record.storage_id, partition
                self.done()
            if self.complete:
                return None
            self.fetch()

    def done(self) -> None:
        """Move the cursor past the next materialisation."""
        self.cursor.after[self.asset] = self.records.popleft().storage_id

    def fetch(self) -> None:
        records = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(self.asset),
                after_storage_id=self.cursor.after.get(self.asset),
            ),
            limit=BATCH_SIZE,
            ascending=True,
        ).records
        self.records = deque(records)
        self.latest = {r.partition_key: r.storage_id for r in records}
        self.complete = len(records) < BATCH_SIZE


def account_notes(record: dg.EventLogRecord) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """From a provider materialisation: each account's words (account id → label, only for
    named accounts) and the accounts it could not snapshot."""
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization is not None else {}
    labels = getattr(metadata.get(ACCOUNT_LABELS), "value", None) or {}
    failures = getattr(metadata.get(ACCOUNT_FAILURES), "value", None) or []
    return {k: v for k, v in labels.items() if v}, list(failures)
