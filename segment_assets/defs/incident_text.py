"""What an alert and a check say of an account-wide incident and of a recovery, in words.

An account-wide incident (see :mod:`segment_assets.detection.incidents`) is one line — how
many of how many segments fell, by a median of how much — followed by the largest few;
segments that vanished together are one line. The records are the alert payload's (see
:mod:`segment_assets.defs.alert_payload`): plain dicts of JSON values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from segment_assets.detection import is_vanished
from segment_assets.detection.incidents import ACCOUNT

LARGEST = 5  # the segments an account-wide incident names


def _count(value: Any) -> str:
    return "?" if value is None or value is pd.NA else f"{int(value):,}"


def _pct(value: Any) -> str:
    return "?" if value is None else f"−{value:.0f} %"


def users_lost(drops: pd.DataFrame) -> pd.Series:
    """Users each drop lost: its last count before the day (else its expected count) less
    its count that day (all of it for a vanished segment)."""
    expected = drops["expected"].astype("float64")
    before = pd.to_numeric(drops.get("before", expected), errors="coerce").astype("float64")
    start = before.where(before.notna(), expected)
    after = pd.to_numeric(drops["user_count"], errors="coerce").astype("float64").fillna(0.0)
    return (start - after).fillna(0.0)


def largest(drops: pd.DataFrame, count: int = LARGEST) -> pd.DataFrame:
    """The ``count`` drops that lost the most users, most first."""
    if drops.empty:
        return drops
    order = users_lost(drops).sort_values(ascending=False, kind="stable").index
    return drops.loc[order[:count]]


def incident_line(fell: int, of: int | None, median_drop_pct: float | None) -> str:
    """ "Account-wide: 38 of 40 segments fell, by a median of −92 %"."""
    of_text = f" of {of:,}" if of else ""
    noun = "segment" if (of or fell) == 1 else "segments"
    return f"Account-wide: {fell:,}{of_text} {noun} fell, by a median of {_pct(median_drop_pct)}"


def vanished_line(vanished: dict[str, Any]) -> str:
    """ "12 of 15 segments vanished together (45,000 users): Winter sale, … and 9 more"."""
    count, of = vanished["count"], vanished.get("of")
    of_text = f" of {of:,}" if of else ""
    noun = "segment" if (of or count) == 1 else "segments"
    names = [str(r.get("segment_name") or r["segment_id"]) for r in vanished.get("largest", [])]
    more = count - len(names)
    listed = ", ".join(names) + (f" and {more:,} more" if more > 0 else "")
    return (
        f"{count:,}{of_text} {noun} vanished together ({_count(vanished.get('users'))} users): "
        f"{listed}"
    )


def recovered_line(record: dict[str, Any]) -> str:
    """ "Paying users (seg-0): 510 → 5,300, back within 2 % of 5,380 expected (dropped on
    2026-03-14)"."""
    name = record.get("segment_name") or record["segment_id"]
    label = f"{name} ({record['segment_id']})" if record.get("segment_name") else str(name)
    pct = record.get("drop_pct")
    if pct is None:
        against = f"{_count(record.get('expected'))} expected"
    elif pct <= 0:
        against = f"at or above the {_count(record.get('expected'))} expected"
    else:
        against = f"{pct:.0f} % under the {_count(record.get('expected'))} expected"
    low = "gone" if record.get("vanished") else _count(record.get("low"))
    return (
        f"{label}: {low} → {_count(record.get('user_count'))}, {against} "
        f"(dropped on {record.get('opened_on')})"
    )


Line = tuple[str, bool]  # a line of an alert's body, and whether it is a segment's line


def listed(texts: list[str], total: int, limit: int | None) -> list[Line]:
    """Segment lines, at most ``limit``, then "… and N more" when ``total`` is larger."""
    shown = texts if limit is None else texts[:limit]
    lines = [(text, True) for text in shown]
    if total > len(shown):
        lines.append((f"… and {total - len(shown):,} more", False))
    return lines


def account_wide_body(
    incident: dict[str, Any] | None,
    vanished: dict[str, Any] | None,
    drops: Sequence[dict[str, Any]],
    limit: int | None,
    drop_line: Callable[[dict[str, Any]], str],
) -> list[Line]:
    """The body of an alert whose drops, or vanished segments, are account-wide: the
    incident's line and its largest segments, the vanished segments' one line; a part that
    is not account-wide is listed a segment a line, as usual (``limit`` of them)."""
    incident, vanished = incident or {}, vanished or {}
    lines: list[Line] = []
    if incident.get("scope") == ACCOUNT:
        top = incident.get("largest", [])[:LARGEST]
        words = incident_line(incident["fell"], incident.get("of"), incident.get("median_drop_pct"))
        lines.append((f"{words}; the largest {len(top)}:", False))
        lines += [(drop_line(d), True) for d in top]
        if incident["fell"] > len(top):
            lines.append((f"… and {incident['fell'] - len(top):,} more fell", False))
    else:
        fell = [drop_line(d) for d in drops if not d.get("vanished")]
        lines += listed(fell, incident.get("fell", len(fell)), limit)
    if vanished.get("scope") == ACCOUNT:
        lines.append((vanished_line(vanished), False))
    else:
        gone = [drop_line(d) for d in drops if d.get("vanished")]
        lines += listed(gone, vanished.get("count", len(gone)), limit)
    return lines


def check_description(drops: pd.DataFrame) -> str | None:
    """The drop check's description when some account's drops are an account-wide incident
    (a :func:`segment_assets.defs.drops.flag_drops` frame), else None."""
    if "scope" not in drops or not (drops["scope"] == "account").any():
        return None
    parts = []
    wide = drops[drops["scope"] == "account"]
    for (provider, account), own in wide.groupby(["provider", "account"], sort=True):
        fell = own[~is_vanished(own)]
        gone = own[is_vanished(own)]
        if len(fell):
            median = fell["drop_pct"].median()
            of = fell["account_segments"].max() if "account_segments" in fell else None
            top = largest(fell, 3)
            names = ", ".join(
                str(r.get("segment_name") or r["segment_id"]) for _, r in top.iterrows()
            )
            parts.append(
                f"{provider} account {account}: "
                f"{incident_line(len(fell), _int(of), _float(median))} (largest: {names})"
            )
        if len(gone):
            of = gone["account_segments"].max() if "account_segments" in gone else None
            of_text = f" of {int(of):,}" if _int(of) else ""
            parts.append(
                f"{provider} account {account}: {len(gone):,}{of_text} segments vanished together"
            )
    return "; ".join(parts)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
