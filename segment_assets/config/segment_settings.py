"""The settings of each segment: its account's (or provider's) values, overridden by the
segment rules that match it, for a whole frame of segments at once.

Work is per account and per rule (a comparison or a glob over the account's segments),
never per segment; a glob is matched against each distinct name once when the names are
categoricals (as the stores read them).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segment_assets.config.detection import (
    THRESHOLD_SETTINGS,
    DetectionSettings,
    SegmentRule,
)
from segment_assets.config.detection_file import SEGMENT_SETTINGS
from segment_assets.detection.per_segment import thresholds_groups
from segment_assets.detection.thresholds import DropThresholds

_INTEGERS = frozenset({"min_history_days", "alert_max_age_days"})


@dataclass(frozen=True)
class SegmentSettings:
    """The segment-level settings of each segment of a frame (``values``, one row per row of
    the frame, a column per setting), and how many of the segments each rule of their
    accounts matched (``matched``; a rule of an account not in the frame is left out)."""

    values: pd.DataFrame
    matched: dict[SegmentRule, int] = field(default_factory=dict)

    def thresholds(self) -> tuple[np.ndarray, list[DropThresholds]]:
        """Each segment's group of shared thresholds, and the thresholds of each group."""
        return thresholds_groups(self.values[list(THRESHOLD_SETTINGS)])


def resolve_segments(settings: DetectionSettings, segments: pd.DataFrame) -> SegmentSettings:
    """The settings of each segment of ``segments`` (columns ``provider``, ``account`` —
    what the store's column holds —, ``segment_id`` and, for ``name`` rules,
    ``segment_name``; text or categoricals)."""
    n = len(segments)
    values = {
        name: np.zeros(n, dtype=np.int64 if name in _INTEGERS else np.float64)
        for name in SEGMENT_SETTINGS
    }
    matched: dict[SegmentRule, int] = {}
    if n:
        by_account = segments.groupby(["provider", "account"], observed=True, sort=False).indices
        for (provider, account), rows in by_account.items():
            own = settings.account(str(provider), str(account))
            for name, value in own.segment_values().items():
                values[name][rows] = value
            for rule in own.segments:
                hit = rows[_matches(rule, segments, rows)]
                matched[rule] = int(hit.size)
                for name, value in rule.values.items():
                    values[name][hit] = value
    return SegmentSettings(pd.DataFrame(values, copy=False), matched)


def _matches(rule: SegmentRule, segments: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` the rule matches, as a boolean array."""
    if rule.segment_id is not None:
        ids = segments["segment_id"].iloc[rows]
        return (ids.astype(object) == rule.segment_id).to_numpy(dtype=bool)
    if "segment_name" not in segments:
        return np.zeros(rows.size, dtype=bool)
    names = segments["segment_name"].iloc[rows]
    pattern = re.compile(fnmatch.translate(str(rule.name_glob)))
    if isinstance(names.dtype, pd.CategoricalDtype):  # each distinct name once
        hits = _glob_hits(names.cat.categories.to_series(), pattern)
        codes = names.cat.codes.to_numpy()
        return np.append(hits, False)[np.where(codes >= 0, codes, hits.size)]
    return _glob_hits(names, pattern)


def _glob_hits(names: pd.Series, pattern: re.Pattern[str]) -> np.ndarray:
    return names.astype("string").str.match(pattern).fillna(False).to_numpy(dtype=bool)
