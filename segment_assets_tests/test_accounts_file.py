"""The accounts file: several accounts per provider, secrets named by variable, every problem
listed in one message before any request."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from segment_assets.config import ConfigurationError, load_accounts, provider_resources
from segment_assets.providers.actionhub import ActionHubResource
from segment_assets.providers.onesignal import OneSignalAccounts, OneSignalResource

REPO = Path(__file__).resolve().parents[1]

GOOD = """
onesignal:
  brand_a:
    app_id: 7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d
    api_key_env: ONESIGNAL_BRAND_A_API_KEY
  brand_b:
    label: Brand B (iOS)
    app_id_env: ONESIGNAL_BRAND_B_APP_ID
    api_key_env: ONESIGNAL_BRAND_B_API_KEY
    max_rps: 2
    max_concurrency: 3
actionhub:
  eu:
    program_id: prog-eu
    api_key_env: ACTIONHUB_API_KEY
  us:
    program_id: prog-us
    api_key_env: ACTIONHUB_API_KEY
    segment_types: [growth, base]
"""
GOOD_ENV = {
    "ONESIGNAL_BRAND_A_API_KEY": "os_v2_app_brand_a_secret",
    "ONESIGNAL_BRAND_B_APP_ID": "e4b8d2c6-1a3f-4e5d-8b7c-6f5e4d3c2b1a",
    "ONESIGNAL_BRAND_B_API_KEY": "os_v2_app_brand_b_secret",
    "ACTIONHUB_API_KEY": "ah-shared-secret",
    "ONESIGNAL_MAX_RPS": "5",
}


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "segment_assets.yaml"
    path.write_text(textwrap.dedent(text))
    return {"SEGMENT_ASSETS_CONFIG": str(path)}


def test_each_account_of_the_file_becomes_a_resource_with_its_variables_and_overrides(
    tmp_path,
):
    env = {**write(tmp_path, GOOD), **GOOD_ENV}

    resources = provider_resources(env)

    onesignal = resources["onesignal"]
    assert isinstance(onesignal, OneSignalAccounts)
    brand_a, brand_b = onesignal.all_accounts()
    assert (brand_a.name, brand_b.name) == ("brand_a", "brand_b")
    assert brand_b.label_text == "Brand B (iOS)"  # its app id is read when the run starts
    assert brand_a.describe() == "OneSignal brand_a (7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d)"
    # own budget per account; the provider-wide variable is the default
    assert (brand_a.max_requests_per_second, brand_a.max_concurrency) == (5.0, 2)
    assert (brand_b.max_requests_per_second, brand_b.max_concurrency) == (2, 3)
    assert brand_b.env_names["api_key"] == "ONESIGNAL_BRAND_B_API_KEY"
    assert brand_a.env_names["app_id"].startswith("onesignal.brand_a.app_id in ")
    eu, us = resources["actionhub"].all_accounts()
    assert (eu.account(), us.account()) == ("prog-eu", "prog-us")
    assert us.segment_types == ["growth", "base"]
    # a provider the file does not list keeps its single-account variables
    assert "USERCOM_API_KEY" in str(resources["usercom"].env_names)


def test_the_ui_shows_variable_names_and_never_a_key(tmp_path, monkeypatch):
    env = {**write(tmp_path, GOOD), **GOOD_ENV}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from dagster._core.remote_representation.external_data import RepositorySnap

    defs = dg.Definitions(resources=provider_resources())
    snap = RepositorySnap.from_def(defs.get_repository_def())
    shown = {r.name: str(r.configured_values) for r in snap.resources}

    assert "ONESIGNAL_BRAND_B_API_KEY" in shown["onesignal"]
    assert "ACTIONHUB_API_KEY" in shown["actionhub"]
    for secret in ("os_v2_app_brand_a_secret", "os_v2_app_brand_b_secret", "ah-shared-secret"):
        assert not any(secret in text for text in shown.values())


def test_without_a_file_the_single_account_variables_work_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no segment_assets.yaml here

    resources = provider_resources({"ONESIGNAL_APP_ID": "app", "ONESIGNAL_API_KEY": "k"})

    assert isinstance(resources["onesignal"], OneSignalResource)
    assert isinstance(resources["actionhub"], ActionHubResource)
    assert resources["onesignal"].all_accounts() == [resources["onesignal"]]
    assert load_accounts({}) is None


def test_a_default_file_in_the_working_directory_is_read(tmp_path, monkeypatch):
    (tmp_path / "segment_assets.yaml").write_text("actionhub: {}\n")
    monkeypatch.chdir(tmp_path)

    assert provider_resources({})["actionhub"].all_accounts() == []


def test_every_problem_of_a_bad_file_is_listed_in_one_message(tmp_path):
    env = write(
        tmp_path,
        """
        onesignal:
          brand_a:
            app_id: one
            api_key_env: ONESIGNAL_BRAND_A_API_KEY
          brand_a:
            app_id: other
            api_key_env: ONESIGNAL_BRAND_A_API_KEY
          brand_e:
            app_id: yet-another
            api_key: os_v2_app_written_into_the_file
          brand_c:
            app_id: 7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d
            api_key_env: NOT_SET_ANYWHERE
          brand_d:
            app_id: 7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d
            api_key_env: ONESIGNAL_BRAND_A_API_KEY
            max_rps: -1
            colour: blue
        usercom:
          agency:
            api_key_env: ONESIGNAL_BRAND_A_API_KEY
        actionhub:
          eu:
            program_id: prog-eu
            api_key_env: ONESIGNAL_BRAND_A_API_KEY
            page_size: 500
        mailchimp:
          x: {}
        """,
    )
    env["ONESIGNAL_BRAND_A_API_KEY"] = "os_v2_app_secret_value"

    with pytest.raises(ConfigurationError) as raised:
        load_accounts(env)

    message = str(raised.value)
    expected = [
        "'brand_a' given twice",
        "onesignal.brand_e.api_key: never write a key into this file; put it in an "
        "environment variable and name that variable with api_key_env",
        "onesignal.brand_c.api_key_env: the variable NOT_SET_ANYWHERE is not set",
        "onesignal.brand_d.max_rps: must be positive, got -1",
        "onesignal.brand_d: unknown setting 'colour'",
        "usercom.agency: base_url is required",
        "actionhub.eu.page_size: must be between 1 and 100 (the API's maximum page size)",
        "unknown provider 'mailchimp'",
    ]
    for text in expected:
        assert text in message, text
    assert message.count("\n  - ") == len(expected)
    assert "os_v2_app_written_into_the_file" not in message
    assert "os_v2_app_secret_value" not in message


def test_the_same_account_under_two_names_is_refused(tmp_path):
    env = write(
        tmp_path,
        """
        usercom:
          one:
            base_url: https://acme.user.com/api/public
            api_key_env: USERCOM_KEY
          two:
            base_url: https://acme.user.com/api/public/
            api_key_env: USERCOM_KEY
        """,
    )
    env["USERCOM_KEY"] = "k" * 64

    with pytest.raises(ConfigurationError, match=r"usercom.two: the same account as usercom.one"):
        load_accounts(env)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("onesignal: [a, b\n", "is not valid YAML"),
        ("- onesignal\n", "the file must map provider names to their accounts"),
        ("onesignal: [brand_a]\n", "onesignal: expected accounts by name"),
        ("onesignal:\n  'brand a': {}\n", "an account name is a letter then letters"),
    ],
    ids=["yaml-syntax", "not-a-mapping", "list-of-accounts", "bad-name"],
)
def test_a_malformed_file_says_what_is_wrong(tmp_path, text, says):
    with pytest.raises(ConfigurationError, match=says):
        load_accounts(write(tmp_path, text))


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist; create it or unset"):
        load_accounts({"SEGMENT_ASSETS_CONFIG": str(tmp_path / "nope.yaml")})


def test_the_code_location_refuses_to_load_a_bad_file_and_lists_its_problems(tmp_path):
    env = write(tmp_path, "onesignal:\n  brand_a:\n    api_key_env: MISSING_KEY_VARIABLE\n")
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "segment_assets.definitions"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "has 2 problem(s)" in output
    assert "onesignal.brand_a.api_key_env: the variable MISSING_KEY_VARIABLE is not set" in output
    assert "onesignal.brand_a: app_id is required" in output


def test_numbers_and_lists_are_written_in_the_file_not_named_by_a_variable(tmp_path):
    env = write(
        tmp_path,
        """
        actionhub:
          eu:
            program_id: prog-eu
            api_key_env: AH_KEY
            max_rps_env: AH_RPS
            segment_types_env: AH_TYPES
        """,
    )
    env.update(AH_KEY="k", AH_RPS="5", AH_TYPES="growth")

    with pytest.raises(ConfigurationError) as raised:
        load_accounts(env)

    message = str(raised.value)
    assert "actionhub.eu.max_rps_env: max_rps takes a value in the file, not a variable" in message
    assert "actionhub.eu.segment_types_env: segment_types takes a value in the file" in message


def test_an_account_sets_its_own_request_limits_and_their_errors_name_the_file(tmp_path, log):
    from segment_assets.emulator import EmulatorConfig, EmulatorServer, UserComApp
    from segment_assets.providers.errors import ProviderPaginationError

    from .conftest import YESTERDAY

    # 25 segments in pages of 10: three pages, one more than this account allows
    config = EmulatorConfig(usercom=[UserComApp("agency", "u" * 64, n_segments=25, page_size=10)])
    with EmulatorServer(config) as emu:
        emu.state.set_date(YESTERDAY)
        env = write(
            tmp_path,
            f"""
            usercom:
              agency:
                base_url: {emu.base_url("usercom", "agency")}
                api_key_env: USERCOM_AGENCY_KEY
                request_deadline_seconds: 12
                rate_limit_budget_seconds: 300
                max_pages: 2
            """,
        )
        env["USERCOM_AGENCY_KEY"] = "u" * 64
        [account] = provider_resources(env)["usercom"].all_accounts()
        assert (account.request_deadline_seconds, account.rate_limit_budget_seconds) == (12, 300)
        account = account.model_copy(update={"api_key": "u" * 64})  # as the run reads it

        with pytest.raises(ProviderPaginationError) as raised:
            account.snapshot(YESTERDAY, log)

    assert f"Raise usercom.agency.max_pages in {env['SEGMENT_ASSETS_CONFIG']}" in str(raised.value)


def test_every_value_is_held_to_the_rule_of_the_setting_it_fills(tmp_path):
    env = write(
        tmp_path,
        """
        actionhub:
          eu:
            label: "  "
            program_id: prog-eu
            program_id_env: AH_PROGRAM
            api_key_env: AH_KEY
            base_url: api.actionhub.ai
            max_rps: fast
            max_concurrency: 1.5
            max_pages: 0
            request_deadline_seconds: -3
            min_weight: 2
            force_refresh: sometimes
            segment_bases: [labels, labels]
        onesignal:
          web:
            app_id: 7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d
            api_key_env: OS_KEY
            base_url_env: OS_BASE
        """,
    )
    env.update(AH_KEY="k", AH_PROGRAM="prog-eu", OS_KEY="k", OS_BASE="https://x?debug=1")

    with pytest.raises(ConfigurationError) as raised:
        load_accounts(env)

    message = str(raised.value)
    expected = [
        "actionhub.eu.label: must be some words, got '  '",
        "actionhub.eu: program_id is given both as a value and as program_id_env",
        "actionhub.eu.base_url: must be an http(s) URL such as https://api.example.com",
        "actionhub.eu.max_rps: must be a number, got 'fast'",
        "actionhub.eu.max_concurrency: must be a whole number, got 1.5",
        "actionhub.eu.max_pages: must be positive, got 0",
        "actionhub.eu.request_deadline_seconds: must be positive, got -3",
        "actionhub.eu.min_weight: must be at most 1",
        "actionhub.eu.force_refresh: must be true or false, got 'sometimes'",
        "actionhub.eu.segment_bases: lists labels twice",
        "onesignal.web.base_url_env: OS_BASE must not carry a query string or fragment",
    ]
    for text in expected:
        assert text in message, text
    assert message.count("\n  - ") == len(expected)


def test_every_bad_provider_wide_variable_is_listed_in_one_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no accounts file

    with pytest.raises(ConfigurationError) as raised:
        provider_resources({"ONESIGNAL_MAX_RPS": "-1", "USERCOM_MAX_CONCURRENCY": "two"})

    message = str(raised.value)
    assert message.startswith("the environment has 2 problem(s):")
    assert "USERCOM_MAX_CONCURRENCY must be a whole number, got 'two'" in message
    assert "ONESIGNAL_MAX_RPS must be positive, got '-1'" in message


def test_a_key_pasted_where_the_variable_name_belongs_is_never_repeated(tmp_path):
    env = write(
        tmp_path,
        """
        onesignal:
          web:
            app_id: 7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d
            api_key_env: "os_v2_app pasted-secret"
        """,
    )

    with pytest.raises(ConfigurationError) as raised:
        load_accounts(env)

    message = str(raised.value)
    assert "onesignal.web.api_key_env: must be the name of an environment variable" in message
    assert "pasted-secret" not in message
    assert message.count("\n  - ") == 1
