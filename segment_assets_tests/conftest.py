"""Shared fixtures: a real emulator on a loopback socket, its environment, a DuckDB file."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from segment_assets.emulator import EmulatorConfig, EmulatorServer

from .pg_fixtures import any_store, database, password_server, pg_server  # noqa: F401
from .webhook_receiver import Receiver

YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
MEMORY_TMP = Path("/dev/shm")


def _scratch_in_memory() -> None:
    """Put the tests' scratch files (tmp_path, Dagster instances, DuckDB files, throwaway
    PostgreSQL servers, and those of every process a test starts) on the tmpfs where there is
    one, unless TMPDIR says where. Every Dagster event is a SQLite commit and every DuckDB
    close a checkpoint: on a disk shared with other work, waiting for their fsyncs nearly
    doubled the time of the tests that run Dagster. A killed process leaves the same bytes in
    either place (they are in the page cache once written), so nothing a test proves depends
    on it."""
    if os.environ.get("TMPDIR") or not (MEMORY_TMP.is_dir() and os.access(MEMORY_TMP, os.W_OK)):
        return
    os.environ["TMPDIR"] = str(MEMORY_TMP)
    tempfile.tempdir = str(MEMORY_TMP)


_scratch_in_memory()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that hold slow tests first, each kept whole (its fixtures are set up
    once), with its slow tests leading. With two workers (``-n 2``, ``--dist worksteal``)
    the long end-to-end tests then start early, and what is left when one worker runs dry
    is quick tests the other can take over: no 30-second test starts last on one worker
    while the other idles."""
    modules = list(dict.fromkeys(item.module for item in items))
    slow = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(
        key=lambda item: (
            item.module not in slow,
            modules.index(item.module),
            item.get_closest_marker("slow") is None,
        )
    )


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a test module (or parametrize) to change sizes and accounts."""
    return EmulatorConfig()


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[EmulatorServer]:
    with EmulatorServer(emulator_config) as emu:
        emu.state.set_date(YESTERDAY)
        yield emu


@pytest.fixture
def log() -> logging.Logger:
    return logging.getLogger("segment_assets_tests")


@pytest.fixture
def duckdb_path(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "warehouse" / "segment_assets.duckdb")
    monkeypatch.setenv("SEGMENT_ASSETS_DUCKDB", path)
    return path


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def emulator_env(emu: EmulatorServer) -> dict[str, str]:
    """The environment a user would set to point segment_assets at this emulator: the
    credentials of its first account of each provider."""
    config = emu.state.config
    actionhub, usercom, onesignal = config.actionhub[0], config.usercom[0], config.onesignal[0]
    return {
        "ACTIONHUB_API_KEY": actionhub.api_key,
        "ACTIONHUB_PROGRAM_ID": actionhub.program_id,
        "ACTIONHUB_BASE_URL": emu.base_url("actionhub"),
        "USERCOM_API_KEY": usercom.api_key,
        "USERCOM_BASE_URL": emu.base_url("usercom", usercom.subdomain),
        "ONESIGNAL_API_KEY": onesignal.api_key,
        "ONESIGNAL_APP_ID": onesignal.app_id,
        "ONESIGNAL_BASE_URL": emu.base_url("onesignal"),
        # the emulator has no rate limit unless a test sets one: go fast
        "ACTIONHUB_MAX_RPS": "1000",
        "USERCOM_MAX_RPS": "1000",
        "ONESIGNAL_MAX_RPS": "1000",
        "ONESIGNAL_MAX_CONCURRENCY": "8",
    }


@pytest.fixture
def env(emulator: EmulatorServer, monkeypatch, duckdb_path) -> dict[str, str]:
    values = emulator_env(emulator)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def resources(env) -> dict:
    """Provider resources built exactly as definitions.py builds them, plus the IO manager."""
    from segment_assets.config import provider_resources_from_env
    from segment_assets.store.duckdb_files import io_manager

    return {"io_manager": io_manager(), **provider_resources_from_env()}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver (Slack or JSON) on a loopback port; see webhook_receiver.py."""
    with Receiver() as server:
        yield server


def failure_text(result) -> str:
    """Every STEP_FAILURE's error message, including the chained causes the UI shows."""
    texts = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)
