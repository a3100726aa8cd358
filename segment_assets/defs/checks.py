"""One drop check per provider asset, run with each materialisation.

The check is a separate, partitioned ``@asset_check``: Dagster runs it in the same run, after
the asset's step has written the partition, so it judges exactly what is stored (one history
read from the store) and records a result per partition. It can also be re-run on its own for
a partition (for instance after changing thresholds) without calling the provider: it reads
the accounts file's detection settings when it runs, so a re-run judges the day with the
settings in force then, and shows them in its metadata.
"""

import datetime as dt
import warnings
from collections.abc import Mapping

import dagster as dg
import pandas as pd

from segment_assets.acks.report import acknowledged_markdown
from segment_assets.config.detection import detection_settings_from_env
from segment_assets.defs.assets import DAILY, PROVIDER_ASSETS
from segment_assets.defs.drops import flag_drops
from segment_assets.defs.drops_shown import drops_markdown, drops_summary
from segment_assets.defs.incident_text import check_description
from segment_assets.defs.thresholds_shown import (
    thresholds_metadata,
    unmatched_rules,
    unmatched_text,
)
from segment_assets.detection.causes import CAUSE_COLUMN, cause_words
from segment_assets.providers import registry
from segment_assets.store import store_from_env

CHECK_NAME = "no_sudden_drops"


def check_result(
    drops: pd.DataFrame,
    accounts: int | None = None,
    shown: Mapping[str, object] | None = None,
    acknowledged: str | None = None,
) -> dg.AssetCheckResult:
    """Pass without drops; otherwise fail with the worst severity and the drops as a table
    (naming the account when ``accounts``, those read, are several); ``shown`` adds the
    settings in force (text as Markdown). ``acknowledged``: the acknowledged days left
    out, as a table, when there are any."""
    summary = drops_summary(drops)
    metadata: dict[str, object] = {
        **summary,
        "dropped_segments": dg.MetadataValue.md(drops_markdown(drops, accounts)),
        **{
            k: dg.MetadataValue.md(v) if isinstance(v, str) else v for k, v in (shown or {}).items()
        },
    }
    if acknowledged:
        metadata["acknowledged"] = dg.MetadataValue.md(acknowledged)
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
        description=check_description(drops)
        or f"{name}: {first['reason']}{f'; {cause}' if cause else ''}{more}",
    )


def build_drop_check(asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    """The drop check of one provider asset (same daily partitions, explicit partition key)."""
    table = asset.key.path[-1]
    provider = registry.by_table(table)
    label = provider.label
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
            settings = detection_settings_from_env()  # as the file says now
            found = flag_drops(store_from_env(), [table], day, settings)
            if len(found.drops):
                context.log.warning(f"{label}: {len(found.drops)} segment(s) dropped on {day}")
            for rule in unmatched_rules(found.rules_matched):
                context.log.warning(unmatched_text(rule, day))
            shown = thresholds_metadata(settings, provider.name, found.rules_matched, day)
            acknowledged = acknowledged_markdown(found.acknowledged, day)
            return check_result(found.drops, found.accounts, shown, acknowledged or None)

    return drop_check


DROP_CHECKS: list[dg.AssetChecksDefinition] = [build_drop_check(a) for a in PROVIDER_ASSETS]
