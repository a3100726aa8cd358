"""Acknowledgements and mutes: what people know about a drop, kept in the store.

* :mod:`~segment_assets.acks.records` — what one is, and its table ``segments.segment_acks``;
* :mod:`~segment_assets.acks.table` — reading, adding and removing them in the store;
* :mod:`~segment_assets.acks.apply` — what they do to a day's judgement (pure);
* :mod:`~segment_assets.acks.accounts` — an account by its accounts-file name or its id;
* :mod:`~segment_assets.acks.commands` — the command line's ``ack``, ``mute``, ``acks``
  and ``unack``;
* :mod:`~segment_assets.acks.report` — what the drop check shows of them.
"""

from segment_assets.acks.apply import acknowledged_on, blank_acknowledged, muted
from segment_assets.acks.records import ACKS_TABLE, Ack
from segment_assets.acks.table import add_ack, read_acks, remove_ack

__all__ = [
    "ACKS_TABLE",
    "Ack",
    "acknowledged_on",
    "add_ack",
    "blank_acknowledged",
    "muted",
    "read_acks",
    "remove_ack",
]
