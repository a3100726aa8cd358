"""Pagination that lies, through real Dagster runs: the snapshot is still exactly the truth,
and the run log says what was corrected."""

from __future__ import annotations

import re

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


def test_usercom_next_links_that_go_on_repeating_the_last_page_stop_and_keep_every_segment(
    emulator, env, instance, duckdb_path
):
    # past its last page the app links on forever, serving that last page again each time
    emulator.state.set_faults("usercom", pages_repeat=True)

    counts, log = snapshot("usercom", emulator, instance, duckdb_path)

    assert counts == expected_counts(emulator, "usercom")
    assert requests_made(emulator, "usercom") == 4  # pages 1-3, then one that only repeats
    said = [m for m in log if "only repeats segments already read; stopped there" in m]
    assert said == [
        "User.com: page 4 only repeats segments already read; stopped there, keeping the "
        "25 distinct segments read"
    ]


def failed_snapshot(provider, emulator, instance, duckdb_path, **overrides) -> str:
    """Run one provider's asset, which must fail and store nothing; return the failure."""
    emulator.state.reset_stats()
    resources = fast_resources(**{provider: overrides})
    result = materialize(resources, instance, YESTERDAY, providers=[provider])
    assert not result.success
    assert stored(duckdb_path, provider).empty
    return failure_text(result)


def test_an_actionhub_total_in_the_millions_fails_at_once_instead_of_crawling_empty_pages(
    emulator, env, instance, duckdb_path
):
    emulator.state.set_faults("actionhub", total_extra=5_000_000)

    message = failed_snapshot("actionhub", emulator, instance, duckdb_path)

    assert (
        "actionhub GET /segments: ActionHub growth/labels: its total is 5,000,012, which is "
        "1,000,003 pages of 5, more than the cap of 1,000 pages. Raise "
        "ActionHubResource.max_pages if the list really is that long"
    ) in message
    assert requests_made(emulator, "actionhub") == 1


def test_an_actionhub_page_that_its_own_total_says_is_full_but_comes_back_empty_fails(
    emulator, env, instance, duckdb_path
):
    # 12 segments a list, but every page says 32: pages 4 to 7 come back empty
    emulator.state.set_faults("actionhub", total_extra=20)

    message = failed_snapshot("actionhub", emulator, instance, duckdb_path)

    assert re.search(
        r"ActionHub \w+/\w+: page [4-7] is empty although its total \(32\) says it holds "
        r"segments; stopped rather than read pages that are not there",
        message,
    ), message
    assert requests_made(emulator, "actionhub") <= 6 * 7


def test_a_list_longer_than_the_page_cap_fails_naming_the_setting(
    emulator, env, instance, duckdb_path
):
    # 25 User.com segments come in pages of 10: three pages, one more than allowed
    message = failed_snapshot("usercom", emulator, instance, duckdb_path, max_pages=2)

    assert (
        "usercom GET /segments/: User.com: it goes on past 2 pages. Raise "
        "UserComResource.max_pages if the list really is that long"
    ) in message
    assert requests_made(emulator, "usercom") == 2
