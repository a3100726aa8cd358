"""Planted changes to the generated data: drops in counts, segments that disappear, and
edits of a segment's definition (its filter).

Changes are kept per list (one list = one paginated collection, e.g. one ActionHub
type x basis list of one program) and per segment index in that list. Writers hold the
state lock; readers need not, because every stored value is an immutable tuple that is
replaced, never mutated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

_CACHE_LIMIT = 512


@dataclass(frozen=True)
class Drop:
    index: int
    start: int
    end: int | None
    factor: float


class Changes:
    def __init__(self) -> None:
        self._drops: dict[str, tuple[Drop, ...]] = {}
        self._removals: dict[str, tuple[tuple[int, int], ...]] = {}
        self._edits: dict[str, tuple[tuple[int, dt.datetime], ...]] = {}
        self._visible: dict[tuple[str, int, int, int], np.ndarray] = {}
        self._version = 0

    def add_drop(
        self, list_key: str, index: int, start: int, end: int | None, factor: float
    ) -> None:
        if factor < 0:
            raise ValueError("factor must be >= 0")
        self._drops[list_key] = (*self._drops.get(list_key, ()), Drop(index, start, end, factor))

    def add_removal(self, list_key: str, index: int, start: int) -> None:
        self._removals[list_key] = (*self._removals.get(list_key, ()), (index, start))
        self._version += 1

    def add_edit(self, list_key: str, index: int, at: dt.datetime) -> None:
        self._edits[list_key] = (*self._edits.get(list_key, ()), (index, at))

    def edits(self, list_key: str, index: int, until: dt.datetime) -> list[dt.datetime]:
        """When segment ``index`` of the list was edited up to ``until``, oldest first."""
        return sorted(at for i, at in self._edits.get(list_key, ()) if i == index and at <= until)

    def clear(self) -> None:
        self._drops = {}
        self._removals = {}
        self._edits = {}
        self._version += 1
        self._visible = {}

    def apply_drops(
        self, list_key: str, idx: np.ndarray, days: np.ndarray | int, values: np.ndarray
    ) -> np.ndarray:
        """``values`` (sizes of segments ``idx`` on ``days``) with the planted drops applied."""
        drops = self._drops.get(list_key)
        if not drops:
            return values
        days = np.broadcast_to(np.asarray(days, dtype=np.int64), idx.shape)
        out = np.array(values, dtype=np.float64)
        for d in drops:
            hit = (idx == d.index) & (days >= d.start)
            if d.end is not None:
                hit &= days < d.end
            out = np.where(hit, out * d.factor, out)
        return out

    def is_removed(self, list_key: str, index: int, day: int) -> bool:
        return any(i == index and day >= s for i, s in self._removals.get(list_key, ()))

    def visible(self, list_key: str, n: int, day: int) -> np.ndarray:
        """Indices (ascending) of the segments of a list of ``n`` still present on ``day``."""
        removals = self._removals.get(list_key, ())
        key = (list_key, n, day if removals else 0, self._version if removals else 0)
        cached = self._visible.get(key)
        if cached is not None:
            return cached
        gone = sorted({i for i, s in removals if day >= s and 0 <= i < n})
        result = np.delete(np.arange(n, dtype=np.int64), gone) if gone else np.arange(n)
        result.setflags(write=False)
        if len(self._visible) > _CACHE_LIMIT:
            self._visible = {}
        self._visible[key] = result
        return result
