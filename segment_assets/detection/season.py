"""The season of each segment: weekday factors and day-of-month factors (rules 1 and 2 of
the package docstring), on a log scale, learnt from the window before ``as_of``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from segment_assets.detection.arrays import (
    MAD_TO_SIGMA,
    QUARTILE_TO_SIGMA,
    mad,
    nanmedian,
    nanquantile,
    sliding_nanmedian,
    step_changes,
)
from segment_assets.detection.thresholds import (
    MONTH_HALF,
    MONTH_MIN_EFFECT,
    TODAY,
    WEEK,
    WIDTH,
    YOUNG_DAYS,
    history_start,
)


@dataclass(frozen=True)
class Calendar:
    """The days of the month of the window's columns (column ``TODAY`` is as_of), and per day
    of the month (1…31, row 0…30) the past columns that fall on it (up to three in
    ``HISTORY_DAYS_NEEDED`` days; ``TODAY`` pads, as_of's column is never used)."""

    month_day: np.ndarray
    month_columns: np.ndarray

    @classmethod
    def of(cls, as_of: dt.date) -> Calendar:
        first = history_start(as_of)
        month_day = pd.date_range(first, periods=WIDTH, freq="D").day.to_numpy()
        past = month_day[:TODAY]
        # at most 31 short rows, whatever the data
        rows = [np.flatnonzero(past == day) for day in range(1, 32)]
        width = max(len(r) for r in rows)
        month_columns = np.full((31, width), TODAY, dtype=np.int64)
        for day, r in enumerate(rows):
            month_columns[day, : len(r)] = r
        return cls(month_day, month_columns)


def month_factors(flat: np.ndarray, residual: np.ndarray, calendar: Calendar) -> np.ndarray:
    """Day-of-month factors per segment (segment × 31, log scale; 0 where none is learnt).

    Each past observation (``flat``: weekday factors out) is compared with a reference
    level of the ``2 * MONTH_HALF + 1`` days centred on it; a day of the month seen in at
    least two months gets a factor when it was off the same way in every month (see
    :func:`_month_effects`: a one-off incident or spike never makes a pattern, nor do two
    that happen to fall on the same day of the month while a third month disagrees), kept
    only from ``MONTH_MIN_EFFECT`` on. Only the segments whose ``residual`` (against the
    weekday pass's centred medians, weekday factors out) is that far off on a day of the
    month twice the same way are computed, and only those with two months of history (a
    count in the window's first week): the others (most segments) have no monthly pattern
    to learn, and a young segment's first, often partial, counts must not meet a later
    fall on the same day of the month.
    """
    n_seg = flat.shape[0]
    factor = np.zeros((n_seg, 31))
    # A candidate has two months of history (a count in the window's first week, eight
    # weeks ago) and a day of the month off the same way twice, by MONTH_MIN_EFFECT and
    # then by three standard errors of its noise more.
    old_enough = ~np.isnan(flat[:, :WEEK]).all(axis=1)
    candidates = np.flatnonzero(_off_twice(residual, calendar, 0.0) & old_enough)
    steps, _ = step_changes(flat[candidates])
    noise = np.nan_to_num(MAD_TO_SIGMA * mad(steps) / np.sqrt(2.0), nan=0.0)
    keep = _off_twice(residual[candidates], calendar, 3.0 * noise / np.sqrt(3.0))
    candidates, noise = candidates[keep], noise[keep]
    if candidates.size == 0:
        return factor
    part = flat[candidates]
    # The reference is the lower quartile of the days around (raised by the quartile's
    # distance from the median under the segment's own noise), not their median: a swell
    # that lasts half the month must not lift the days that have none.
    pad = np.full((candidates.size, MONTH_HALF), np.nan)
    padded = np.concatenate([pad, part, pad], axis=1)
    size = 2 * MONTH_HALF + 1
    window = sliding_window_view(padded, size, axis=1)
    quartile = nanquantile(window, 0.25, min_count=WEEK)
    centred = quartile + QUARTILE_TO_SIGMA * noise[:, None]
    learnt = _month_effects(part - centred, calendar, noise)
    factor[candidates] = np.where(np.abs(learnt) >= MONTH_MIN_EFFECT, learnt, 0.0)
    return factor


def _off_twice(residual: np.ndarray, calendar: Calendar, margin: Any) -> np.ndarray:
    """Per segment: whether ``residual`` (segment × past day) is off by MONTH_MIN_EFFECT
    plus ``margin`` (per segment) the same way on two occurrences of a day of the month."""
    by_day = np.concatenate([residual, np.zeros((residual.shape[0], 1))], axis=1)
    by_day = by_day[:, calendar.month_columns]
    limit = MONTH_MIN_EFFECT + np.reshape(margin, (-1, 1, 1))
    with np.errstate(invalid="ignore"):
        up = np.count_nonzero(by_day >= limit, axis=-1) >= 2
        down = np.count_nonzero(by_day <= -limit, axis=-1) >= 2
    return np.any(up | down, axis=1)


def _month_effects(values: np.ndarray, calendar: Calendar, noise: np.ndarray) -> np.ndarray:
    """Per segment and day of the month: how far ``values`` (segment × past day, log scale)
    were above 0 on that day of the month in every month seen (the smallest of those), or
    below it in every month (the closest to 0), once seen in at least two months; 0 when
    the months disagree. Shrunk towards 0 by three standard errors of ``noise`` (per
    segment): two or three values that happen to agree are no proof."""
    padded = np.concatenate([values, np.full((values.shape[0], 1), np.nan)], axis=1)
    by_day = padded[:, calendar.month_columns]  # segment × 31 × occurrences
    seen = np.count_nonzero(~np.isnan(by_day), axis=-1)
    lowest = np.fmin.reduce(by_day, axis=-1)
    highest = np.fmax.reduce(by_day, axis=-1)
    effect = np.where(lowest > 0, lowest, np.where(highest < 0, highest, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = 3.0 * noise[:, None] / np.sqrt(seen)
    shrunk = np.sign(effect) * np.maximum(np.abs(effect) - margin, 0.0)
    return np.where(seen >= 2, np.nan_to_num(shrunk, nan=0.0), 0.0)


def weekday_factors(
    past: np.ndarray, flat: np.ndarray, half: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median per weekday of ``past`` minus the median of ``flat`` over the ``2 * half + 1``
    days centred on each day, how many days each weekday's median saw, and those
    differences (segment × day)."""
    n_seg = past.shape[0]
    pad = np.full((n_seg, half), np.nan)
    padded = np.concatenate([pad, flat, pad], axis=1)
    centred = sliding_nanmedian(padded, 2 * half + 1, min_count=3)
    residual = past - centred
    by_weekday = residual.reshape(n_seg, TODAY // WEEK, WEEK).transpose(0, 2, 1)
    seen = np.count_nonzero(~np.isnan(by_weekday), axis=-1)
    factor = nanmedian(by_weekday, min_count=1, counts=seen)
    # Shrink a raising factor towards 0 by twice its standard error, so that weeks that
    # disagree (an incident or a level shift next to the day) cannot make up a weekday that
    # is expected higher than the rest. A lowering factor is kept (at worst it hides a
    # drop), except in a segment younger than four weeks: there a fall (or a first, partial
    # count) seen on one of the few days of its weekday would teach it that the weekday is
    # low, and the fall would look like its weekday the day after.
    deviation = np.abs(by_weekday - factor[..., None])  # NaN where by_weekday is (or none is)
    spread = MAD_TO_SIGMA * nanmedian(deviation, min_count=1, counts=seen)
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = 2.0 * spread / np.sqrt(seen)
    young = np.isnan(past[:, : TODAY - YOUNG_DAYS]).all(axis=1)
    shrink = (factor > 0) | young[:, None]
    factor = np.where(shrink, np.sign(factor) * np.maximum(np.abs(factor) - margin, 0.0), factor)
    return factor, seen, residual
