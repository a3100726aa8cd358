"""Tuning drop detection in the accounts file: per provider, per account and per segment, with
defaults as before, and every bad value named with its place in the file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from segment_assets.config import ConfigurationError, provider_resources
from segment_assets.config.detection import (
    DEFAULT_ALERT_MAX_AGE_DAYS,
    AccountDetection,
    DetectionSettings,
    detection_settings_from_env,
)
from segment_assets.config.segment_settings import resolve_segments
from segment_assets.defs.thresholds_shown import thresholds_markdown
from segment_assets.detection import DropThresholds

REPO = Path(__file__).resolve().parents[1]
WEB = "7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d"
MOBILE = "e4b8d2c6-1a3f-4e5d-8b7c-6f5e4d3c2b1a"
TUNED = f"""
detection:
  min_drop_pct: 35
  alert_max_age_days: 3
  onesignal:
    min_drop_users: 100
  usercom:
    min_history_days: 14
onesignal:
  web:
    app_id: {WEB}
    api_key_env: ONESIGNAL_WEB_API_KEY
    detection:
      min_z: 5
      account_wide_share: 0.6
      segments:
        - id: 49382cec
          min_drop_pct: 20
        - name: "Test *"
          min_drop_pct: 50
          min_drop_users: 1000
          alert_max_age_days: 7
        - name: "Test EU"
          min_drop_users: 10
  mobile:
    app_id_env: ONESIGNAL_MOBILE_APP_ID
    api_key_env: ONESIGNAL_MOBILE_API_KEY
usercom:
  agency:
    base_url: https://agency-one.user.com/api/public
    api_key_env: USERCOM_AGENCY_API_KEY
    detection:
      definition_change_days: 7
      account_wide_min_segments: 5
actionhub:
  eu: {{program_id: prog-eu, api_key_env: ACTIONHUB_API_KEY}}
