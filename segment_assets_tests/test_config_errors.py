"""Bad configuration fails the run with a clear message before any provider is called."""

from __future__ import annotations

from pathlib import Path

import pytest

from segment_assets.config import ConfigurationError, provider_resources_from_env
from segment_assets.emulator import EmulatorConfig

from .conftest import YESTERDAY
from .resilience import (
    PROVIDERS,
    error_text,
    fast_resources,
    materialize,
    requests_made,
    small_config,
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


@pytest.mark.parametrize(
    ("provider", "value", "says"),
    [
        ("actionhub", "api.actionhub.ai", "ACTIONHUB_BASE_URL must be an http(s) URL"),
        ("usercom", "https://acme.user.com/api/public?x=1", "USERCOM_BASE_URL must not carry"),
        ("onesignal", "ftp://api.onesignal.com", "ONESIGNAL_BASE_URL must be an http(s) URL"),
    ],
    ids=["no-scheme", "query-string", "not-http"],
)
def test_a_malformed_base_url_fails_before_any_request(
    provider, value, says, emulator, env, instance, monkeypatch
):
    monkeypatch.setenv(f"{provider.upper()}_BASE_URL", value)

    result = materialize(fast_resources(), instance, YESTERDAY, providers=[provider])

    assert not result.success
    assert says in error_text(result)
    assert value in error_text(result)  # the user sees what they set
    assert requests_made(emulator) == 0


def test_a_mistyped_actionhub_segment_type_fails_naming_the_setting_and_the_api_choices(
    emulator, env, instance
):
    # any word may be configured; the API judges it, and its 422 says what it permits
    resources = fast_resources(actionhub={"segment_types": ["growth", "grwoth"]})

    result = materialize(resources, instance, YESTERDAY, providers=["actionhub"])

    assert not result.success
    assert (
        "the API does not accept segment_type 'grwoth'; it permits growth, base, discovery. "
        "Change ActionHubResource.segment_types to a list of those"
    ) in error_text(result)


def test_a_negative_partition_age_limit_fails_before_any_request(emulator, env, instance):
    config = {
        "ops": {f"{p}_segments": {"config": {"max_partition_age_hours": -6}} for p in PROVIDERS}
    }

    result = materialize(fast_resources(), instance, YESTERDAY, run_config=config)

    assert not result.success
    assert "max_partition_age_hours must be zero or more, got -6" in error_text(result)
    assert requests_made(emulator) == 0


def test_a_negative_request_rate_is_refused_when_the_definitions_load(env, monkeypatch):
    monkeypatch.setenv("ONESIGNAL_MAX_RPS", "-1")
    with pytest.raises(ConfigurationError, match="ONESIGNAL_MAX_RPS must be positive"):
        provider_resources_from_env()


def _parent_is_a_file(tmp: Path) -> str:
    (tmp / "plain-file").write_text("not a folder")
    return str(tmp / "plain-file" / "segment_assets.duckdb")


def _a_folder(tmp: Path) -> str:
    (tmp / "folder.duckdb").mkdir()
    return str(tmp / "folder.duckdb")


def _not_duckdb(tmp: Path) -> str:
    (tmp / "notes.duckdb").write_text("these are my notes, not a database\n" * 4)
    return str(tmp / "notes.duckdb")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_parent_is_a_file, "cannot create the folder for SEGMENT_ASSETS_DUCKDB="),
        (_a_folder, "SEGMENT_ASSETS_DUCKDB points at a directory"),
        (_not_duckdb, "exists but is not a DuckDB file"),
    ],
    ids=["parent-is-a-file", "a-directory", "not-a-duckdb-file"],
)
def test_an_unusable_duckdb_path_fails_before_any_request(
    make, says, emulator, env, instance, tmp_path
):
    database = make(tmp_path)

    result = materialize(fast_resources(database), instance, YESTERDAY)

    assert not result.success
    assert says in error_text(result)
    assert requests_made(emulator) == 0
