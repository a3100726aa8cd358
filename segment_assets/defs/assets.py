"""The provider assets, all made by one factory.

Partition ``D`` holds the snapshot taken once day ``D`` (UTC) has ended. Providers only
report the current count, so materialising a partition long after its day would store
today's counts under an old date: such partitions are refused unless the run config says
``allow_late_partition: true``.
"""

import datetime as dt
import os
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager

import dagster as dg
import pandas as pd
from pydantic import Field

from segment_assets.config.errors import ConfigurationError
from segment_assets.defs import drops
from segment_assets.providers import registry, schema
from segment_assets.providers.resource import ProviderResource
from segment_assets.snapshot import ShrinkGuard, Snapshot, take_snapshot
from segment_assets.store import store_from_env
from segment_assets.store.base import EMPTY_DAY_ACCEPTED, store_kind

DEFAULT_START_DATE = "2025-01-01"
START_DATE_ENV = "SEGMENT_ASSETS_START_DATE"
PREVIEW_ROWS = 10


def partitions_start(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    raw = (env.get(START_DATE_ENV) or DEFAULT_START_DATE).strip()
    try:
        dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{START_DATE_ENV} must be a date like 2025-01-01, got {raw!r}") from None
    return raw


DAILY = dg.DailyPartitionsDefinition(start_date=partitions_start(), timezone="UTC")


class SnapshotConfig(dg.Config):
    """Run config of a provider snapshot."""

    max_partition_age_hours: float = Field(
        default=36.0,
        description="Refuse a partition whose day ended longer ago than this (providers only "
        "report the current count).",
    )
    allow_late_partition: bool = Field(
        default=False,
        description="Store today's counts under an older partition anyway.",
    )
    refetch_all: bool = Field(
        default=False,
        description="Fetch every account again even when the stored day lacks only some "
        "(by default a re-run fetches just the accounts an earlier run failed for).",
    )
    accept_shrunk_accounts: bool = Field(
        default=False,
        description="Store an account's snapshot even when it lists far fewer segments than "
        "its latest stored day (see shrink_min_segments and shrink_max_lost_share): for a "
        "real mass deletion. Without it such an account fails and keeps its stored rows.",
    )
    shrink_min_segments: int = Field(
        default=10,
        description="An account whose latest stored day had at least this many segments fails "
        "when more than shrink_max_lost_share of them are gone (one that lists none fails "
        "whatever it had).",
    )
    shrink_max_lost_share: float = Field(
        default=0.5,
        description="The share of an account's segments (0 to 1) that may be gone from one "
        "snapshot to the next before the snapshot is refused as shrunk.",
    )

    def shrink_guard(self) -> ShrinkGuard:
        return ShrinkGuard(
            min_segments=self.shrink_min_segments,
            max_lost_share=self.shrink_max_lost_share,
            accept=self.accept_shrunk_accounts,
        )


class LatePartitionError(ValueError):
    """A partition too old to snapshot honestly."""


def check_partition_age(
    day: dt.date, now: dt.datetime, config: SnapshotConfig, log: object = None
) -> None:
    """Raise unless ``day`` ended (UTC) within the allowed age, or lateness is allowed."""
    if config.max_partition_age_hours < 0:
        raise ValueError(
            f"max_partition_age_hours must be zero or more, got {config.max_partition_age_hours}"
        )
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    age_hours = (now - day_end).total_seconds() / 3600
    if age_hours < 0:
        raise LatePartitionError(
            f"partition {day} has not ended yet (ends {day_end:%Y-%m-%d %H:%M} UTC); "
            "its snapshot is taken once the day is over"
        )
    if age_hours > config.max_partition_age_hours:
        message = (
            f"partition {day} ended {age_hours:,.0f} h ago, more than max_partition_age_hours="
            f"{config.max_partition_age_hours:g}. Providers only report today's counts, so "
            f"this run would store today's numbers under {day}"
        )
        if not config.allow_late_partition:
            raise LatePartitionError(
                message + ". Materialise recent partitions only, or set "
                "allow_late_partition: true in the run config to store today's counts anyway."
            )
        if log is not None:
            log.warning(message + " (allowed by allow_late_partition)")


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


PROBLEM_ROWS_SHOWN = 20


ACCOUNTS_CHECK = "all_accounts_snapshotted"
ACCOUNT_LABELS = "account_labels"
ACCOUNT_FAILURES = "account_failures"


def accounts_metadata(snap: Snapshot) -> dict[str, object]:
    """How many accounts, how many failed, and a table of what became of each."""
    table = pd.DataFrame(
        {
            "account": [o.resource.describe() for o in snap.outcomes],
            "segments": [o.segments for o in snap.outcomes],
            "users": [f"{o.users:,}" for o in snap.outcomes],
            "status": [o.status_text() for o in snap.outcomes],
        }
    )
    return {
        "accounts": len(snap.outcomes),
        "failed_accounts": len(snap.failed),
        # read by the drop sensor: words for each account, and what failed (secret-free)
        ACCOUNT_LABELS: dg.MetadataValue.json({o.account: o.resource.words for o in snap.outcomes}),
        ACCOUNT_FAILURES: dg.MetadataValue.json(
            [
                {
                    "account": o.account,
                    "account_name": o.resource.words,
                    "error": str(o.error),
                }
                for o in snap.failed
            ]
        ),
        "account_status": dg.MetadataValue.md(
            table.to_markdown(index=False) if len(table) else "_no accounts configured_"
        ),
    }


def accounts_check(snap: Snapshot) -> dg.AssetCheckResult:
    """Passes when every account was snapshotted whole; fails with ERROR naming each account
    that was not, else with WARN naming the segments stored with a problem (a count that
    could not be trusted, repaired text)."""
    failed = snap.failed
    problems = schema.problem_rows(snap.frame)
    metadata: dict[str, object] = {
        "failed_accounts": len(failed),
        "problem_segments": len(problems),
    }
    if len(problems):
        metadata["problems"] = dg.MetadataValue.md(problems_markdown(problems))
    if not failed and problems.empty:
        return dg.AssetCheckResult(
            check_name=ACCOUNTS_CHECK,
            passed=True,
            description=f"All {len(snap.outcomes)} account(s) snapshotted.",
            metadata=metadata,
        )
    if not failed:
        first = problems.iloc[0]
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        return dg.AssetCheckResult(
            check_name=ACCOUNTS_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"All {len(snap.outcomes)} account(s) snapshotted; {len(problems)} "
            f"segment(s) stored with a problem (every other segment stored): "
            f"{registry.label(first['provider'])} {first['account']}, "
            f"segment {first['segment_id']} ({first['segment_name']!r}): {first['problem']}{more}",
            metadata=metadata,
        )
    lines = [f"{o.resource.describe()}: {o.error}" for o in failed]
    metadata["failures"] = dg.MetadataValue.md("\n".join(f"- {line}" for line in lines))
    return dg.AssetCheckResult(
        check_name=ACCOUNTS_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(failed)} of {len(snap.outcomes)} account(s) failed: " + "; ".join(lines),
        metadata=metadata,
    )


