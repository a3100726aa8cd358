"""Where snapshots live: one interface (:class:`SegmentStore`), a DuckDB implementation (the
embedded default) and a PostgreSQL one (clusters), chosen by ``SEGMENT_ASSETS_DATABASE_URL``
(:func:`store_from_env`)."""

from segment_assets.store.base import (
    DATABASE_URL_ENV,
    HISTORY_COLUMNS,
    AccountBusyError,
    SegmentStore,
    StoreError,
)
from segment_assets.store.choose import store_from_env

__all__ = [
    "DATABASE_URL_ENV",
    "HISTORY_COLUMNS",
    "AccountBusyError",
    "SegmentStore",
    "StoreError",
    "store_from_env",
]
