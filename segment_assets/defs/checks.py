"""One drop check per provider asset, run with each materialisation.

The check is a separate, partitioned ``@asset_check``: Dagster runs it in the same run, after
the asset's step has written the partition, so it judges exactly what is stored (one history
read from the store) and records a result per partition. It can also be re-run on its own for
a partition (for instance after changing thresholds) without calling the provider.
"""

import datetime as dt
import warnings

import dagster as dg
import pandas as pd

from segment_assets.defs.assets import DAILY, PROVIDER_ASSETS
from segment_assets.defs.drops import drops_markdown, drops_summary, flag_drops
from segment_assets.detection.causes import CAUSE_COLUMN, cause_words
from segment_assets.providers import registry
from segment_assets.store import store_from_env

CHECK_NAME = "no_sudden_drops"


def check_result(drops: pd.DataFrame, accounts: int | None = None) -> dg.AssetCheckResult:
    """Pass without drops; otherwise fail with the worst severity and the drops as a table
    (naming the account when ``accounts``, those read, are several)."""
    summary = drops_summary(drops)
    metadata: dict[str, object] = {
        **summary,
        "dropped_segments": dg.MetadataValue.md(drops_markdown(drops, accounts)),
    }
    if drops.empty:
        return dg.AssetCheckResult(passed=True, metadata=metadata, description="No drops.")
    severity = dg.AssetCheckSeverity.ERROR if summary["errors"] else dg.AssetCheckSeverity.WARN
    first = drops.iloc[0]
    name = first.get("segment_name") or first["segment_id"]
    more = f" and {len(drops) - 1} more" if len(drops) > 1 else ""
    cause = cause_words(first.get(CAUSE_COLUMN))
    return dg.AssetCheckResult(
        passed=False,
        severity=severity,
        metadata=metadata,
        description=f"{name}: {first['reason']}{f'; {cause}' if cause else ''}{more}",
    )


def build_drop_check(asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    """The drop check of one provider asset (same daily partitions, explicit partition key)."""
    table = asset.key.path[-1]
    label = registry.by_table(table).label
    with warnings.catch_warnings():
        # A partitions_def on an asset check is a preview feature in Dagster 1.13.
        warnings.simplefilter("ignore", dg.PreviewWarning)

        @dg.asset_check(
            asset=asset,
            name=CHECK_NAME,
            partitions_def=DAILY,
            description=(
                f"Fails when a {label} segment suddenly lost users (or vanished) on this day; "
                "ERROR for deep drops, WARN for smaller ones. The failing segments are listed "
                "in the result's metadata."
            ),
        )
        def drop_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            day = dt.date.fromisoformat(context.partition_key)
            found = flag_drops(store_from_env(), [table], day)
            if len(found.drops):
                context.log.warning(f"{label}: {len(found.drops)} segment(s) dropped on {day}")
            return check_result(found.drops, found.accounts)

    return drop_check


DROP_CHECKS: list[dg.AssetChecksDefinition] = [build_drop_check(a) for a in PROVIDER_ASSETS]
