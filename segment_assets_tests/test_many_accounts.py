"""An agency with dozens of OneSignal apps: every app is snapshotted at once, each at its own
pace, on a handful of threads, by the real clients against the emulator over a socket.

The emulator holds each app to a strict bucket (no burst) on every endpoint and records when
it served each app, so the tests read from the provider's side how many apps were served at
once, whether any app went faster than its limit, and how many requests each had in flight.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import uuid
from functools import partial

import pandas as pd
import pytest

from segment_assets.config import ConfigurationError
from segment_assets.config.environment import workers_from_env
from segment_assets.emulator import EmulatorConfig, OneSignalApp
from segment_assets.providers import scheduler
from segment_assets.providers.onesignal import OneSignalResource
from segment_assets.providers.ratelimit import LATE_TOLERANCE, RateLimiter
from segment_assets.snapshot import take_snapshot
from segment_assets.store.file_locks import account_lock
from segment_assets.store.postgres import PostgresStore

from .conftest import YESTERDAY
from .resilience import FAST

APPS = [(str(uuid.UUID(int=i + 1)), f"os_v2_app_agency_key_{i:03d}") for i in range(40)]
SEGMENTS = 3  # a listing and three views per app
LIMIT = 4.0  # each app's strict limit at the provider, requests per second
PACE = 2.5  # the client's pace per app, under it (the emulator shares this process's CPU)
WORKERS = 8


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        onesignal=[
            OneSignalApp(app_id, key, n_segments=SEGMENTS, n_user_based=0, n_deleted=0)
            for app_id, key in APPS
        ]
    )


@pytest.fixture
def strict(emulator):
    """Every app held to LIMIT requests a second on each endpoint, no burst; 20 ms answers."""
    emulator.state.set_faults("onesignal", rate_limit_rps=LIMIT, rate_limit_burst=1, latency_ms=20)
    return emulator


def apps(emulator, count: int = len(APPS)) -> list[OneSignalResource]:
    return [
        OneSignalResource(
            api_key=key,
            app_id=app_id,
            base_url=emulator.base_url("onesignal"),
            max_requests_per_second=PACE,
            name=f"app_{i:03d}",
            **FAST,
        )
        for i, (app_id, key) in enumerate(APPS[:count])
    ]


class Threads:
    """Samples the threads of this process that are not the in-process emulator's."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_workers = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="thread-sampler")

    @staticmethod
    def ours() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if "process_request_thread" not in t.name and not t.name.startswith("emulator-")
        ]

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            threads = self.ours()
            self.peak = max(self.peak, len(threads))
            workers = [t for t in threads if t.name.startswith("onesignal-request")]
            self.peak_workers = max(self.peak_workers, len(workers))

    def __enter__(self) -> Threads:
        self._sampler.start()
        self.before = len(self.ours())  # the sampler included
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join()


def most_apps_served_at_once(spans: dict[str, list[float]]) -> int:
    """The most apps whose first request and last answer bracket one moment."""
    edges = sorted(
        [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()]
    )
    served = most = 0
    for _, step in edges:
        served += step
        most = max(most, served)
    return most


def truth(emulator, app_id: str) -> dict[str, int]:
    return {t["id"]: t["subscriber_count"] for t in emulator.state.truth("onesignal", app_id)}


def counts(frame: pd.DataFrame, app_id: str) -> dict[str, int]:
    rows = frame.loc[frame["account"] == app_id]
    return dict(zip(rows["segment_id"], rows["user_count"].astype(int), strict=True))


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    warning = error = info


def empty_day() -> pd.DataFrame:
    return pd.DataFrame(columns=["account"])


def test_forty_apps_are_snapshotted_at_once_each_at_its_own_pace_on_a_few_threads(strict, tmp_path):
    database = str(tmp_path / "segment_assets.duckdb")

    def lock(app: OneSignalResource):
        return account_lock(database, "onesignal", app.account(), app.describe())

    with Threads() as threads:
        snap = take_snapshot(
            "onesignal", apps(strict), YESTERDAY, empty_day(), lock=lock, workers=WORKERS
        )
    stats = strict.state.stats()["onesignal"]

    assert not snap.failed
    for app_id, _ in APPS:
        assert counts(snap.frame, app_id) == truth(strict, app_id)
    # all forty apps were being served at the same time, not sixteen at a time
    assert most_apps_served_at_once(stats["span_by_account"]) > 16
    # no app went faster than its strict limit, nor had more in flight than its budget (2)
    assert stats["429"] == 0
    assert stats["requests"] == len(APPS) * (1 + SEGMENTS)
    assert max(stats["max_in_flight_by_account"].values()) <= 2
    # ... nor faster than its own pace: three views PACE apart after the listing
    durations = [end - start for start, end in stats["span_by_account"].values()]
    assert min(durations) >= SEGMENTS / PACE - 0.05
    # the apps started spread over their first interval, not all in the same instant
    starts = sorted(start for start, _ in stats["span_by_account"].values())
    assert starts[-1] - starts[0] >= 0.75 / PACE
    # the requests of all forty apps ran on the shared pool: no thread per app or request
    assert threads.peak_workers <= WORKERS
    assert threads.peak <= threads.before + WORKERS


