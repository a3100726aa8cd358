"""The detector with the settings of the accounts file: each segment judged with its own
thresholds, and the drops each segment's age limit still lets alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from segment_assets.config.detection import DetectionSettings, SegmentRule
from segment_assets.config.segment_settings import resolve_segments
from segment_assets.detection import find_drops
from segment_assets.detection.per_segment import find_drops_per_segment
from segment_assets.detection.thresholds import DropThresholds


def find_configured_drops(
    history: pd.DataFrame, as_of: dt.date, settings: DetectionSettings, providers: Sequence[str]
) -> tuple[pd.DataFrame, dict[SegmentRule, int]]:
    """The drops of ``history`` on ``as_of`` (segments of ``providers``), each segment judged
    with the thresholds ``settings`` give it; and how many of the segments listed on
    ``as_of`` each segment rule of their accounts matched.

    When every segment has the same thresholds and no rule applies (the common case), this
    is :func:`find_drops` with them, at no extra cost.
    """
    single = settings.one_thresholds(list(providers))
    if single is not None:
        return find_drops(history, as_of, single), {}
    matched: dict[SegmentRule, int] = {}

    def thresholds_of(segments: pd.DataFrame) -> tuple[np.ndarray, list[DropThresholds]]:
        resolved = resolve_segments(settings, segments)
        matched.update(resolved.matched)
        return resolved.thresholds()

    return find_drops_per_segment(history, as_of, thresholds_of), matched


def within_alert_age(
    drops: pd.DataFrame, settings: DetectionSettings, age_days: int
) -> pd.DataFrame:
    """The drops (of a partition ``age_days`` old) whose segment's ``alert_max_age_days``
    is at least that age: the ones that may still alert."""
    if drops.empty:
        return drops
    limits = resolve_segments(settings, drops).values["alert_max_age_days"].to_numpy()
    return drops[limits >= age_days].reset_index(drop=True)
