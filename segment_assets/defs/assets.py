"""The provider assets, all made by one factory, and ``segment_drops``.

Their partitions and run config are in :mod:`~segment_assets.defs.partitions`, the account
check in :mod:`~segment_assets.defs.account_check`.
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import AbstractContextManager

import dagster as dg
import pandas as pd

from segment_assets.config.errors import ConfigurationError
from segment_assets.defs import drops, drops_shown
from segment_assets.defs.account_check import (
    accounts_check,
    accounts_check_spec,
    accounts_metadata,
)
from segment_assets.defs.partitions import (
    DAILY,
    SnapshotConfig,
    check_partition_age,
)
from segment_assets.providers import registry, schema
from segment_assets.providers.resource import ProviderResource
from segment_assets.snapshot import take_snapshot
from segment_assets.store import store_from_env
from segment_assets.store.base import EMPTY_DAY_ACCEPTED, store_kind

PREVIEW_ROWS = 10


def table_schema(provider: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=c.name, type=c.sql_type, description=c.description)
            for c in schema.columns(provider)
        ]
    )


def snapshot_metadata(frame: pd.DataFrame) -> dict[str, object]:
    counts = frame["user_count"]
    largest = frame.loc[counts.notna()].nlargest(PREVIEW_ROWS, "user_count")
    preview = largest[["segment_name", "segment_id", "user_count"]].to_markdown(index=False)
    return {
        "dagster/row_count": len(frame),
        "segments": len(frame),
        "total_users": int(counts.sum(skipna=True)),
        "uncountable_segments": int(counts.isna().sum()),
        "problem_segments": len(schema.problem_rows(frame)),
        "largest_segments": dg.MetadataValue.md(preview if len(largest) else "_no segments_"),
    }


def build_provider_asset(provider: str) -> dg.AssetsDefinition:
    """The daily snapshot asset of one provider (resource key = provider name)."""
    label = registry.get(provider).label
    table = registry.get(provider).table

    @dg.asset(
        name=table,
        partitions_def=DAILY,
        group_name="segments",
        kinds={store_kind(), provider},
        required_resource_keys={provider},
        pool=provider,
        description=(
            f"Every {label} segment's user count in every configured {label} account, "
            "snapshotted once each UTC day has ended. One row per segment per account per day "
            f"in table segments.{table} of the store (SEGMENT_ASSETS_DATABASE_URL)."
        ),
        check_specs=[accounts_check_spec(table, label)],
        metadata={
            "partition_expr": "snapshot_date",
            "dagster/column_schema": table_schema(provider),
        },
    )
    def provider_segments(
        context: dg.AssetExecutionContext, config: SnapshotConfig
    ) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
        day = context.partition_time_window.start.date()
        check_partition_age(day, dt.datetime.now(dt.UTC), config, context.log)
        accounts = getattr(context.resources, provider).all_accounts()
        store = store_from_env()
        context.log.debug(f"store: {store.describe()}")

        def lock(account: ProviderResource) -> AbstractContextManager[None]:
            return store.lock_account(provider, account.account(), account.describe(), context.log)

        try:
            guard = config.shrink_guard()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        snap = take_snapshot(
            provider,
            accounts,
            day,
            store.read_partition(table, day),
            refetch_all=config.refetch_all,
            lock=lock,
            log=context.log,
            latest=store.latest_stored_counts(table, day),
            guard=guard,
        )
        frame = snap.frame
        context.log.info(
            f"{label}: {len(frame)} segments for {day} in {len(accounts)} account(s), "
            f"{int(frame['user_count'].sum(skipna=True)):,} users in total"
        )
        metadata = {**snapshot_metadata(frame), **accounts_metadata(snap)}
        metadata[EMPTY_DAY_ACCEPTED] = len(snap.accepted_shrinks)
        yield dg.Output(frame, metadata=metadata)
        yield accounts_check(snap)

    return provider_segments


PROVIDER_ASSETS: list[dg.AssetsDefinition] = [build_provider_asset(p) for p in registry.NAMES]


@dg.asset(
    name=drops.DROPS_TABLE,
    partitions_def=DAILY,
    group_name="segments",
    kinds={store_kind()},
    deps=PROVIDER_ASSETS,
    description=(
        "The segments that suddenly lost users (or vanished) on each UTC day, across all "
        "providers, found in the stored snapshots: an alert history in table "
        f"segments.{drops.DROPS_TABLE} of the store."
    ),
    metadata={
        "partition_expr": "snapshot_date",
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name=c.name, type=c.sql_type, description=c.description)
                for c in drops.DROPS_COLUMNS
            ]
        ),
    },
)
def segment_drops(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    day = context.partition_time_window.start.date()
    store = store_from_env()
    flagged = drops.flag_drops(store, drops.PROVIDER_TABLES, day)
    found = flagged.drops
    drops.ensure_drops_table(store)
    context.log.info(f"{len(found)} segment drop(s) on {day}")
    return dg.MaterializeResult(
        value=drops.to_table(found),
        metadata={
            **drops_shown.drops_summary(found),
            "dagster/row_count": len(found),
            "dropped_segments": dg.MetadataValue.md(
                drops_shown.drops_markdown(found, flagged.accounts)
            ),
        },
    )
