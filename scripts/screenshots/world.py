"""The demo world behind the screenshots: the bundled emulator's OneSignal apps, a history
in a DuckDB file of its own, and real Dagster runs of the OneSignal asset and its drop check
in a DAGSTER_HOME of its own, the last of them on the day the planted drops show.

Earlier days are stored through the store with the real client's snapshots (no run, to be
quick); the last ``runs`` days are real materialisations, so the UI has their partitions,
check results and events, and the drop sensor has them to alert on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import yaml

from scripts.screenshots.scenario import World
from segment_assets.config import ConfigurationError, load_accounts, provider_resources
from segment_assets.defs.alerts import alerts_from_env
from segment_assets.defs.assets import PROVIDER_ASSETS
from segment_assets.defs.checks import DROP_CHECKS
from segment_assets.demo import emulator_env
from segment_assets.emulator import (
    DEMO_ACTIONHUB_KEY,
    DEMO_ACTIONHUB_PROGRAMS,
    DEMO_ONESIGNAL_APPS,
    DEMO_USERCOM_KEY,
    DEMO_USERCOM_SUBDOMAIN,
    ActionHubProgram,
    EmulatorConfig,
    EmulatorServer,
    OneSignalApp,
    UserComApp,
)
from segment_assets.providers import schema
from segment_assets.store import store_from_env

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
ASSET = "onesignal_segments"
PROVIDER = "onesignal"
# Variables of the caller's shell that would point the world elsewhere, or send its alerts
# to real channels: none of them reaches the world or the webserver.
FOREIGN_VARIABLES = (
    "SEGMENT_ASSETS_DATABASE_URL",
    "SEGMENT_ASSETS_CONFIG",
    "SEGMENT_ASSETS_START_DATE",
    "SLACK_WEBHOOK_URL",
    "ALERT_WEBHOOK_URL",
    "DAGSTER_WEBSERVER_URL",
)


class WorldError(RuntimeError):
    """The world could not be built as the scenario says."""


@dataclass(frozen=True)
class WorldPlace:
    """Where a world lives: its DAGSTER_HOME, the DuckDB file and accounts file next to it,
    the variables a process serving it needs, the day of its drops, and the port its
    emulator listens on while it is built."""

    home: Path
    env: dict[str, str]
    day: dt.date
    emulator_port: int

    def environ(self) -> dict[str, str]:
        """The whole environment of a process serving this world."""
        base = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
        return {**base, **self.env}


def emulator_config(world: World, port: int = 0) -> EmulatorConfig:
    """The demo's accounts, OneSignal apps of ``world.segments_per_app`` segments (one of
    them user-based, so uncounted), the other providers tiny."""
    return EmulatorConfig(
        actionhub=[
            ActionHubProgram(p, DEMO_ACTIONHUB_KEY, segments_per_list=1)
            for p in DEMO_ACTIONHUB_PROGRAMS
        ],
        usercom=[UserComApp(DEMO_USERCOM_SUBDOMAIN, DEMO_USERCOM_KEY, n_segments=3)],
        onesignal=[
            OneSignalApp(
                app_id, key, n_segments=world.segments_per_app, n_user_based=1, n_deleted=0
            )
            for app_id, key in DEMO_ONESIGNAL_APPS.items()
        ],
        host=HOST,
        port=port,
    )


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set and ``FOREIGN_VARIABLES`` unset, restored after."""
    saved = dict(os.environ)
    try:
        for name in FOREIGN_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def days_ending(last: dt.date, count: int) -> list[dt.date]:
    """``count`` consecutive days ending with ``last``."""
    return [last - dt.timedelta(days=i) for i in range(count - 1, -1, -1)]


def place_world(world: World, folder: Path) -> WorldPlace:
    """Lay out a world in ``folder`` (its ``dagster_home`` must not exist yet): the
    accounts file, checked; the instance, created so that a UI and the runs can open it side
    by side; and the variables, with the drops due on yesterday's partition (the sensor
    alerts for recent partitions only). Alert links keep their default
    (``http://localhost:3000``), as in the README."""
    port = free_port()
    accounts = folder / "segment_assets.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **emulator_env(f"http://{HOST}:{port}", accounts),
        "SEGMENT_ASSETS_DUCKDB": str(folder / "segment_assets.duckdb"),
    }
    if world.accounts_file.strip():
        try:
            added = yaml.safe_load(world.accounts_file)
        except yaml.YAMLError as exc:
            raise WorldError(
                f"the scenario's accounts_file does not load: it is not YAML ({exc})"
            ) from None
        merged = merge(yaml.safe_load(accounts.read_text()) or {}, added or {})
        accounts.write_text(yaml.safe_dump(merged, sort_keys=False))
    check_accounts(world, env)
    home = folder / "dagster_home"
    home.mkdir()
    env["DAGSTER_HOME"] = str(home)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    # The UI invites a new instance's user to Dagster's community in a dialog over every page
    # until this file of the instance says it was seen.
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        contextlib.redirect_stdout(io.StringIO()),  # the storages' own news of the upgrade
    ):
        instance.upgrade(print_fn=lambda _message: None)
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return WorldPlace(home=home, env=env, day=day, emulator_port=port)


