"""A day's drops as the check and ``segment_drops`` show them: a Markdown table (segment,
before → after, drop %, expected, severity, and the account, muted and cause columns when
they say something) and the numbers of its metadata. The drops are those of
:func:`~segment_assets.defs.drops.flag_drops`.
"""

from __future__ import annotations

import pandas as pd

from segment_assets.detection import is_vanished
from segment_assets.detection.causes import CAUSE_COLUMN, cause_words

MARKDOWN_ROWS = 50


def _count(value: object) -> str:
    return "—" if pd.isna(value) else f"{int(value):,}"


def change_text(drops: pd.DataFrame) -> pd.Series:
    """ "before → after" per drop ("1,200 → gone" for a vanished segment)."""
    after = drops["user_count"].map(_count).where(~is_vanished(drops), "gone")
    before = drops["before"].where(drops["before"].notna(), drops["expected"].round())
    return before.map(_count) + " → " + after


def drop_pct_text(drops: pd.DataFrame) -> pd.Series:
    text = drops["drop_pct"].map(lambda v: "—" if pd.isna(v) else f"−{v:.0f} %")
    return text.where(~is_vanished(drops), "vanished")


def segment_label(drops: pd.DataFrame) -> pd.Series:
    names = drops["segment_name"].fillna("").astype(str)
    ids = drops["segment_id"].astype(str)
    return (names + " (" + ids + ")").where(names != "", ids)


def drops_markdown(
    drops: pd.DataFrame, accounts: int | None = None, limit: int = MARKDOWN_ROWS
) -> str:
    """A Markdown table of the drops (segment, before → after, drop %, expected, severity),
    with the account after the segment when there is more than one account: ``accounts``
    (the accounts in the history :func:`~segment_assets.defs.drops.flag_drops` read), or
    else among the drops; and a ``cause`` column (``definition changed on 2026-03-12``) when
    a drop has one."""
    if drops.empty:
        return "_no drops_"
    shown = drops.head(limit)
    several = (drops["account"].nunique() if accounts is None else accounts) > 1
    accounts = (
        {"account": shown["account"].astype(str).str.replace("|", "\\|", regex=False)}
        if several
        else {}
    )
    table = pd.DataFrame(
        {
            "segment": segment_label(shown).str.replace("|", "\\|", regex=False),
            **accounts,
            "before → after": change_text(shown),
            "drop %": drop_pct_text(shown),
            "expected": shown["expected"].map(_count),
            "severity": shown["severity"],
            **_muted_column(drops, shown),
            **cause_column(shown),
        }
    ).to_markdown(index=False)
    if len(drops) > limit:
        table += f"\n\n_… and {len(drops) - limit} more_"
    return table


def _muted_column(drops: pd.DataFrame, shown: pd.DataFrame) -> dict[str, pd.Series]:
    """A ``muted`` column ("muted: no alert" on the muted drops) when any drop is muted."""
    if "muted" not in drops or not drops["muted"].fillna(False).any():
        return {}
    return {"muted": shown["muted"].fillna(False).map({True: "muted: no alert", False: ""})}


def cause_column(drops: pd.DataFrame) -> dict[str, pd.Series]:
    """``{"cause": …}`` when a drop has a known cause, else nothing (the table stays as
    narrow as before)."""
    if CAUSE_COLUMN not in drops or drops[CAUSE_COLUMN].isna().all():
        return {}
    return {"cause": drops[CAUSE_COLUMN].map(cause_words).fillna("")}


def drops_summary(drops: pd.DataFrame) -> dict[str, int]:
    """Numeric metadata: how many drops, of which ERROR, WARN, vanished and muted."""
    return {
        "drops": len(drops),
        "errors": int((drops["severity"] == "ERROR").sum()),
        "warnings": int((drops["severity"] == "WARN").sum()),
        "vanished": int(is_vanished(drops).sum()) if len(drops) else 0,
        "muted": int(drops["muted"].fillna(False).sum()) if "muted" in drops else 0,
    }
