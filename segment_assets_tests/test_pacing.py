"""Pacing, concurrency and keep-alive: a snapshot goes as fast as the provider allows.

Every test runs the real clients against the emulator over a socket and reads the
emulator's own counters (429s answered, requests in flight at once, TCP connections).
"""

from __future__ import annotations

import threading
import time

import pytest

from segment_assets.config import provider_resources_from_env
from segment_assets.emulator import (
    ActionHubProgram,
    EmulatorConfig,
    EmulatorServer,
    OneSignalApp,
    UserComApp,
)
from segment_assets.providers import onesignal
from segment_assets.providers.actionhub import ActionHubResource
from segment_assets.providers.http import ProviderHTTP, RetrySettings
from segment_assets.providers.onesignal import OneSignalResource
from segment_assets.providers.usercom import UserComResource

from .conftest import YESTERDAY

APP = "5d0c6b1e-7f2a-4c3b-9e8d-1a2b3c4d5e6f"
APP_KEY = "os_v2_app_pacingtestkey"
PROGRAM, AH_KEY = "pacing-program", "pacing-ah-key"
SUBDOMAIN = "pacing"
UC_KEY = "b" * 64


def emulator(**kw) -> EmulatorServer:
    config = EmulatorConfig(
        actionhub=[ActionHubProgram(PROGRAM, AH_KEY, segments_per_list=kw.pop("ah", 60))],
        usercom=[UserComApp(SUBDOMAIN, UC_KEY, n_segments=kw.pop("uc", 300), page_size=10)],
        onesignal=[
            OneSignalApp(APP, APP_KEY, n_segments=kw.pop("os", 60), n_user_based=0, n_deleted=0)
        ],
        **kw,
    )
    return EmulatorServer(config)


def onesignal_resource(emu: EmulatorServer, rps: float | None, concurrency: int):
    return OneSignalResource(
        api_key=APP_KEY,
        app_id=APP,
        base_url=emu.base_url("onesignal"),
        max_requests_per_second=rps,
        max_concurrency=concurrency,
    )


def actionhub_resource(emu: EmulatorServer, concurrency: int, **kw) -> ActionHubResource:
    return ActionHubResource(
        api_key=AH_KEY,
        program_id=PROGRAM,
        base_url=emu.base_url("actionhub"),
        page_size=10,
        max_concurrency=concurrency,
        **kw,
    )


def timed(snapshot) -> tuple:
    started = time.perf_counter()
    frame = snapshot(YESTERDAY)
    return frame, time.perf_counter() - started


def test_the_documented_defaults_and_environment_overrides_set_each_clients_pace():
    defaults = provider_resources_from_env({})
    pace = {p: (r.max_requests_per_second, r.max_concurrency) for p, r in defaults.items()}
    # OneSignal documents about one view request per second per app: a little under it
    assert pace == {"actionhub": (10.0, 4), "usercom": (5.0, 1), "onesignal": (0.9, 2)}

    env = {
        **{f"{p}_MAX_RPS": "40" for p in ("ACTIONHUB", "USERCOM", "ONESIGNAL")},
        **{f"{p}_MAX_CONCURRENCY": "3" for p in ("ACTIONHUB", "USERCOM", "ONESIGNAL")},
    }
    for resource in provider_resources_from_env(env).values():
        assert (resource.max_requests_per_second, resource.max_concurrency) == (40.0, 3)


def test_a_onesignal_snapshot_at_the_apps_view_limit_gets_no_429_and_goes_no_faster():
    # the app allows 50 views a second (with one request of tolerance for network jitter)
    with emulator(os=60, view_rate_limit_rps=50, view_rate_limit_burst=2) as emu:
        emu.state.set_date(YESTERDAY)
        frame, wall = timed(onesignal_resource(emu, rps=50, concurrency=4).snapshot)
        stats = emu.state.stats()["onesignal"]
        truth = {t["id"] for t in emu.state.truth("onesignal", APP)}
    assert sorted(frame["segment_id"]) == sorted(truth)
    assert stats["429"] == 0
    requests = stats["requests"]  # one listing page and 60 views
    assert requests == 61
    assert (requests - 1) / 50 - 0.02 <= wall < requests / 50 * 1.5


@pytest.mark.slow
def test_an_app_paced_exactly_at_a_strict_limit_slows_down_and_stores_every_segment():
    # the app allows 8 views a second with no burst at all, the client is set to exactly 8
    # and has no retries left to spend: a 429 that counted as one would end the snapshot
    with emulator(os=24, view_rate_limit_rps=8, view_rate_limit_burst=1) as emu:
        emu.state.set_date(YESTERDAY)
        resource = onesignal_resource(emu, rps=8, concurrency=2)
        frame, wall = timed(resource.model_copy(update={"max_retries": 0}).snapshot)
        stats = emu.state.stats()["onesignal"]
        truth = {t["id"] for t in emu.state.truth("onesignal", APP)}
    assert sorted(frame["segment_id"]) == sorted(truth)
    assert stats["requests"] == 25 + stats["429"]
    assert stats["429"] <= 3  # each one slowed the client down, so they stay rare
    assert wall < 25 / 8 + 1.5 * stats["429"] + 1


