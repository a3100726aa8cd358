"""Emulator accounts and settings (plain dataclasses) plus the demo credentials."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

DEMO_ACTIONHUB_KEY = "ah-demo-key"
DEMO_ACTIONHUB_PROGRAMS: tuple[str, ...] = ("demo-program", "demo-program-2")
DEMO_USERCOM_SUBDOMAIN = "demo"
DEMO_USERCOM_KEY = "3f1c9a7e5b2d4c6f8a0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"
# app id -> App API key
DEMO_ONESIGNAL_APPS: dict[str, str] = {
    "7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d": "os_v2_app_pqnfyk3ljvfgxhengdprukbwf2mz6xdemoappkeyone",
    "e4b8d2c6-1a3f-4e5d-8b7c-6f5e4d3c2b1a": "os_v2_app_4s4nfrq2hvhf3c34n5pe2pjlf2mz6xdemoappkeytwo",
}

PROVIDERS: tuple[str, ...] = ("actionhub", "usercom", "onesignal")


@dataclass(frozen=True)
class ActionHubProgram:
    """One ActionHub program (brand); several programs may share one API key."""

    program_id: str
    api_key: str
    segments_per_list: int = 40
    action_types: tuple[str, ...] = ("view", "purchase", "share")


@dataclass(frozen=True)
class UserComApp:
    """One User.com app, reached through its own subdomain."""

    subdomain: str
    api_key: str
    n_segments: int = 60
    page_size: int = 100


@dataclass(frozen=True)
class OneSignalApp:
    """One OneSignal app; ``n_deleted`` segments are listed but answer 404 on view."""

    app_id: str
    api_key: str
    n_segments: int = 50
    n_user_based: int = 2
    n_deleted: int = 1


def _demo_actionhub() -> list[ActionHubProgram]:
    return [ActionHubProgram(p, DEMO_ACTIONHUB_KEY) for p in DEMO_ACTIONHUB_PROGRAMS]


def _demo_usercom() -> list[UserComApp]:
    return [UserComApp(DEMO_USERCOM_SUBDOMAIN, DEMO_USERCOM_KEY)]


def _demo_onesignal() -> list[OneSignalApp]:
    return [OneSignalApp(app_id, key) for app_id, key in DEMO_ONESIGNAL_APPS.items()]


@dataclass
class EmulatorConfig:
    """Everything the emulator serves.

    ``today`` is the initial emulator clock (None: the current UTC date);
    ``start_date`` anchors the slow growth/decline of the count model.
    ``view_rate_limit_rps`` is a standing per-app limit on the OneSignal view endpoint
    (None: off); it is not a fault switch and survives ``clear_faults``.
    ``foreign_origin`` is where ``redirect-foreign`` and ``next_foreign`` point (another
    host than the emulator's; a test may run a receiver there to see what arrives).
    """

    actionhub: list[ActionHubProgram] = field(default_factory=_demo_actionhub)
    usercom: list[UserComApp] = field(default_factory=_demo_usercom)
    onesignal: list[OneSignalApp] = field(default_factory=_demo_onesignal)
    seed: int = 7
    start_date: dt.date = dt.date(2025, 1, 1)
    today: dt.date | None = None
    view_rate_limit_rps: float | None = None
    view_rate_limit_burst: int = 1
    foreign_origin: str = "http://foreign.invalid"
    host: str = "127.0.0.1"
    port: int = 0
    verbose: bool = False

    def __post_init__(self) -> None:
        _unique("ActionHub program_id", [p.program_id for p in self.actionhub])
        _unique("User.com subdomain", [a.subdomain for a in self.usercom])
        _unique("OneSignal app_id", [a.app_id for a in self.onesignal])
        for p in self.actionhub:
            if p.segments_per_list < 0 or not p.action_types:
                raise ValueError(f"bad ActionHub program {p.program_id!r}")
        for a in self.usercom:
            if a.n_segments < 0 or a.page_size < 1:
                raise ValueError(f"bad User.com app {a.subdomain!r}")
        for a in self.onesignal:
            if min(a.n_segments, a.n_user_based, a.n_deleted) < 0:
                raise ValueError(f"bad OneSignal app {a.app_id!r}")
            if a.n_user_based + a.n_deleted > a.n_segments:
                raise ValueError(f"OneSignal app {a.app_id!r}: too many special segments")

    def actionhub_program(self, program_id: str) -> ActionHubProgram:
        return _find(self.actionhub, "program_id", program_id, "ActionHub program")

    def usercom_app(self, subdomain: str) -> UserComApp:
        return _find(self.usercom, "subdomain", subdomain, "User.com app")

    def onesignal_app(self, app_id: str) -> OneSignalApp:
        return _find(self.onesignal, "app_id", app_id, "OneSignal app")


def _unique(what: str, values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what}")


def _find(items: list, attr: str, value: str, what: str):
    for item in items:
        if getattr(item, attr) == value:
            return item
    raise KeyError(f"unknown {what}: {value!r}")
