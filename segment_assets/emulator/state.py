"""The emulator's mutable state: the served world (clock, planted changes, catalogs, see
:mod:`~segment_assets.emulator.world`) with the faults, the admission of requests, the
counters and the ground truth."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from . import actionhub, onesignal, usercom
from .config import EmulatorConfig
from .faults import FaultBoard, Switches
from .world import World, as_date, as_moment


@dataclass(frozen=True)
class Admission:
    """What happens to one provider request before its handler runs."""

    switches: Switches
    wait_s: float
    fault: str | None


class EmulatorState(World):
    """Thread-safe; every public method may be called while the server is running."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(config)
        self._faults = FaultBoard()
        self._view_limit = (config.view_rate_limit_rps, config.view_rate_limit_burst)

    # -- faults ------------------------------------------------------------------------
    def set_faults(self, provider: str, account: str | None = None, **kw: Any) -> None:
        """Set fault switches for ``provider``, or for one account when ``account`` is given.

        Keyword names are the fields of ``faults.Switches`` plus ``fail_next`` (a list of
        fault kinds, one consumed per request, account queue first). Given fields replace
        earlier values and leave the others alone; ``fail_next`` replaces the queue.
        The account is the ActionHub program id, the User.com subdomain or the OneSignal
        app id.
        """
        with self._lock:
            self._faults.set(provider, account, **kw)

    def clear_faults(self, provider: str | None = None) -> None:
        """Drop every fault switch and queue (of one provider, or of all)."""
        with self._lock:
            self._faults.clear(provider)

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults.describe()

    def set_view_rate_limit(self, rps: float | None, burst: int = 1) -> None:
        """The standing OneSignal view-endpoint limit per app (None: off)."""
        with self._lock:
            self._view_limit = (rps, burst)

    # -- planted changes -----------------------------------------------------------------
    def plant_drop(
        self,
        provider: str,
        account: str,
        segment_id: Any,
        start: dt.date | str,
        factor: float = 0.1,
        end: dt.date | str | None = None,
    ) -> None:
        """Multiply the segment's size by ``factor`` from ``start`` (until ``end``, exclusive)."""
        targets = self._resolve(provider, account, segment_id)
        end_day = as_date(end).toordinal() if end is not None else None
        with self._lock:
            for list_key, index in targets:
                self._changes.add_drop(list_key, index, as_date(start).toordinal(), end_day, factor)

    def remove_segment(
        self, provider: str, account: str, segment_id: Any, start: dt.date | str | None = None
    ) -> None:
        """The segment disappears from listings (and OneSignal views 404) from ``start`` on."""
        targets = self._resolve(provider, account, segment_id)
        day = as_date(start).toordinal() if start is not None else self._day
        with self._lock:
            for list_key, index in targets:
                self._changes.add_removal(list_key, index, day)

    def edit_definition(
        self,
        provider: str,
        account: str,
        segment_id: Any,
        at: dt.datetime | dt.date | str,
        factor: float | None = None,
    ) -> None:
        """Someone edits the segment's definition at ``at`` (naive UTC; a date is its
        midnight): from then on the listing's ``updated_at`` says so (User.com's until the
        next recount touches it again) and OneSignal's filters gain a condition. With
        ``factor`` the new filter also keeps that share of the users from ``at``'s day on
        (:meth:`plant_drop`). ActionHub segments have no definition to edit."""
        if provider == "actionhub":
            raise ValueError("ActionHub segments have no definition to edit")
        moment = as_moment(at)
        targets = self._resolve(provider, account, segment_id)
        if provider == "onesignal":
            cat = onesignal.catalog(self, self.config.onesignal_app(account))
            if cat.read_only[targets[0][1]]:
                raise ValueError(f"OneSignal segment {segment_id} is read-only (a default one)")
        with self._lock:
            for list_key, index in targets:
                self._changes.add_edit(list_key, index, moment)
        if factor is not None:
            self.plant_drop(provider, account, segment_id, moment.date(), factor)

    def clear_changes(self) -> None:
        """Forget planted drops, removals and edits."""
        with self._lock:
            self._changes.clear()

    def _resolve(self, provider: str, account: str, segment_id: Any) -> list[tuple[str, int]]:
        if provider == "actionhub":
            return actionhub.resolve(self.config.actionhub_program(account), segment_id)
        if provider == "usercom":
            cat = usercom.catalog(self, self.config.usercom_app(account))
            index = cat.index_of.get(int(segment_id))
        elif provider == "onesignal":
            cat = onesignal.catalog(self, self.config.onesignal_app(account))
            index = cat.index_of.get(str(segment_id))
        else:
            raise ValueError(f"unknown provider {provider!r}")
        if index is None:
            raise KeyError(f"unknown {provider} segment {segment_id!r}")
        return [(cat.key, index)]

    # -- ground truth and counters -------------------------------------------------------
    def truth(
        self, provider: str, account: str | None = None, min_weight: float = 0.5
    ) -> list[dict]:
        """The raw records a complete snapshot of ``account`` must contain today."""
        if provider == "actionhub":
            return actionhub.truth(self, account or self.config.actionhub[0].program_id, min_weight)
        if provider == "usercom":
            return usercom.truth(self, account or self.config.usercom[0].subdomain)
        if provider == "onesignal":
            return onesignal.truth(self, account or self.config.onesignal[0].app_id)
        raise ValueError(f"unknown provider {provider!r}")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.snapshot()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.reset()

    # -- used by the server --------------------------------------------------------------
    def admit(
        self, provider: str, endpoint: str, account: str | None, new_connection: bool = False
    ) -> Admission:
        """Count the request as in flight and decide rate limiting and faults for it.

        ``new_connection``: the first request of ``provider`` on its TCP connection.
        """
        with self._lock:
            self._stats.enter(provider, endpoint, account, new_connection)
            sw = self._faults.switches(provider, account)
            wait = 0.0
            if sw.rate_limit_rps:
                key = (provider, account, endpoint, "faults")
                wait = self._faults.take_token(key, sw.rate_limit_rps, sw.rate_limit_burst)
            rps, burst = self._view_limit
            if not wait and rps and provider == "onesignal" and endpoint == "view":
                wait = self._faults.take_token((provider, account, endpoint, "base"), rps, burst)
            fault = None if wait else self._faults.take_fault(provider, account, sw)
            return Admission(sw, wait, fault)

    def release(self, provider: str, account: str | None, status: int) -> None:
        with self._lock:
            self._stats.leave(provider, account, status)
