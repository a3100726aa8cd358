"""Pagination that lies, through real Dagster runs: the snapshot is still exactly the truth,
and the run log says what was corrected."""

from __future__ import annotations

import pytest

from segment_assets.emulator import EmulatorConfig, OneSignalApp

from .conftest import YESTERDAY, failure_text
from .resilience import (
    ONESIGNAL_APP,
    counts_of,
    expected_counts,
    fast_resources,
    materialize,
    requests_made,
    run_messages,
    small_config,
    stored,
)


@pytest.fixture
def emulator_config(request) -> EmulatorConfig:
    return getattr(request, "param", None) or small_config()


def snapshot(provider, emulator, instance, duckdb_path):
    """Run one provider's asset; return its stored counts and the run log."""
    emulator.state.reset_stats()
    result = materialize(fast_resources(), instance, YESTERDAY, providers=[provider])
    assert result.success, failure_text(result)
    frame = stored(duckdb_path, provider, YESTERDAY)
    assert frame["segment_id"].is_unique
    return counts_of(frame), run_messages(instance, result.run_id)


def test_an_actionhub_total_that_grows_after_page_one_is_followed_to_the_end(
    emulator, env, instance, duckdb_path
):
    # page 1 says 5 items (one page of 5); page 2 says the real 12, so page 3 is fetched too
    emulator.state.set_faults("actionhub", total_drift=7)

    counts, log = snapshot("actionhub", emulator, instance, duckdb_path)

    assert counts == expected_counts(emulator, "actionhub")
    corrected = [m for m in log if "total changed to 12 on page 2; fetching up to page 3" in m]
    assert len(corrected) == 6  # once per segment type × basis list


def test_an_actionhub_item_repeated_on_the_next_page_is_stored_once(
    emulator, env, instance, duckdb_path
):
    emulator.state.set_faults("actionhub", repeat_item=True)

    counts, log = snapshot("actionhub", emulator, instance, duckdb_path)

    assert counts == expected_counts(emulator, "actionhub")
    said = [m for m in log if "listed twice by the provider and kept once" in m]
    assert len(said) == 1 and said[0].startswith("6 segment(s)"), said  # one per list


def test_a_usercom_next_link_looping_back_to_page_one_stops_instead_of_looping(
    emulator, env, instance, duckdb_path
):
    emulator.state.set_faults("usercom", next_loop=True)

    counts, log = snapshot("usercom", emulator, instance, duckdb_path)

    assert counts == expected_counts(emulator, "usercom")
    assert requests_made(emulator, "usercom") == 3  # 25 segments, pages of 10: read once each
    assert any("next link loops back to a page already read" in m for m in log), log


def test_a_usercom_next_link_looping_to_the_same_page_stops(emulator, env, instance, duckdb_path):
    # a one-page app whose only page links to itself
    emulator.state.set_faults("usercom", next_loop=True)
    for record in emulator.state.truth("usercom")[10:]:
        emulator.state.remove_segment("usercom", "acme", record["id"])

    counts, log = snapshot("usercom", emulator, instance, duckdb_path)

    assert counts == expected_counts(emulator, "usercom")
    assert len(counts) == 10
    assert requests_made(emulator, "usercom") == 1
    assert any("next link loops back" in m for m in log), log


SHORT_PAGES = small_config(
    onesignal=[OneSignalApp(ONESIGNAL_APP, "os_v2_app_shortpages", 320, 0, 0)]
)


@pytest.mark.parametrize("emulator_config", [SHORT_PAGES], indirect=True, ids=["320-segments"])
def test_onesignal_pages_shorter_than_the_limit_are_read_on_until_total_count(
    emulator, env, instance, duckdb_path
):
    # pages hold 293 rows instead of 300: stopping at the first short page would lose 27
    emulator.state.set_faults("onesignal", short_pages=True)

    counts, log = snapshot("onesignal", emulator, instance, duckdb_path)

    assert counts == expected_counts(emulator, "onesignal")
    assert len(counts) == 320
    assert emulator.state.stats()["onesignal"]["by_endpoint"]["list"] == 2
    assert any("short page at offset 0 (293 of 300) while total_count is 320" in m for m in log)
