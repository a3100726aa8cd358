""":func:`find_drops` with thresholds of each segment's own: the segments are put in groups
that share thresholds, and each group is judged as :func:`find_drops` judges all.

The history is read into its matrices once; each group's segments are judged on their rows
(segments are judged independently, so a segment is judged exactly as :func:`find_drops`
with its group's thresholds would judge it), and vanished segments, which no threshold
touches, are found once over the whole history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from segment_assets.days import as_date
from segment_assets.detection.judge import in_blocks
from segment_assets.detection.output import drop_frame, empty_frame, finish, vanished_frame
from segment_assets.detection.season import Calendar
from segment_assets.detection.thresholds import TODAY, DropThresholds
from segment_assets.detection.window import Window

#: ``segments`` → (each segment's group, the thresholds of each group): given the segments
#: listed on the judged day (columns provider, account, segment_id and segment_name when
#: the history has it), a group number per row, indexing the thresholds.
ThresholdsOf = Callable[[pd.DataFrame], tuple[np.ndarray, Sequence[DropThresholds]]]

SEGMENT_COLUMNS: tuple[str, ...] = ("provider", "account", "segment_id", "segment_name")


def find_drops_per_segment(
    history: pd.DataFrame, as_of: dt.date, thresholds_of: ThresholdsOf
) -> pd.DataFrame:
    """What :func:`~segment_assets.detection.find_drops` finds, each segment judged with the
    thresholds ``thresholds_of`` gives its group; same columns and order.

    ``thresholds_of`` is called once, with the segments listed on ``as_of`` (the only ones
    that can newly drop), as a frame whose text columns may be categoricals.
    """
    as_of = as_date(as_of)
    with_name = "segment_name" in history.columns
    win = Window.checked(history, as_of)
    if win is None:
        return empty_frame(with_name)

    listed = np.flatnonzero(win.present[:, TODAY])
    rows = win.row_of[listed, TODAY]
    segments = pd.DataFrame(
        {c: win.rows[c][rows] for c in SEGMENT_COLUMNS if c in win.rows}, copy=False
    )
    group, thresholds = thresholds_of(segments)
    group = np.asarray(group)
    if group.shape != listed.shape:
        raise ValueError(f"thresholds_of gave {group.size} groups for {listed.size} segments")

    calendar = Calendar.of(as_of)
    expected = np.full(win.counts.shape[0], np.nan)
    pct = np.full(win.counts.shape[0], np.nan)
    parts = []
    for number, th in enumerate(thresholds):
        seg = listed[group == number]
        if seg.size == 0:
            continue
        new, expected[seg], pct[seg] = in_blocks(
            win.observed[seg], win.counts[seg], win.today_shift[seg], calendar, th
        )
        parts.append(drop_frame(win, seg[new], expected, pct, th, with_name))
    parts.append(vanished_frame(win, with_name))
    return finish(parts, with_name)


def thresholds_groups(values: pd.DataFrame) -> tuple[np.ndarray, list[DropThresholds]]:
    """Segments grouped by their thresholds: ``values`` has a column per
    :class:`DropThresholds` field it sets (one row per segment); returns each row's group
    and the thresholds of each group, in order of first appearance."""
    if values.empty:
        return np.zeros(0, dtype=np.int64), []
    codes, uniques = pd.MultiIndex.from_frame(values).factorize()
    names = list(values.columns)
    return codes, [
        DropThresholds(
            **{
                n: v.item() if isinstance(v, np.generic) else v
                for n, v in zip(names, u, strict=True)
            }
        )
        for u in uniques
    ]
