"""Acknowledgements and mutes in the store, through its small-table interface only, so they
live next to the snapshots on DuckDB and on PostgreSQL alike and every run and the sensor
see the same ones."""

from __future__ import annotations

import pandas as pd

from segment_assets.acks.records import ACKS_TABLE, COLUMN_TYPES, Ack, new_id, normalise, to_frame
from segment_assets.store import SegmentStore
from segment_assets.store.base import LOCK_RETRY_SECONDS


def read_acks(store: SegmentStore, lock_wait_seconds: float = LOCK_RETRY_SECONDS) -> pd.DataFrame:
    """Every stored acknowledgement and mute (see :func:`~segment_assets.acks.records.normalise`
    for the columns); no rows when none was ever recorded."""
    return normalise(store.read_rows(ACKS_TABLE, lock_wait_seconds=lock_wait_seconds))


def add_ack(store: SegmentStore, ack: Ack) -> None:
    """Store ``ack``."""
    store.append_rows(ACKS_TABLE, to_frame([ack]), COLUMN_TYPES)


def fresh_id(store: SegmentStore) -> str:
    """An id no stored acknowledgement or mute has."""
    return new_id(set(read_acks(store)["ack_id"].dropna()))


def remove_ack(store: SegmentStore, ack_id: str) -> int:
    """Delete the acknowledgement or mute ``ack_id``; returns how many rows went (0 or 1)."""
    return store.remove_rows(ACKS_TABLE, "ack_id", [ack_id])