@pytest.fixture(params=["duckdb", "postgresql"])
def account_locks(request, tmp_path):
    """Two runs' account locks on one store: this run's, and another run's (another
    process in production: on PostgreSQL its own session)."""
    if request.param == "duckdb":
        database = str(tmp_path / "segment_assets.duckdb")
        mine = other = partial(account_lock, database)
        yield mine, other
        return
    url = request.getfixturevalue("database").url
    yield PostgresStore(url).lock_account, PostgresStore(url).lock_account


def test_apps_waiting_for_their_locks_cost_no_thread_and_go_ahead_once_freed(strict, account_locks):
    mine, others = account_locks
    resources = apps(strict, 20)
    held = resources[:10]  # another run is snapshotting these ten
    holding = threading.Event()

    def other_run() -> None:
        with contextlib.ExitStack() as stack:
            for app in held:
                stack.enter_context(others("onesignal", app.account(), "other"))
            holding.set()
            time.sleep(1.5)

    log = Log()

    def lock(app: OneSignalResource):
        return mine("onesignal", app.account(), app.describe(), log)

    other = threading.Thread(target=other_run)
    other.start()
    assert holding.wait(5)
    with Threads() as threads:
        snap = take_snapshot(
            "onesignal", resources, YESTERDAY, empty_day(), lock=lock, workers=WORKERS
        )
    other.join()

    assert not snap.failed
    assert set(snap.frame["account"]) == {app.account() for app in resources}
    waited = {line.split(":")[0] for line in log.lines if "waiting for another run" in line}
    assert waited == {app.describe() for app in held}
    assert threads.peak <= threads.before + WORKERS  # ten waiting apps, no thread each
    spans = strict.state.stats()["onesignal"]["span_by_account"]
    free_started = max(spans[app.account()][0] for app in resources[10:])
    held_started = min(spans[app.account()][0] for app in held)
    assert free_started < held_started  # the free apps did not wait for the held ones


def test_a_429_pauses_only_the_app_that_received_it(strict, tmp_path):
    resources = apps(strict, 6)
    slowed = resources[0].account()
    # one 429 (Retry-After: 1 s) for the first app's listing
    strict.state.set_faults("onesignal", slowed, fail_next=["429"])

    snap = take_snapshot("onesignal", resources, YESTERDAY, empty_day(), workers=WORKERS)

    assert not snap.failed and len(snap.frame) == 6 * SEGMENTS
    stats = strict.state.stats()["onesignal"]
    assert stats["429"] == 1
    spans = {app: end - start for app, (start, end) in stats["span_by_account"].items()}
    others = [span for app, span in spans.items() if app != slowed]
    assert spans[slowed] >= 1.0 + SEGMENTS / PACE * 0.9  # it waited out its Retry-After ...
    assert max(others) < spans[slowed] - 0.5  # ... and the others did not


def test_a_bad_worker_setting_fails_before_any_request_naming_the_variable(strict, monkeypatch):
    monkeypatch.setenv("SEGMENT_ASSETS_WORKERS", "0")

    with pytest.raises(ConfigurationError, match="SEGMENT_ASSETS_WORKERS must be positive"):
        take_snapshot("onesignal", apps(strict, 2), YESTERDAY, empty_day())

    assert strict.state.stats()["onesignal"]["requests"] == 0
    assert workers_from_env({}) == 64
    assert workers_from_env({"SEGMENT_ASSETS_WORKERS": "8"}) == 8


def test_while_accounts_run_the_collector_leaves_older_objects_alone():
    """A full collection through Dagster's and pandas' objects would hold every request in
    flight for a tenth of a second; during a step they are frozen, afterwards not."""
    before = gc.get_freeze_count()
    during = scheduler.run_side_by_side([gc.get_freeze_count] * 2, workers=1)
    assert min(during) > 0
    assert gc.get_freeze_count() == before


def test_a_request_that_leaves_late_pushes_the_next_slot_back_and_noise_does_not():
    """A strict limit counts when requests arrive, not when their slots were taken."""
    now = [100.0]
    limiter = RateLimiter(1.0, clock=lambda: now[0])
    assert limiter.try_acquire(limiter.now()) == 100.0
    limiter.sent(100.002)  # two milliseconds of scheduling noise
    assert limiter.wait_time() == pytest.approx(1.0)  # the schedule holds
    now[0] = 101.0
    assert limiter.try_acquire(limiter.now()) == 101.0
    limiter.sent(101.3)  # it waited 300 ms for a CPU after taking its slot
    assert limiter.wait_time() == pytest.approx(1.3 - LATE_TOLERANCE)


class Interrupted(BaseException):
    """What a run's termination raises in the step (like Dagster's interrupt)."""


def test_an_interrupted_step_stops_every_account_and_frees_their_locks(tmp_path):
    database = str(tmp_path / "segment_assets.duckdb")
    holding = []

    def waits_for_its_turn() -> None:
        with account_lock(database, "onesignal", "app-1", "OneSignal app-1"):
            holding.append("app-1")
            scheduler.sleep(30)

    def is_interrupted() -> None:
        scheduler.sleep(0.2)
        raise Interrupted

    started = time.monotonic()
    with pytest.raises(Interrupted):
        scheduler.run_side_by_side([waits_for_its_turn, is_interrupted], workers=2)

    assert time.monotonic() - started < 5
    assert holding == ["app-1"]
    with account_lock(database, "onesignal", "app-1", "again", wait_seconds=0.1):
        pass  # freed when the interrupted step unwound
