"""One provider's snapshot of one day across its accounts, each account on its own.

Every account is fetched side by side — all of them at once, driven by one
:mod:`~segment_assets.providers.scheduler` whose bounded pool of worker threads the accounts share —
with its own credentials, request budget, lock and connection pool, and is all or nothing:
a failed account never stops or spoils the others.
What the partition then holds is decided here, from plain frames:

* the accounts fetched now, with their new rows;
* the accounts not fetched now (already stored for the day) or whose fetch failed, with the
  rows the partition already had — nothing stored is ever lost by a re-run;
* rows of accounts no longer configured, kept as they were.

Which accounts a run fetches (:func:`accounts_to_fetch`): when the stored partition lacks
some configured accounts — an earlier run failed for them — only those, so a re-run repairs
what failed and keeps what succeeded; otherwise (first run, or every account stored) all of
them, so re-running a complete day takes its snapshot again. ``refetch_all`` forces all.

An account whose snapshot lists far fewer segments than its latest stored day (all gone, or
more than a share of at least some — :class:`ShrinkGuard`) fails like any failed account,
saying how many were expected, unless the run accepts it: an answer that lost the segments
never replaces a stored day on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd

from segment_assets.config.environment import workers_from_env
from segment_assets.providers import scheduler, schema
from segment_assets.providers.resource import ProviderResource

Lock = Callable[[ProviderResource], AbstractContextManager[Any]]


class SnapshotError(RuntimeError):
    """Every account this run fetched failed; the message lists each one's error."""


class ShrunkSnapshotError(RuntimeError):
    """An account listed far fewer segments than its latest stored day; nothing stored."""


@dataclass(frozen=True)
class ShrinkGuard:
    """When a snapshot lists so few segments that it is more likely an answer that lost
    them than a real mass deletion.

    A snapshot is *shrunk* when the account's latest stored day had segments and it lists
    none, or when that day had at least ``min_segments`` and more than ``max_lost_share``
    of them are gone. ``accept`` stores it anyway (a real deletion).
    """

    min_segments: int = 10
    max_lost_share: float = 0.5
    accept: bool = False

    def __post_init__(self) -> None:
        if self.min_segments < 1:
            raise ValueError(f"shrink_min_segments must be at least 1, got {self.min_segments}")
        if not 0 <= self.max_lost_share < 1:
            raise ValueError(
                f"shrink_max_lost_share must be at least 0 and below 1, got {self.max_lost_share}"
            )

    def shrunk(self, found: int, expected: int) -> bool:
        if expected <= 0 or found >= expected:
            return False
        if found == 0:
            return True
        return expected >= self.min_segments and expected - found > self.max_lost_share * expected

    def judge(
        self,
        resource: ProviderResource,
        found: int,
        reference: tuple[dt.date, int] | None,
        day: dt.date,
    ) -> str | None:
        """None when ``found`` is plausible; the note of an accepted shrink; raises
        :class:`ShrunkSnapshotError` for one that is not accepted."""
        if reference is None or not self.shrunk(found, reference[1]):
            return None
        stored_day, expected = reference
        what = (
            f"listed {found} segment(s) where its latest stored day ({stored_day}) had "
            f"{expected}: {expected - found} ({(expected - found) / expected:.0%}) gone"
        )
        if self.accept:
            return f"{what}; stored as accepted by accept_shrunk_accounts"
        raise ShrunkSnapshotError(
            f"{resource.describe()} {what}, so about {expected} were expected. An answer "
            f"that lost the segments is more likely than a mass deletion, so nothing of this "
            f"account was stored for {day} (its stored rows are kept). If the segments were "
            "really deleted, re-run the partition with accept_shrunk_accounts: true."
        )


@dataclass
class AccountOutcome:
    """What became of one configured account in this run."""

    resource: ProviderResource
    status: str  # "fetched", "failed", "kept" (stored earlier, not fetched now)
    segments: int = 0
    users: int = 0
    error: BaseException | None = None
    kept_rows: int = 0  # stored rows kept for a failed account
    note: str | None = None  # an accepted shrink

    @property
    def account(self) -> str:
        return self.resource.account()

    def status_text(self) -> str:
        if self.status == "fetched":
            return "fetched" + (" (shrunk, accepted)" if self.note else "")
        if self.status == "kept":
            return "stored earlier, kept"
        kept = f"; its earlier {self.kept_rows} rows kept" if self.kept_rows else ""
        return f"FAILED: {type(self.error).__name__}{kept}"


