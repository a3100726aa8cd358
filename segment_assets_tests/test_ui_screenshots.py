"""The README's screenshots of the drop check show what Dagster's UI really shows: a world
with an account-wide drop on yesterday's partition, ``dagster-webserver`` on it, and
Debian's Chromium reading the check's page as ``make screenshots`` does.

Skipped only where Chromium is not installed (``apt-get install chromium``); CI installs it
and fails when this was skipped.
"""

from __future__ import annotations

import struct
from pathlib import Path

import duckdb
import pytest

from scripts.screenshots.browser import browser_page, chromium_path
from scripts.screenshots.scenario import load_scenario
from scripts.screenshots.shoot import take_shot
from scripts.screenshots.webserver import serve
from scripts.screenshots.world import build_world, place_world

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        chromium_path() is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def stored_names(database: str, day: str) -> set[str]:
    """The names of the OneSignal segments stored for ``day``, every account."""
    with duckdb.connect(database, read_only=True) as conn:
        rows = conn.execute(
            "select segment_name from segments.onesignal_segments where snapshot_date = ?",
            [day],
        ).fetchall()
    return {name for (name,) in rows}


def test_the_check_page_lists_the_segments_that_fell_as_the_readme_shows(tmp_path):
    scenario = load_scenario()
    # the README's world with the shortest history the detector judges, and one run
    world = scenario.world.model_copy(update={"history_days": 7, "runs": 1})
    place = place_world(world, tmp_path)
    with serve(place, grace_seconds=0) as ui:  # the UI starts while the world is built
        facts = build_world(world, place)
        url = ui.ready()
        dropped = set(facts["dropped"])
        kept = stored_names(place.env["SEGMENT_ASSETS_DUCKDB"], facts["day"]) - dropped
        assert len(dropped) >= 3 and kept  # most of one account fell; other segments did not

        table = ""
        with browser_page() as page:
            # Each image of the check in the README shows its expected texts in its frame ...
            for shot in [s for s in scenario.shots if s.needs == "check"]:
                path = take_shot(page, url, shot, facts, tmp_path)
                width, height = png_size(path)
                assert 600 <= width <= shot.width and 100 <= height <= 1200, (shot, width, height)
                if shot.file == "drop-check-segments.png":
                    table = page.get_by_role("dialog").last.inner_text()
    # ... and the check's table of dropped segments names exactly those that fell.
    assert all(name in table for name in dropped), table
    assert not any(name in table for name in kept), table
    assert table.count("ERROR") == len(dropped), table
