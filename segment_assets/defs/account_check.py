"""The account check ``all_accounts_snapshotted`` and the materialisation's record of what
became of each account (read by the drop sensor for its words and failures)."""

import warnings

import dagster as dg
import pandas as pd

from segment_assets.defs.partitions import DAILY
from segment_assets.providers import registry, schema
from segment_assets.snapshot import Snapshot

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
