"""What a drop alert says in words: its headline and body, as the Dagster log and Slack get
them. A drop whose segment's definition changed shortly before says "definition changed on
<date>"; an account-wide incident and recovered segments are worded by
:mod:`~segment_assets.defs.incident_text`. The alert itself, and its JSON payload, are
:mod:`~segment_assets.defs.alert_payload`.
"""

from __future__ import annotations

from typing import Any

from segment_assets.defs.alert_payload import RECOVERED, SNAPSHOT_FAILED, DropAlert
from segment_assets.defs.incident_text import account_wide_body, listed, recovered_line
from segment_assets.detection.causes import CAUSE_COLUMN, cause_words
from segment_assets.providers import registry

SLACK_LINES = 15


def account_words(alert: DropAlert) -> str:
    """``Mobile app (e4b8d2c6-…)`` for a named account, ``account e4b8d2c6-…`` else."""
    if alert.account_name:
        return f"{alert.account_name} ({alert.account})"
    return f"account {alert.account}"


def alert_headline(alert: DropAlert) -> str:
    label = registry.label(alert.provider)
    if alert.kind == SNAPSHOT_FAILED:
        return (
            f"{label} {account_words(alert)} could not be snapshotted for "
            f"{alert.partition}; the other accounts were stored"
        )
    if alert.kind == RECOVERED:
        noun = "segment" if len(alert.recovered) == 1 else "segments"
        return (
            f"{len(alert.recovered)} {label} {noun} recovered on {alert.partition} in "
            f"{account_words(alert)}"
        )
    noun = "segment" if alert.drop_count == 1 else "segments"
    where = (
        f"in {alert.account_name} ({alert.account}, {alert.errors} ERROR)"
        if alert.account_name
        else f"(account {alert.account}, {alert.errors} ERROR)"
    )
    return f"{alert.drop_count} {label} {noun} dropped on {alert.partition} {where}"


def alert_lines(alert: DropAlert) -> list[str]:
    """The body: one line a drop (with "… and N more"), the failure's error, or one line a
    recovered segment."""
    return [text for text, _ in alert_body(alert)]


def alert_body(alert: DropAlert, limit: int | None = None) -> list[tuple[str, bool]]:
    """The body's lines, each with whether it is a segment's line; at most ``limit`` segment
    lines of segments on their own (an account-wide incident says itself in one line, then
    names its largest few)."""
    if alert.kind == SNAPSHOT_FAILED:
        return [(str(alert.error), False)]
    if alert.kind == RECOVERED:
        return listed([recovered_line(r) for r in alert.recovered], len(alert.recovered), limit)
    if not alert.account_wide:
        return listed([drop_line(d) for d in alert.drops], alert.drop_count, limit)
    return account_wide_body(alert.incident, alert.vanished, alert.drops, limit, drop_line)


def _count(value: Any) -> str:
    return "?" if value is None else f"{int(value):,}"


def drop_line(drop: dict[str, Any]) -> str:
    """ "name (id): 5,400 → 510 (−91 %) ERROR", then " — definition changed on <date>"
    when that explains it, or " — still down after its mute ended (dropped on <date>)";
    vanished segments say so."""
    name = drop.get("segment_name") or drop["segment_id"]
    label = f"{name} ({drop['segment_id']})" if drop.get("segment_name") else str(name)
    before = drop["before"] if drop.get("before") is not None else drop.get("expected")
    if drop.get("vanished"):
        return f"{label}: {_count(before)} → gone (vanished) {drop['severity']}"
    pct = drop.get("drop_pct")
    pct_text = f"−{pct:.0f} %" if pct is not None else "?"
    cause = cause_words(drop.get(CAUSE_COLUMN))
    if drop.get("dropped_on"):
        cause = f"still down after its mute ended (dropped on {drop['dropped_on']})"
    return (
        f"{label}: {_count(before)} → {_count(drop['user_count'])} ({pct_text}) {drop['severity']}"
        + (f" — {cause}" if cause else "")
    )


def log_text(alert: DropAlert) -> str:
    lines = alert_lines(alert)
    return f"{alert_headline(alert)}: {alert.url}\n" + "\n".join(f"  {line}" for line in lines)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: DropAlert) -> dict[str, Any]:
    """A Slack incoming-webhook body: a headline linking to the partition, one line a drop
    (at most ``SLACK_LINES``) or an account-wide incident's lines."""
    lines = [
        f"• {_slack_escape(text)}" if segment else _slack_escape(text)
        for text, segment in alert_body(alert, SLACK_LINES)
    ]
    icon = ":white_check_mark:" if alert.kind == RECOVERED else ":rotating_light:"
    headline = _slack_escape(alert_headline(alert))
    text = f"{icon} *{headline}* — <{alert.url}|open in Dagster>\n" + "\n".join(lines)
    return {"text": text}