def problems_markdown(problems: pd.DataFrame) -> str:
    """The first :data:`PROBLEM_ROWS_SHOWN` problem rows as a table."""
    shown = problems.head(PROBLEM_ROWS_SHOWN)
    table = pd.DataFrame(
        {
            "account": shown["account"].astype(str),
            "segment": [
                f"{n} ({i})"
                for n, i in zip(shown["segment_name"], shown["segment_id"], strict=True)
            ],
            "problem": shown["problem"],
        }
    ).to_markdown(index=False)
    more = len(problems) - len(shown)
    return table + (f"\n\n…and {more} more" if more > 0 else "")


def accounts_check_spec(table: str, label: str) -> dg.AssetCheckSpec:
    """The in-asset account check, partitioned like the asset so the UI shows its result on
    each partition."""
    with warnings.catch_warnings():
        # A partitions_def on an asset check is a preview feature in Dagster 1.13.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            ACCOUNTS_CHECK,
            asset=table,
            partitions_def=DAILY,
            description=f"Fails (ERROR) when a {label} account could not be snapshotted for "
            "the day; the other accounts are stored, and re-running the partition fetches "
            "only the failed ones.",
        )


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
            **drops.drops_summary(found),
            "dagster/row_count": len(found),
            "dropped_segments": dg.MetadataValue.md(drops.drops_markdown(found, flagged.accounts)),
        },
    )
