"""ActionHub: every type × basis list, paged to the end, equals the emulator's truth."""

from __future__ import annotations

import pytest

from segment_assets.emulator import DEMO_ACTIONHUB_KEY, ActionHubProgram, EmulatorConfig
from segment_assets.http import ProviderAuthError, ProviderRequestError
from segment_assets.resources import ActionHubResource, ConfigurationError

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
    from segment_assets.http import ProviderHTTP
    from segment_assets.providers import actionhub

    client = ProviderHTTP(
        "actionhub",
        emulator.base_url("actionhub"),
        actionhub.headers(DEMO_ACTIONHUB_KEY, "demo-program"),
    )
    with pytest.raises(ProviderRequestError) as info:
        client.get_json("/segments", {"segment_type": "sideways"})
    assert "HTTP 422" in str(info.value)
    assert "segment_type" in str(info.value)


def test_an_unknown_segment_type_is_refused_before_any_request(emulator, log):
    with pytest.raises(ConfigurationError, match="unknown ActionHub segment type"):
        resource(emulator, segment_types=["sideways"]).snapshot(YESTERDAY, log)
    assert emulator.state.stats()["actionhub"]["requests"] == 0
