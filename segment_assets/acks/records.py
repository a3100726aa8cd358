"""What an acknowledgement or a mute is, and how it is kept in ``segments.segment_acks``.

An **acknowledgement** (kind ``ack``) says that the counts of a provider account, or of one
of its segments, were wrong from ``first_day`` to ``last_day`` for a known reason (an
outage, a broken integration): those days leave the baseline and are not judged. A
**mute** (kind ``mute``) says that drops of the account or segment on days up to
``last_day`` send no alert; they are still judged and shown (``first_day`` is empty).

``account`` is the store's account id (the ``account`` column of the provider tables);
``segment_id`` is empty for the whole account. ``ack_id`` is short, for a person to type.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd

from segment_assets.providers.columns import Column

ACKS_TABLE = "segment_acks"
Kind = Literal["ack", "mute"]
KINDS: tuple[str, ...] = ("ack", "mute")
ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud, typed back
ID_LENGTH = 6

ACK_COLUMNS: tuple[Column, ...] = (
    Column("ack_id", "VARCHAR", "Short id to name it on the command line."),
    Column("kind", "VARCHAR", "'ack' (days left out of the baseline) or 'mute' (no alert)."),
    Column("provider", "VARCHAR", "The provider."),
    Column("account", "VARCHAR", "The account id, as in the provider tables."),
    Column("segment_id", "VARCHAR", "The segment; NULL for every segment of the account."),
    Column("first_day", "DATE", "First day acknowledged; NULL for a mute."),
    Column("last_day", "DATE", "Last day acknowledged, or the last day a mute holds."),
    Column("reason", "VARCHAR", "Why, in words."),
    Column("created_at", "TIMESTAMP", "When it was recorded (UTC)."),
)
COLUMN_TYPES: dict[str, str] = {c.name: c.sql_type for c in ACK_COLUMNS}
COLUMN_NAMES: list[str] = [c.name for c in ACK_COLUMNS]


@dataclass(frozen=True)
class Ack:
    """One acknowledgement or mute, as stored."""

    ack_id: str
    kind: Kind
    provider: str
    account: str
    segment_id: str | None
    first_day: dt.date | None
    last_day: dt.date
    reason: str
    created_at: dt.datetime

    def days_text(self) -> str:
        """``2026-03-01 → 2026-03-07``, or ``until 2026-03-20`` for a mute."""
        if self.first_day is None:
            return f"until {self.last_day}"
        if self.first_day == self.last_day:
            return str(self.first_day)
        return f"{self.first_day} → {self.last_day}"


def new_id(taken: Collection[str]) -> str:
    """A fresh id of ``ID_LENGTH`` characters that no stored row has."""
    while True:
        candidate = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
        if candidate not in taken:
            return candidate


def to_frame(acks: Collection[Ack]) -> pd.DataFrame:
    """Rows for :data:`ACKS_TABLE`, in its column order."""
    return pd.DataFrame([asdict(a) for a in acks], columns=COLUMN_NAMES)


def normalise(stored: pd.DataFrame) -> pd.DataFrame:
    """The rows as read from either store, with the same types whatever the store: text as
    objects (None for NULL), days as ``datetime.date`` (None for NULL), ``created_at`` as
    a naive UTC ``Timestamp``; every column of :data:`ACK_COLUMNS`, even when the table does
    not exist yet (then no rows)."""
    out = stored.reindex(columns=COLUMN_NAMES)
    for name in ("ack_id", "kind", "provider", "account", "segment_id", "reason"):
        out[name] = out[name].astype(object).where(out[name].notna(), None)
    for name in ("first_day", "last_day"):
        days = pd.to_datetime(out[name], errors="coerce")
        out[name] = pd.Series(
            [d.date() if pd.notna(d) else None for d in days], index=out.index, dtype=object
        )
    out["created_at"] = pd.to_datetime(out["created_at"], errors="coerce")
    return out.reset_index(drop=True)


def from_frame(frame: pd.DataFrame) -> list[Ack]:
    """The rows of a :func:`normalise`\\ d frame as records."""
    return [Ack(**row) for row in frame[COLUMN_NAMES].to_dict("records")]
