"""User.com: follow next links to the end; object_count is the user count."""

from __future__ import annotations

import pandas as pd
import pytest

from segment_assets.emulator import EmulatorConfig, EmulatorServer, UserComApp
from segment_assets.providers.http import ProviderAuthError
from segment_assets.providers.usercom import UserComResource

from .conftest import YESTERDAY

KEY = "u" * 64


def resource(emu, subdomain="app", api_key=KEY):
    return UserComResource(
        api_key=api_key,
        base_url=emu.base_url("usercom", subdomain),
        max_requests_per_second=None,
        env_names={"api_key": "USERCOM_API_KEY"},
    )


@pytest.mark.parametrize("size", [0, 1, 100, 250], ids=["empty", "one", "one-page", "many-pages"])
def test_an_app_of_any_size_snapshots_exactly_its_segments(size, log):
    config = EmulatorConfig(usercom=[UserComApp("app", KEY, n_segments=size)])
    with EmulatorServer(config) as emu:
        emu.state.set_date(YESTERDAY)
        frame = resource(emu).snapshot(YESTERDAY, log)
        truth = {str(t["id"]): t for t in emu.state.truth("usercom", "app")}
        requests = emu.state.stats()["usercom"]["requests"]
    assert len(truth) == size
    assert sorted(frame["segment_id"]) == sorted(truth)
    assert requests == max(1, -(-size // 100))
    for row in frame.itertuples():
        item = truth[row.segment_id]
        assert row.user_count == item["object_count"]
        assert row.segment_name == item["name"]
        assert row.too_heavy == item["too_heavy"]
        assert row.update_interval == item["update_interval"]
        assert row.last_counted == pd.Timestamp(item["last_counted"]).tz_localize(None)
    if size:
        assert frame["account"].iloc[0].endswith("/usercom/app")


def test_the_demo_app_has_too_heavy_and_stale_segments_and_keeps_them(emulator, log):
    frame = resource(emulator, "demo", emulator.state.config.usercom[0].api_key).snapshot(
        YESTERDAY, log
    )
    truth = emulator.state.truth("usercom", "demo")
    assert len(frame) == len(truth)
    assert frame["too_heavy"].sum() == sum(t["too_heavy"] for t in truth)


def test_a_bad_token_fails_at_once_naming_the_variable(emulator, log):
    with pytest.raises(ProviderAuthError) as info:
        resource(emulator, "demo", "x" * 64).snapshot(YESTERDAY, log)
    assert "HTTP 401" in str(info.value)
    assert "Invalid token" in str(info.value)
    assert "USERCOM_API_KEY" in str(info.value)
    assert "x" * 64 not in str(info.value)
    assert emulator.state.stats()["usercom"]["requests"] == 1
