"""Every request ends and every error says what to change, through real Dagster runs.

A provider that drips its answer is cut off at the request deadline; a provider that answers
429 again and again slows the account down rather than ending it, until the account's time
budget for being rate limited runs out; a 400 about the credentials asks for the key.
"""

from __future__ import annotations

import time

import pytest

from segment_assets.emulator import EmulatorConfig

from .conftest import YESTERDAY, failure_text
from .dripping_server import DrippingServer
from .resilience import (
    counts_of,
    expected_counts,
    fast_resources,
    materialize,
    run_messages,
    small_config,
    stored,
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return small_config()


def test_a_provider_that_drips_its_answer_is_cut_off_at_the_deadline_not_waited_for(
    emulator, env, instance, duckdb_path, monkeypatch
):
    page = b'{"count": 0, "next": null, "previous": null, "results": []}'
    with DrippingServer(page, interval=0.2) as server:  # 12 s an answer, a byte at a time
        monkeypatch.setenv("USERCOM_BASE_URL", server.url + "/api/public")
        resources = fast_resources(usercom={"request_deadline_seconds": 0.6})
        started = time.monotonic()
        result = materialize(resources, instance, YESTERDAY, providers=["usercom"])
        wall = time.monotonic() - started
        attempts = len(server.requests)

    assert not result.success
    assert (
        "gave up after 3 attempts; last problem: timed out: no complete answer within the "
        "0.6s deadline (UserComResource.request_deadline_seconds)"
    ) in failure_text(result)
    assert attempts == 3  # the deadline counts as a timeout: retried, then given up
    assert wall < 3 * 0.6 + 4  # Dagster's own start-up included; the drip alone is 36 s
    assert stored(duckdb_path, "usercom").empty


def test_an_app_answered_429_many_times_in_a_row_slows_down_and_stores_its_day(
    emulator, env, instance, duckdb_path
):
    # twelve 429s in a row, where the account has two retries: 429s do not use them up
    emulator.state.set_faults("onesignal", fail_next=["429-now"] * 12)

    result = materialize(fast_resources(), instance, YESTERDAY, providers=["onesignal"])

    assert result.success, failure_text(result)
    assert counts_of(stored(duckdb_path, "onesignal", YESTERDAY)) == expected_counts(
        emulator, "onesignal"
    )
    assert emulator.state.stats()["onesignal"]["429"] == 12
    waits = [m for m in run_messages(instance, result.run_id) if "rate limited:" in m]
    assert len(waits) == 12 and "API rate limit exceeded" in waits[0]


def test_an_app_rate_limited_past_its_budget_fails_naming_the_account_and_the_setting(
    emulator, env, instance, duckdb_path
):
    emulator.state.set_faults("onesignal", fail_always="429-now")
    resources = fast_resources(onesignal={"rate_limit_budget_seconds": 0.5})

    result = materialize(resources, instance, YESTERDAY, providers=["onesignal"])

    assert not result.success
    message = failure_text(result)
    app = env["ONESIGNAL_APP_ID"]
    assert f"HTTP 429: OneSignal {app} has been rate limited for " in message
    assert (
        "of its 0.5s budget and is asked to wait 0.0s more; last problem: HTTP 429 (API rate "
        "limit exceeded). Raise OneSignalResource.rate_limit_budget_seconds to wait longer, "
        "or lower ONESIGNAL_MAX_RPS if other clients share this limit"
    ) in message
    assert emulator.state.stats()["onesignal"]["429"] > 7
    assert stored(duckdb_path, "onesignal").empty


def test_a_400_about_the_authorization_header_fails_at_once_asking_to_check_the_key(
    emulator, env, instance, duckdb_path
):
    emulator.state.set_faults("onesignal", fail_always="400-auth")

    result = materialize(fast_resources(), instance, YESTERDAY, providers=["onesignal"])

    assert not result.success
    message = failure_text(result)
    assert "HTTP 400: credentials refused — provider said: Please include a case-sensitive " in (
        message
    )
    assert "Check ONESIGNAL_API_KEY and ONESIGNAL_APP_ID" in message
    assert env["ONESIGNAL_API_KEY"] not in message
    assert emulator.state.stats()["onesignal"]["requests"] == 1
