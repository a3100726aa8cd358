"""The vectorised pieces the stages share, over segment × day matrices (NaN: no value):
medians, quantiles and MADs that ignore NaN, sliding and trailing medians, running minima,
the change since the previous observation, and the previous or last column where a mask
holds. Each works on all rows at once, without a Python loop per row."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAD_TO_SIGMA = 1.4826
QUARTILE_TO_SIGMA = 0.6745  # distance from the median to a quartile, in standard deviations


def sliding_min_before(values: np.ndarray, size: int) -> np.ndarray:
    """Per row and column, the smallest of ``values`` in the ``size`` columns before it
    (NaN ignored; NaN if none), by running minima within blocks of ``size`` columns (a
    window spans the end of one block and the start of the next)."""
    n_rows, n_cols = values.shape
    blocks = -(-(n_cols + size) // size)
    padded = np.full((n_rows, blocks * size), np.nan)
    padded[:, size : size + n_cols] = values
    shaped = padded.reshape(n_rows, blocks, size)
    from_start = np.fmin.accumulate(shaped, axis=2).reshape(n_rows, -1)
    to_end = np.fmin.accumulate(shaped[:, :, ::-1], axis=2)[:, :, ::-1].reshape(n_rows, -1)
    # the window before column c (padded c + size) is padded columns c … c + size - 1
    start = np.arange(n_cols)
    return np.fmin(to_end[:, start], from_start[:, start + size - 1])


def mad(values: np.ndarray) -> np.ndarray:
    """Median absolute deviation over the last axis (NaN ignored; NaN below 5 values)."""
    centre = nanmedian(values, min_count=5)
    return nanmedian(np.abs(values - centre[..., None]), min_count=5)


def step_changes(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment and day: the change since the previous observation (gaps allowed) and
    how many days back that observation is; NaN and 0 where there is none."""
    columns = np.arange(flat.shape[1])
    last = np.maximum.accumulate(np.where(np.isnan(flat), -1, columns), axis=1)
    previous = np.concatenate([np.full((flat.shape[0], 1), -1), last[:, :-1]], axis=1)
    before = np.take_along_axis(flat, np.maximum(previous, 0), axis=1)
    steps = np.where(previous >= 0, flat - before, np.nan)
    return steps, np.where(previous >= 0, columns - previous, 0)


def trailing_median(
    values: np.ndarray, first: int, last: int, size: int, min_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each column ``d`` in ``first … last``: the median of the ``size`` columns before
    ``d`` (NaN ignored, NaN below ``min_count`` values) and the mean column of the values
    used (where that median sits in time)."""
    lo = first - size
    span = values[:, lo:last]
    median = sliding_nanmedian(span, size, min_count=min_count)
    valid = ~np.isnan(span)
    zero = np.zeros((span.shape[0], 1))
    count = np.concatenate([zero, np.cumsum(valid, axis=1)], axis=1)
    where = np.concatenate([zero, np.cumsum(valid * np.arange(lo, last), axis=1)], axis=1)
    n = count[:, size:] - count[:, :-size]
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (where[:, size:] - where[:, :-size]) / n
    return median, centroid


def nanmedian(
    values: np.ndarray, min_count: int = 1, counts: np.ndarray | None = None
) -> np.ndarray:
    """Median over the last axis ignoring NaN; NaN where fewer than ``min_count`` values.

    A sort-based ``np.nanmedian`` that stays vectorised for many short rows (such as the
    sliding windows of every segment): the rows are sorted once, as one 2-D array, and
    the middle value(s) of each row are picked by position. ``counts``, when the caller
    has them, are the numbers of non-NaN values (saving a pass over the values).
    """
    size = values.shape[-1]
    ordered = np.sort(values, axis=-1).reshape(-1, size)  # NaN sorts last
    if counts is None:
        n = size - np.count_nonzero(np.isnan(ordered), axis=-1)
    else:
        n = counts.reshape(-1)
    rows = np.arange(ordered.shape[0])
    low = ordered[rows, np.maximum((n - 1) // 2, 0)]
    high = ordered[rows, np.minimum(n // 2, size - 1)]
    median = (low + high) / 2.0
    return np.where(n >= max(min_count, 1), median, np.nan).reshape(values.shape[:-1])


def nanquantile(values: np.ndarray, q: float, min_count: int) -> np.ndarray:
    """The ``q`` quantile over the last axis ignoring NaN (linear between the two nearest
    values, as :func:`numpy.nanquantile`); NaN where fewer than ``min_count`` values. Sorted
    as one 2-D array, like :func:`nanmedian`."""
    size = values.shape[-1]
    ordered = np.sort(values, axis=-1).reshape(-1, size)  # NaN sorts last
    n = size - np.count_nonzero(np.isnan(ordered), axis=-1)
    rows = np.arange(ordered.shape[0])
    at = np.maximum(n - 1, 0) * q
    low = np.floor(at).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    part = at - low
    value = ordered[rows, low] * (1.0 - part) + ordered[rows, high] * part
    return np.where(n >= max(min_count, 1), value, np.nan).reshape(values.shape[:-1])


def sliding_nanmedian(values: np.ndarray, size: int, min_count: int) -> np.ndarray:
    """:func:`nanmedian` of each run of ``size`` consecutive columns, row by row (the values
    of each run counted from a running sum, not run by run)."""
    valid = np.cumsum(~np.isnan(values), axis=1)
    counts = np.concatenate([valid[:, size - 1 : size], valid[:, size:] - valid[:, :-size]], axis=1)
    return nanmedian(sliding_window_view(values, size, axis=1), min_count, counts=counts)


def previous_where(values: np.ndarray, where: np.ndarray, fill: Any) -> np.ndarray:
    """Per row and column, ``values`` at the last earlier column where ``where`` holds."""
    columns = np.arange(values.shape[1])
    last = np.maximum.accumulate(np.where(where, columns, -1), axis=1)
    last = np.concatenate([np.full((values.shape[0], 1), -1), last[:, :-1]], axis=1)
    taken = np.take_along_axis(values, np.maximum(last, 0), axis=1)
    return np.where(last >= 0, taken, fill)


def last_true(mask: np.ndarray) -> np.ndarray:
    """Per row, the last column where ``mask`` is True, or -1."""
    from_end = np.argmax(mask[:, ::-1], axis=1)
    return np.where(mask.any(axis=1), mask.shape[1] - 1 - from_end, -1)