def test_an_actionhub_snapshot_under_a_rate_limit_gets_no_429():
    with emulator(ah=25) as emu:
        emu.state.set_date(YESTERDAY)
        emu.state.set_faults("actionhub", rate_limit_rps=50, rate_limit_burst=2)
        frame, wall = timed(actionhub_resource(emu, 4, max_requests_per_second=50).snapshot)
        stats = emu.state.stats()["actionhub"]
        truth = emu.state.truth("actionhub", PROGRAM)
    assert len(frame) == len(truth) == frame["segment_id"].nunique() == 150
    assert stats["requests"] == 18 and stats["429"] == 0  # 6 lists × 3 pages of 10
    assert wall >= 17 / 50 - 0.01


def test_one_429_pauses_every_worker_of_the_client_for_its_retry_after():
    with emulator() as emu:
        emu.state.set_date(YESTERDAY)
        segment = emu.state.truth("onesignal", APP)[0]["id"]
        emu.state.set_faults("onesignal", fail_next=["429"])  # answers Retry-After: 1
        http = ProviderHTTP(
            "onesignal",
            emu.base_url("onesignal"),
            onesignal.headers(APP_KEY),
            max_rps=50,
            max_concurrency=4,
            retry=RetrySettings(max_retries=2),
        )
        done: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(6):
                http.get_json(f"/apps/{APP}/segments/{segment}")
                with lock:
                    done.append(time.perf_counter())

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        http.close()
        stats = emu.state.stats()["onesignal"]
    assert stats["429"] == 1 and stats["requests"] == 25
    # The 429 came back within milliseconds. Had only its worker waited, the other three
    # would have finished their 18 requests in 0.4 s; had the callers already queued for
    # their turn ignored the pause, three would have gone through.
    early = [t for t in done if t - started < 0.95]
    assert len(early) <= 1, f"{len(early)} requests went through during the pause"
    assert max(done) - started < 1.0 + 24 / 50 + 0.4


@pytest.mark.parametrize(
    ("types", "bases", "pages"),
    [(["growth"], ["labels"], 6), (["growth", "base", "discovery"], ["labels", "assets"], 36)],
    ids=["one-list", "six-lists"],
)
def test_actionhub_reads_page_one_then_fetches_the_rest_side_by_side(types, bases, pages):
    latency = 0.05
    with emulator(ah=55) as emu:
        emu.state.set_date(YESTERDAY)
        emu.state.set_faults("actionhub", latency_ms=latency * 1000)
        resource = actionhub_resource(
            emu, 4, max_requests_per_second=None, segment_types=types, segment_bases=bases
        )
        frame, wall = timed(resource.snapshot)
        stats = emu.state.stats()["actionhub"]
    assert len(frame) == frame["segment_id"].nunique() == 55 * len(types) * len(bases)
    assert stats["requests"] == pages
    assert stats["max_in_flight"] == 4
    assert stats["connections"] <= 4  # one pooled session, connections reused
    if pages > 10:
        assert wall < pages * latency / 2  # one request at a time takes 1.8 s


def test_onesignal_views_run_in_a_bounded_pool_over_kept_alive_connections():
    with emulator(os=40) as emu:
        emu.state.set_date(YESTERDAY)
        emu.state.set_faults("onesignal", latency_ms=20)
        frame, wall = timed(onesignal_resource(emu, rps=None, concurrency=4).snapshot)
        stats = emu.state.stats()["onesignal"]
    assert len(frame) == 40 and stats["requests"] == 41
    assert stats["max_in_flight"] == 4
    assert stats["connections"] <= 4
    assert wall < 41 * 0.02 / 2  # sequentially it takes 0.82 s


def test_usercom_follows_its_next_links_over_one_kept_alive_connection():
    with emulator(uc=300) as emu:
        emu.state.set_date(YESTERDAY)
        resource = UserComResource(
            api_key=UC_KEY,
            base_url=emu.base_url("usercom", SUBDOMAIN),
            max_requests_per_second=None,
        )
        frame = resource.snapshot(YESTERDAY)
        stats = emu.state.stats()["usercom"]
    assert len(frame) == frame["segment_id"].nunique() == 300
    assert stats["requests"] == 30
    assert stats["connections"] == 1