"""
VARIABLES = {
    "ONESIGNAL_WEB_API_KEY": "os_v2_app_web_secret",
    "ONESIGNAL_MOBILE_APP_ID": MOBILE,
    "ONESIGNAL_MOBILE_API_KEY": "os_v2_app_mobile_secret",
    "USERCOM_AGENCY_API_KEY": "u" * 64,
    "ACTIONHUB_API_KEY": "ah-secret",
}


def accounts_file(tmp_path: Path, text: str, variables: dict | None = None) -> dict[str, str]:
    path = tmp_path / "segment_assets.yaml"
    path.write_text(textwrap.dedent(text))
    return {"SEGMENT_ASSETS_CONFIG": str(path), **VARIABLES, **(variables or {})}


def segments(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["provider", "account", "segment_id", "segment_name"])


def test_each_account_is_tuned_by_what_the_store_calls_it_and_the_more_specific_wins(tmp_path):
    settings = detection_settings_from_env(accounts_file(tmp_path, TUNED))

    web = settings.account("onesignal", WEB)
    assert (web.min_drop_pct, web.min_drop_users, web.min_z) == (35, 100, 5)  # top, provider, own
    assert (web.alert_max_age_days, web.account_wide_share, web.min_history_days) == (3, 0.6, 7)
    mobile = settings.account("onesignal", MOBILE)  # its app id read from its variable
    assert (mobile.min_drop_pct, mobile.min_drop_users, mobile.min_z) == (35, 100, 4)
    assert mobile.segments == ()
    agency = settings.account("usercom", "agency-one.user.com")  # the app's host
    assert (agency.min_history_days, agency.definition_change_days) == (14, 7)
    assert (agency.account_wide_min_segments, agency.min_drop_users) == (5, 50)
    actionhub = settings.account("actionhub", "prog-eu")
    assert (
        actionhub
        == settings.provider("actionhub")
        == AccountDetection(min_drop_pct=35, alert_max_age_days=3)
    )
    # an account the file does not list (a provider's single account): its provider's values
    assert settings.account("onesignal", "another-app") == settings.provider("onesignal")
    assert settings.longest_alert_age_days(["onesignal"]) == 7  # the Test * rule
    assert settings.longest_alert_age_days(["actionhub", "usercom"]) == 3


def test_among_segment_rules_an_id_rule_wins_then_the_later_name_rule(tmp_path):
    settings = detection_settings_from_env(accounts_file(tmp_path, TUNED))

    resolved = resolve_segments(
        settings,
        segments(
            ("onesignal", WEB, "49382cec", "Test FR"),  # the id rule and the Test * rule
            ("onesignal", WEB, "a1", "Test EU"),  # both name rules
            ("onesignal", WEB, "a2", "Test US"),
            ("onesignal", WEB, "a3", "Paying users"),
            ("onesignal", WEB, "a4", "test lowercase"),  # globs are case-sensitive
            ("onesignal", MOBILE, "a1", "Test EU"),  # another app: its rules only
        ),
    )

    values = resolved.values
    # the id rule's percentage wins although it comes first; the name rule still sets users
    assert values.loc[0, ["min_drop_pct", "min_drop_users"]].tolist() == [20, 1000]
    # two name rules: the later one overrides the value both set, the earlier one the rest
    assert values.loc[1, ["min_drop_pct", "min_drop_users"]].tolist() == [50, 10]
    assert values.loc[2].tolist() == [50, 1000, 5, 7, 7]
    assert values.loc[3].tolist() == values.loc[4].tolist() == [35, 100, 5, 7, 3]
    assert values.loc[5].tolist() == [35, 100, 4, 7, 3]
    assert sorted((r.index, n) for r, n in resolved.matched.items()) == [(0, 1), (1, 3), (2, 1)]
    group, thresholds = resolved.thresholds()
    assert group.tolist() == [0, 1, 2, 3, 3, 4]
    assert thresholds[0] == DropThresholds(min_drop_pct=20, min_drop_users=1000, min_z=5)


def test_segment_ids_written_as_numbers_match_the_stored_text(tmp_path):
    text = TUNED.replace("id: 49382cec", "id: 4711")
    settings = detection_settings_from_env(accounts_file(tmp_path, text))

    resolved = resolve_segments(settings, segments(("onesignal", WEB, "4711", "Paying users")))

    assert resolved.values.loc[0, "min_drop_pct"] == 20


def test_without_a_file_or_a_detection_section_the_defaults_are_todays(tmp_path):
    no_file = detection_settings_from_env({"SEGMENT_ASSETS_CONFIG": ""})
    untuned = TUNED[TUNED.index("onesignal:\n  web:") :]
    untuned = re.sub(r"\n    detection:\n(      .*\n)+", "\n", untuned)
    without = detection_settings_from_env(accounts_file(tmp_path, untuned))

    for settings in (no_file, without):
        account = settings.account("onesignal", WEB)
        assert account.thresholds() == DropThresholds()
        assert account.alert_max_age_days == DEFAULT_ALERT_MAX_AGE_DAYS == 2
        assert (account.account_wide_share, account.account_wide_min_segments) == (0.5, 3)
        assert account.definition_change_days == 3
        assert settings.one_thresholds(["onesignal", "usercom"]) == DropThresholds()
    assert no_file == DetectionSettings()


BAD = f"""
detection:
  min_drop_pct: 0
  segments: [{{name: "x", min_z: 1}}]
  onesignal:
    min_drop_users: -1
    min_history_days: 64
  facebook: {{min_z: 2}}
onesignal:
  web:
    app_id: {WEB}
    api_key_env: ONESIGNAL_WEB_API_KEY
    detection:
      min_drop_pct: -5
      alert_max_age_days: 0
      account_wide_share: 1.5
      min_z: "high"
      segments:
        - name: "Test *"
          min_drop: 40
        - id: 49382cec
          name: "Paying*"
          min_drop_pct: 20
        - name: "Everything"
        - min_drop_pct: 50
        - id: abc
          min_drop_pct: 100
          account_wide_share: 0.5
