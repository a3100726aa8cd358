"""The detection settings in force for one provider, as the drop check shows them: a Markdown
table of its defaults, each account's values and each segment rule with the segments it
matched, and the rules that matched nothing (most likely a mistyped glob or id)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from segment_assets.config.detection import AccountDetection, DetectionSettings, SegmentRule
from segment_assets.config.detection_file import SEGMENT_SETTINGS

THRESHOLDS = "thresholds"
UNMATCHED = "segment_rules_matching_nothing"
_NOT_LISTED = "— (account not in this day)"
_LEGEND = (
    "\n\n_Bold: set in the accounts file at that level (else the defaults, or inherited). "
    "A rule's empty cell is inherited; segments: how many of the day's it matched._"
)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _level_row(label: str, level: AccountDetection, written: Mapping[str, Any]) -> dict[str, str]:
    values = level.segment_values()
    cells = {n: _number(values[n]) for n in SEGMENT_SETTINGS}
    cells = {n: f"**{text}**" if n in written else text for n, text in cells.items()}
    return {"applies to": label, **cells, "segments": ""}


def thresholds_markdown(
    settings: DetectionSettings, provider: str, matched: Mapping[SegmentRule, int]
) -> str:
    """The settings of ``provider``'s segments: its defaults, then each account with
    settings of its own (its values in force, those it sets in bold), then each of its
    rules (the values it sets; an empty cell is inherited) with how many segments it
    matched on the day judged."""
    written = settings.written
    provider_set = {**written.get("*", {}), **written.get(provider, {})}
    rows = [_level_row(f"{provider} (every account)", settings.provider(provider), provider_set)]
    for account, level in settings.accounts_of(provider).items():
        name = settings.account_names.get((provider, account), account)
        own = written.get((provider, account), {})
        rows.append(_level_row(f"account {name} ({account})", level, own))
        for rule in sorted(level.segments, key=lambda r: r.index):
            count = matched.get(rule)
            rows.append(
                {
                    "applies to": f"{name}: segments[{rule.index}] {rule.target()}",
                    **{n: _number(rule.values.get(n)) for n in SEGMENT_SETTINGS},
                    "segments": _NOT_LISTED if count is None else str(count),
                }
            )
    table = pd.DataFrame(rows).map(_cell)
    return table.to_markdown(index=False, disable_numparse=True) + _LEGEND


def unmatched_rules(matched: Mapping[SegmentRule, int]) -> list[SegmentRule]:
    """The rules that matched none of the day's segments of their account, in file order."""
    rules = [rule for rule, count in matched.items() if count == 0]
    return sorted(rules, key=lambda r: (r.provider, r.account_name, r.index))


def unmatched_text(rule: SegmentRule, day: dt.date) -> str:
    """A warning about a rule that matched nothing."""
    return (
        f"the segment rule {rule.where()} ({rule.target()}) matches none of the "
        f"{rule.account_name} segments of {day}: is the {'id' if rule.segment_id else 'glob'} "
        "right?"
    )


def thresholds_metadata(
    settings: DetectionSettings,
    provider: str,
    matched: Mapping[SegmentRule, int],
    day: dt.date,
) -> dict[str, Any]:
    """The check's metadata of the settings: the table, and the rules that matched nothing
    (their number, and the warnings when there are some)."""
    unmatched = unmatched_rules(matched)
    metadata: dict[str, Any] = {
        THRESHOLDS: thresholds_markdown(settings, provider, matched),
        UNMATCHED: len(unmatched),
    }
    if unmatched:
        metadata["unmatched_segment_rules"] = "\n".join(
            f"- {unmatched_text(rule, day)}" for rule in unmatched
        )
    return metadata
