"""The scenario of the README's screenshots: a file a person edits, checked whole with a
message that says where and what to fix, before any browser or Dagster starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.screenshots.scenario import Click, ScenarioError, fill, load_scenario
from scripts.screenshots.world import WorldError, place_world
from segment_assets.config import load_accounts
from segment_assets.config.detection import detection_settings_from_env

GOOD_SHOT = """
  - file: check.png
    page: /assets/onesignal_segments?view=checks
    frame: {from: no_sudden_drops, to: Plots}
    expect: ["{day}"]
"""


def scenario_file(tmp_path: Path, world: str, shots: str = GOOD_SHOT) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(f"world:\n{world}\nshots:{shots}")
    return path


def facts_like_the_world(segments: int) -> dict:
    """Facts shaped as build_world returns them."""
    return {
        "day": "2026-03-14",
        "account": "web",
        "account_id": "7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d",
        "account_label": "Web app",
        "dropped": [f"Segment {i}" for i in range(segments)],
        "dropped_count": segments,
        "segments": segments + 2,
    }


def test_the_readme_scenario_loads_and_names_only_facts_the_world_has():
    scenario = load_scenario()
    facts = facts_like_the_world(scenario.world.drops[0].segments)
    assert {s.file for s in scenario.shots} >= {"drop-check.png", "drop-alert.png"}
    for shot in scenario.shots:
        clicks = [c.text if isinstance(c, Click) else c for c in shot.click]
        frame = [shot.frame.start, shot.frame.to, shot.frame.through]
        for text in [shot.page, *shot.ready, *clicks, *shot.expect, *filter(None, frame)]:
            assert "{" not in fill(text, facts), (shot.file, text)
    assert fill("{dropped_count} dropped on {day}", facts) == "7 dropped on 2026-03-14"


def test_a_text_naming_an_unknown_fact_says_which_facts_there_are():
    with pytest.raises(ScenarioError) as error:
        fill("{accont_label} fell", facts_like_the_world(3))
    assert "'accont_label'" in str(error.value)
    assert "account_label" in str(error.value) and "dropped_count" in str(error.value)


@pytest.mark.parametrize(
    ("world", "shots", "problem"),
    [
        (
            "  drops: [{account: web, segments: 7, factor: 1.5}]",
            GOOD_SHOT,
            "world.drops.0.factor: Input should be less than 1",
        ),
        ("  drops: []", GOOD_SHOT, "world.drops: "),
        (
            "  segments_per_app: 4\n  drops: [{account: web, segments: 4, factor: 0.1}]",
            GOOD_SHOT,
            "web drops 4 segments, but an app of segments_per_app 4 has 3 countable ones",
        ),
        (
            "  drops: [{account: web, segments: 7, factor: 0.1}]\n  histroy_days: 3",
            GOOD_SHOT,
            "world.histroy_days: Extra inputs are not permitted",
        ),
        (
            "  drops: [{account: web, segments: 7, factor: 0.1}]",
            GOOD_SHOT.replace("to: Plots", "to: Plots, through: drops"),
            "shots.0.frame: Value error, give to: or through:, not both",
        ),
        (
            "  drops: [{account: web, segments: 7, factor: 0.1}]",
            GOOD_SHOT.replace("{from: no_sudden_drops, to: Plots}", "{to: Plots}"),
            "shots.0.frame: Value error, give dialog: true, or from: <text> (or both)",
        ),
        (
            "  drops: [{account: web, segments: 7, factor: 0.1}]",
            GOOD_SHOT + GOOD_SHOT,
            "each shot needs its own file; given twice: check.png",
        ),
        (
            "  drops: [{account: web, segments: 7, factor: 0.1}]",
            GOOD_SHOT.replace("check.png", "Check Page.PNG"),
            "shots.0.file: String should match pattern",
        ),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_place_and_the_fix(tmp_path, world, shots, problem):
    path = scenario_file(tmp_path, world, shots)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(path) in str(error.value)
    assert problem in str(error.value)


def test_a_scenario_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text("world: [unclosed\n")
    with pytest.raises(ScenarioError, match="cannot read the scenario"):
        load_scenario(path)


def test_drops_planted_in_an_account_the_accounts_file_lacks_name_the_accounts(tmp_path):
    scenario = load_scenario()
    world = scenario.world.model_copy(
        update={"drops": (scenario.world.drops[0].model_copy(update={"account": "webb"}),)}
    )
    with pytest.raises(WorldError) as error:
        place_world(world, tmp_path)
    assert "'webb'" in str(error.value) and "accounts are mobile, web" in str(error.value)
    assert not (tmp_path / "dagster_home").exists()  # refused before anything was built


def test_settings_added_to_the_accounts_file_that_do_not_load_are_refused(tmp_path):
    world = load_scenario().world.model_copy(update={"accounts_file": "usercom: [oops\n"})
    with pytest.raises(WorldError, match="the scenario's accounts_file does not load"):
        place_world(world, tmp_path)


def test_settings_for_an_account_merge_into_it_and_keep_its_other_settings(tmp_path):
    added = "onesignal:\n  web:\n    detection:\n      min_z: 6\n"
    world = load_scenario().world.model_copy(update={"accounts_file": added})
    place = place_world(world, tmp_path)
    accounts = load_accounts(place.env)
    assert sorted(a.name for a in accounts.providers["onesignal"]) == ["mobile", "web"]
    [own] = detection_settings_from_env(place.env).accounts_of("onesignal").values()
    assert own.min_z == 6
