"""OneSignal: list with offset/limit, view each segment; user-based and deleted ones."""

from __future__ import annotations

import logging

import pytest

from segment_assets.emulator import EmulatorConfig, EmulatorServer, OneSignalApp
from segment_assets.providers.http import ProviderAuthError
from segment_assets.providers.onesignal import OneSignalResource

from .conftest import YESTERDAY

APP = "0b6f5a52-95b7-4a54-8d3f-6a3c1f2f6b10"
KEY = "os_v2_app_testkeyforthisapp"


def resource(emu, app_id=APP, api_key=KEY):
    return OneSignalResource(
        api_key=api_key,
        app_id=app_id,
        base_url=emu.base_url("onesignal"),
        max_requests_per_second=None,
        max_concurrency=8,
        env_names={"api_key": "ONESIGNAL_API_KEY", "app_id": "ONESIGNAL_APP_ID"},
    )


def served(size, user_based=0, deleted=0):
    app = OneSignalApp(APP, KEY, n_segments=size, n_user_based=user_based, n_deleted=deleted)
    return EmulatorServer(EmulatorConfig(onesignal=[app]))


@pytest.mark.parametrize("size", [0, 1, 300, 650], ids=["empty", "one", "one-page", "many-pages"])
def test_an_app_of_any_size_snapshots_exactly_its_segments(size, log):
    with served(size) as emu:
        emu.state.set_date(YESTERDAY)
        frame = resource(emu).snapshot(YESTERDAY, log)
        truth = {t["id"]: t for t in emu.state.truth("onesignal", APP)}
        stats = emu.state.stats()["onesignal"]["by_endpoint"]
    assert sorted(frame["segment_id"]) == sorted(truth)
    assert stats["list"] == size // 300 + 1
    assert stats.get("view", 0) == size
    for row in frame.itertuples():
        item = truth[row.segment_id]
        assert row.user_count == item["subscriber_count"]
        assert row.segment_name == item["name"]
        assert row.source == item["source"]
        assert row.countable


def test_an_app_with_a_user_based_segment_snapshots_the_rest_and_marks_that_one_uncountable(
    log, caplog
):
    with served(20, user_based=1, deleted=1) as emu:
        emu.state.set_date(YESTERDAY)
        with caplog.at_level(logging.INFO):
            frame = resource(emu).snapshot(YESTERDAY, logging.getLogger("t"))
        truth = {t["id"]: t for t in emu.state.truth("onesignal", APP)}
    assert sorted(frame["segment_id"]) == sorted(truth)  # the deleted one is left out
    assert len(frame) == 19
    uncountable = frame[~frame["countable"].astype(bool)]
    assert len(uncountable) == 1
    assert uncountable["user_count"].isna().all()
    assert truth[uncountable["segment_id"].iloc[0]]["user_based"]
    assert frame.loc[frame["countable"].astype(bool), "user_count"].notna().all()
    assert "deleted between listing and viewing" in caplog.text
    assert "user-based" in caplog.text


def test_filters_are_stored_as_json_text(log):
    import json

    with served(5) as emu:
        emu.state.set_date(YESTERDAY)
        frame = resource(emu).snapshot(YESTERDAY, log)
        truth = {t["id"]: t for t in emu.state.truth("onesignal", APP)}
    for row in frame.itertuples():
        assert json.loads(row.filters) == truth[row.segment_id]["filters"]


def test_a_bad_key_fails_at_once_naming_the_variables(log):
    with served(5) as emu, pytest.raises(ProviderAuthError) as info:
        resource(emu, api_key="os_v2_app_wrong").snapshot(YESTERDAY, log)
    assert "HTTP 403" in str(info.value)
    assert "ONESIGNAL_API_KEY" in str(info.value)
    assert "os_v2_app_wrong" not in str(info.value)
