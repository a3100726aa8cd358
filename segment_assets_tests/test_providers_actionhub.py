"""ActionHub: every type × basis list, paged to the end, equals the emulator's truth."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from segment_assets.config import ConfigurationError, account_resource, parse_accounts
from segment_assets.emulator import DEMO_ACTIONHUB_KEY, ActionHubProgram, EmulatorConfig
from segment_assets.providers.actionhub import ActionHubResource
from segment_assets.providers.http import ProviderAuthError, ProviderRequestError

from .conftest import YESTERDAY

BASIS = {"label": "labels", "asset": "assets"}


def resource(emu, program_id="demo-program", api_key=DEMO_ACTIONHUB_KEY, **kw):
    return ActionHubResource(
        api_key=api_key,
        program_id=program_id,
        base_url=emu.base_url("actionhub"),
        max_requests_per_second=None,
        **kw,
    )


def truth_by_id(emu, program_id, min_weight=0.5):
    return {
        f"{t['segment_type']}/{BASIS[t['segment_basis']]}/{t['segment_basis_id']}/"
        f"{t['action_type']}": t
        for t in emu.state.truth("actionhub", program_id, min_weight=min_weight)
    }


def config_with(size: int) -> EmulatorConfig:
    return EmulatorConfig(actionhub=[ActionHubProgram("p1", "k-test", segments_per_list=size)])


@pytest.mark.parametrize("size", [0, 1, 50, 130], ids=["empty", "one", "one-page", "many-pages"])
def test_a_program_of_any_size_snapshots_exactly_its_segments(size, log):
    from segment_assets.emulator import EmulatorServer

    with EmulatorServer(config_with(size)) as emu:
        emu.state.set_date(YESTERDAY)
        frame = resource(emu, "p1", "k-test").snapshot(YESTERDAY, log)
        truth = truth_by_id(emu, "p1")
    assert len(truth) == 6 * size
    assert sorted(frame["segment_id"]) == sorted(truth)
    for row in frame.itertuples():
        item = truth[row.segment_id]
        assert row.user_count == item["user_count"]
        assert row.segment_name == item["name"]
        assert row.strength == pytest.approx(item["strength"])
        assert row.account == "p1"
        assert row.provider == "actionhub"


def test_one_key_serves_two_programs_and_each_snapshot_is_its_own(emulator, log):
    first = resource(emulator, "demo-program").snapshot(YESTERDAY, log)
    second = resource(emulator, "demo-program-2").snapshot(YESTERDAY, log)
    assert set(first["account"]) == {"demo-program"}
    assert set(second["account"]) == {"demo-program-2"}
    assert sorted(second["segment_id"]) == sorted(truth_by_id(emulator, "demo-program-2"))


def test_only_the_configured_types_and_bases_are_listed(emulator, log):
    frame = resource(emulator, segment_types=["base"], segment_bases=["assets"]).snapshot(
        YESTERDAY, log
    )
    assert set(frame["segment_type"]) == {"base"}
    assert set(frame["segment_basis"]) == {"assets"}
    assert emulator.state.stats()["actionhub"]["requests"] == 1


def test_min_weight_is_sent_and_recorded(emulator, log):
    frame = resource(emulator, min_weight=0.8).snapshot(YESTERDAY, log)
    truth = truth_by_id(emulator, "demo-program", min_weight=0.8)
    assert set(frame["min_weight"]) == {0.8}
    assert dict(zip(frame["segment_id"], frame["user_count"], strict=True)) == {
        k: v["user_count"] for k, v in truth.items()
    }


def test_a_bad_key_fails_at_once_naming_what_to_check(emulator, log):
    bad = resource(emulator, api_key="wrong-key")
    bad = bad.model_copy(update={"env_names": {"api_key": "ACTIONHUB_API_KEY"}})
    with pytest.raises(ProviderAuthError) as info:
        bad.snapshot(YESTERDAY, log)
    message = str(info.value)
    assert "HTTP 403" in message and "Could not validate API KEY" in message
    assert "ACTIONHUB_API_KEY" in message
    assert "wrong-key" not in message
    assert emulator.state.stats()["actionhub"]["requests"] == 1


def test_a_parameter_the_api_rejects_gives_its_validation_message(emulator, log):
    from segment_assets.providers import actionhub
    from segment_assets.providers.http import ProviderHTTP

    client = ProviderHTTP(
        "actionhub",
        emulator.base_url("actionhub"),
        actionhub.headers(DEMO_ACTIONHUB_KEY, "demo-program"),
    )
    with pytest.raises(ProviderRequestError) as info:
        client.get_json("/segments", {"segment_type": "sideways"})
    assert "HTTP 422" in str(info.value)
    assert "segment_type" in str(info.value)


def test_a_basis_the_api_does_not_know_is_judged_by_its_422_which_names_the_setting(emulator, log):
    # responses call the basis 'label', so a user may well write that; the API wants 'labels'
    bad = resource(emulator, segment_bases=["label"])
    with pytest.raises(ProviderRequestError) as info:
        bad.snapshot(YESTERDAY, log)
    assert str(info.value) == (
        "actionhub GET /segments HTTP 422: the API does not accept segment_basis 'label'; it "
        "permits labels, assets. Change ActionHubResource.segment_bases to a list of those"
    )
    assert emulator.state.stats()["actionhub"]["requests"] == 1


def test_a_mistyped_type_in_the_accounts_file_names_that_entry_and_what_the_api_permits(
    emulator, log, tmp_path
):
    text = (
        "actionhub:\n  brand_a:\n    program_id: demo-program\n    api_key_env: AH_KEY\n"
        "    segment_types: [growth, grwoth]\n"
    )
    env = {"AH_KEY": DEMO_ACTIONHUB_KEY, "ACTIONHUB_BASE_URL": emulator.base_url("actionhub")}
    accounts = parse_accounts(text, "segment_assets.yaml", env)  # any word may be written
    [spec] = accounts.providers["actionhub"]
    account = account_resource(spec, accounts.path, env).model_copy(
        update={"api_key": DEMO_ACTIONHUB_KEY}
    )
    with pytest.raises(ProviderRequestError) as info:
        account.snapshot(YESTERDAY, log)
    assert (
        "the API does not accept segment_type 'grwoth'; it permits growth, base, discovery. "
        "Change actionhub.brand_a.segment_types in segment_assets.yaml to a list of those"
    ) in str(info.value)


@pytest.mark.parametrize("size", [0, 101, 500])
def test_a_page_size_the_api_would_refuse_is_refused_when_the_definitions_load(size):
    with pytest.raises(ValidationError, match=f"between 1 and 100 .*, got {size}"):
        ActionHubResource(api_key="k", program_id="p", page_size=size)
    with pytest.raises(ConfigurationError, match=r"brand_a\.page_size: must be between 1 and 100"):
        parse_accounts(
            f"actionhub:\n  brand_a: {{program_id: p, api_key_env: K, page_size: {size}}}\n",
            "segment_assets.yaml",
            {"K": "key"},
        )


def test_force_refresh_asks_for_one_recount_per_list_not_one_per_page(emulator, log):
    # 40 segments a list in pages of 15: three pages for each of the six lists
    frame = resource(emulator, force_refresh=True, page_size=15).snapshot(YESTERDAY, log)
    stats = emulator.state.stats()["actionhub"]
    assert len(frame) == 6 * 40
    assert stats["requests"] == 6 * 3
    assert stats["recounts"] == 6


@pytest.mark.parametrize(
    ("types", "says"),
    [
        ([], "segment_types\n.*must list at least one value"),
        (["growth base"], "segment_types\n.*must list single words"),
        (["growth", "growth"], "segment_types\n.*lists growth twice"),
    ],
    ids=["none", "two-words-in-one", "twice"],
)
def test_segment_types_that_cannot_be_a_list_of_api_values_are_refused_at_load(types, says):
    with pytest.raises(ValidationError, match=says):
        ActionHubResource(api_key="k", program_id="p", segment_types=types)
