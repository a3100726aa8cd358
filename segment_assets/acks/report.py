"""What a drop check shows of the acknowledgements: the acknowledged days it left out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import pandas as pd

from segment_assets.acks.apply import of_kind, overlapping
from segment_assets.acks.records import from_frame


def acknowledged_for(
    acks: pd.DataFrame, providers: Collection[str], start: dt.date, end: dt.date
) -> pd.DataFrame:
    """The acknowledgements of ``providers`` whose days meet ``start`` … ``end`` (the days
    a judgement read)."""
    found = overlapping(of_kind(acks, "ack"), start, end)
    return found[found["provider"].isin(list(providers))].reset_index(drop=True)


def acknowledged_markdown(acknowledged: pd.DataFrame, day: dt.date) -> str:
    """The acknowledged days as a Markdown table: id, account, segment, days, reason, and
    whether ``day`` itself was acknowledged (then not judged); empty text without any."""
    if acknowledged.empty:
        return ""
    records = sorted(from_frame(acknowledged), key=lambda a: (a.first_day, a.ack_id))
    table = pd.DataFrame(
        {
            "id": [a.ack_id for a in records],
            "account": [a.account for a in records],
            "segment": [a.segment_id or "(all)" for a in records],
            "days": [a.days_text() for a in records],
            f"{day}": [
                "not judged" if a.first_day and a.first_day <= day <= a.last_day else "—"
                for a in records
            ],
            "reason": [(a.reason or "").replace("|", "\\|") for a in records],
        }
    )
    return table.to_markdown(index=False)
