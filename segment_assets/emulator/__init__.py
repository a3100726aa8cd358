"""A local stand-in for the ActionHub, User.com and OneSignal segment APIs.

    with EmulatorServer(EmulatorConfig()) as emu:
        emu.base_url("actionhub")            # {emu.url}/actionhub
        emu.base_url("usercom", "demo")      # {emu.url}/usercom/demo/api/public
        emu.base_url("onesignal")            # {emu.url}/onesignal
        emu.state.set_date(date)             # the day whose counts are served
        emu.state.set_faults("onesignal", rate_limit_rps=1, fail_next=["503-html"])
        emu.state.plant_drop("onesignal", app_id, segment_id, start=date, factor=0.1)
        emu.state.edit_definition("onesignal", app_id, segment_id, at=moment, factor=0.2)
        emu.state.truth("onesignal", app_id) # what a complete snapshot must contain

Modules: ``config`` (accounts, demo credentials), ``model`` (count series), ``names``,
``changes`` (planted drops, removals and definition edits), ``faults`` (the switches),
``fault_answers`` (the answers that go wrong), ``lies`` (well-formed wrong answers),
``stats``, ``world`` (what the routes serve from: clock, changes, catalogs), ``state`` (the
world with faults and admission: everything mutable), one module per provider API,
``control`` (``/_emulator/*`` endpoints) and ``server`` (HTTP). Standard library plus numpy
only.
"""

from .config import (
    DEMO_ACTIONHUB_KEY,
    DEMO_ACTIONHUB_PROGRAMS,
    DEMO_ONESIGNAL_APPS,
    DEMO_USERCOM_KEY,
    DEMO_USERCOM_SUBDOMAIN,
    PROVIDERS,
    ActionHubProgram,
    EmulatorConfig,
    OneSignalApp,
    UserComApp,
)
from .faults import FAULT_KINDS, Switches
from .server import EmulatorServer
from .state import EmulatorState

__all__ = [
    "DEMO_ACTIONHUB_KEY",
    "DEMO_ACTIONHUB_PROGRAMS",
    "DEMO_ONESIGNAL_APPS",
    "DEMO_USERCOM_KEY",
    "DEMO_USERCOM_SUBDOMAIN",
    "FAULT_KINDS",
    "PROVIDERS",
    "ActionHubProgram",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "OneSignalApp",
    "Switches",
    "UserComApp",
]