"""


def test_every_bad_detection_value_is_named_with_its_place_in_one_message(tmp_path):
    with pytest.raises(ConfigurationError) as caught:
        detection_settings_from_env(accounts_file(tmp_path, BAD))

    text = str(caught.value)
    rules = "onesignal.web.detection.segments"
    for expected in (
        "detection.min_drop_pct: must be a percentage above 0 and below 100",
        "detection: segment rules go in an account's detection",
        "detection.onesignal.min_drop_users: must be a number of users, 0 or more, got -1",
        "detection.onesignal.min_history_days: must be a whole number of days from 1 to 63, got 64",
        "detection: unknown setting 'facebook'",
        "onesignal.web.detection.min_drop_pct: must be a percentage above 0 and below 100 "
        "(30: at least 30 % below expected), got -5",
        "onesignal.web.detection.alert_max_age_days: must be a whole number of days, 1 or more",
        "onesignal.web.detection.account_wide_share: must be a share",
        "onesignal.web.detection.min_z: must be a number of noise units, 0 or more, got 'high'",
        f"{rules}[0]: unknown key 'min_drop' in a segment rule; a rule takes id or name",
        f"{rules}[1]: a rule matches by id or by name, not both",
        f"{rules}[2]: a rule must set at least one of min_drop_pct",
        f"{rules}[3]: a rule needs id: <segment id> or name: <glob on the name>",
        f"{rules}[4].min_drop_pct: must be a percentage above 0 and below 100",
        f"{rules}[4]: unknown key 'account_wide_share' in a segment rule",
    ):
        assert expected in text, expected
    assert "has 15 problem(s)" in text


def test_a_bad_detection_value_fails_the_code_location_load_with_the_other_problems(tmp_path):
    text = TUNED.replace("min_z: 5", "min_z: -1").replace(
        "api_key_env: ONESIGNAL_WEB_API_KEY", "api_key_env: ONESIGNAL_WEB_KEY_UNSET"
    )

    with pytest.raises(ConfigurationError) as caught:
        provider_resources(accounts_file(tmp_path, text))  # what definitions.py loads

    assert "onesignal.web.detection.min_z: must be a number of noise units" in str(caught.value)
    assert "the variable ONESIGNAL_WEB_KEY_UNSET is not set" in str(caught.value)


def test_an_unknown_account_setting_names_detection_among_the_settings(tmp_path):
    text = TUNED.replace("    detection:\n      min_z: 5", "    detectoin:\n      min_z: 5")

    with pytest.raises(ConfigurationError, match=r"unknown setting 'detectoin'.*detection"):
        detection_settings_from_env(accounts_file(tmp_path, text))


def readme_accounts_file() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Tuning detection") :]
    return section[section.index("```yaml") + len("```yaml") : section.index("```\n", 10)]


def test_the_readme_example_is_a_valid_tuned_file_and_resolves_as_it_says(tmp_path):
    settings = detection_settings_from_env(
        accounts_file(tmp_path, readme_accounts_file(), {"ONESIGNAL_WEB_API_KEY": "k"})
    )

    resolved = resolve_segments(
        settings,
        segments(
            ("onesignal", WEB, "49382cec", "Paying EU"),
            ("onesignal", WEB, "t1", "Test push"),
            ("onesignal", "another-app", "t1", "Test push"),
        ),
    ).values
    # the id rule's percentage, the Paying * rule's age, the provider's users, the app's z
    assert resolved.loc[0].tolist() == [60, 200, 5, 7, 7]
    assert resolved.loc[1].tolist() == [35, 1000, 5, 7, 3]
    assert resolved.loc[2].tolist() == [35, 200, 4, 7, 2]


def test_the_settings_in_force_show_what_each_level_sets(tmp_path):
    settings = detection_settings_from_env(accounts_file(tmp_path, TUNED))
    rules = {r.index: r for r in settings.account("onesignal", WEB).segments}

    shown = thresholds_markdown(settings, "onesignal", {rules[0]: 1, rules[1]: 4, rules[2]: 0})

    table, legend = shown.split("\n\n")
    rows = {
        cells[0]: cells[1:]
        for line in table.splitlines()[2:]
        if (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    assert rows["onesignal (every account)"] == ["**35**", "**100**", "4", "7", "**3**", ""]
    assert rows[f"account web ({WEB})"] == ["35", "100", "**5**", "7", "3", ""]
    assert rows["web: segments[0] id 49382cec"] == ["20", "", "", "", "", "1"]
    assert rows["web: segments[1] name 'Test *'"] == ["50", "1000", "", "", "7", "4"]
    assert rows["web: segments[2] name 'Test EU'"] == ["", "10", "", "", "", "0"]
    assert f"account mobile ({MOBILE})" not in rows  # no settings of its own
    assert "Bold" in legend
    usercom = thresholds_markdown(settings, "usercom", {})
    assert "account agency (agency-one.user.com)" in usercom and "**14**" in usercom
