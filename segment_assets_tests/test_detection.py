"""find_drops, told as the stories of the people who get (or should not get) the alerts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from segment_assets.detection import (
    HISTORY_DAYS_NEEDED,
    OUTPUT_COLUMNS,
    DropThresholds,
    find_drops,
    is_vanished,
)

AS_OF = dt.date(2025, 3, 26)  # a Wednesday
SATURDAY = dt.date(2025, 3, 29)
MISSING = object()  # no row at all that day (the segment was not listed)


def days_ending(as_of: dt.date, n: int) -> list[dt.date]:
    return [as_of - dt.timedelta(days=n - 1 - i) for i in range(n)]


def steady(level: float, n: int, noise: float = 0.01, seed: int = 0) -> list[int]:
    """``n`` daily counts around ``level`` with a little multiplicative noise."""
    rng = np.random.default_rng(seed)
    return [int(round(level * np.exp(noise * e))) for e in rng.standard_normal(n)]


def segment(
    values: list,
    *,
    as_of: dt.date = AS_OF,
    provider: str = "actionhub",
    account: str = "program-1",
    segment_id: str = "seg-1",
    **columns: list,
) -> pd.DataFrame:
    """One segment's rows, the last value on ``as_of``; None is a NULL count, MISSING no row.

    Extra keyword arguments are further columns, one value per day (e.g. ``too_heavy``).
    """
    dates = days_ending(as_of, len(values))
    frame = pd.DataFrame(
        {
            "provider": provider,
            "account": account,
            "segment_id": segment_id,
            "segment_name": f"name of {segment_id}",
            "snapshot_date": dates,
            "user_count": [v if v is not MISSING else None for v in values],
            **columns,
        }
    )
    keep = [v is not MISSING for v in values]
    return frame[keep]


def history(*frames: pd.DataFrame) -> pd.DataFrame:
    frame = pd.concat(frames, ignore_index=True)
    frame["user_count"] = frame["user_count"].astype("Int64")
    return frame


def drops_on(h: pd.DataFrame, as_of: dt.date = AS_OF, **kwargs) -> pd.DataFrame:
    return find_drops(h, as_of, **kwargs)


def alert_days(h: pd.DataFrame, days: list[dt.date]) -> list[dt.date]:
    """The days among ``days`` on which the (single) segment newly dropped."""
    return [d for d in days if len(drops_on(h, d))]


# --- what a drop looks like ---------------------------------------------------------------


def test_a_sudden_drop_is_reported_in_words_with_its_size_and_the_expected_count():
    h = history(segment([*steady(42_000, 60), 3_020]))

    drops = drops_on(h)

    assert len(drops) == 1
    row = drops.iloc[0]
    assert (row.provider, row.account, row.segment_id) == ("actionhub", "program-1", "seg-1")
    assert row.snapshot_date == AS_OF
    assert row.user_count == 3_020
    assert row.expected == pytest.approx(42_000, rel=0.02)
    assert row.drop_pct == pytest.approx(100 * (1 - 3_020 / row.expected), abs=0.1)
    assert row.drop_pct > 90  # a float in percent: 93.0 means −93 %
    assert row.severity == "ERROR"
    assert "→ 3,020 users (−93 %) vs 42," in row.reason and row.reason.endswith("expected")
    assert row.segment_name == "name of seg-1"


def test_a_drop_below_the_error_threshold_is_a_warning():
    h = history(segment([*steady(10_000, 60), 5_500]))

    row = drops_on(h).iloc[0]

    assert row.severity == "WARN"
    assert row.drop_pct == pytest.approx(45, abs=2)


def test_output_columns_and_dtypes():
    drops = drops_on(history(segment([*steady(10_000, 60), 1_000])))

    assert list(drops.columns) == [*OUTPUT_COLUMNS[:3], "segment_name", *OUTPUT_COLUMNS[3:]]
    assert str(drops["user_count"].dtype) == "Int64"
    assert drops["expected"].dtype == np.float64
    assert drops["drop_pct"].dtype == np.float64
    assert all(type(d) is dt.date for d in drops["snapshot_date"])
    assert set(drops["severity"]) <= {"ERROR", "WARN"}


def test_without_segment_names_the_output_has_exactly_the_contract_columns():
    h = history(segment([*steady(10_000, 60), 1_000])).drop(columns="segment_name")

    assert list(drops_on(h).columns) == list(OUTPUT_COLUMNS)


def test_nothing_dropping_gives_an_empty_frame_with_the_columns():
    drops = drops_on(history(segment(steady(10_000, 61))))

    assert drops.empty
    assert list(drops.columns) == [*OUTPUT_COLUMNS[:3], "segment_name", *OUTPUT_COLUMNS[3:]]
    assert str(drops["user_count"].dtype) == "Int64"
    assert drops["drop_pct"].dtype == np.float64


def test_an_empty_history_gives_an_empty_frame():
    h = history(segment([1_000])).iloc[0:0]

    assert list(drops_on(h).columns) == [*OUTPUT_COLUMNS[:3], "segment_name", *OUTPUT_COLUMNS[3:]]


# --- what is not a drop ---------------------------------------------------------------------


def test_a_regular_weekend_dip_is_not_a_drop():
    days = days_ending(SATURDAY, 63)
    counts = [5_000 if d.weekday() >= 5 else 10_000 for d in days]
    h = history(segment(counts, as_of=SATURDAY))

    assert drops_on(h, SATURDAY).empty


def test_a_weekend_far_below_the_usual_weekend_is_a_drop():
    days = days_ending(SATURDAY, 63)
    counts = [5_000 if d.weekday() >= 5 else 10_000 for d in days]
    counts[-1] = 1_000
    h = history(segment(counts, as_of=SATURDAY))

    row = drops_on(h, SATURDAY).iloc[0]
    assert row.expected == pytest.approx(5_000, rel=0.05)


def test_a_tiny_segment_losing_most_of_its_users_is_not_a_drop():
    h = history(segment([*steady(40, 60, noise=0.0), 5]))

    assert drops_on(h).empty


def test_a_flat_series_that_moves_by_one_user_is_not_a_drop():
    h = history(segment([*[1_000] * 60, 999]))

    assert drops_on(h).empty


def test_a_large_segment_losing_less_than_the_relative_floor_is_not_a_drop():
    h = history(segment([*steady(1_000_000, 60, noise=0.001), 780_000]))

    assert drops_on(h).empty  # −22 %: far outside the noise, but under 30 %


def test_a_noisy_segment_needs_a_deeper_fall_than_a_smooth_one():
    noisy = steady(20_000, 60, noise=0.15, seed=3)

    assert drops_on(history(segment([*noisy, 13_000]))).empty  # −35 %: inside its noise
    assert len(drops_on(history(segment([*noisy, 5_000])))) == 1
    assert len(drops_on(history(segment([*steady(20_000, 60), 13_000])))) == 1


def test_thresholds_are_keyword_arguments():
    h = history(segment([*steady(10_000, 60), 6_000]))

    assert len(drops_on(h)) == 1
    assert drops_on(h, min_drop_pct=50).empty
    assert drops_on(h, thresholds=DropThresholds(min_drop_users=5_000)).empty
    assert drops_on(h, error_drop_pct=35).iloc[0].severity == "ERROR"
    with pytest.raises(TypeError):
        drops_on(h, no_such_threshold=1)


def test_the_defaults_are_documented_values():
    th = DropThresholds()
    assert (th.min_drop_pct, th.min_drop_users, th.error_drop_pct) == (30.0, 50.0, 60.0)
    assert th.min_history_days == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        th.min_drop_pct = 10  # type: ignore[misc]


def test_a_slow_decline_never_alerts():
    counts = [int(50_000 * 0.985**i) for i in range(120)]  # −1.5 % a day for four months
    h = history(segment(counts, as_of=AS_OF))

    assert alert_days(h, days_ending(AS_OF, 40)) == []


def test_a_segment_that_declined_for_weeks_and_then_levelled_off_is_not_a_drop():
    declining = [int(50_000 * 0.985**i) for i in range(35)]
    flat = steady(declining[-1], 30, seed=4)
    h = history(segment([*steady(50_000, 10), *declining, *flat[:-1], int(flat[-1] * 0.97)]))

    assert alert_days(h, days_ending(AS_OF, 30)) == []


def test_two_incidents_back_to_back_do_not_turn_into_a_trend():
    counts = steady(30_000, 80, seed=6)
    counts[52:59] = [15_000] * 7
    counts[60:67] = [16_000] * 7
    h = history(segment([*counts, 29_000]))

    assert drops_on(h).empty


def test_steady_growth_then_a_sudden_drop_alerts_against_the_grown_level():
    counts = [int(10_000 * 1.01**i) for i in range(80)]
    h = history(segment([*counts, int(counts[-1] * 0.4)]))

    row = drops_on(h).iloc[0]
    assert row.expected == pytest.approx(counts[-1] * 1.01, rel=0.03)


# --- the baseline ---------------------------------------------------------------------------


def test_the_dropped_day_is_not_part_of_its_own_baseline():
    # Fourteen noisy days and a fall: a mean/std of a window that includes the fall cannot
    # reach |z| > 3 here; the fall is still plainly there.
    h = history(segment([*steady(8_000, 14, noise=0.06, seed=5), 4_000]))

    row = drops_on(h).iloc[0]
    assert row.expected == pytest.approx(8_000, rel=0.06)


def test_an_earlier_incident_does_not_move_the_baseline_or_hide_a_new_drop():
    counts = steady(30_000, 70, seed=1)
    counts[40:44] = [3_000] * 4  # four bad days three weeks ago
    h = history(segment([*counts, 9_000]))

    row = drops_on(h).iloc[0]
    assert row.expected == pytest.approx(30_000, rel=0.03)


def test_history_older_than_the_window_is_not_read():
    h = history(segment([*steady(30_000, 200, seed=2), 9_000]))
    start = AS_OF - dt.timedelta(days=HISTORY_DAYS_NEEDED)

    recent = h[h["snapshot_date"] >= start]
    pd.testing.assert_frame_equal(drops_on(h), drops_on(recent))
    assert 56 <= HISTORY_DAYS_NEEDED <= 70


def test_rows_after_as_of_are_ignored():
    counts = [*steady(30_000, 60), 29_900, 1_000, 900]  # the fall comes after as_of
    h = history(segment(counts, as_of=AS_OF + dt.timedelta(days=2)))

    assert drops_on(h).empty
    assert len(drops_on(h, AS_OF + dt.timedelta(days=1))) == 1


def test_snapshot_dates_may_be_timestamps():
    h = history(segment([*steady(10_000, 60), 1_000]))
    h["snapshot_date"] = pd.to_datetime(h["snapshot_date"])

    row = drops_on(h).iloc[0]
    assert row.snapshot_date == AS_OF and row.user_count == 1_000


# --- one alert per drop ---------------------------------------------------------------------


def test_a_segment_that_stays_low_after_a_drop_alerts_once():
    counts = [*steady(20_000, 60), *[4_000] * 10]
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 11)) == [AS_OF - dt.timedelta(days=9)]


def test_a_recovery_followed_by_a_new_fall_alerts_again():
    counts = [*steady(20_000, 60), 4_000, 4_100, 3_900, 19_800, 20_100, 20_000, 5_000]
    h = history(segment(counts))

    expected = [AS_OF - dt.timedelta(days=6), AS_OF]
    assert alert_days(h, days_ending(AS_OF, 8)) == expected


def test_a_new_fall_after_a_long_incident_and_a_short_recovery_still_alerts():
    counts = [*steady(20_000, 60), *[4_000] * 12, 20_000, 19_900, 5_000]
    h = history(segment(counts))

    assert len(drops_on(h)) == 1


def test_a_drop_that_hovers_around_the_threshold_alerts_once():
    counts = [*steady(20_000, 60), 12_000, 15_000, 12_000, 15_500, 11_800]
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 6)) == [AS_OF - dt.timedelta(days=4)]


def test_a_drop_that_deepens_the_next_day_alerts_once():
    h = history(segment([*steady(20_000, 60), 12_000, 3_000]))

    assert alert_days(h, days_ending(AS_OF, 3)) == [AS_OF - dt.timedelta(days=1)]


def test_a_mild_dip_the_day_before_does_not_hide_a_drop():
    h = history(segment([*steady(20_000, 60), 16_500, 4_000]))

    assert len(drops_on(h)) == 1


# --- missing and unreliable data -------------------------------------------------------------


def test_a_null_count_is_not_a_drop():
    h = history(segment([*steady(10_000, 60), None]))

    assert drops_on(h).empty


def test_null_days_in_the_history_are_not_read_as_zero():
    counts: list = steady(10_000, 60)
    counts[50:53] = [None, None, None]
    h = history(segment([*counts, 9_950]))

    assert drops_on(h).empty


def test_a_segment_with_less_than_a_week_of_history_is_not_judged():
    assert drops_on(history(segment([10_000] * 6 + [1_000]))).empty
    assert len(drops_on(history(segment([10_000] * 7 + [1_000])))) == 1


def test_a_provider_wide_outage_day_is_not_a_drop():
    ah = [segment(steady(5_000, 61, seed=i), segment_id=f"ah-{i}") for i in range(3)]
    os_ = [
        segment([*steady(5_000, 60, seed=i), MISSING], provider="onesignal", account="app-1",
                segment_id=f"os-{i}")
        for i in range(3)
    ]  # fmt: skip
    h = history(*ah, *os_)

    assert drops_on(h).empty  # no rows at all for onesignal/app-1: no drop, no vanished


def test_the_day_after_an_outage_is_judged_against_the_days_before_it():
    counts = [*steady(5_000, 60), MISSING, MISSING, 5_020]
    h = history(segment(counts), segment(steady(700, 63), segment_id="sibling"))

    assert drops_on(h).empty
    h2 = history(segment([*counts[:-1], 1_000]), segment(steady(700, 63), segment_id="sib"))
    assert len(drops_on(h2)) == 1


def test_a_segment_missing_from_one_snapshot_is_not_a_drop_and_is_judged_when_back():
    counts = [*steady(5_000, 60), MISSING, 4_990]
    h = history(segment(counts), segment(steady(700, 62), segment_id="sibling"))

    assert drops_on(h).empty
    on_missing_day = drops_on(h, AS_OF - dt.timedelta(days=1))
    assert is_vanished(on_missing_day).all()


def test_a_vanished_segment_is_reported_once_as_a_warning():
    gone = segment([*steady(12_345, 60, noise=0.0), MISSING, MISSING], segment_id="gone")
    sibling = segment(steady(700, 62), segment_id="sibling")
    h = history(gone, sibling)
    yesterday = AS_OF - dt.timedelta(days=1)

    drops = drops_on(h, yesterday)
    assert len(drops) == 1
    row = drops.iloc[0]
    assert row.segment_id == "gone" and row.severity == "WARN"
    assert row.user_count is pd.NA
    assert row.reason.startswith("vanished")
    assert "12,345 users" in row.reason
    assert row.expected == 12_345
    assert np.isnan(row.drop_pct)
    assert list(is_vanished(drops)) == [True]
    assert drops_on(h, AS_OF).empty  # not again the day after


def test_a_segment_vanishing_with_its_whole_account_is_an_outage_not_a_vanish():
    h = history(
        segment([*steady(5_000, 60), MISSING], segment_id="a"),
        segment([*steady(900, 60), MISSING], segment_id="b"),
        segment(steady(800, 61), account="program-2", segment_id="a"),
    )

    assert drops_on(h).empty


# --- User.com caches ------------------------------------------------------------------------


def usercom(values: list, counted: list[int], *, too_heavy: list[bool] | None = None, **kw):
    """A User.com segment; ``counted[i]`` is how many days before day i it was last counted."""
    days = days_ending(kw.get("as_of", AS_OF), len(values))
    stamps = [pd.Timestamp(d) - pd.Timedelta(days=c) + pd.Timedelta(hours=9) for d, c in
              zip(days, counted, strict=True)]  # fmt: skip
    return segment(
        values,
        provider="usercom",
        account="acme.user.com",
        last_counted=stamps,
        too_heavy=too_heavy or [False] * len(values),
        **kw,
    )


def test_an_unchanged_usercom_last_counted_is_not_a_drop():
    values = [*steady(8_000, 60), 8_000, 3_000]
    counted = [0] * 61 + [1]  # today's stamp is yesterday's: a repeated cache, not a count

    assert drops_on(history(usercom(values, counted))).empty
    assert len(drops_on(history(usercom(values, [0] * 62)))) == 1


def test_a_too_heavy_usercom_count_is_not_a_drop():
    values = [*steady(8_000, 60), 500]
    h = history(usercom(values, [0] * 61, too_heavy=[False] * 60 + [True]))

    assert drops_on(h).empty


def test_a_cached_usercom_count_that_jumps_on_recount_is_judged_on_the_recount():
    # Recounted every third day: flat for days, then a new value.
    counted = [i % 3 for i in range(61)]
    base = steady(8_000, 61)
    values = [base[i - c] for i, c in enumerate(counted)]
    values[-1] = 2_000 if counted[-1] == 0 else values[-1]
    assert counted[-1] == 0
    h = history(usercom(values, counted))

    assert len(drops_on(h)) == 1


def test_a_count_made_on_a_missed_snapshot_day_is_compared_with_that_weekday():
    # Weekend dip; Sunday's snapshot is missing and Monday's carries Sunday's count.
    monday = dt.date(2025, 3, 31)
    days = days_ending(monday, 63)
    values: list = [4_000 if d.weekday() >= 5 else 10_000 for d in days]
    values[-2] = MISSING
    values[-1] = 4_000
    counted = [0] * 62 + [1]
    sibling = segment(steady(900, 63), as_of=monday, provider="usercom",
                      account="acme.user.com", segment_id="sibling")  # fmt: skip
    sibling = sibling[sibling["snapshot_date"] != days[-2]]
    h = history(usercom(values, counted, as_of=monday), sibling)

    assert drops_on(h, monday).empty


# --- identity -------------------------------------------------------------------------------


def test_the_same_segment_id_in_two_accounts_is_two_segments():
    h = history(
        segment([*steady(10_000, 60), 1_000], account="program-1", segment_id="42"),
        segment([*steady(500, 60), 510], account="program-2", segment_id="42"),
        segment([*steady(10_000, 60), 10_010], provider="onesignal", account="program-1",
                segment_id="42"),
    )  # fmt: skip

    drops = drops_on(h)

    assert len(drops) == 1
    assert (drops.iloc[0].provider, drops.iloc[0].account) == ("actionhub", "program-1")
    assert drops.iloc[0].expected == pytest.approx(10_000, rel=0.03)


def test_errors_come_first_then_bigger_drops():
    h = history(
        segment([*steady(10_000, 60), 6_000], segment_id="warn"),
        segment([*steady(10_000, 60), 1_000], segment_id="error"),
        segment([*steady(10_000, 60), 2_000], segment_id="error-smaller"),
    )

    assert list(drops_on(h)["segment_id"]) == ["error", "error-smaller", "warn"]


def test_a_missing_required_column_is_a_clear_error():
    h = history(segment(steady(10_000, 10))).drop(columns="account")

    with pytest.raises(ValueError, match="account"):
        drops_on(h)


# --- rises: a fall back to where the segment was ---------------------------------------------


def fading_import(base: list[int], day: int, jump: float, tau: float) -> list[int]:
    """``base`` with a campaign import on ``day``: ``jump`` times the count, then the
    imported users leave again with a time constant of ``tau`` days."""
    return [
        int(b * (1 + (jump - 1) * np.exp(-(i - day) / tau))) if i >= day else b
        for i, b in enumerate(base)
    ]


def test_a_campaign_import_that_fades_back_to_where_the_segment_was_is_quiet():
    counts = fading_import(steady(10_000, 90, seed=7), day=60, jump=5.0, tau=4.0)
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 30)) == []


def test_an_import_removed_in_one_go_is_quiet():
    counts = steady(10_000, 70, seed=8)
    counts[50:58] = [c * 3 for c in counts[50:58]]  # imported for eight days, then removed
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 20)) == []


def test_a_fall_below_the_level_before_the_import_alerts_once_against_that_level():
    counts = fading_import(steady(10_000, 70, seed=9), day=55, jump=4.0, tau=6.0)
    counts[63:] = [3_000] * 7  # the imported users and more than half of the others go
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 15)) == [AS_OF - dt.timedelta(days=6)]
    row = drops_on(h, AS_OF - dt.timedelta(days=6)).iloc[0]
    assert row.expected == pytest.approx(10_000, rel=0.05)  # not the import's level


def test_a_rise_protects_its_level_for_four_weeks_only():
    # A new source doubles the segment; weeks later it is lost again.
    def lost_after(days: int) -> pd.DataFrame:
        counts = [*steady(10_000, 40, seed=10), *steady(20_000, days, seed=11), 10_000]
        return history(segment(counts))

    assert drops_on(lost_after(20)).empty  # back to the level before a recent rise
    row = drops_on(lost_after(40)).iloc[0]  # after four weeks, the new level is the level
    assert row.expected == pytest.approx(20_000, rel=0.03)


def test_a_fall_back_after_a_one_day_spike_is_quiet_and_a_later_fall_below_alerts():
    counts = steady(2_000_000, 80, noise=0.002, seed=12)
    counts[60] = 9_000_000  # the provider counted some users several times, one day
    counts[75] = 900_000
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 20)) == [AS_OF - dt.timedelta(days=4)]


def test_the_recovery_from_a_long_incident_is_no_rise_so_a_new_fall_alerts():
    counts = steady(3_000_000, 85, noise=0.002, seed=13)
    counts[40:66] = [c // 2 for c in counts[40:66]]  # a 26-day incident, then recovered
    counts[80] = counts[80] // 2  # the same fall again, for a day
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 6)) == [AS_OF - dt.timedelta(days=4)]


def test_a_one_day_glitch_in_a_big_segment_alerts_once_and_its_return_is_quiet():
    counts = steady(5_000_000, 70, noise=0.002, seed=14)
    counts[-5] = 1_200_000
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 8)) == [AS_OF - dt.timedelta(days=4)]


# --- month-start swells and day-of-month patterns --------------------------------------------


def by_date(first: dt.date, last: dt.date, count: Callable[[dt.date], float]) -> list[int]:
    n = (last - first).days + 1
    return [int(count(first + dt.timedelta(days=i))) for i in range(n)]


def billing_due(day: dt.date) -> float:
    """A "billing due" segment: 8,000 users, 6× on the 1st of the month, shrinking back
    with a time constant of six days."""
    return 8_000 * (1 + 5 * np.exp(-(day.day - 1) / 6.0))


def test_a_month_start_swell_shrinking_back_is_quiet_with_five_weeks_of_history():
    last = dt.date(2025, 3, 25)
    counts = by_date(dt.date(2025, 1, 20), last, billing_due)  # first swell on Feb 1
    h = history(segment(counts, as_of=last))

    assert alert_days(h, days_ending(last, 28)) == []


def test_with_twelve_weeks_of_history_a_fall_during_the_swell_still_alerts():
    last = dt.date(2025, 4, 3)
    counts = by_date(dt.date(2025, 1, 10), last, billing_due)
    counts[-1] = 3_000  # on the 3rd of April, below the segment's level outside the swell
    h = history(segment(counts, as_of=last))

    row = drops_on(h, last).iloc[0]
    assert row.expected == pytest.approx(8_000, rel=0.1)
    assert alert_days(h, days_ending(last - dt.timedelta(days=1), 30)) == []


def test_a_dip_on_the_same_days_of_every_month_is_learnt_after_two_months():
    def mid_month_dip(day: dt.date) -> float:
        return 6_000 if 10 <= day.day <= 12 else 10_000

    last = dt.date(2025, 3, 12)
    h = history(segment(by_date(dt.date(2025, 1, 1), last, mid_month_dip), as_of=last))
    assert alert_days(h, days_ending(last, 3)) == []

    young = history(segment(by_date(dt.date(2025, 2, 1), last, mid_month_dip), as_of=last))
    assert alert_days(young, days_ending(last, 3)) == [dt.date(2025, 3, 10)]  # seen once


def test_two_falls_on_the_same_day_of_the_month_do_not_make_a_pattern():
    last = dt.date(2025, 3, 15)
    counts = by_date(dt.date(2025, 1, 1), last, lambda d: 50_000.0)
    counts[-1] = 20_000  # March 15th
    counts[-1 - 28] = 20_000  # February 15th, a day's incident
    h = history(segment(counts, as_of=last))

    assert len(drops_on(h, last)) == 1


# --- fast growth -----------------------------------------------------------------------------


def test_a_fast_growing_segment_that_loses_a_third_alerts_against_where_growth_led():
    counts = [*steady(2_000, 30, seed=15), *[int(2_000 * 1.05**i) for i in range(1, 36)]]
    h = history(segment([*counts, int(counts[-1] * 0.62)]))

    row = drops_on(h).iloc[0]
    assert row.expected == pytest.approx(counts[-1] * 1.05, rel=0.04)


def test_fast_growth_that_levels_off_is_not_a_drop():
    growth = [int(2_000 * 1.06**i) for i in range(35)]
    counts = [*steady(2_000, 20, seed=16), *growth, *steady(growth[-1], 20, seed=17)]
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 20)) == []


def test_imports_one_after_the_other_are_not_growth():
    counts = fading_import(steady(10_000, 80, seed=18), day=50, jump=3.0, tau=8.0)
    counts = fading_import(counts, day=66, jump=2.5, tau=8.0)
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 25)) == []


# --- young segments --------------------------------------------------------------------------


def test_a_young_segment_that_falls_alerts_once():
    counts = [*steady(10_000, 9, seed=19), *[6_000] * 10]  # nine days old, then −40 %
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 19)) == [AS_OF - dt.timedelta(days=9)]


def test_a_segment_that_falls_before_a_week_of_history_alerts_once_on_its_seventh_day():
    counts = [*steady(10_000, 6, seed=20), *[5_000] * 10]  # falls on its seventh day
    h = history(segment(counts))
    eighth = AS_OF - dt.timedelta(days=len(counts) - 8)  # the first with seven days before

    assert alert_days(h, days_ending(AS_OF, len(counts))) == [eighth]


def test_a_new_segment_filling_up_over_its_first_days_then_falling_alerts():
    counts = [3_000, 6_000, *steady(10_000, 12, seed=21), *[4_000] * 5]
    h = history(segment(counts))

    assert alert_days(h, days_ending(AS_OF, 19)) == [AS_OF - dt.timedelta(days=4)]
