"""The store ``SEGMENT_ASSETS_DATABASE_URL`` chooses: the DuckDB file when it is unset, else
PostgreSQL (see :mod:`~segment_assets.store.base`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from segment_assets.store.base import DATABASE_URL_ENV, SegmentStore, store_kind
from segment_assets.store.duckdb import DuckDBStore
from segment_assets.store.postgres import PostgresStore


def store_from_env(environ: Mapping[str, str] | None = None) -> SegmentStore:
    """The store ``SEGMENT_ASSETS_DATABASE_URL`` names.

    Nothing is opened: call :meth:`SegmentStore.check` to find out whether it can be used.
    An unknown scheme or a malformed URL raises :class:`StoreError` naming the variable.
    """
    env = os.environ if environ is None else environ
    if store_kind(env) == "duckdb":
        return DuckDBStore.from_env(env)
    return PostgresStore(env[DATABASE_URL_ENV].strip(), environ=env)
