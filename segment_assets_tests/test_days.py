"""Days as the store hands them over and the detector reads them back: one count of days."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from segment_assets.days import as_date, dates_of, offsets_of, offsets_of_stamps

START = dt.date(2025, 1, 30)
END = START + dt.timedelta(days=63)


def test_the_days_a_history_read_returns_are_the_columns_the_detector_reads_back():
    offsets = np.array([0, 63, 2, 2, 31, 0], dtype=np.int32)  # as DuckDB returns them
    dates = dates_of(offsets, START)
    assert list(dates) == [START + dt.timedelta(days=int(d)) for d in offsets]
    assert list(dates.categories) == sorted(set(dates))  # one date object per day, in order
    positions, back = offsets_of(pd.Series(dates), START, END)
    assert positions.tolist() == list(range(len(offsets)))
    assert back.tolist() == offsets.tolist()


def test_dates_in_any_form_give_the_same_columns_and_days_outside_the_window_are_left_out():
    days = [
        START - dt.timedelta(days=1),
        START,
        START + dt.timedelta(days=5),
        END,
        END + dt.timedelta(days=1),
    ]
    expected = ([1, 2, 3], [0, 5, 63])
    forms = {
        "dates": pd.Series(days, dtype=object),
        "text": pd.Series([d.isoformat() for d in days]),
        "datetimes": pd.Series(pd.to_datetime(days)),
        "aware": pd.Series(pd.to_datetime(days)).dt.tz_localize("Europe/Warsaw"),
        "categorical": pd.Series(days, dtype="category"),
    }
    for name, dates in forms.items():
        positions, columns = offsets_of(dates, START, END)
        assert (positions.tolist(), columns.tolist()) == expected, name


def test_a_timestamp_belongs_to_its_utc_day():
    stamps = pd.to_datetime(["2025-01-30 23:59:59", "2025-01-31 00:00:00", "2025-01-29 12:00:00"])
    nanoseconds = stamps.to_numpy().astype("datetime64[ns]").view(np.int64)
    assert offsets_of_stamps(nanoseconds, START).tolist() == [0, 1, -1]


def test_a_day_given_as_a_timestamp_or_text_is_that_date():
    assert as_date(pd.Timestamp("2025-03-26 18:00")) == dt.date(2025, 3, 26)
    assert as_date("2025-03-26") == dt.date(2025, 3, 26)
    assert as_date(dt.datetime(2025, 3, 26, 1, 0, tzinfo=dt.UTC)) == dt.date(2025, 3, 26)