@dataclass
class Snapshot:
    """The partition's rows and what happened to each account."""

    frame: pd.DataFrame
    outcomes: list[AccountOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[AccountOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def accepted_shrinks(self) -> list[AccountOutcome]:
        return [o for o in self.outcomes if o.note]


def accounts_to_fetch(
    accounts: Sequence[ProviderResource], stored_accounts: set[str], refetch_all: bool = False
) -> list[ProviderResource]:
    """The accounts a run fetches: the ones the stored day lacks, or all (see module doc)."""
    missing = [a for a in accounts if a.account() not in stored_accounts]
    if refetch_all or not missing:
        return list(accounts)
    return missing


def take_snapshot(
    provider: str,
    accounts: Sequence[ProviderResource],
    day: dt.date,
    stored: pd.DataFrame,
    *,
    refetch_all: bool = False,
    lock: Lock | None = None,
    log: Any = None,
    latest: dict[str, tuple[dt.date, int]] | None = None,
    guard: ShrinkGuard | None = None,
    workers: int | None = None,
) -> Snapshot:
    """Fetch the accounts that need it, side by side, and compose the partition.

    ``stored`` is what the partition holds now (any columns of the table; may be empty).
    ``latest`` gives each account's latest stored day and its segment count (see
    :meth:`segment_assets.store.SegmentStore.latest_stored_counts`), which ``guard`` judges each new
    snapshot against. Raises the account's own error when the one account fetched failed,
    and :class:`SnapshotError` when several were fetched and all failed; nothing is stored
    then. ``workers`` bounds the requests in flight across all accounts (default
    ``SEGMENT_ASSETS_WORKERS``); ``lock`` must wait through :func:`scheduler.sleep`.
    """
    workers = workers_from_env() if workers is None else workers
    guard = guard or ShrinkGuard()
    latest = latest or {}
    notes: dict[str, str] = {}
    stored = schema.coerce(provider, stored)
    stored_accounts = set(stored["account"].dropna().astype(str))
    targets = accounts_to_fetch(accounts, stored_accounts, refetch_all)
    if log is not None and len(targets) < len(accounts):
        log.info(
            f"{day} already holds {len(accounts) - len(targets)} of {len(accounts)} accounts; "
            f"fetching the {len(targets)} missing: {', '.join(a.describe() for a in targets)}"
        )

    def fetch(resource: ProviderResource) -> pd.DataFrame:
        if lock is None:
            frame = resource.snapshot(day, log=log)
        else:
            with lock(resource):
                frame = resource.snapshot(day, log=log)
        note = guard.judge(resource, len(frame), latest.get(resource.account()), day)
        if note is not None:
            notes[resource.account()] = note
            if log is not None:
                log.warning(f"{resource.describe()} {note}")
        _say_problems(resource, frame, log)
        return frame

    results: dict[int, pd.DataFrame | BaseException] = {}
    calls = [partial(_call, fetch, resource) for resource in targets]
    in_flight = max(1, sum(resource.max_concurrency for resource in targets))  # no more helps
    paces = [resource.max_requests_per_second for resource in targets]
    delays = scheduler.staggered([1 / rate if rate else 0.0 for rate in paces])
    done = scheduler.run_side_by_side(calls, min(workers, in_flight), provider, delays)
    results.update(enumerate(done))

    errors = [r for r in results.values() if isinstance(r, BaseException)]
    if targets and len(errors) == len(targets):
        if len(errors) == 1:
            raise errors[0]
        listing = "; ".join(f"{t.describe()}: {e}" for t, e in zip(targets, errors, strict=True))
        raise SnapshotError(f"every account failed, nothing stored: {listing}") from errors[0]

    fetched_by_account = {t.account(): results[i] for i, t in enumerate(targets)}
    parts: list[pd.DataFrame] = []
    outcomes: list[AccountOutcome] = []
    for resource in accounts:
        ident = resource.account()
        rows = stored.loc[stored["account"] == ident]
        result = fetched_by_account.get(ident)
        if result is None:
            parts.append(rows)
            outcomes.append(_outcome(resource, "kept", rows))
        elif isinstance(result, BaseException):
            parts.append(rows)
            outcome = _outcome(resource, "failed", rows)
            outcome.error, outcome.kept_rows = result, len(rows)
            outcomes.append(outcome)
            if log is not None:
                kept = f"; its {len(rows)} stored rows of {day} are kept" if len(rows) else ""
                log.error(
                    f"{resource.describe()}: snapshot failed, the other accounts are stored"
                    f"{kept}: {result}"
                )
        else:
            parts.append(result)
            outcomes.append(_outcome(resource, "fetched", result))
            outcomes[-1].note = notes.get(ident)
    configured = {a.account() for a in accounts}
    orphans = stored.loc[~stored["account"].isin(configured)]
    if len(orphans):
        parts.append(orphans)
        if log is not None:
            gone = sorted(orphans["account"].astype(str).unique())
            log.info(f"kept the stored rows of accounts no longer configured: {', '.join(gone)}")
    parts = [p for p in parts if len(p)]
    if not parts:
        frame = stored.iloc[0:0]
    elif len(parts) == 1:
        frame = parts[0].reset_index(drop=True)
    else:  # every part already has the table's columns and types
        frame = pd.concat(parts, ignore_index=True)
    return Snapshot(frame=frame, outcomes=outcomes)


def _say_problems(resource: ProviderResource, frame: pd.DataFrame, log: Any) -> None:
    bad = schema.problem_rows(frame)
    if log is None or bad.empty:
        return
    sample = "; ".join(
        f"{row.segment_id} ({row.segment_name!r}): {row.problem}"
        for row in bad.head(5).itertuples()
    )
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    log.warning(
        f"{resource.describe()}: {len(bad)} segment(s) stored with what could be trusted, the "
        f"rest of each record kept: {sample}{more}"
    )


def _call(fetch: Callable[[ProviderResource], pd.DataFrame], resource: ProviderResource):
    try:
        return fetch(resource)
    except Exception as exc:  # each account's failure is its own; judged by the caller
        return exc


def _outcome(resource: ProviderResource, status: str, rows: pd.DataFrame) -> AccountOutcome:
    return AccountOutcome(
        resource=resource,
        status=status,
        segments=len(rows),
        users=int(rows["user_count"].sum(skipna=True)) if len(rows) else 0,
    )