def merge(base: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``added`` merged in, mapping by mapping (a value of ``added`` wins)."""
    out = dict(base)
    for key, value in added.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def check_accounts(world: World, env: Mapping[str, str]) -> None:
    """Every account the scenario drops segments of is a OneSignal account of the accounts
    file in ``env``; the file itself loads (the scenario may add settings to it)."""
    try:
        loaded = load_accounts(env)
    except ConfigurationError as exc:
        raise WorldError(f"the scenario's accounts_file does not load: {exc}") from None
    names = sorted(a.name for a in (loaded.providers.get(PROVIDER, []) if loaded else []))
    for drop in world.drops:
        if drop.account not in names:
            raise WorldError(
                f"the scenario drops segments of the account {drop.account!r}; the "
                f"{PROVIDER} accounts are {', '.join(names)}"
            )


def build_world(world: World, place: WorldPlace) -> dict[str, Any]:
    """Store ``world`` in ``place``: start the emulator, plant the drops, store the history
    and run the last days. Returns the facts scenario texts may name. Raises
    :class:`WorldError` when the drop check of the drops' day did not fail."""
    config = emulator_config(world, place.emulator_port)
    with EmulatorServer(config) as emulator, patched_environ(place.env):
        resources = {
            "io_manager": store_from_env().io_manager(),
            **provider_resources(),
            "alerts": alerts_from_env(),
        }
        facts = plant_drops(emulator, world, resources[PROVIDER], place.day)
        every_day = days_ending(place.day, world.history_days + world.runs)
        store_history(emulator, resources[PROVIDER], every_day[: world.history_days])
        run_days(emulator, resources, every_day[world.history_days :], place.home)
    return {"day": place.day.isoformat(), **facts}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def plant_drops(
    emulator: EmulatorServer, world: World, accounts: Any, day: dt.date
) -> dict[str, Any]:
    """Plant the scenario's drops from ``day`` on; the facts about them."""
    by_name = {a.name: a for a in accounts.all_accounts()}
    facts: dict[str, Any] = {}
    for drop in world.drops:
        account = by_name[drop.account]  # place_world checked the names
        emulator.state.set_date(day)
        countable = [
            r for r in emulator.state.truth(PROVIDER, account.account()) if not r["user_based"]
        ]
        if drop.segments > len(countable):
            raise WorldError(
                f"the scenario drops {drop.segments} segments of {drop.account!r}, which has "
                f"{len(countable)} countable ones"
            )
        countable.sort(key=lambda r: r["subscriber_count"], reverse=True)
        dropped = countable[: drop.segments]
        for row in dropped:
            emulator.state.plant_drop(PROVIDER, account.account(), row["id"], day, drop.factor)
        if not facts:  # the first planted drop is the one texts speak of
            facts = {
                "account": account.name,
                "account_id": account.account(),
                "account_label": account.words,
                "dropped": [r["name"] for r in dropped],
                "dropped_count": len(dropped),
                "segments": len(countable),
            }
    return facts


def store_history(emulator: EmulatorServer, accounts: Any, each: list[dt.date]) -> None:
    """Store ``each`` day's snapshot of every account through the store, without a run."""
    store = store_from_env()
    types = {c.name: c.sql_type for c in schema.columns(PROVIDER)}
    clients = [a.process_config_and_initialize() for a in accounts.all_accounts()]
    for day in each:
        emulator.state.set_date(day)
        frame = pd.concat([c.snapshot(day) for c in clients], ignore_index=True)
        store.write_partition(ASSET, day, frame, column_types=types)


def run_days(
    emulator: EmulatorServer, resources: dict[str, Any], each: list[dt.date], home: Path
) -> None:
    """Materialise the OneSignal asset and its drop check for ``each`` day, in real runs on
    the instance in ``home``; the drop check of the last day must fail."""
    asset = next(a for a in PROVIDER_ASSETS if a.key.path[-1] == ASSET)
    check = next(c for c in DROP_CHECKS if c.check_key.asset_key == asset.key)
    run_config = {
        "ops": {ASSET: {"config": {"allow_late_partition": True}}},
        "loggers": {"console": {"config": {"log_level": "ERROR"}}},
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for day in each:
            emulator.state.set_date(day)
            result = dg.materialize(
                [asset, check],
                partition_key=day.isoformat(),
                resources=resources,
                instance=instance,
                run_config=run_config,
                raise_on_error=False,
            )
            if not result.success:
                raise WorldError(f"the run of {ASSET} for {day} failed")
        [evaluation] = [
            e for e in result.get_asset_check_evaluations() if e.asset_check_key == check.check_key
        ]
        if evaluation.passed:
            raise WorldError(
                f"the drop check of {each[-1]} passed: the planted drops are too small to fail it"
            )
